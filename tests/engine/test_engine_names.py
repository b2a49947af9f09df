"""Release and asset names that collide as archive paths, or are no file name at all.

GitHub lets two draft releases share a tag, `release/1.0` and `release__1.0` both exist,
and an API answer may name an asset `.`, `..`, or with a NUL or a newline. Every one must
land in the archive under its own entry (the release or asset id added where two would
collide), with the real names kept in releases.json beside each asset's `archive_path`;
verify must pass the run's own archive and restore must write every asset.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile

from ghvault.engine import Backup, Options
from ghvault.layout import classify, release_asset_entries, team_dirs, team_entry

from tests.conftest import TOKEN, start_sim
from tests.engine.helpers import GHVAULT
from tests.github_sim.hostile import add_colliding_releases


def release(rid: int, tag: str, *assets: tuple[int, str]) -> dict:
    return {"id": rid, "tag_name": tag, "assets": [{"id": i, "name": n} for i, n in assets]}


def test_colliding_release_and_asset_names_get_their_ids():
    releases = [
        release(1, "v1.0", (10, "app.tar.gz"), (11, "SHA256SUMS.txt")),
        release(2, "v9.0", (20, "app.tar.gz")),
        release(3, "v9.0", (30, "app.tar.gz")),  # a second draft with the same tag
        release(4, "release/1.0", (40, "notes.txt")),
        release(5, "release__1.0", (50, "notes.txt")),
        release(6, "names", (60, "."), (61, ".."), (62, "a\x00b"), (63, "a_b"),
                (64, "line\nbreak"), (65, "README"), (66, "readme")),
        release(7, "", (70, "x")),  # no tag: the release id names the directory
    ]
    assert release_asset_entries("r", releases) == [
        ["repos/r/releases/v1.0/app.tar.gz", "repos/r/releases/v1.0/SHA256SUMS.txt"],
        ["repos/r/releases/v9.0@2/app.tar.gz"],
        ["repos/r/releases/v9.0@3/app.tar.gz"],
        ["repos/r/releases/release__1.0@4/notes.txt"],
        ["repos/r/releases/release__1.0@5/notes.txt"],
        ["repos/r/releases/names/60-.", "repos/r/releases/names/61-..",
         "repos/r/releases/names/62-a_b", "repos/r/releases/names/63-a_b",
         "repos/r/releases/names/line_break", "repos/r/releases/names/65-README",
         "repos/r/releases/names/66-readme"],
        ["repos/r/releases/7/x"],
    ]


def test_a_crafted_name_equal_to_a_qualified_one_is_qualified_again():
    releases = [release(2, "v9.0", (1, "a")), release(3, "v9.0", (1, "a")),
                release(4, "v9.0@3", (1, "a")),
                release(5, "dup", (7, "same"), (7, "same"), (8, "7-same"))]
    entries = [e for names in release_asset_entries("r", releases) for e in names]
    assert len(set(entries)) == len(entries) == 6, entries
    assert all(classify(e).role == "release_asset" for e in entries)


def test_hostile_release_names_back_up_verify_and_restore_every_asset(tmp_path):
    running, stop = start_sim()
    try:
        login = running.sim.world.owners["user"]
        repo = running.sim.world.repos[f"{login}/toolbox"]
        added = add_colliding_releases(running.sim, repo.full_name)
        archive = tmp_path / "vault" / f"{login}-2026-10.zip"
        archive.parent.mkdir()
        env = {**os.environ, **running.client_env(), "GITHUB_TOKEN": TOKEN}
        run = subprocess.run(
            [GHVAULT, "run", "--api-url", running.api, "--owner", login, "--month", "2026-10",
             "--dest", archive.as_uri(), "--repos", "^toolbox$", "--include",
             "releases,assets", "--workdir", str(tmp_path)],
            env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
    finally:
        stop()

    verify = subprocess.run([GHVAULT, "verify", str(archive)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
    to = tmp_path / "restored"
    restore = subprocess.run([GHVAULT, "restore", str(archive), "--to", str(to)], env=env,
                             capture_output=True, text=True, timeout=300)
    assert restore.returncode == 0, restore.stdout[-3000:] + restore.stderr[-3000:]

    z = zipfile.ZipFile(archive)
    listed = json.loads(z.read("repos/toolbox/releases.json"))
    by_id = {r["id"]: r for r in listed}
    paths = []
    for rel in repo.releases:  # every release of the repository, the hostile ones too
        kept = by_id[rel.id]
        assert kept["tag_name"] == rel.tag_name  # the real names stay in the JSON
        assert [a["name"] for a in kept["assets"]] == [a.name for a in rel.assets]
        for asset, meta in zip(rel.assets, kept["assets"], strict=True):
            path = meta["archive_path"]
            paths.append(path)
            assert z.read(path) == asset.data, (rel.tag_name, asset.name, path)
            assert (to / path).read_bytes() == asset.data, path
    assert len(paths) == len(set(paths)) == sum(len(r.assets) for r in repo.releases)
    assert sum(len(r.assets) for r in added) == 11
    manifest = json.loads(z.read("MANIFEST.json"))
    assert manifest["counts"]["release_assets"] == len(paths)
    assert not manifest["skipped"]


def test_teams_whose_slugs_collide_get_their_ids():
    teams = [{"slug": "dev", "id": 1}, {"slug": "dev", "id": 2}, {"slug": "ops", "id": 3},
             {"slug": "a/b", "id": 4}, {"slug": "a__b", "id": 5}]
    assert team_dirs(teams) == ["dev@1", "dev@2", "ops", "a__b@4", "a__b@5"]
    assert team_entry(team_dirs(teams)[0], "members.json") == "account/teams/dev@1/members.json"


def test_a_repository_listed_twice_is_backed_up_once():
    """GitHub's pages shift while repositories are created: one may come twice."""
    def repo(name: str) -> dict:
        return {"name": name, "full_name": f"o/{name}", "owner": {"login": "o"}}

    class Client:
        def paginate(self, path, params=None):
            return iter([repo("a"), repo("b"), repo("b"), repo("c"), repo("a")])

    backup = Backup(Options(owner="o", dest="file:///tmp/o.zip", month="2026-10"))
    listed = backup.list_repos(Client(), {"login": "o", "type": "User"}, None)
    assert [r["name"] for r in listed] == ["a", "b", "c"]
