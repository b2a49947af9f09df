"""`ghvault verify`, `restore` and `list` end to end.

One backup of the simulator's `small` user is made per session (`ghvault run` into moto's
S3) and shared: verify reads it back through ranged GETs, restore rebuilds mirrors whose
refs equal `git ls-remote` of the simulator, corrupted copies fail verify with the entry
named, a GLACIER copy goes through the restore-then-read flow, `list` shows gaps, and
`--push-to` pushes branches, tags and LFS objects to a plain git server (git http-backend
with receive-pack and an LFS endpoint, both from tests/github_sim/gitserve.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import TOKEN, start_sim
from tests.github_sim import gitserve

GHVAULT = str(Path(sys.executable).with_name("ghvault"))
BUCKET = "vault-restore"
MONTH = "2026-10"
SLOW_RESTORE = 6  # seconds per step of a restore in moto (see slow_glacier): wide enough
# for two `ghvault restore` starts on a loaded machine inside one step


def ghvault(*args: str, env: dict | None = None, timeout: int = 300
            ) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "GITHUB_TOKEN"}
    full.pop("AWS_CA_BUNDLE", None)
    return subprocess.run([GHVAULT, *args], env={**full, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)


def archive_key(owner: str, month: str = MONTH, prefix: str = "github") -> str:
    year, mm = month.split("-")
    return f"{prefix}/{owner}/{year}/{mm}/{owner}-{month}.zip"


@pytest.fixture(scope="session")
def small(tmp_path_factory):
    """The `small` simulator (its own, so the shared tiny one is left alone)."""
    running, stop = start_sim("small")
    yield running
    stop()


@pytest.fixture(scope="session")
def small_backup(small, moto_server, tmp_path_factory):
    """`ghvault run` of the small user into moto's S3, plus a local copy with its sidecar."""
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    owner = small.sim.world.owners["user"]
    key = archive_key(owner)
    proc = ghvault("run", "--api-url", small.api, "--owner", owner, "--month", MONTH,
                   "--dest", f"s3://{BUCKET}/{key}",
                   env={**small.client_env(), **moto_server.env(), "GITHUB_TOKEN": TOKEN})
    assert proc.returncode == 0, proc.stderr[-3000:]
    local = tmp_path_factory.mktemp("archive") / f"{owner}-{MONTH}.zip"
    s3.download_file(BUCKET, key, str(local))
    s3.download_file(BUCKET, key + ".manifest.json", str(local) + ".manifest.json")
    return {"owner": owner, "key": key, "url": f"s3://{BUCKET}/{key}", "local": local}


@pytest.fixture(scope="session")
def restored(small, small_backup, moto_server, tmp_path_factory):
    to = tmp_path_factory.mktemp("restored") / "out"
    proc = ghvault("restore", small_backup["url"], "--to", str(to), env=moto_server.env())
    return proc, to


def ls_remote(small, url: str) -> dict[str, str]:
    """`git ls-remote` of the simulator: refs only (no HEAD, no peeled tags)."""
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    env = {**os.environ, **small.client_env(), "GIT_CONFIG_COUNT": "1",
           "GIT_CONFIG_KEY_0": "http.extraheader",
           "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}", "GIT_TERMINAL_PROMPT": "0"}
    out = subprocess.run(["git", "ls-remote", url], env=env, capture_output=True, text=True,
                         check=True).stdout
    pairs = (line.split("\t") for line in out.splitlines())
    return {ref: sha for sha, ref in pairs if ref != "HEAD" and not ref.endswith("^{}")}


def local_refs(repo: Path) -> dict[str, str]:
    out = subprocess.run(["git", "for-each-ref", "--format=%(objectname)\t%(refname)"],
                         cwd=repo, capture_output=True, text=True, check=True).stdout
    return {ref: sha for sha, ref in (line.split("\t") for line in out.splitlines())}


def rewrite(src: Path, dst: Path, change) -> None:
    """Copy a zip entry by entry; `change(name, data)` returns new data, or None to drop."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info, data)
    shutil.copy(str(src) + ".manifest.json", str(dst) + ".manifest.json")


# --- verify -------------------------------------------------------------------------------


def test_verify_accepts_the_backup_from_s3_reading_it_about_once(small_backup, aws):
    from ghvault.source import open_source
    from ghvault.verify import verify

    proc = ghvault("verify", small_backup["url"], env=aws.env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    *_, text, last = proc.stdout.strip().splitlines()
    assert text.startswith(small_backup["url"]) and ": OK (" in text and "bundles" in text
    summary = json.loads(last)  # the JSON summary line, as `run` and `restore` end
    assert summary["ok"] is True and summary["problems"] == 0
    assert summary["bundles"] > 0 and summary["entries"] > summary["bundles"]
    source = open_source(small_backup["url"])
    report = verify(source)
    assert report.ok, report.problems
    assert report.counts["issues"] > 0 and report.bundles >= 10
    # one pass: the object is fetched about once, in a few ranged GETs
    assert report.fetched <= source.size * 1.1, (report.fetched, source.size)
    assert report.requests <= 10


def test_verify_names_a_flipped_byte_in_a_bundle(small_backup, tmp_path):
    bad = tmp_path / "bad.zip"
    hit = []

    def flip(name: str, data: bytes) -> bytes:
        if not hit and name.endswith("/git.bundle") and len(data) > 2000:
            hit.append(name)
            b = bytearray(data)
            b[len(b) // 2] ^= 0xFF
            return bytes(b)
        return data

    rewrite(small_backup["local"], bad, flip)
    proc = ghvault("verify", str(bad))
    assert proc.returncode == 8, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    named = [line for line in lines if line.startswith(f"{hit[0]}: ")]
    assert any("SHA-256 does not match" in line for line in named), lines
    assert any("pack does not match its SHA-1" in line for line in named), lines
    summary = json.loads(lines[-1])
    assert summary["ok"] is False and summary["problems"] == len(lines) - 2
    assert "ghvault: error:" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_verify_names_a_truncated_jsonl(small_backup, tmp_path):
    bad = tmp_path / "bad.zip"
    hit = []

    def truncate(name: str, data: bytes) -> bytes:
        if not hit and name.endswith("/issues.jsonl") and data.count(b"\n") > 3:
            hit.append(name)
            return data[:len(data) // 2]
        return data

    rewrite(small_backup["local"], bad, truncate)
    proc = ghvault("verify", str(bad))
    assert proc.returncode == 8
    lines = proc.stdout.splitlines()
    assert f"{hit[0]}: is not valid JSON" not in proc.stdout
    assert any(line.startswith(f"{hit[0]}: has ") and "where the manifest says" in line
               for line in lines), lines
    assert any(line.startswith(f"{hit[0]}: line ") and "not valid JSON" in line
               for line in lines), lines
    assert any(line.startswith("count 'issues'") for line in lines), lines


def test_verify_names_a_missing_entry_and_the_count_it_breaks(small_backup, tmp_path):
    bad = tmp_path / "bad.zip"
    hit = []

    def drop(name: str, data: bytes) -> bytes | None:
        if not hit and name.endswith("/labels.json") and json.loads(data):
            hit.append(name)
            return None
        return data

    rewrite(small_backup["local"], bad, drop)
    proc = ghvault("verify", str(bad))
    assert proc.returncode == 8
    lines = proc.stdout.splitlines()
    assert f"{hit[0]}: is in the manifest but missing from the archive" in lines
    assert any(line.startswith("count 'labels'") for line in lines), lines
    assert "the archive has" in proc.stdout  # and the archive no longer matches its sidecar


def test_verify_wants_the_sidecar_and_reports_a_missing_archive(small_backup, tmp_path):
    alone = tmp_path / "alone.zip"
    shutil.copy(small_backup["local"], alone)
    proc = ghvault("verify", str(alone))
    assert proc.returncode == 8 and "sidecar manifest" in proc.stdout
    missing = ghvault("verify", str(tmp_path / "nope.zip"))
    assert missing.returncode == 9
    assert missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"hello" * 100)
    proc = ghvault("verify", str(not_zip))
    assert proc.returncode == 9 and "not a readable zip archive" in proc.stderr


def test_hashing_reader_digests_the_whole_object_whatever_the_read_order(tmp_path):
    from ghvault.storage.local import LocalReader

    data = os.urandom(3 << 20)
    path = tmp_path / "blob"
    path.write_bytes(data)
    reader = LocalReader(path, len(data), hashing=True)
    for pos, n in ((len(data) - 100, 100), (0, 10), (10, 5000), (5100, 70000),
                   (2 << 20, 1000), (40, 10)):
        reader.seek(pos)
        assert reader.read(n) == data[pos:pos + n]
    assert reader.finish_sha256() == hashlib.sha256(data).hexdigest()
    reader.close()


# --- restore ------------------------------------------------------------------------------


def test_restore_rebuilds_every_mirror_with_the_simulators_refs(small, small_backup, restored):
    proc, to = restored
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    world = small.sim.world
    owner = small_backup["owner"]
    repos = world.repos_of(owner)
    assert summary["counts"]["mirrors"] == sum(not r.empty for r in repos)
    for repo in repos:
        mirror = to / "repos" / f"{repo.name}.git"
        assert (mirror / "HEAD").is_file(), repo.name
        want = {} if repo.empty else ls_remote(small, f"{small.root}/{owner}/{repo.name}.git")
        assert local_refs(mirror) == want, repo.name
        if not repo.empty:
            head = subprocess.run(["git", "symbolic-ref", "HEAD"], cwd=mirror, text=True,
                                  capture_output=True).stdout.strip()
            assert head == f"refs/heads/{repo.default_branch}", repo.name
            fsck = subprocess.run(["git", "fsck", "--connectivity-only", "--no-progress"],
                                  cwd=mirror, capture_output=True, text=True)
            assert fsck.returncode == 0, fsck.stderr
        wiki = to / "repos" / f"{repo.name}.wiki.git"
        assert wiki.is_dir() == bool(repo.wiki_exists), repo.name
        if repo.wiki_exists:
            assert local_refs(wiki) == ls_remote(
                small, f"{small.root}/{owner}/{repo.name}.wiki.git")
        for oid in repo.lfs_objects:
            obj = mirror / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
            assert hashlib.sha256(obj.read_bytes()).hexdigest() == oid
    for gist in world.gists_of(owner):
        assert local_refs(to / "gists" / f"{gist.id}.git") == local_refs(
            small.sim.gist_dir(gist.id))
    assert TOKEN not in proc.stdout + proc.stderr


def test_restore_writes_the_metadata_with_the_simulators_counts(small, small_backup, restored):
    _, to = restored
    truth = small.sim.world.counts()["user"]

    def lines(name: str):
        for path in sorted((to / "repos").glob(f"*/{name}")):
            yield from (json.loads(line) for line in path.read_text().splitlines())

    assert sum("pull_request" not in i for i in lines("issues.jsonl")) == truth["issues"]
    assert sum(1 for _ in lines("pulls.jsonl")) == truth["pulls"]
    assert sum(1 for _ in lines("issue_comments.jsonl")) == truth["comments"]
    assert sum(1 for _ in lines("reviews.jsonl")) == truth["reviews"]
    assert sum(1 for _ in lines("review_comments.jsonl")) == truth["review_comments"]
    assert sum(len(json.loads(p.read_text())) for p in (to / "repos").glob("*/labels.json")) \
        == truth["labels"]
    assert len(list((to / "repos").glob("*/releases/*/*"))) == truth["release_assets"]
    assert json.loads((to / "account" / "profile.json").read_text())["login"] == \
        small_backup["owner"]
    assert json.loads((to / "MANIFEST.json").read_text())["counts"]["issues"] == truth["issues"]


def test_restore_refuses_a_used_directory_and_a_bad_template(small_backup, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("x")
    proc = ghvault("restore", str(small_backup["local"]), "--to", str(used))
    assert proc.returncode == 2 and "not an empty directory" in proc.stderr
    for template in ("https://host/org/fixed.git", "https://user:pw@host/{repo}.git",
                     "ssh://host/{repo}.git"):
        proc = ghvault("restore", str(small_backup["local"]), "--to", str(tmp_path / "n"),
                       "--push-to", template)
        assert proc.returncode == 2, template
        assert "pw" not in proc.stderr.replace("--push-to", "")
    assert not (tmp_path / "n").exists()


class PlainGitServer:
    """A plain git host: smart HTTP through `git http-backend` with receive-pack on, a Git
    LFS endpoint, a bearer of one token allowed to push, repositories created on first push."""

    def __init__(self, root: Path, token: str):
        self.root, self.token = root, token
        self.signer = gitserve.HmacSigner()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.handle(self)

            do_POST = do_PUT = do_HEAD = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def store(self, full_name: str) -> Path:
        return self.root / "lfs" / full_name

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        path = urlsplit(h.path).path
        if path.startswith("/_sim/lfs/"):  # signed transfer URLs from the batch answer
            rest = path[len("/_sim/lfs/"):]
            full = "/".join(rest.split("/")[:2])
            gitserve.lfs_object(h, self.signer, rest, store=self.store(full))
            return
        m = re.match(r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+?)\.git(?P<rest>/.*)?$", path)
        if not m:
            gitserve.discard_body(h)
            h.send_error(404)
            return
        if gitserve.parse_git_auth(h.headers) != self.token:
            gitserve.send_git_auth_challenge(h)
            return
        full = f"{m['owner']}/{m['repo']}"
        repo = self.root / m["owner"] / f"{m['repo']}.git"
        if not repo.exists():
            subprocess.run(["git", "init", "--bare", "-q", str(repo)], check=True)
        rest = m["rest"] or "/"
        if rest.startswith("/info/lfs"):
            length = int(h.headers.get("Content-Length") or 0)
            body = h.rfile.read(length) if length else b""
            gitserve.lfs_batch(h, self.store(full), self.url, full, body, True, self.signer)
            return
        gitserve.serve_git(h, repo, rest, True)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_restore_a_subset_and_push_it_to_a_plain_git_server(small, small_backup, tmp_path):
    world = small.sim.world
    lfs_repo = next(r for r in world.repos_of(small_backup["owner"]) if r.lfs_objects)
    server = PlainGitServer(tmp_path / "host", token="ghp_pushTOKEN0000000000000000000000000001")
    try:
        to = tmp_path / "out"
        template = f"{server.url}/neworg/{{repo}}.git"
        args = ("restore", str(small_backup["local"]), "--to", str(to),
                "--repos", f"^{re.escape(lfs_repo.name)}$", "--push-to", template)
        proc = ghvault(*args, env={"GITHUB_TOKEN": server.token})
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        assert summary["counts"]["mirrors"] == 1 and summary["counts"]["pushed"] == 1
        assert sorted(p.name for p in (to / "repos").iterdir()) == sorted(
            [lfs_repo.name, f"{lfs_repo.name}.git"] +
            ([f"{lfs_repo.name}.wiki.git"] if lfs_repo.wiki_exists else []))
        assert not (to / "gists").exists() and not (to / "account").exists()
        source = local_refs(to / "repos" / f"{lfs_repo.name}.git")
        pushed = local_refs(server.root / "neworg" / f"{lfs_repo.name}.git")
        assert pushed == {r: s for r, s in source.items()
                          if r.startswith(("refs/heads/", "refs/tags/"))}
        assert any(r.startswith("refs/pull/") for r in source)  # kept locally, not pushed
        for oid in lfs_repo.lfs_objects:
            obj = gitserve.lfs_object_path(server.store(f"neworg/{lfs_repo.name}"), oid)
            assert hashlib.sha256(obj.read_bytes()).hexdigest() == oid
        # the token is nowhere but the environment
        assert server.token not in proc.stdout + proc.stderr
        for cfg in to.rglob("config"):
            assert server.token not in cfg.read_text()
        # without the token the push is refused: exit 5, one sentence, token-free
        refused = ghvault(*args[:3], str(tmp_path / "out2"), *args[4:])
        assert refused.returncode == 5, refused.stdout + refused.stderr
        assert "push of" in refused.stdout and "could not be pushed" in refused.stderr
    finally:
        server.close()


# --- Glacier and the catalogue ------------------------------------------------------------


def glacier_copy(moto_server, small_backup, bucket: str, month: str) -> str:
    s3 = moto_server.client("s3")
    key = archive_key(small_backup["owner"], month)
    s3.copy_object(Bucket=bucket, Key=key, StorageClass="GLACIER",
                   CopySource={"Bucket": BUCKET, "Key": small_backup["key"]})
    s3.copy_object(Bucket=bucket, Key=key + ".manifest.json",
                   CopySource={"Bucket": BUCKET, "Key": small_backup["key"] + ".manifest.json"})
    return key


@pytest.fixture
def slow_glacier(moto_server):
    """Restores that take a couple of seconds, as real ones take hours. moto's state
    manager moves a key's restore None -> IN_PROGRESS -> RESTORED, one step per
    `SLOW_RESTORE` seconds counted from the key's creation, then from the last step:
    a test lets a new GLACIER key age that long, so the restore it starts reads as
    in progress for the next `SLOW_RESTORE` seconds."""
    import requests

    api = f"{moto_server.endpoint}/moto-api/state-manager"
    requests.post(f"{api}/set-transition", timeout=10, json={
        "model_name": "s3::keyrestore",
        "transition": {"progression": "time", "seconds": SLOW_RESTORE}})
    yield
    requests.post(f"{api}/unset-transition", json={"model_name": "s3::keyrestore"},
                  timeout=10)


def restore_done(s3, bucket: str, key: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if 'ongoing-request="false"' in s3.head_object(Bucket=bucket, Key=key).get(
                "Restore", ""):
            return True
        time.sleep(0.2)
    return False


def test_restore_from_glacier_starts_a_restore_then_works(small_backup, moto_server, tmp_path,
                                                          slow_glacier):
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket="vault-glacier")
    key = glacier_copy(moto_server, small_backup, "vault-glacier", "2026-07")
    time.sleep(SLOW_RESTORE + 0.1)
    url = f"s3://vault-glacier/{key}"
    to = tmp_path / "out"
    first = ghvault("restore", url, "--to", str(to), "--tier", "Standard", "--days", "3",
                    env=moto_server.env())
    assert first.returncode == 7, first.stdout + first.stderr
    message = first.stderr.strip().splitlines()[-1]
    assert "GLACIER" in message and "Standard restore for 3 days" in message
    assert f"run `ghvault restore {url} --to {to} --tier Standard --days 3` again" in message
    assert not to.exists()
    assert s3.head_object(Bucket="vault-glacier", Key=key)["Restore"] == \
        'ongoing-request="true"'
    again = ghvault("restore", url, "--to", str(to), env=moto_server.env())
    assert again.returncode == 7 and "is under way" in again.stderr  # not started twice
    assert restore_done(s3, "vault-glacier", key)
    second = ghvault("restore", url, "--to", str(to), env=moto_server.env())
    assert second.returncode == 0, second.stdout + second.stderr[-3000:]
    assert json.loads(second.stdout.strip().splitlines()[-1])["counts"]["mirrors"] >= 10


def test_verify_waits_for_a_glacier_restore(small_backup, moto_server, slow_glacier):
    moto_server.client("s3").create_bucket(Bucket="vault-glacier-wait")
    key = glacier_copy(moto_server, small_backup, "vault-glacier-wait", "2026-08")
    time.sleep(SLOW_RESTORE + 0.1)
    proc = ghvault("verify", f"s3://vault-glacier-wait/{key}", "--wait", "--poll", "0.2",
                   "--tier", "Expedited", env=moto_server.env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(tier Expedited, 7 days)" in proc.stderr and "is restored" in proc.stderr
    assert "waiting for the Expedited restore" in proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["ok"] is True


def test_list_shows_archives_by_month_with_gaps(small_backup, moto_server, tmp_path):
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket="vault-list")
    owner = small_backup["owner"]
    glacier_copy(moto_server, small_backup, "vault-list", "2026-06")
    s3.copy_object(Bucket="vault-list", Key=archive_key(owner, "2026-09"),
                   CopySource={"Bucket": BUCKET, "Key": small_backup["key"]})
    s3.put_object(Bucket="vault-list", Key=archive_key("other", "2025-12"), Body=b"x")
    s3.put_object(Bucket="vault-list", Key="github/state/hubber/cache.db", Body=b"x")
    proc = ghvault("list", "s3://vault-list/github/", "--json", env=moto_server.env())
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    got = [(a["owner"], a["month"], a["storage_class"], a["restore"], a["manifest"])
           for a in result["archives"]]
    assert got == [(owner, "2026-06", "GLACIER", "archived", True),
                   (owner, "2026-09", "STANDARD", "available", False),
                   ("other", "2025-12", "STANDARD", "available", False)]
    assert result["gaps"] == [{"owner": owner, "month": "2026-07"},
                              {"owner": owner, "month": "2026-08"}]
    table = ghvault("list", "s3://vault-list/github/", "--owner", owner, env=moto_server.env())
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()
    assert rows[0].split() == ["OWNER", "MONTH", "SIZE", "STORAGE", "RESTORED", "MANIFEST"]
    assert [r.split()[1] for r in rows[1:5]] == ["2026-06", "2026-07", "2026-08", "2026-09"]
    assert "MISSING" in rows[2] and "GLACIER" in rows[1] and " no " in rows[1]
    assert "other" not in table.stdout
    assert rows[-1].endswith(f"months missing: {owner} 2026-07, {owner} 2026-08")
    # a local directory works the same way
    for month in ("2026-01", "2026-04"):
        path = tmp_path / archive_key(owner, month, prefix="vault")
        path.parent.mkdir(parents=True)
        shutil.copy(small_backup["local"], path)
    local = json.loads(ghvault("list", str(tmp_path / "vault"), "--json").stdout)
    assert [a["month"] for a in local["archives"]] == ["2026-01", "2026-04"]
    assert [g["month"] for g in local["gaps"]] == ["2026-02", "2026-03"]


def test_pick_head_and_months_between():
    from ghvault.catalog import months_between
    from ghvault.restore import pick_head

    assert pick_head({"HEAD": "a", "refs/heads/dev": "a", "refs/heads/main": "b"}) == \
        "refs/heads/dev"
    assert pick_head({"HEAD": "a", "refs/heads/x": "a", "refs/heads/main": "a"}) == \
        "refs/heads/main"
    assert pick_head({"refs/heads/b": "1", "refs/heads/a": "2"}) == "refs/heads/a"
    assert pick_head({"refs/tags/v1": "1"}) is None
    assert months_between("2025-11", "2026-02") == ["2025-11", "2025-12", "2026-01",
                                                    "2026-02"]
