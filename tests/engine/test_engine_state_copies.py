"""Release asset copies kept in --state are checked by SHA-256 before they are reused.

A copy saves a download (and a request from the rate limit) every month after the first;
a copy that no longer hashes to the SHA-256 recorded when it was kept is logged, dropped
and the asset downloaded again, so a flipped byte in the state never reaches an archive.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile

from ghvault.github.cache import SHA_SUFFIX, AssetCopies, StateStore

from tests.conftest import TOKEN, start_sim
from tests.engine.helpers import GHVAULT


def backup(running, tmp_path, login: str, month: str, state) -> tuple[subprocess.CompletedProcess,
                                                                     object]:
    archive = tmp_path / f"{login}-{month}.zip"
    env = {**os.environ, **running.client_env(), "GITHUB_TOKEN": TOKEN}
    proc = subprocess.run(
        [GHVAULT, "run", "--api-url", running.api, "--owner", login, "--month", month,
         "--dest", archive.as_uri(), "--state", str(state), "--repos", "^toolbox$",
         "--include", "releases,assets"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, archive


def test_a_flipped_byte_in_a_kept_asset_copy_is_downloaded_again(tmp_path):
    running, stop = start_sim()
    try:
        world = running.sim.world
        login = world.owners["user"]
        repo = world.repos[f"{login}/toolbox"]
        assets = [a for rel in repo.releases for a in rel.assets]
        assert len(assets) >= 2
        state = tmp_path / "state"
        state.mkdir()
        running.reset()
        backup(running, tmp_path, login, "2026-10", state)
        assert running.stats()["downloads"] == len(assets)
        copies = state / login / "assets"
        victim = assets[0]
        copy = copies / f"{victim.id}-{len(victim.data)}"
        assert copy.read_bytes() == victim.data
        assert (copies / f"{copy.name}{SHA_SUFFIX}").is_file()
        damaged = bytearray(victim.data)
        damaged[len(damaged) // 2] ^= 0x01  # one flipped bit, the size unchanged
        copy.write_bytes(bytes(damaged))

        running.reset()
        proc, archive = backup(running, tmp_path, login, "2026-11", state)
        assert running.stats()["downloads"] == 1  # the damaged copy only
        assert f"not using the copy of asset {victim.id}" in proc.stderr
        assert "SHA-256" in proc.stderr
    finally:
        stop()
    z = zipfile.ZipFile(archive)
    listed = json.loads(z.read("repos/toolbox/releases.json"))
    path = next(a["archive_path"] for rel in listed for a in rel["assets"]
                if a["id"] == victim.id)
    assert z.read(path) == victim.data
    assert copy.read_bytes() == victim.data  # the download replaced the bad copy
    verify = subprocess.run([GHVAULT, "verify", str(archive)], capture_output=True, text=True,
                            timeout=300)
    assert verify.returncode == 0, verify.stdout[-3000:]


def test_a_copy_without_a_recorded_sha256_is_not_trusted(tmp_path):
    (tmp_path / "o" / "assets").mkdir(parents=True)
    (tmp_path / "o" / "assets" / "5-3").write_bytes(b"abc")  # kept by an earlier version
    copies = AssetCopies(StateStore(str(tmp_path), "o"))
    dest = tmp_path / "dest"
    assert not copies.fetch({"id": 5, "size": 3}, str(dest))
    src = tmp_path / "download"
    src.write_bytes(b"abc")
    copies.keep({"id": 5, "size": 3}, str(src))
    assert copies.fetch({"id": 5, "size": 3}, str(dest)) and dest.read_bytes() == b"abc"
    # GitHub's own digest of the asset, when given, must agree with the recorded one
    assert not copies.fetch({"id": 5, "size": 3, "digest": "sha256:" + "0" * 64}, str(dest))
    assert dest.read_bytes() == b""
