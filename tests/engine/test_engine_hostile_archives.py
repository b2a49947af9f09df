"""Restore, push and verify on hostile archives (issue 12, cases 1, 3 and 8).

Each archive here is self-consistent (its MANIFEST.json and sidecar list every entry with its
true size and SHA-256) unless a test breaks that on purpose, so only the property under test
can give it away: a zip bomb that the manifest calls 100 bytes, a symlink-mode entry, a full
disk, malformed manifest records, an owner that would move the push elsewhere, a
`.lfsconfig` that would send LFS objects elsewhere, a 300-character asset name, and a fuzz
run of mutated manifests and names that must end in exit 0, 8 or 9, never an internal error.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import random
import resource
import subprocess
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ghvault.errors import ArchiveInvalid, ArchiveUnreadable, DestinationError, GhvaultError
from ghvault.layout import (
    MANIFEST_NAME,
    MAX_SEGMENT_BYTES,
    Expected,
    LayoutError,
    classify,
    fit_segment,
    release_asset_entry,
    segment,
    stream_entry,
)
from ghvault.restore import Restore, RestoreOptions
from ghvault.source import open_source
from ghvault.verify import verify

from tests.conftest import TOKEN
from tests.engine.test_engine_layout import (
    GHVAULT,
    bundle_of_one_commit,
    ghvault,
    sha256,
    write_archive,
)
from tests.engine.test_engine_restore import PlainGitServer, local_refs
from tests.github_sim import gitserve

DOC = {"tool": "ghvault", "format": 1, "owner": "hubber", "month": "2026-10",
       "counts": {"repos": 1, "git_bundles": 1, "release_assets": 1}, "skipped": []}
REPO_JSON = b'{"name": "toolbox", "default_branch": "main"}\n'


def base_entries(tmp: Path) -> list[tuple[str, bytes]]:
    return [("repos/toolbox/repo.json", REPO_JSON),
            ("repos/toolbox/git.bundle", bundle_of_one_commit(tmp / "git")),
            ("repos/toolbox/releases/v1/tool.tar.gz", b"release asset\n")]


def listing(proc: subprocess.CompletedProcess) -> tuple[list[str], dict]:
    """The problem lines and the summary of a verify or restore."""
    lines = proc.stdout.splitlines()
    summary = json.loads(lines[-1])
    return [ln for ln in lines[:-1] if not ln.startswith(("/", "file:"))], summary


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".part" in p.name or p.name.startswith(".ghvault-")]


# --- case 8: a zip bomb is read no further than its manifest's size + 1 --------------------


def bomb_archive(tmp: Path, claimed: int = 100, real: int = 64 << 20) -> tuple[Path, str]:
    """An archive whose release asset unpacks to `real` zero bytes while the manifest (and
    sidecar) say `claimed` bytes."""
    name = "repos/toolbox/releases/v1/bomb.bin"
    archive = tmp / "work" / "hubber-2026-10.zip"
    archive.parent.mkdir(parents=True)
    write_archive(archive, [*base_entries(tmp), (name, b"z" * claimed)],
                  {**DOC, "counts": {**DOC["counts"], "release_assets": 2}})
    # the same archive with the bomb's bytes swapped in (MANIFEST.json kept as written)
    bombed = archive.with_suffix(".tmp")
    with zipfile.ZipFile(archive) as zin, zipfile.ZipFile(bombed, "w") as zout:
        for info in zin.infolist():
            if info.filename == name:
                with zout.open(zipfile.ZipInfo(name), "w", force_zip64=True) as out:
                    for _ in range(real >> 20):
                        out.write(bytes(1 << 20))
            else:
                zout.writestr(info, zin.read(info))
    bombed.replace(archive)
    sidecar = json.loads(Path(f"{archive}.manifest.json").read_text())
    body = archive.read_bytes()
    sidecar["archive"] = {"key": str(archive), "size": len(body), "sha256": sha256(body)}
    Path(f"{archive}.manifest.json").write_text(json.dumps(sidecar))
    return archive, name


def test_stream_entry_feeds_at_most_the_manifests_size_plus_one(tmp_path) -> None:
    archive, name = bomb_archive(tmp_path, real=16 << 20)
    fed: list[int] = []
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo(name).file_size == 16 << 20  # what the zip headers claim
        streamed = stream_entry(zf, zf.getinfo(name), Expected(100, "0" * 64),
                                lambda b: fed.append(len(b)))
    assert sum(fed) == streamed.size == 101
    assert streamed.problems == ["has more than 100 bytes where the manifest says 100 "
                                 "(reading stopped there)"]


def limited_ghvault(*args: str, file_limit: int) -> subprocess.CompletedProcess:
    """ghvault with every file it writes limited to `file_limit` bytes (RLIMIT_FSIZE): a
    write beyond it fails (EFBIG) or kills the process (SIGXFSZ)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    env = {k: v for k, v in os.environ.items() if k != "GITHUB_TOKEN"}
    return subprocess.run([GHVAULT, *args], env=env, capture_output=True, text=True,
                          timeout=300, preexec_fn=limit)


def test_a_zip_bomb_is_never_written_beyond_its_manifest_size(tmp_path) -> None:
    archive, name = bomb_archive(tmp_path)
    proc = ghvault("verify", str(archive))
    assert proc.returncode == 8, proc.stdout + proc.stderr
    problems, summary = listing(proc)
    assert problems == [f"{name}: has more than 100 bytes where the manifest says 100 "
                        "(reading stopped there)"]
    to = tmp_path / "to"
    # 1 MiB per file is far more than this archive's good entries and 1/64 of the bomb
    proc = limited_ghvault("restore", str(archive), "--to", str(to), file_limit=1 << 20)
    assert proc.returncode == 8, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    problems, summary = listing(proc)
    assert problems == [f"{name}: has more than 100 bytes where the manifest says 100 "
                        "(reading stopped there); left out"]
    assert summary["problems"] == 1
    assert not (to / name).exists() and not leftovers(to)
    assert (to / "repos" / "toolbox" / "releases" / "v1" / "tool.tar.gz").read_bytes() == \
        b"release asset\n"


# --- case 8: a full disk, a name too long, a clash -----------------------------------------


def good_archive(tmp: Path) -> Path:
    archive = tmp / "work" / "hubber-2026-10.zip"
    archive.parent.mkdir(parents=True)
    write_archive(archive, base_entries(tmp), DOC)
    return archive


@pytest.mark.parametrize(("code", "said"), [
    (errno.ENOSPC, "No space left on the device of '{path}' (restoring)"),
    (errno.EDQUOT, "No space left on the device of '{path}' (restoring)"),
    (errno.ENAMETOOLONG, "Cannot write '{path}' (restoring): the path is too long for the "
                         "filesystem: choose a shorter --to"),
])
def test_a_failed_write_names_the_path_and_leaves_nothing_half_written(tmp_path, monkeypatch,
                                                                       code, said) -> None:
    archive = good_archive(tmp_path)
    to = tmp_path / "to"
    import ghvault.restore as restore_module

    real = restore_module.stream_entry

    def failing(zf, info, expected, feed, oid=None):  # the disk fills after some bytes
        if info.filename.endswith("tool.tar.gz"):
            def half(data: bytes) -> None:
                feed(data[:5])
                raise OSError(code, os.strerror(code))
            return real(zf, info, expected, half, oid=oid)
        return real(zf, info, expected, feed, oid=oid)

    monkeypatch.setattr(restore_module, "stream_entry", failing)
    with pytest.raises(DestinationError) as caught:
        Restore(open_source(str(archive)), RestoreOptions(to=to)).run()
    path = to / "repos" / "toolbox" / "releases" / "v1" / "tool.tar.gz"
    message = str(caught.value)
    assert said.format(path=path) in message
    assert ("free space" in message) == (code != errno.ENAMETOOLONG)
    assert not path.exists() and not leftovers(to)  # no unverified file, no temporary one


def test_an_interrupted_entry_leaves_no_temporary_file(tmp_path, monkeypatch) -> None:
    archive = good_archive(tmp_path)
    to = tmp_path / "to"
    import ghvault.restore as restore_module

    real = restore_module.stream_entry

    def interrupted(zf, info, expected, feed, oid=None):
        def stop(data: bytes) -> None:
            feed(data[:3])
            raise KeyboardInterrupt
        return real(zf, info, expected, stop, oid=oid)

    monkeypatch.setattr(restore_module, "stream_entry", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Restore(open_source(str(archive)), RestoreOptions(to=to)).run()
    assert not leftovers(to) and not (to / "repos" / "toolbox" / "repo.json").exists()


@pytest.mark.parametrize("branch", ["a\u0000b", "--upload-pack=touch pwned", 7, None])
def test_a_default_branch_git_cannot_hold_is_ignored(tmp_path, branch) -> None:
    meta = json.dumps({"name": "toolbox", "default_branch": branch}).encode() + b"\n"
    archive = tmp_path / "work" / "hubber-2026-10.zip"
    archive.parent.mkdir()
    write_archive(archive, [("repos/toolbox/repo.json", meta), base_entries(tmp_path)[1]],
                  {**DOC, "counts": {"repos": 1, "git_bundles": 1}})
    to = tmp_path / "to"
    proc = ghvault("restore", str(archive), "--to", str(to))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    head = (to / "repos" / "toolbox.git" / "HEAD").read_text()
    assert head == "ref: refs/heads/main\n"  # from the bundle
    assert not (tmp_path / "pwned").exists() and not (to / "pwned").exists()


def test_a_file_directory_clash_is_one_problem_not_an_internal_error(tmp_path) -> None:
    archive = good_archive(tmp_path)
    to = tmp_path / "to"
    restore = Restore(open_source(str(archive)), RestoreOptions(to=to))
    (to / "repos").mkdir(parents=True)
    (to / "repos" / "toolbox").write_text("a file where a directory goes")
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("repos/toolbox/repo.json")
        kept = restore.extract(zf, info, classify(info.filename),
                               Expected(len(REPO_JSON), sha256(REPO_JSON)),
                               to / "repos" / "toolbox" / "repo.json")
        (to / "repos" / "elsewhere").mkdir()
        (to / "repos" / "elsewhere" / "repo.json").mkdir()  # a directory where a file goes
        again = restore.extract(zf, info, classify(info.filename),
                                Expected(len(REPO_JSON), sha256(REPO_JSON)),
                                to / "repos" / "elsewhere" / "repo.json")
    assert (kept, again) == (False, False)
    assert len(restore.outcome.problems) == 2
    assert all(p.startswith("repos/toolbox/repo.json: clashes with") and p.endswith("left out")
               for p in restore.outcome.problems), restore.outcome.problems
    assert not leftovers(to)


def test_a_symlink_mode_entry_fails_verify_and_is_never_written(tmp_path) -> None:
    name = "repos/toolbox/releases/v1/link"
    target = b"../../../../../../etc/passwd"
    archive = tmp_path / "work" / "hubber-2026-10.zip"
    archive.parent.mkdir()
    write_archive(archive, [*base_entries(tmp_path), (name, target)], DOC)  # counted out
    with zipfile.ZipFile(archive) as zin, zipfile.ZipFile(archive.with_suffix(".t"), "w") as z:
        for info in zin.infolist():
            if info.filename == name:
                info.create_system = 3
                info.external_attr = 0o120777 << 16  # a symbolic link, as `zip -y` stores it
            z.writestr(info, zin.read(info))
    archive.with_suffix(".t").replace(archive)
    body = archive.read_bytes()
    sidecar = json.loads(Path(f"{archive}.manifest.json").read_text())
    sidecar["archive"] = {"key": str(archive), "size": len(body), "sha256": sha256(body)}
    Path(f"{archive}.manifest.json").write_text(json.dumps(sidecar))

    proc = ghvault("verify", str(archive))
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert listing(proc)[0] == [f"{name}: is stored as a symbolic link, which the archive "
                                "layout does not allow"]
    to = tmp_path / "to"
    proc = ghvault("restore", str(archive), "--to", str(to))
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert listing(proc)[0] == [f"{name}: is stored as a symbolic link, which the archive "
                                "layout does not allow; left out"]
    assert not os.path.lexists(to / name)
    assert (to / "repos" / "toolbox.git").is_dir()


# --- case 3/8: malformed manifests are one problem line per record -------------------------


def test_malformed_manifest_records_are_one_problem_each(tmp_path) -> None:
    archive = good_archive(tmp_path)
    with zipfile.ZipFile(archive) as zf:
        doc = json.loads(zf.read(MANIFEST_NAME))
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()
                   if i.filename != MANIFEST_NAME]
    bad = [{"path": 5, "size": 1, "sha256": "0" * 64}, {"path": "repos/toolbox/repo.json"},
           "a string", None, {"path": "x", "size": "big", "sha256": "0" * 64},
           {"path": "x", "size": -1, "sha256": "0" * 64}, {"path": "x", "size": True,
                                                           "sha256": "0" * 64}]
    doc["entries"] = doc["entries"] + bad + [doc["entries"][0]]  # and one listed twice
    doc["counts"] = ["not", "an", "object"]
    doc["skipped"] = ["a string", 7]
    with zipfile.ZipFile(archive, "w") as z:
        for name, data in entries:
            z.writestr(name, data)
        z.writestr(MANIFEST_NAME, json.dumps(doc))
    body = archive.read_bytes()
    Path(f"{archive}.manifest.json").write_text(json.dumps(
        {**doc, "archive": {"size": len(body), "sha256": sha256(body)}}))

    proc = ghvault("verify", str(archive))
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert "internal error" not in proc.stderr
    problems, summary = listing(proc)
    malformed = [p for p in problems if "of the manifest is not a path with a size" in p]
    assert [p.split(" of the manifest")[0] for p in malformed] == \
        [f"entry {n}" for n in range(3, 3 + len(bad))]
    assert f"{doc['entries'][0]['path']}: is listed twice in the manifest" in problems
    assert any(p.startswith("the manifest's counts are not an object") for p in problems)
    assert summary["problems"] == len(problems) == len(bad) + 2

    to = tmp_path / "to"
    proc = ghvault("restore", str(archive), "--to", str(to))
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert "internal error" not in proc.stderr
    problems, summary = listing(proc)
    assert len([p for p in problems if "of the manifest is not a path" in p]) == len(bad)
    assert summary["problems"] == len(bad) + 1  # the duplicate record too
    assert (to / "repos" / "toolbox" / "repo.json").read_bytes() == REPO_JSON


# --- case 1: push goes where --push-to says, with the environment's config only -------------


class Trap:
    """An HTTP server that records every request (it must receive none)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        trap = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                trap.seen.append((self.command, self.path,
                                  self.headers.get("Authorization") or ""))
                self.send_error(404)

            do_POST = do_PUT = do_CONNECT = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def lfs_bundle(tmp: Path, lfsconfig: str, data: bytes) -> bytes:
    """A bundle of one commit holding an LFS pointer to `data`, and `.lfsconfig`."""
    repo = tmp / "src"
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.com"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], env=env, check=True)
    (repo / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
    (repo / ".lfsconfig").write_text(lfsconfig)
    (repo / "big.bin").write_text(f"version https://git-lfs.github.com/spec/v1\n"
                                  f"oid sha256:{sha256(data)}\nsize {len(data)}\n")
    for args in (["add", "-A"], ["commit", "-q", "-m", "lfs"],
                 ["bundle", "create", "-q", str(tmp / "lfs.bundle"), "--all"]):
        subprocess.run(["git", "-C", str(repo), *args], env=env, check=True,
                       capture_output=True)
    return (tmp / "lfs.bundle").read_bytes()


def test_nothing_in_the_archive_moves_the_push_or_its_headers(tmp_path) -> None:
    trap = Trap()
    server = PlainGitServer(tmp_path / "host", token="ghp_pushTOKEN0000000000000000000000000002")
    try:
        data = b"large file content\n" * 100
        config = (f"[http]\n\tproxy = {trap.url}\n\tsslVerify = false\n"
                  f"[http \"{server.url}\"]\n\textraHeader = X-Evil: 1\n"
                  f"[core]\n\tpager = touch {tmp_path}/pwned; cat\n"
                  f"[remote \"origin\"]\n\turl = {trap.url}/stolen.git\n").encode()
        archive = tmp_path / "work" / "hubber-2026-10.zip"
        archive.parent.mkdir()
        write_archive(archive, [
            ("repos/toolbox/repo.json", REPO_JSON),
            ("repos/toolbox/git.bundle",
             lfs_bundle(tmp_path / "git", f"[lfs]\n\turl = {trap.url}/lfs\n"
                                          f"\tpushurl = {trap.url}/lfs\n", data)),
            (f"repos/toolbox/lfs/{sha256(data)}", data),
            ("repos/toolbox.git/config", config)],
            {**DOC, "counts": {"repos": 1, "git_bundles": 1, "lfs_objects": 1}})
        proc = ghvault("verify", str(archive))
        assert proc.returncode == 8
        assert listing(proc)[0][0].startswith("repos/toolbox.git/config: is not allowed by "
                                              "the archive layout")
        to = tmp_path / "to"
        proc = ghvault("restore", str(archive), "--to", str(to), "--push-to",
                       f"{server.url}/neworg/{{repo}}.git",
                       env={"GITHUB_TOKEN": server.token})
        # the hostile entry is the one problem; the push itself went through
        assert proc.returncode == 8, proc.stdout + proc.stderr[-2000:]
        problems, summary = listing(proc)
        assert len(problems) == 1 and problems[0].startswith("repos/toolbox.git/config")
        assert summary["counts"]["pushed"] == 1 and summary["push_failures"] == 0
        mirror = to / "repos" / "toolbox.git"
        assert b"proxy" not in (mirror / "config").read_bytes()
        assert not (mirror / "hooks").exists() or not any((mirror / "hooks").iterdir())
        pushed = local_refs(server.root / "neworg" / "toolbox.git")
        assert pushed == local_refs(mirror)
        stored = gitserve.lfs_object_path(server.store("neworg/toolbox"), sha256(data))
        assert stored.read_bytes() == data  # to the push URL's LFS endpoint, not .lfsconfig's
        assert trap.seen == []
        assert not (tmp_path / "pwned").exists()
    finally:
        server.close()
        trap.close()


@pytest.mark.parametrize("owner", ["neworg/../other", "../other", "x?y", "a@b", ""])
def test_an_archives_owner_cannot_move_the_push(tmp_path, owner) -> None:
    server = PlainGitServer(tmp_path / "host", token="ghp_pushTOKEN0000000000000000000000000003")
    try:
        archive = tmp_path / "work" / "hubber-2026-10.zip"
        archive.parent.mkdir()
        write_archive(archive, base_entries(tmp_path)[:2],
                      {**DOC, "owner": owner, "counts": {"repos": 1, "git_bundles": 1}})
        to = tmp_path / "to"
        proc = ghvault("restore", str(archive), "--to", str(to), "--push-to",
                       f"{server.url}/{{owner}}/{{repo}}.git",
                       env={"GITHUB_TOKEN": server.token})
        assert proc.returncode == 8, proc.stdout + proc.stderr[-2000:]
        problems, summary = listing(proc)
        assert problems == [f"{MANIFEST_NAME}: the owner {owner!r} is not a GitHub login, so "
                            "--push-to's {owner} cannot be filled in; nothing was pushed"]
        assert "pushed" not in summary["counts"]
        assert not any(server.root.rglob("*.git"))
    finally:
        server.close()


def test_a_template_may_not_let_the_archive_choose_the_host(tmp_path) -> None:
    archive = good_archive(tmp_path)
    for template in ("https://{owner}.example.com/{repo}.git", "https://h{repo}/x.git"):
        proc = ghvault("restore", str(archive), "--to", str(tmp_path / "n"), "--push-to",
                       template)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "in the host" in proc.stderr
    assert not (tmp_path / "n").exists()


def test_git_children_of_restore_ignore_system_global_and_home_config(tmp_path,
                                                                       monkeypatch) -> None:
    """A HOME or XDG config with a hook-running setting has no effect on restore's git."""
    home = tmp_path / "home"
    (home / ".config" / "git").mkdir(parents=True)
    evil = f"[core]\n\tfsmonitor = touch {tmp_path}/pwned\n\thooksPath = {tmp_path}/hooks\n"
    (home / ".gitconfig").write_text(evil)
    (home / ".config" / "git" / "config").write_text(evil)
    archive = good_archive(tmp_path)
    to = tmp_path / "to"
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "GIT_CONFIG_GLOBAL": str(home / ".gitconfig")}
    proc = ghvault("restore", str(archive), "--to", str(to), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert local_refs(to / "repos" / "toolbox.git")
    assert not (tmp_path / "pwned").exists()


# --- case 8: over-long names are shortened by the writer, refused elsewhere ----------------


def test_over_long_segments_are_shortened_to_a_unique_writable_name() -> None:
    long_ascii = "a" * 296 + ".tar.gz"
    long_utf8 = "é" * 200 + ".bin"  # 400 bytes
    for text in (long_ascii, long_utf8, "x" * 1000, "ö" * 5000):
        fitted = segment(text)
        assert len(fitted.encode()) <= MAX_SEGMENT_BYTES
        assert fitted == segment(text) == fit_segment(text)  # deterministic
        assert "~" in fitted
    assert segment(long_ascii).endswith(".gz") and segment(long_utf8).endswith(".bin")
    assert segment("a" * 300) != segment("a" * 301)
    assert segment("b" * 255) == "b" * 255  # names that fit are kept
    name = release_asset_entry("toolbox", "v" * 300, long_ascii)
    assert classify(name).role == "release_asset"
    assert all(len(p.encode()) <= MAX_SEGMENT_BYTES for p in name.split("/"))
    with pytest.raises(LayoutError, match="more than the 255"):
        classify(f"repos/toolbox/releases/v1/{'a' * 300}")


def test_a_300_character_asset_name_backs_up_verifies_and_restores(fresh_sim, tmp_path) -> None:
    world = fresh_sim.sim.world
    owner = world.owners["user"]
    asset = next(a for r in world.repos_of(owner) for rel in r.releases for a in rel.assets)
    long = "n" * 296 + ".bin"
    asset.name = long
    dest = tmp_path / f"{owner}-2026-10.zip"
    proc = ghvault("run", "--api-url", fresh_sim.api, "--owner", owner, "--month", "2026-10",
                   "--dest", f"file://{dest}",
                   env={**fresh_sim.client_env(), "GITHUB_TOKEN": TOKEN})
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = ghvault("verify", str(dest))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    to = tmp_path / "to"
    proc = ghvault("restore", str(dest), "--to", str(to))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    restored = [p for p in (to / "repos").rglob("*.bin") if p.name.startswith("n" * 50)]
    assert len(restored) == 1 and restored[0].name == segment(long)
    assert restored[0].read_bytes() == asset.data
    releases = json.loads((restored[0].parents[2] / "releases.json").read_text())
    assert long in [a["name"] for rel in releases for a in rel["assets"]]  # the original name


# --- cases 3 and 8: a fuzz run never ends in an internal error ------------------------------

CASES = 300
JUNK = [None, True, -1, 0, 1.5, 2 ** 70, "", "x", [], {}, [1], {"a": 1}, "../../x", "\x00",
        "é" * 300]


def mutate(rng: random.Random, doc: dict, entries: list[tuple[str, bytes]]
           ) -> tuple[dict, list[tuple[str, bytes]]]:
    doc, entries = copy.deepcopy(doc), list(entries)
    for _ in range(rng.randint(1, 3)):
        what = rng.randrange(7)
        records = doc.get("entries") if isinstance(doc.get("entries"), list) else []
        if what == 0 and records:  # a record's field of another type, or gone
            record = rng.choice(records)
            if isinstance(record, dict):
                key = rng.choice(["path", "size", "sha256", "compressed"])
                if rng.random() < 0.2:
                    record.pop(key, None)
                else:
                    record[key] = rng.choice(JUNK)
        elif what == 1 and records:  # a record replaced, or duplicated
            i = rng.randrange(len(records))
            records[i] = rng.choice(JUNK) if rng.random() < 0.5 else records[0]
        elif what == 2:  # a top-level field of another type
            doc[rng.choice(["entries", "counts", "skipped", "owner", "month"])] = \
                rng.choice(JUNK)
        elif what == 3 and entries:  # random bytes in a name, the manifest agreeing
            i = rng.randrange(len(entries))
            old, data = entries[i]
            pos = rng.randrange(len(old) + 1)
            junk = "".join(chr(rng.choice([0, 1, 10, 13, 47, 46, 92, 58, 0x7f, 0xe9, 0x202e,
                                           rng.randrange(32, 0x3000)]))
                           for _ in range(rng.randint(1, 4)))
            new = (old[:pos] + junk + old[pos:]).replace("\x00", "")  # zip names: no NUL
            entries[i] = (new or "x", data)
            for record in records:
                if isinstance(record, dict) and record.get("path") == old:
                    record["path"] = new or "x"
        elif what == 4 and records:  # a size that lies
            record = rng.choice(records)
            if isinstance(record, dict) and isinstance(record.get("size"), int):
                record["size"] = rng.choice([0, 1, record["size"] - 1, record["size"] + 1,
                                             10 ** 12])
        elif what == 5 and isinstance(doc.get("counts"), dict):
            doc["counts"][rng.choice(["repos", "git_bundles", "nonsense"])] = \
                rng.choice(JUNK)
        elif what == 6 and entries:  # an entry's bytes changed
            i = rng.randrange(len(entries))
            name, data = entries[i]
            entries[i] = (name, data[: rng.randrange(len(data) + 1)] + bytes([rng.randrange(256)]))
    return doc, entries


def fuzz_case(path: Path, doc: dict, entries: list[tuple[str, bytes]],
              rng: random.Random) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries:
            try:
                z.writestr(zipfile.ZipInfo(name), data)
            except (ValueError, UnicodeError):
                pass  # a name zipfile itself refuses to write
        z.writestr(MANIFEST_NAME, json.dumps(doc))
    body = path.read_bytes()
    sidecar = {**doc, "archive": {"size": len(body), "sha256": sha256(body)}} \
        if isinstance(doc, dict) else doc
    if rng.random() < 0.2:
        sidecar = {**sidecar, "archive": rng.choice(JUNK)}
    Path(f"{path}.manifest.json").write_text(json.dumps(sidecar))
    if rng.random() < 0.3:  # and a few bytes of the zip itself flipped (headers included)
        body = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(body))


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_fuzzed_manifests_and_names_end_in_0_8_or_9_never_an_internal_error(tmp_path) -> None:
    rng = random.Random(12)
    base = good_archive(tmp_path)
    with zipfile.ZipFile(base) as zf:
        doc = json.loads(zf.read(MANIFEST_NAME))
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()
                   if i.filename != MANIFEST_NAME]
    outcomes = {0: 0, 8: 0, 9: 0}
    for n in range(CASES):
        case = tmp_path / f"case{n}" / "hubber-2026-10.zip"
        case.parent.mkdir()
        fuzz_case(case, *mutate(rng, doc, entries), rng)
        try:
            report = verify(open_source(str(case)))
            code = 0 if report.ok else 8
        except GhvaultError as e:
            assert isinstance(e, (ArchiveInvalid, ArchiveUnreadable)), (n, e)
            code = int(e.exit_code)
        outcomes[code] += 1
        if n % 5 == 0:  # restore a share of them: inside --to, no internal error
            to = case.parent / "to"
            try:
                Restore(open_source(str(case)), RestoreOptions(to=to)).run()
            except GhvaultError as e:
                assert isinstance(e, (ArchiveInvalid, ArchiveUnreadable)), (n, e)
            beside = set(case.parent.iterdir())
            assert beside <= {case, Path(f"{case}.manifest.json"), to}, (n, beside)
            assert not leftovers(to)
    assert {p.name for p in tmp_path.iterdir()} == {"work", "git"} | {
        f"case{n}" for n in range(CASES)}  # nothing escaped --to
    assert outcomes[8] > 100, outcomes  # the mutations mostly break something
