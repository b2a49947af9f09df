"""ghvault.layout: the grammar of entry names, the manifest, and hostile archives.

Every name the writer makes is one the layout allows (unit tests of the builders, and every
entry of real backups of the tiny simulator's user and organisation). Hostile archives,
self-consistent (MANIFEST.json and the sidecar list the hostile entry with its true size
and SHA-256, and the sidecar holds the archive's own digest), make `verify` exit 8 with one
line naming the entry, and `restore` exit 8 without writing anything outside --to.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from ghvault.collect.repo_meta import DOCUMENTS, STREAMS
from ghvault.layout import (
    ACCOUNT_FILES,
    COUNTS,
    GIST_FILES,
    MANIFEST_NAME,
    REPO_FILES,
    SPECS,
    TEAM_FILES,
    Expected,
    LayoutError,
    ManifestError,
    account_entry,
    check_entry_name,
    classify,
    gist_entry,
    lfs_entry,
    parse_manifest,
    release_asset_entry,
    repo_entry,
    repo_name_problem,
    shown,
    stream_entry,
    team_entry,
)

from tests.conftest import TOKEN

GHVAULT = str(Path(sys.executable).with_name("ghvault"))
OID = hashlib.sha256(b"lfs object").hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the grammar --------------------------------------------------------------------------


def test_every_builder_makes_names_classify_gives_back() -> None:
    built = {repo_entry("toolbox", f): REPO_FILES[f] for f in REPO_FILES}
    built |= {account_entry(f): ACCOUNT_FILES[f] for f in ACCOUNT_FILES}
    built |= {team_entry("core", f): TEAM_FILES[f] for f in TEAM_FILES}
    built |= {gist_entry("0a1b2c3d4e5f", f): GIST_FILES[f] for f in GIST_FILES}
    for name, spec in built.items():
        entry = classify(name)
        assert entry.spec == spec and entry.name == name
    lfs = classify(lfs_entry("media-assets", OID))
    assert (lfs.role, lfs.repo, lfs.oid) == ("lfs_object", "media-assets", OID)
    asset = classify(release_asset_entry(".github", "v1.0", "tool.tar.gz"))
    assert (asset.role, asset.repo) == ("release_asset", ".github")
    assert classify(MANIFEST_NAME).role == "manifest"
    assert {s.role for s in SPECS} >= {"git_bundle", "wiki_bundle", "gist_bundle",
                                       "empty_repo", "lfs_object", "release_asset"}


@pytest.mark.parametrize(("tag", "asset", "name"), [
    ("v1.0", "SHA256SUMS.txt", "repos/r/releases/v1.0/SHA256SUMS.txt"),
    ("release/2026", "a\\b.zip", "repos/r/releases/release__2026/a__b.zip"),
    ("..", ".", "repos/r/releases/_/_"),
    ("", "x\ny\x00z\x7f", "repos/r/releases/_/x_y_z_"),
    ("ünïcødé ✓", "...", "repos/r/releases/ünïcødé ✓/..."),
])
def test_free_text_segments_are_made_safe_and_allowed(tag: str, asset: str, name: str) -> None:
    assert release_asset_entry("r", tag, asset) == name
    assert classify(name).role == "release_asset"


def test_team_slugs_are_one_segment() -> None:
    assert team_entry("a/b", "repos.json") == "account/teams/a__b/repos.json"
    assert team_entry("..", "members.json") == "account/teams/_/members.json"


def test_collectors_write_the_layouts_files_with_its_counts() -> None:
    for kind, filename, _path, _params in (*STREAMS, *DOCUMENTS):
        assert REPO_FILES[filename].count == kind, filename
    assert {"repos", "git_bundles", "wikis", "empty_repos", "lfs_objects", "release_assets",
            "gists", "followers", "watching", "members", "teams"} <= COUNTS


@pytest.mark.parametrize("name", [
    ".github", "toolbox", "A-b_c.d", "x" * 100, "git", "wiki", "a.gitx", "...",
])
def test_github_repository_names_are_allowed(name: str) -> None:
    assert repo_name_problem(name) is None
    assert classify(f"repos/{name}/repo.json").repo == name


@pytest.mark.parametrize("name", [
    "toolbox.git", "Toolbox.GIT", "notes.wiki", "a b", "é", "x" * 101, "", ".", "..",
])
def test_names_github_never_gives_a_repository_are_refused(name: str) -> None:
    assert repo_name_problem(name)
    with pytest.raises(LayoutError):
        repo_entry(name, "repo.json")


@pytest.mark.parametrize("name", [
    "", "/etc/passwd", "../escape", "a/../../b", "repos/./toolbox/repo.json", "repos//repo.json",
    "repos/toolbox/", "repos\\toolbox\\repo.json", "C:/windows", "nul\x00byte",
    "repos/toolbox/repo.json\n", "repos/tool\x1bbox/repo.json",
    "repos/toolbox.git/config", "repos/toolbox.git/repo.json", "repos/toolbox.wiki/repo.json",
    "repos/toolbox/config", "repos/toolbox/hooks/post-checkout", "repos/toolbox/lfs/abc",
    f"repos/toolbox/lfs/{OID.upper()}", f"repos/toolbox/lfs/{OID}/x",
    "repos/toolbox/releases/v1/a/b", "repos/toolbox/releases/v1", "repos/toolbox",
    "repos/a b/repo.json", "gists/abc.git/gist.json", "gists/ab-c/gist.json",
    "gists/abc/config", "gists/abc/x/git.bundle", "account/../../etc/passwd",
    "account/teams/core/config.json", "account/teams/core", "account/secrets.json",
    "MANIFEST.json/x", "manifest.json", "unknown/file.txt", "README",
])
def test_names_the_layout_does_not_allow_are_refused(name: str) -> None:
    with pytest.raises(LayoutError):
        classify(name)


@pytest.mark.parametrize("name", ["../escape", "/abs", "a\\b", "a\x00b", "a/\tb", "a//b"])
def test_unsafe_names_are_refused_by_the_writer_too(name: str) -> None:
    with pytest.raises(ValueError):
        check_entry_name(name)


def test_names_are_shown_on_one_line() -> None:
    assert shown("repos/x\n/evil\x1b[2J") == "repos/x\\n/evil\\x1b[2J"
    assert shown("repos/ünï/repo.json") == "repos/ünï/repo.json"


def test_repositories_and_gists_the_layout_cannot_hold_are_skipped_and_recorded() -> None:
    from ghvault.engine import Backup, Options

    class Client:
        def paginate(self, path: str, params: dict | None = None) -> list[dict]:
            return [{"name": n, "full_name": f"o/{n}", "owner": {"login": "o"}}
                    for n in ("toolbox", "toolbox.git", "a b")]

    backup = Backup(Options(owner="o", dest="file:///nowhere.zip", month="2026-10"))
    repos = backup.list_repos(Client(), {"login": "o", "type": "Organization"}, None)
    assert [r["name"] for r in repos] == ["toolbox"]
    backup.gist(None, None, {"id": "../x"})  # type: ignore[arg-type]
    assert [s["item"] for s in backup.ledger.skipped] == ["repo o/toolbox.git", "repo o/a b",
                                                          "gist ../x"]
    assert "not a GitHub repository name" in backup.ledger.skipped[0]["reason"]


# --- the manifest and the hash checks ------------------------------------------------------


def test_manifests_are_validated() -> None:
    good = {"path": "a", "size": 1, "sha256": "0" * 64, "compressed": True}
    assert parse_manifest({"entries": [good]}).entries == {"a": Expected(1, "0" * 64)}
    for doc, why in (([], "no list of entries"), ({"entries": {}}, "no list of entries"),
                     ({"entries": [good, good]}, "lists a twice"),
                     ({"entries": [{**good, "size": -1}]}, "entry 0"),
                     ({"entries": [{**good, "size": True}]}, "entry 0"),
                     ({"entries": [{**good, "sha256": "xyz"}]}, "entry 0"),
                     ({"entries": ["a"]}, "entry 0")):
        with pytest.raises(ManifestError, match=why):
            parse_manifest(doc)


def test_stream_entry_checks_size_sha256_and_oid_and_lets_writes_fail() -> None:
    data = b"lfs object"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("e", data)
    zf = zipfile.ZipFile(buf)
    info = zf.getinfo("e")
    chunks: list[bytes] = []
    ok = stream_entry(zf, info, Expected(len(data), sha256(data)), chunks.append, oid=OID)
    assert (ok.size, ok.readable, ok.problems, b"".join(chunks)) == (len(data), True, [], data)
    short = stream_entry(zf, info, Expected(3, sha256(data)), chunks.append)
    assert short.problems == ["has more than 3 bytes where the manifest says 3 (reading "
                              "stopped there)"]
    assert short.size == 4  # the bound: the manifest's size + 1, whatever the zip claims
    other = stream_entry(zf, info, Expected(len(data), "0" * 64), chunks.append, oid="1" * 64)
    assert other.problems == ["SHA-256 does not match the manifest (corrupted)",
                              "the LFS object's content does not hash to its oid"]

    def full_disk(_: bytes) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        stream_entry(zf, info, None, full_disk)


# --- hostile archives ---------------------------------------------------------------------


def write_archive(path: Path, entries: list[tuple[str, bytes]], doc: dict,
                  extra: Iterable[tuple[str, bytes]] = ()) -> None:
    """A zip of `entries` whose MANIFEST.json and sidecar list every one of them with its
    true size and SHA-256 (and the sidecar the archive's own), as the writer would; then
    the `extra` entries, unlisted."""
    listed = sorted(({"path": n, "size": len(d), "sha256": sha256(d), "compressed": False}
                     for n, d in entries), key=lambda e: e["path"])
    manifest = {**doc, "entries": listed}
    with zipfile.ZipFile(path, "w") as z:
        for name, data in [*entries, *extra]:
            z.writestr(zipfile.ZipInfo(name), data)
        z.writestr(MANIFEST_NAME, json.dumps(manifest))
    body = path.read_bytes()
    sidecar = {**manifest, "archive": {"key": str(path), "size": len(body),
                                       "sha256": sha256(body)}}
    Path(f"{path}.manifest.json").write_text(json.dumps(sidecar))


def ghvault(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "GITHUB_TOKEN"}
    return subprocess.run([GHVAULT, *args], env={**full, **(env or {})}, capture_output=True,
                          text=True, timeout=300)


def files_below(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def bundle_of_one_commit(tmp: Path) -> bytes:
    repo = tmp / "src"
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.com"}
    for args in (["init", "-q", "-b", "main", str(repo)],
                 ["-C", str(repo), "commit", "-q", "--allow-empty", "-m", "one"],
                 ["-C", str(repo), "bundle", "create", "-q", str(tmp / "b.bundle"), "--all"]):
        subprocess.run(["git", *args], env=env, check=True, capture_output=True)
    return (tmp / "b.bundle").read_bytes()


def check_refused(tmp_path: Path, archive: Path, name: str, payload: bytes) -> None:
    """verify: exit 8, one problem naming `name`; restore: exit 8, `name` reported, nothing
    new outside --to, `payload` nowhere."""
    proc = ghvault("verify", str(archive))
    assert proc.returncode == 8, proc.stdout + proc.stderr
    *problems, _text, last = proc.stdout.splitlines()
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{shown(name)}: is not allowed by the archive layout: ")
    assert json.loads(last)["problems"] == 1

    before = files_below(tmp_path)
    to = tmp_path / "restored" / "to"
    proc = ghvault("restore", str(archive), "--to", str(to))
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert any(line.startswith(f"{shown(name)}: not allowed by the archive layout")
               for line in proc.stdout.splitlines()), proc.stdout
    assert json.loads(proc.stdout.splitlines()[-1])["problems"] == 1
    new = files_below(tmp_path) - before
    assert new and all(p == to.parent or p == to or to in p.parents for p in new), new
    assert not (tmp_path / "pwned").exists()
    for path in new:
        if path.is_file():
            assert payload not in path.read_bytes(), path


HOSTILE = ["../escape.txt", "repos/toolbox/../../../escape.txt", "<tmp>/absolute.txt",
           "repos\\toolbox\\escape.txt", "repos/toolbox.git/config",
           "repos/toolbox.git/hooks/post-checkout", "repos/toolbox/config",
           "gists/abc.git/config", "unknown/file.txt", "repos/toolbox/releases/v1\n/evil.txt"]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_entry_fails_verify_and_restore_writes_nothing_outside(tmp_path, hostile):
    name = hostile.replace("<tmp>", str(tmp_path))  # an absolute path
    payload = f'[core]\n\tfsmonitor = "touch {tmp_path}/pwned"\n'.encode()
    bundle = bundle_of_one_commit(tmp_path / "git")
    archive = tmp_path / "work" / "hubber-2026-10.zip"
    archive.parent.mkdir()
    doc = {"tool": "ghvault", "format": 1, "owner": "hubber", "month": "2026-10",
           "counts": {"repos": 1, "git_bundles": 1}, "skipped": []}
    write_archive(archive, [("repos/toolbox/repo.json", b'{"default_branch": "main"}\n'),
                            ("repos/toolbox/git.bundle", bundle), (name, payload)], doc)
    check_refused(tmp_path, archive, name, payload)
    config = tmp_path / "restored" / "to" / "repos" / "toolbox.git" / "config"
    assert config.is_file() and b"fsmonitor" not in config.read_bytes()


def test_an_entry_stored_twice_is_named_and_restored_once(tmp_path) -> None:
    """zipfile reads the later of two same-named entries; restore keeps the first, the one
    the manifest describes, and names the other."""
    good, evil = b'{"name": "toolbox"}\n', b'{"name": "evil"}\n'
    archive = tmp_path / "work" / "twice.zip"
    archive.parent.mkdir()
    doc = {"owner": "hubber", "month": "2026-10", "counts": {"repos": 1}, "skipped": []}
    with pytest.warns(UserWarning, match="Duplicate name"):
        write_archive(archive, [("repos/toolbox/repo.json", good)], doc,
                      extra=[("repos/toolbox/repo.json", evil)])
    proc = ghvault("verify", str(archive))
    assert proc.returncode == 8
    assert "repos/toolbox/repo.json: appears twice in the archive" in proc.stdout.splitlines()
    to = tmp_path / "to"
    proc = ghvault("restore", str(archive), "--to", str(to))
    assert proc.returncode == 8
    assert "repos/toolbox/repo.json: appears twice in the archive; left out" in proc.stdout
    assert (to / "repos" / "toolbox" / "repo.json").read_bytes() == good


# --- real archives ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backups(sim, tmp_path_factory) -> dict[str, Path]:
    """`ghvault run` of the tiny simulator's user and organisation into local files."""
    out = {}
    for role in ("user", "org"):
        owner = sim.sim.world.owners[role]
        dest = tmp_path_factory.mktemp(role) / f"{owner}-2026-10.zip"
        proc = ghvault("run", "--api-url", sim.api, "--owner", owner, "--month", "2026-10",
                       "--dest", f"file://{dest}", env={**sim.client_env(),
                                                        "GITHUB_TOKEN": TOKEN})
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[role] = dest
    return out


@pytest.mark.parametrize("role", ["user", "org"])
def test_every_entry_the_writer_makes_is_allowed(backups, role) -> None:
    roles = set()
    with zipfile.ZipFile(backups[role]) as z:
        for info in z.infolist():
            entry = classify(info.filename)
            roles.add(entry.role)
            stored = info.compress_type == zipfile.ZIP_STORED
            if entry.spec.compression != "by content":  # the table documents what is written
                assert stored == (entry.spec.compression == "stored"), info.filename
    assert {"manifest", "account", "repo_file", "git_bundle"} <= roles
    assert ({"gist_bundle", "lfs_object", "release_asset"} <= roles) == (role == "user")


def test_a_hostile_entry_in_a_real_archive_is_named(backups, tmp_path) -> None:
    src = backups["user"]
    with zipfile.ZipFile(src) as z:
        doc = json.loads(z.read(MANIFEST_NAME))
        entries = [(i.filename, z.read(i)) for i in z.infolist() if i.filename != MANIFEST_NAME]
    repo = next(n.split("/")[1] for n, _ in entries if n.endswith("/git.bundle"))
    name = f"repos/{repo}.git/config"
    payload = f'[core]\n\tfsmonitor = "touch {tmp_path}/pwned"\n'.encode()
    archive = tmp_path / "work" / src.name
    archive.parent.mkdir()
    write_archive(archive, [*entries, (name, payload)], doc)
    check_refused(tmp_path, archive, name, payload)
