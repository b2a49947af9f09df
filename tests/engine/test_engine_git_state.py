"""`--git-state`: month two fetches only what changed, and every archive stays whole.

A private tiny simulator per test (they change its repositories: pushes, force-pushes,
deleted branches). Each month is a real `ghvault run` into a file with a local state
directory; the archive is then checked with `ghvault verify` and `ghvault restore`, and its
refs compared with the simulator's.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import TOKEN, start_sim
from tests.engine.helpers import GHVAULT, run_ghvault
from tests.engine.test_engine_restore import local_refs
from tests.github_sim.faults import Faults

LOGIN = "hubber"


@pytest.fixture
def world():
    running, stop = start_sim()
    yield running
    stop()


def run(running, tmp_path: Path, month: str, *extra: str) -> tuple[subprocess.CompletedProcess,
                                                                   Path]:
    archive = tmp_path / f"{LOGIN}-{month}.zip"
    env = {**os.environ, **running.client_env(), "GITHUB_TOKEN": TOKEN}
    proc = subprocess.run(
        [GHVAULT, "run", "--api-url", running.api, "--owner", LOGIN, "--month", month,
         "--dest", archive.as_uri(), "--include", "git,wiki,gists,lfs", *extra],
        env=env, capture_output=True, text=True, timeout=300)
    return proc, archive


def month(running, tmp_path: Path, name: str, *extra: str) -> tuple[str, Path, dict]:
    running.reset()
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    proc, archive = run(running, tmp_path, name, "--state", str(state), "--git-state", *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr, archive, running.stats()


def git_repos(running) -> list:
    world = running.sim.world
    return [r for r in world.repos_of(LOGIN)]


def check_archive(running, archive: Path, tmp_path: Path) -> None:
    """verify passes; restore gives every repository, wiki and gist the simulator's refs."""
    verify = subprocess.run([GHVAULT, "verify", str(archive)], capture_output=True, text=True,
                            timeout=300)
    assert verify.returncode == 0, verify.stdout[-3000:]
    to = tmp_path / f"restored-{archive.stem}"
    proc = subprocess.run([GHVAULT, "restore", str(archive), "--to", str(to)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    sim = running.sim
    for repo in git_repos(running):
        mirror = to / "repos" / f"{repo.name}.git"
        want = {} if repo.empty else local_refs(sim.repo_dir(LOGIN, repo.name))
        assert local_refs(mirror) == want, repo.name
        if not repo.empty:
            head = subprocess.run(["git", "symbolic-ref", "HEAD"], cwd=mirror, text=True,
                                  capture_output=True).stdout.strip()
            assert head == f"refs/heads/{repo.default_branch}", repo.name
        if repo.wiki_exists:
            assert local_refs(to / "repos" / f"{repo.name}.wiki.git") == \
                local_refs(sim.repo_dir(LOGIN, repo.name, True))
    for gist in sim.world.gists_of(LOGIN):
        assert local_refs(to / "gists" / f"{gist.id}.git") == local_refs(sim.gist_dir(gist.id))


def sim_git(running, repo, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=running.sim.repo_dir(LOGIN, repo.name),
                          capture_output=True, text=True, check=True).stdout.strip()


def busy_repo(running):
    """A non-empty repository with more than one branch and no LFS."""
    for repo in git_repos(running):
        if not repo.empty and not repo.lfs_objects and \
                len(sim_git(running, repo, "for-each-ref", "refs/heads/").splitlines()) > 1:
            return repo
    pytest.skip("the tiny world has no repository with two branches")


def index(tmp_path: Path) -> dict:
    return json.loads(gzip.decompress((tmp_path / "state" / LOGIN /
                                       "git-state.json.gz").read_bytes()))["units"]


def test_unchanged_repositories_are_copied_from_the_state_without_fetching(world, tmp_path):
    _, first, one = month(world, tmp_path, "2026-10")
    log, second, two = month(world, tmp_path, "2026-11")
    units = index(tmp_path)
    with_lfs = sum(bool(u.get("lfs")) for u in units.values())
    assert f"{len(units) - with_lfs} copied" in log, log[-2000:]
    # ls-remote's ref advertisements only (and a no-op fetch for a repository with LFS):
    # in the tiny world these are a tenth of what its small packs weigh
    assert two["git_bytes"] < 0.2 * one["git_bytes"], (one["git_bytes"], two["git_bytes"])
    check_archive(world, second, tmp_path)
    names = lambda z: sorted(n for n in zipfile.ZipFile(z).namelist()  # noqa: E731
                             if n.endswith(".bundle"))
    assert names(first) == names(second)


def test_a_changed_repository_is_fetched_incrementally_with_force_pushes_and_deletions(
        world, tmp_path):
    repo = busy_repo(world)
    month(world, tmp_path, "2026-10")
    branches = sim_git(world, repo, "for-each-ref", "--format=%(refname)",
                       "refs/heads/").splitlines()
    other = next(b for b in branches if b != f"refs/heads/{repo.default_branch}")
    tip = sim_git(world, repo, "rev-parse", f"refs/heads/{repo.default_branch}")
    # a force-push (the default branch back one commit, then a new commit on it)...
    tree = sim_git(world, repo, "rev-parse", f"{tip}^{{tree}}")
    forced = sim_git(world, repo, "commit-tree", tree, "-p", f"{tip}~1", "-m", "rewritten")
    sim_git(world, repo, "update-ref", f"refs/heads/{repo.default_branch}", forced)
    # ... a deleted branch and a new tag
    sim_git(world, repo, "update-ref", "-d", other)
    sim_git(world, repo, "update-ref", "refs/tags/v-month-two", forced)
    log, archive, _ = month(world, tmp_path, "2026-11")
    assert f"repo-{repo.id} fetched" in log, log[-2000:]
    assert "not used" not in log
    check_archive(world, archive, tmp_path)
    unit = index(tmp_path)[f"repo-{repo.id}"]
    assert unit["refs"] == local_refs(world.sim.repo_dir(LOGIN, repo.name))
    assert unit["bundle"].endswith(".b.bundle")  # the other slot; month one's stays


def test_a_damaged_state_bundle_falls_back_to_a_full_clone(world, tmp_path):
    repo = busy_repo(world)
    month(world, tmp_path, "2026-10")
    kept = tmp_path / "state" / index(tmp_path)[f"repo-{repo.id}"]["bundle"]
    data = bytearray(kept.read_bytes())
    data[len(data) // 2] ^= 0x01
    kept.write_bytes(bytes(data))
    log, archive, _ = month(world, tmp_path, "2026-11")  # unchanged: the copy is checked
    assert f"kept bundle of repo-{repo.id} not used" in log, log[-2000:]
    check_archive(world, archive, tmp_path)
    kept.write_bytes(b"not a bundle")
    tip = sim_git(world, repo, "commit-tree", "-m", "x", "-p", "HEAD",
                  sim_git(world, repo, "rev-parse", "HEAD^{tree}"))
    sim_git(world, repo, "update-ref", "refs/heads/month-three", tip)
    kept = tmp_path / "state" / index(tmp_path)[f"repo-{repo.id}"]["bundle"]
    kept.write_bytes(b"not a bundle")
    log, archive, _ = month(world, tmp_path, "2026-12")  # changed: the seed is checked
    assert f"incremental fetch of repo-{repo.id} not used" in log, log[-2000:]
    check_archive(world, archive, tmp_path)


def test_a_lost_state_clones_everything_again(world, tmp_path):
    _, _, one = month(world, tmp_path, "2026-10")
    for p in (tmp_path / "state" / LOGIN / "git").iterdir():
        p.unlink()  # the bundles are gone, the index is not
    log, archive, two = month(world, tmp_path, "2026-11")
    assert "0 copied" in log and "0 fetched" in log, log[-2000:]
    assert two["git_bytes"] >= 0.9 * one["git_bytes"]
    check_archive(world, archive, tmp_path)
    (tmp_path / "state" / LOGIN / "git-state.json.gz").write_bytes(b"garbage")
    log, archive, _ = month(world, tmp_path, "2026-12")
    assert "is unreadable" in log and "0 copied" in log, log[-2000:]
    check_archive(world, archive, tmp_path)


def test_git_state_without_state_is_a_configuration_error(world, tmp_path):
    proc, archive = run(world, tmp_path, "2026-10", "--git-state")
    assert proc.returncode == 2, proc.stderr
    assert "--git-state keeps bundles in the state: give --state too" in proc.stderr
    assert not archive.exists()


def test_a_failed_month_leaves_the_previous_state_usable(world, tmp_path):
    repo = busy_repo(world)
    month(world, tmp_path, "2026-10")
    before = index(tmp_path)
    saved = (tmp_path / "state" / LOGIN / "git-state.json.gz").read_bytes()
    sim_git(world, repo, "update-ref", "refs/heads/failed-month",
            sim_git(world, repo, "rev-parse", "HEAD"))
    # The month dies after its new bundle was written, before it published anything:
    # slow API answers keep it collecting while git is done.
    state = tmp_path / "state"
    new_slot = state / LOGIN / "git" / f"repo-{repo.id}.b.bundle"
    world.sim.faults = Faults.parse("latency=300")
    env = {**os.environ, **world.client_env(), "GITHUB_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [GHVAULT, "run", "--api-url", world.api, "--owner", LOGIN, "--month", "2026-11",
         "--dest", (tmp_path / "failed.zip").as_uri(), "--include", "git,wiki,gists,lfs,issues",
         "--state", str(state), "--git-state"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not new_slot.is_file():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        world.sim.faults = Faults.parse("")
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "failed.zip").exists()
    assert (state / LOGIN / "git-state.json.gz").read_bytes() == saved
    assert index(tmp_path) == before
    log, archive, _ = month(world, tmp_path, "2026-12")
    assert f"repo-{repo.id} fetched" in log and "not used" not in log, log[-2000:]
    check_archive(world, archive, tmp_path)


def test_the_git_state_in_s3_serves_month_two(world, moto_server, tmp_path):
    bucket = f"ghvault-gitstate-{os.getpid()}"
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket)
    state = f"s3://{bucket}/ghvault-state/"
    for name in ("2026-10", "2026-11"):
        world.reset()
        proc = run_ghvault(world, moto_server, "--owner", LOGIN, "--month", name, "--dest",
                           f"s3://{bucket}/github/{LOGIN}/{name}.zip", "--include",
                           "git,wiki,gists", "--state", state, "--git-state")
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert " 0 fetched, 0 cloned, 1 empty" in proc.stderr, proc.stderr[-2000:]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket,
                                                 Prefix="ghvault-state/")["Contents"]]
    assert f"ghvault-state/{LOGIN}/git-state.json.gz" in keys
    assert any(k.startswith(f"ghvault-state/{LOGIN}/git/repo-") and k.endswith(".a.bundle")
               for k in keys)
    local = tmp_path / "month-two.zip"
    s3.download_file(bucket, f"github/{LOGIN}/2026-11.zip", str(local))
    s3.download_file(bucket, f"github/{LOGIN}/2026-11.zip.manifest.json",
                     f"{local}.manifest.json")
    check_archive(world, local, tmp_path)


def test_parts_of_a_sharded_owner_keep_their_own_index_and_copy_next_month(world, tmp_path):
    """Parts run at once: each saves its own index (and HTTP cache), so no part's state is
    overwritten by another's, and each part's month two copies its unchanged units."""
    for k in (1, 2):
        month(world, tmp_path, "2026-10", "--shard", f"{k}/2")
    kept = {}
    for k in (1, 2):
        path = tmp_path / "state" / LOGIN / f"git-state.part-{k}-of-2.json.gz"
        kept[k] = set(json.loads(gzip.decompress(path.read_bytes()))["units"])
        assert (tmp_path / "state" / LOGIN / f"http-cache.part-{k}-of-2.jsonl.gz").exists()
    assert kept[1] and kept[2] and not kept[1] & kept[2]
    assert not (tmp_path / "state" / LOGIN / "git-state.json.gz").exists()
    log, archive, _ = month(world, tmp_path, "2026-11", "--shard", "2/2")
    saved = next(line for line in log.splitlines() if "git state saved:" in line)
    assert "0 cloned" in saved and "0 copied" not in saved, saved
