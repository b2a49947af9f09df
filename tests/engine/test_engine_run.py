"""`ghvault run` end to end: the simulator as GitHub, moto's server as S3, the real CLI.

The archive must hold the simulator's ground truth, its bundles must clone to the same
refs, the request count must sit near the floor, a second month with --state must cost
far fewer rate-limited requests, faults must not change the archive, a failed upload must
leave nothing at the final key, and the token must appear nowhere.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import zipfile

import pytest
import requests

from devtools.floor import floor_requests
from tests.conftest import TOKEN, start_sim
from tests.engine.helpers import run_ghvault
from tests.github_sim.gitrepos import ref_map


def read_archive(moto, bucket: str, key: str) -> tuple[zipfile.ZipFile, dict, bytes]:
    s3 = moto.client("s3")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    sidecar = json.loads(s3.get_object(Bucket=bucket, Key=key + ".manifest.json")["Body"].read())
    return zipfile.ZipFile(io.BytesIO(body)), sidecar, body


@pytest.fixture(scope="module")
def backups(sim, moto_server):
    """One backup of the tiny user and one of the org, each measured on its own."""
    moto_server.client("s3").create_bucket(Bucket="vault")
    out = {}
    for role in ("user", "org"):
        login = sim.sim.world.owners[role]
        key = f"github/{login}/2026/10/{login}-2026-10.zip"
        sim.reset()
        proc = run_ghvault(sim, moto_server, "--owner", login, "--month", "2026-10",
                           "--dest", f"s3://vault/{key}")
        out[role] = {"proc": proc, "key": key, "stats": sim.stats()}
    return out


@pytest.mark.parametrize("role", ["user", "org"])
def test_backup_succeeds_with_a_json_summary(backups, role):
    b = backups[role]
    assert b["proc"].returncode == 0, b["proc"].stderr[-3000:]
    summary = json.loads(b["proc"].stdout.strip().splitlines()[-1])
    assert summary["api_requests"] == b["stats"]["requests_total"]
    assert summary["dest"].endswith(b["key"])
    assert summary["bytes"] > 0 and summary["counts"]["repos"] > 0
    assert "repos" in b["proc"].stderr and "rate limit left" in b["proc"].stderr


@pytest.mark.parametrize("role", ["user", "org"])
def test_archive_holds_the_ground_truth(backups, sim, moto_server, role):
    z, sidecar, _ = read_archive(moto_server, "vault", backups[role]["key"])
    truth = sim.sim.world.counts()[role]
    names = z.namelist()
    assert names[-1] == "MANIFEST.json"
    inner = json.loads(z.read("MANIFEST.json"))
    counts = inner["counts"]
    for kind in ("repos", "issues", "pulls", "comments", "events", "reviews", "review_comments",
                 "commit_comments", "labels", "milestones", "releases", "release_assets",
                 "wikis", "lfs_objects", "empty_repos"):
        assert counts.get(kind, 0) == truth[kind], kind
    if role == "user":
        for kind in ("gists", "followers", "following", "starred"):
            assert counts[kind] == truth[kind], kind

    def lines(suffix: str) -> int:
        return sum(len(z.read(n).splitlines()) for n in names if n.endswith(suffix))

    assert lines("/issues.jsonl") == truth["issues"] + truth["pulls"]
    assert lines("/pulls.jsonl") == truth["pulls"]
    assert lines("/issue_comments.jsonl") == truth["comments"]
    assert lines("/reviews.jsonl") == truth["reviews"]
    # the manifest lists every entry with its checksum, inside and beside the archive
    entries = {e["path"]: e for e in inner["entries"]}
    assert set(entries) == set(names) - {"MANIFEST.json"}
    assert sidecar["entries"] == inner["entries"]
    assert sidecar["archive"]["size"] > 0 and len(sidecar["archive"]["sha256"]) == 64
    assert not inner["skipped"]


def test_bundles_clone_to_the_simulators_refs(backups, sim, moto_server, tmp_path):
    z, _, _ = read_archive(moto_server, "vault", backups["user"]["key"])
    world = sim.sim.world
    checked = 0
    for repo in world.repos_of(world.owners["user"]):
        name = f"repos/{repo.name}/git.bundle"
        if repo.empty:
            assert name not in z.namelist()
            continue
        bundle = tmp_path / f"{repo.name}.bundle"
        bundle.write_bytes(z.read(name))
        dest = tmp_path / f"{repo.name}.git"
        subprocess.run(["git", "clone", "-q", "--mirror", str(bundle), str(dest)], check=True)
        assert ref_map(dest) == ref_map(sim.sim.repo_dir(repo.owner, repo.name)), repo.name
        checked += 1
    assert checked >= 4
    lfs = [n for n in z.namelist() if "/lfs/" in n]
    assert sorted(n.rsplit("/", 1)[1] for n in lfs) == sorted(
        o for r in world.repos.values() if r.owner == world.owners["user"] for o in r.lfs_objects)


@pytest.mark.parametrize("role", ["user", "org"])
def test_requests_are_within_ten_percent_of_the_floor(backups, sim, role):
    ours = backups[role]["stats"]["requests_total"]
    floor = floor_requests(sim.sim.world, role)
    assert floor <= ours <= math.floor(floor * 1.1), (ours, floor,
                                                        backups[role]["stats"]["by_endpoint"])


def test_token_never_leaks(backups, moto_server):
    for role in ("user", "org"):
        proc = backups[role]["proc"]
        assert TOKEN not in proc.stdout and TOKEN not in proc.stderr
        _, sidecar, body = read_archive(moto_server, "vault", backups[role]["key"])
        assert TOKEN.encode() not in body
        assert TOKEN not in json.dumps(sidecar)
        z = zipfile.ZipFile(io.BytesIO(body))
        for name in z.namelist():
            data = z.read(name)
            assert TOKEN.encode() not in data, name


def test_second_month_with_state_costs_far_fewer_rate_limited_requests(moto_server, tmp_path):
    running, stop = start_sim()
    try:
        moto_server.client("s3").create_bucket(Bucket="vault-state")
        state = "s3://vault-state/state/"
        login = running.sim.world.owners["user"]
        first = run_ghvault(running, moto_server, "--owner", login, "--month", "2026-10",
                            "--dest", f"s3://vault-state/a/{login}-2026-10.zip",
                            "--state", state)
        assert first.returncode == 0, first.stderr[-2000:]
        first_charged = running.stats()["charged"]
        requests.post(f"{running.root}/_sim/mutate", verify=str(running.ca))
        running.reset()
        second = run_ghvault(running, moto_server, "--owner", login, "--month", "2026-11",
                             "--dest", f"s3://vault-state/a/{login}-2026-11.zip",
                             "--state", state)
        assert second.returncode == 0, second.stderr[-2000:]
        st = running.stats()
        assert st["not_modified"] > 0
        assert st["charged"] <= first_charged / 3, (st["charged"], first_charged)
        # still a complete, self-contained snapshot
        z, _, _ = read_archive(moto_server, "vault-state", f"a/{login}-2026-11.zip")
        counts = json.loads(z.read("MANIFEST.json"))["counts"]
        truth = running.sim.world.counts()["user"]
        for kind in ("repos", "issues", "pulls", "comments", "reviews"):
            assert counts[kind] == truth[kind], kind
    finally:
        stop()


def entry_digests(z: zipfile.ZipFile) -> dict[str, str]:
    return {e["path"]: e["sha256"] for e in json.loads(z.read("MANIFEST.json"))["entries"]}


def test_faults_do_not_change_the_archive(moto_server):
    """Latency, 5xx, secondary rate limits and dropped connections: the same archive."""
    moto_server.client("s3").create_bucket(Bucket="vault-faults")
    running, stop = start_sim()
    try:
        login = running.sim.world.owners["user"]
        args = ("--owner", login, "--month", "2026-10")
        clean = run_ghvault(running, moto_server, *args, "--dest", f"s3://vault-faults/clean/{login}.zip")
        assert clean.returncode == 0, clean.stderr[-3000:]
        requests.post(f"{running.root}/_sim/faults", params={"latency_ms": 5},
                      data="502:0.05,503:0.03,secondary:0.03,drop:0.02,retry-after=1,seed=3",
                      verify=str(running.ca))
        running.reset()
        proc = run_ghvault(running, moto_server, *args, "--dest", f"s3://vault-faults/faults/{login}.zip")
        assert proc.returncode == 0, proc.stderr[-3000:]
        st = running.stats()
        assert sum(st["faults"].values()) >= 5, st["faults"]
        assert st["secondary_rate_limited"] >= 1
        faulty, _, _ = read_archive(moto_server, "vault-faults", f"faults/{login}.zip")
        reference, _, _ = read_archive(moto_server, "vault-faults", f"clean/{login}.zip")
        assert entry_digests(faulty) == entry_digests(reference)
    finally:
        stop()


def test_secondary_limits_on_asset_downloads_are_waited_out(moto_server):
    """Asset downloads go below PyGithub (see GitHubClient.download): they must honour
    retry-after like every other request."""
    moto_server.client("s3").create_bucket(Bucket="vault-secondary")
    running, stop = start_sim()
    try:
        login = running.sim.world.owners["user"]
        requests.post(f"{running.root}/_sim/faults", data="secondary:0.4,retry-after=0,seed=5",
                      verify=str(running.ca))
        proc = run_ghvault(running, moto_server, "--owner", login, "--month", "2026-10",
                           "--dest", f"s3://vault-secondary/{login}.zip", "--retries", "12")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assets = running.stats()["by_endpoint"][
            "GET /repos/{owner}/{repo}/releases/assets/{asset_id}"]
        assert assets.get("403", 0) >= 1, assets
        z, _, _ = read_archive(moto_server, "vault-secondary", f"{login}.zip")
        counts = json.loads(z.read("MANIFEST.json"))["counts"]
        assert counts["release_assets"] == running.sim.world.counts()["user"]["release_assets"]
    finally:
        stop()


def test_disk_budget_keeps_mirrors_within_the_limit_but_never_starves_a_big_one():
    """Mirrors start while the reserved bytes stay within the limit; one larger than the
    limit still runs, alone."""
    import threading

    from ghvault.engine import DiskBudget

    budget = DiskBudget(100)
    log: list[str] = []
    release_first = threading.Event()

    def hold(name: str, size: int, until: threading.Event | None = None) -> None:
        with budget.reserve(size):
            log.append(f"start {name} ({budget.used})")
            if until is not None:
                until.wait(10)
        log.append(f"end {name}")

    first = threading.Thread(target=hold, args=("a", 80, release_first))
    first.start()
    while not log:
        pass
    small = threading.Thread(target=hold, args=("b", 20))
    small.start()
    small.join(5)  # 80 + 20 fits
    big = threading.Thread(target=hold, args=("c", 150))
    big.start()
    big.join(0.3)
    assert big.is_alive()  # 80 + 150 does not fit: it waits
    assert log == ["start a (80)", "start b (100)", "end b"]
    release_first.set()
    first.join(5)
    big.join(5)
    assert log[3:] == ["end a", "start c (150)", "end c"]  # alone, over the limit
    assert budget.used == 0
