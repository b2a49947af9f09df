"""The state between months: cached responses on disk (SQLite in the work directory),
streamed to and from the state as gzip'd JSON Lines, and what it saves in month two.

The end-to-end test runs the real CLI against the tiny simulator: month two with the
state must answer most lists with free 304s and still write exactly what a run without
any state writes.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import sqlite3
import zipfile
from pathlib import Path

import requests
from ghvault.github.cache import FORMAT, HttpCache, StateStore

from tests.conftest import start_sim
from tests.engine.helpers import run_ghvault


def entry(n: int) -> dict:
    return {"etag": f'W/"e{n}"', "link": f'<https://h/x?page={n + 1}>; rel="next"',
            "body": json.dumps([{"id": n, "text": "é" * n}])}


def test_entries_live_in_the_sqlite_file_not_in_memory(tmp_path):
    cache = HttpCache(tmp_path / "c.sqlite")
    cache.put("https://api.example/repos/o/r/issues?per_page=100", entry(1))
    cache.put("https://other-host:8443/repos/o/r/labels", entry(2))
    assert cache.get("https://api.example/repos/o/r/labels") == entry(2)  # host ignored
    assert cache.get("https://api.example/repos/o/r/hooks") is None
    cache.close()
    # another connection sees both entries: they are in the file
    db = sqlite3.connect(tmp_path / "c.sqlite")
    keys = sorted(k for (k,) in db.execute("SELECT key FROM entries"))
    assert keys == ["/repos/o/r/issues?per_page=100", "/repos/o/r/labels"]
    db.close()


def test_state_round_trip_keeps_only_what_the_run_used(tmp_path):
    one = HttpCache(tmp_path / "one.sqlite")
    for n in range(3):
        one.put(f"https://h/list/{n}", entry(n))
    one.put("/ghvault/memo", {"items": [{"id": 7}]})  # collectors' memos travel too
    saved = io.BytesIO()
    assert one.write_jsonl(saved) == 4
    lines = gzip.decompress(saved.getvalue()).splitlines()
    assert json.loads(lines[0]) == {"format": FORMAT}
    assert json.loads(lines[1]) == {"key": "/ghvault/memo", "entry": {"items": [{"id": 7}]}}

    two = HttpCache(tmp_path / "two.sqlite")
    assert two.read_jsonl(io.BytesIO(saved.getvalue())) == 4
    assert len(two) == 4
    assert two.get("https://elsewhere/list/1") == entry(1)  # the only one used this time
    again = io.BytesIO()
    assert two.write_jsonl(again) == 1
    three = HttpCache(tmp_path / "three.sqlite")
    three.read_jsonl(io.BytesIO(again.getvalue()))
    assert len(three) == 1 and three.get("/list/1") == entry(1)
    assert three.get("/list/0") is None


def test_format_1_state_is_read_and_replaced_by_format_2(tmp_path):
    owner_dir = tmp_path / "state" / "hubber"
    owner_dir.mkdir(parents=True)
    old = {"format": 1, "entries": {"/repos/o/r/labels?per_page=100": entry(5)}}
    (owner_dir / "http-cache.json.gz").write_bytes(gzip.compress(json.dumps(old).encode()))
    store = StateStore(str(tmp_path / "state"), "hubber")
    work = tmp_path / "w1"
    work.mkdir()
    cache = store.load(work)
    assert cache.get("https://api.github.com/repos/o/r/labels?per_page=100") == entry(5)
    store.save(cache)
    cache.close()
    new_file = owner_dir / "http-cache.jsonl.gz"
    assert json.loads(gzip.decompress(new_file.read_bytes()).splitlines()[0]) == {"format": 2}
    # the format-2 state wins from now on, even if the old object stays beside it
    (owner_dir / "http-cache.json.gz").write_bytes(gzip.compress(json.dumps(
        {"format": 1, "entries": {"/other": entry(9)}}).encode()))
    work2 = tmp_path / "w2"
    work2.mkdir()
    cache = store.load(work2)
    assert cache.get("/repos/o/r/labels?per_page=100") == entry(5)
    assert cache.get("/other") is None


def test_unreadable_or_unknown_state_is_ignored_with_a_warning(tmp_path, caplog):
    owner_dir = tmp_path / "state" / "hubber"
    owner_dir.mkdir(parents=True)
    store = StateStore(str(tmp_path / "state"), "hubber")
    for n, content in enumerate([b"not gzip at all",
                                 gzip.compress(b'{"format": 99}\n{"key": "/a", "entry": {}}\n'),
                                 gzip.compress(b'{"format": 2}\n{"key": "/a", "ent')]):
        (owner_dir / "http-cache.jsonl.gz").write_bytes(content)
        work = tmp_path / f"w{n}"
        work.mkdir()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ghvault.state"):
            cache = store.load(work)
        assert len(cache) == 0, content
        assert caplog.records, content
        cache.close()


def test_state_streams_to_and_from_s3(aws, tmp_path):
    aws.client("s3").create_bucket(Bucket="state-stream")
    store = StateStore("s3://state-stream/ghvault-state/", "hubworks")
    (tmp_path / "a").mkdir()
    cache = store.load(tmp_path / "a")  # nothing there yet
    assert len(cache) == 0
    for n in range(250):  # more than one loading batch
        cache.put(f"/repos/hubworks/r{n}/issues", entry(n))
    store.save(cache)
    cache.close()
    head = aws.client("s3").head_object(Bucket="state-stream",
                                        Key="ghvault-state/hubworks/http-cache.jsonl.gz")
    assert head["ContentLength"] > 0
    (tmp_path / "b").mkdir()
    again = store.load(tmp_path / "b")
    assert len(again) == 250
    assert again.get("/repos/hubworks/r249/issues") == entry(249)
    assert not list(tmp_path.glob("*/state-*"))  # the staging file is gone


def digests(archive: Path) -> dict[str, str]:
    with zipfile.ZipFile(archive) as z:
        entries = json.loads(z.read("MANIFEST.json"))["entries"]
    return {e["path"]: e["sha256"] for e in entries if not e["path"].endswith(".bundle")}


def test_month_two_with_state_costs_30_of_112_and_writes_what_a_full_read_writes(
        moto_server, tmp_path):
    running, stop = start_sim()
    try:
        login = running.sim.world.owners["user"]
        state = tmp_path / "state"

        def month(name: str, with_state: bool) -> dict:
            running.reset()
            args = ["--owner", login, "--month", name, "--dest",
                    (tmp_path / f"{name}-{with_state}.zip").as_uri(),
                    "--workdir", str(tmp_path)]
            proc = run_ghvault(running, moto_server, *args,
                               *(["--state", str(state)] if with_state else []))
            assert proc.returncode == 0, proc.stderr[-2000:]
            return running.stats()

        first = month("2026-10", True)
        # 102 requests (the floor); 112 points: a page of discussions costs 2, with its
        # comments 2 more, and the projects list 3 (GitHub's arithmetic, see the simulator)
        assert (first["requests_total"], first["charged"]) == (102, 112)
        assert (state / login / "http-cache.jsonl.gz").exists()
        requests.post(f"{running.root}/_sim/mutate", verify=str(running.ca), timeout=60)
        second = month("2026-11", True)
        # 27 when every changed events list was read whole; the issue-events lists now
        # read only their new front page (see GitHubClient.paginate_newest_first)
        # 23 before discussions and projects; now 21 REST and 9 GraphQL points: the lists
        # of discussions and projects again, none of their comments and items (unchanged)
        assert second["charged"] == 30, second["by_endpoint"]
        events = second["by_endpoint"]["GET /repos/{owner}/{repo}/issues/events"]
        assert events.get("200", 0) == 2  # the active repository's front page, the new repo
        assert second["not_modified"] > second["charged"]
        # the same content as a run that reads everything afresh
        fresh = month("2026-11", False)
        assert fresh["not_modified"] == 0
        assert digests(tmp_path / "2026-11-True.zip") == digests(tmp_path / "2026-11-False.zip")
        assert list(tmp_path.glob("ghvault-*")) == []  # the work directory is cleaned up
    finally:
        stop()
