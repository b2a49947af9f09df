"""A full work directory ends `ghvault run` with exit 5 (as every full disk) and one
sentence naming the path, wherever the engine was writing: an asset download, a git
mirror, the HTTP cache (SQLite) of a run with --state.

The work directory is a small tmpfs mounted in a private mount namespace (`unshare -r -m`,
no privileges needed where user namespaces are allowed): a real ENOSPC, not a mock. The
in-process tests below cover the mapping itself everywhere.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess

import pytest
from ghvault.collect import is_disk_full, workdir_full
from ghvault.errors import DestinationError
from ghvault.github.cache import HttpCache

from tests.conftest import TOKEN, start_sim
from tests.engine.helpers import GHVAULT
from tests.github_sim.generate import USER_LOGIN
from tests.github_sim.model import Release, ReleaseAsset


def can_mount_tmpfs(tmp_path) -> bool:
    if not shutil.which("unshare"):
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    proc = subprocess.run(["unshare", "-r", "-m", "sh", "-c",
                           f"mount -t tmpfs -o size=64k tmpfs '{probe}'"],
                          capture_output=True, timeout=30)
    return proc.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    if not can_mount_tmpfs(tmp_path):
        pytest.skip("no unprivileged mount namespaces here (unshare -r -m)")
    work = tmp_path / "work"
    work.mkdir()

    def run(size: str, running, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, **running.client_env(), "GITHUB_TOKEN": TOKEN}
        script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
        return subprocess.run(
            ["unshare", "-r", "-m", "sh", "-c", script, "sh", size, str(work), GHVAULT, "run",
             "--api-url", running.api, "--owner", USER_LOGIN, "--month", "2026-10",
             "--workdir", str(work), *args], env=env, capture_output=True, text=True,
            timeout=300)
    return run, work


def assert_disk_full(proc: subprocess.CompletedProcess, work, archive) -> str:
    detail = f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 5, detail
    assert "Traceback" not in proc.stderr, detail
    error = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1]
    assert error.startswith("ghvault: error: No space left on the device of the work "
                            f"directory '{work}"), error
    assert "--workdir" in error, error
    assert not archive.exists() and not archive.with_name(archive.name + ".manifest.json"
                                                            ).exists()
    return error


def test_a_full_workdir_during_an_asset_download_exits_5_naming_it(small_disk, tmp_path):
    run, work = small_disk
    running, stop = start_sim()
    try:
        repo = running.sim.world.repos[f"{USER_LOGIN}/toolbox"]
        big = Release(running.sim.world.new_id(), "v5.0", "main", "big", "", False, False,
                      USER_LOGIN, "2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z")
        big.assets.append(ReleaseAsset(running.sim.world.new_id(), "big.bin",
                                       "application/octet-stream", os.urandom(2 << 20),
                                       USER_LOGIN, "2024-05-01T12:00:00Z", 0))
        repo.releases.append(big)
        archive = tmp_path / "out" / "a.zip"
        archive.parent.mkdir()
        proc = run("1m", running, "--dest", archive.as_uri(), "--repos", "^toolbox$",
                   "--include", "releases,assets")
    finally:
        stop()
    error = assert_disk_full(proc, work, archive)
    assert "asset" in error, error


def test_a_full_workdir_during_a_git_mirror_exits_5_naming_it(small_disk, tmp_path):
    run, work = small_disk
    running, stop = start_sim()
    try:
        archive = tmp_path / "out" / "a.zip"
        archive.parent.mkdir()
        proc = run("16k", running, "--dest", archive.as_uri(), "--repos", "^toolbox$",
                   "--include", "git")
    finally:
        stop()
    assert_disk_full(proc, work, archive)


def test_a_full_workdir_under_the_http_cache_exits_5_naming_it(small_disk, tmp_path):
    run, work = small_disk
    running, stop = start_sim()
    try:
        archive = tmp_path / "out" / "a.zip"
        archive.parent.mkdir()
        state = tmp_path / "state"
        state.mkdir()
        proc = run("12k", running, "--dest", archive.as_uri(), "--state", str(state),
                   "--exclude", "git,wiki,lfs,assets,gists")
    finally:
        stop()
    error = assert_disk_full(proc, work, archive)
    assert "HTTP cache" in error or "state" in error, error


def test_disk_full_is_told_apart_from_other_failures(tmp_path):
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    full = sqlite3.OperationalError("database or disk is full")
    assert is_disk_full(full)
    assert not is_disk_full(sqlite3.OperationalError("no such table: x"))
    error = workdir_full(tmp_path / "w", "downloading asset 5 of o/r")
    assert isinstance(error, DestinationError) and error.exit_code == 5
    assert str(tmp_path / "w") in str(error) and "--workdir" in str(error)


def test_the_http_cache_names_its_file_when_the_disk_is_full(tmp_path, monkeypatch):
    cache = HttpCache(tmp_path / "c.sqlite")

    class FullDb:
        def execute(self, *args):
            raise sqlite3.OperationalError("database or disk is full")

    real, cache.db = cache.db, FullDb()
    try:
        with pytest.raises(DestinationError, match="c.sqlite"):
            cache.put("https://h/x", {"etag": "e", "body": "[]", "link": ""})
    finally:
        cache.db = real
        cache.close()
