"""ghvault.git against the simulator's real smart-HTTP git and LFS, with the real git client."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from ghvault.bundles import stream_bundle
from ghvault.errors import AuthError, ConfigError, GitHubUnavailable
from ghvault.git import (
    Git,
    GitAuthError,
    GitError,
    GitUnavailable,
    Mirror,
    RemoteElsewhere,
    RepoNotFound,
    classify_failure,
)

from tests.conftest import OTHER_TOKEN
from tests.github_sim.gitrepos import History, Person, init_bare, ref_map


@pytest.fixture(autouse=True)
def tls_env(sim, monkeypatch):
    """The caller's TLS settings, which Git passes on to its children."""
    for key, value in sim.client_env().items():
        monkeypatch.setenv(key, value)


def make_git(sim, tmp_path: Path, token: str | None = "default", **kwargs) -> Git:
    token = sim.token if token == "default" else token
    kwargs.setdefault("timeout", 60)
    return Git(sim.root, token, tmp_path / "work", **kwargs)


def url(sim, full_name: str) -> str:
    return f"{sim.root}/{full_name}.git"


def secret_forms(token: str) -> list[bytes]:
    """The token as it could appear anywhere: raw, URL-quoted, in the Basic header, and
    base64-encoded at each of the three alignments inside a longer string."""
    forms = {token.encode(), quote(token, safe="").encode(),
             base64.b64encode(f"x-access-token:{token}".encode())}
    for pad in range(3):
        encoded = base64.b64encode(b"x" * pad + token.encode())
        forms.add(encoded[4 if pad else 0:-4])
    return sorted(forms)


def files_containing(roots: list[Path], token: str) -> list[str]:
    forms = secret_forms(token)
    hits = []
    for root in roots:
        for path in [root] if root.is_file() else root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                hits += [f"{path}: {form!r}" for form in forms if form in data]
    return hits


def assert_clean(message: str, token: str) -> None:
    assert not [f for f in secret_forms(token) if f.decode() in message], message


# ---------------------------------------------------------------------------------------------
# mirrors


def test_mirror_has_every_ref(sim, tmp_path):
    mirror = make_git(sim, tmp_path).mirror(url(sim, "hubber/toolbox"), tmp_path / "tb.git")
    expected = ref_map(sim.sim.repo_dir("hubber", "toolbox"))
    assert mirror.refs == expected == ref_map(mirror.path)
    assert not mirror.empty
    assert "refs/notes/commits" in mirror.refs
    assert any(r.startswith("refs/pull/") and r.endswith("/head") for r in mirror.refs)
    assert any(r.startswith("refs/tags/") for r in mirror.refs)


def test_private_mirror_with_token(sim, tmp_path):
    assert sim.sim.world.repos["hubber/dotfiles"].private
    mirror = make_git(sim, tmp_path).mirror(url(sim, "hubber/dotfiles"), tmp_path / "df.git")
    assert mirror.refs == ref_map(sim.sim.repo_dir("hubber", "dotfiles"))


def test_private_mirror_without_token_fails_fast(sim, tmp_path):
    git = make_git(sim, tmp_path, token=None)
    started = time.monotonic()
    with pytest.raises(GitAuthError) as caught:
        git.mirror(url(sim, "hubber/dotfiles"), tmp_path / "df.git")
    assert time.monotonic() - started < 10  # no prompt, no retries
    message = str(caught.value)
    assert isinstance(caught.value, AuthError) and "authentication" in message
    assert url(sim, "hubber/dotfiles") in message and "GITHUB_TOKEN" in message
    assert not (tmp_path / "df.git").exists()


def test_wrong_token_is_named_not_shown(sim, tmp_path):
    git = make_git(sim, tmp_path, token=OTHER_TOKEN)
    with pytest.raises(GitAuthError) as caught:
        git.mirror(url(sim, "hubber/dotfiles"), tmp_path / "df.git")
    message = str(caught.value)
    assert message.startswith("authentication failed for ") and "`repo` scope" in message
    assert_clean(message, OTHER_TOKEN)


def test_missing_repository(sim, tmp_path):
    with pytest.raises(RepoNotFound, match="was not found"):
        make_git(sim, tmp_path).mirror(url(sim, "hubber/no-such-repo"), tmp_path / "x.git")


def test_empty_repository(sim, tmp_path):
    git = make_git(sim, tmp_path)
    mirror = git.mirror(url(sim, "hubber/scratch"), tmp_path / "scratch.git")
    assert mirror.empty and mirror.refs == {}
    out = tmp_path / "scratch.bundle"
    assert git.bundle(mirror, out) is False
    assert not out.exists()
    assert git.lfs_fetch(mirror) == []


def test_gist_mirror(sim, tmp_path):
    gist_id = next(iter(sim.sim.world.gists))
    mirror = make_git(sim, tmp_path).mirror(f"{sim.root}/gist/{gist_id}.git",
                                            tmp_path / "gist.git")
    assert mirror.refs == ref_map(sim.sim.gist_dir(gist_id)) and not mirror.empty


def test_callers_git_config_is_ignored(sim, tmp_path, monkeypatch):
    """A user's config rewriting URLs or adding helpers never reaches Git's children."""
    home = tmp_path / "user-home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        f'[url "https://127.0.0.1:9/"]\n\tinsteadOf = {sim.root}/\n'
        "[credential]\n\thelper = !echo password=leaked\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "http.proxy")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "http://127.0.0.1:9")
    mirror = make_git(sim, tmp_path).mirror(url(sim, "hubber/toolbox"), tmp_path / "tb.git")
    assert not mirror.empty


# ---------------------------------------------------------------------------------------------
# bundles and wikis


def test_bundle_round_trip(sim, tmp_path, git_env):
    git = make_git(sim, tmp_path)
    mirror = git.mirror(url(sim, "hubber/toolbox"), tmp_path / "tb.git")
    out = tmp_path / "git.bundle"
    assert git.bundle(mirror, out) is True
    restored = tmp_path / "restored.git"
    subprocess.run(["git", "clone", "--quiet", "--mirror", str(out), str(restored)],
                   env=git_env, check=True, capture_output=True, timeout=60)
    assert ref_map(restored) == ref_map(sim.sim.repo_dir("hubber", "toolbox"))


def test_bundle_streams_without_a_file_and_checks_itself(sim, tmp_path, git_env):
    git = make_git(sim, tmp_path)
    mirror = git.mirror(url(sim, "hubber/toolbox"), tmp_path / "tb.git")
    out = tmp_path / "streamed.bundle"
    reads: list[int] = []

    def consume(source) -> None:
        with open(out, "wb") as f:
            while chunk := source.read(1 << 16):
                reads.append(len(chunk))
                f.write(chunk)

    before = {p.name for p in tmp_path.rglob("*")}
    assert stream_bundle(git, mirror, consume) is True
    assert len(reads) > 0
    # git wrote nothing beside the stream (no bundle file in the mirror or work dir)
    assert {p.name for p in tmp_path.rglob("*")} - before == {"streamed.bundle"}
    restored = tmp_path / "restored.git"
    subprocess.run(["git", "clone", "--quiet", "--mirror", str(out), str(restored)],
                   env=git_env, check=True, capture_output=True, timeout=60)
    assert ref_map(restored) == ref_map(sim.sim.repo_dir("hubber", "toolbox"))

    empty = git.mirror(url(sim, "hubber/scratch"), tmp_path / "scratch.git")
    assert stream_bundle(git, empty, lambda source: pytest.fail("read an empty repo")) is False

    # a consumer that stops early is an error, not a short bundle
    with pytest.raises(GitError, match="not read to its end"):
        stream_bundle(git, mirror, lambda source: source.read(10))


def test_bundle_stream_fails_its_last_read_when_git_fails(sim, tmp_path):
    """A broken mirror: the error surfaces from the stream's final read, so the archive
    entry being written is dropped rather than kept short."""
    git = make_git(sim, tmp_path)
    mirror = git.mirror(url(sim, "hubber/dotfiles"), tmp_path / "df.git")
    for pack in (mirror.path / "objects" / "pack").glob("*.pack"):
        pack.write_bytes(pack.read_bytes()[:200])  # truncated: git cannot read its objects
    got = bytearray()

    def consume(source) -> None:
        while chunk := source.read(1 << 16):
            got.extend(chunk)

    with pytest.raises(GitError, match="not sound"):
        stream_bundle(git, mirror, consume)


def test_wiki_probe_and_bundle(sim, tmp_path):
    git = make_git(sim, tmp_path)
    repos = sim.sim.world.repos
    assert repos["hubber/toolbox"].wiki_exists
    assert repos["hubber/dotfiles"].has_wiki and not repos["hubber/dotfiles"].wiki_exists
    assert git.exists(url(sim, "hubber/toolbox.wiki")) is True
    assert git.exists(url(sim, "hubber/dotfiles.wiki")) is False
    assert make_git(sim, tmp_path, token=None).exists(url(sim, "hubber/dotfiles.wiki")) is False
    wiki = git.mirror(url(sim, "hubber/toolbox.wiki"), tmp_path / "wiki.git")
    assert wiki.refs == ref_map(sim.sim.repo_dir("hubber", "toolbox", wiki=True))
    assert git.bundle(wiki, tmp_path / "wiki.bundle")


def test_probe_with_refused_token_raises(sim, tmp_path):
    with pytest.raises(GitAuthError):
        make_git(sim, tmp_path, token=OTHER_TOKEN).exists(url(sim, "hubber/toolbox.wiki"))


# ---------------------------------------------------------------------------------------------
# LFS


def test_lfs_fetch_gets_every_object(sim, tmp_path):
    git = make_git(sim, tmp_path)
    mirror = git.mirror(url(sim, "hubber/media-assets"), tmp_path / "ma.git")
    assert git.uses_lfs(mirror)
    objects = git.lfs_fetch(mirror)
    assert sorted(o.oid for o in objects) == sorted(
        sim.sim.world.repos["hubber/media-assets"].lfs_objects)
    for obj in objects:
        data = obj.path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == obj.oid and len(data) == obj.size


def test_no_lfs_costs_no_fetch(sim, tmp_path):
    git = make_git(sim, tmp_path)
    mirror = git.mirror(url(sim, "hubber/toolbox"), tmp_path / "tb.git")
    assert not git.uses_lfs(mirror)
    assert git.lfs_fetch(mirror) == [] and not (mirror.path / "lfs").exists()


@pytest.fixture
def fresh(fresh_sim, monkeypatch):
    """A private simulator (the test changes its world), trusted by Git's children."""
    for key, value in fresh_sim.client_env().items():
        monkeypatch.setenv(key, value)
    return fresh_sim


def test_lfs_batch_requests_carry_the_token(fresh, tmp_path):
    """With the repository private, the LFS batch API answers only an authenticated client."""
    repo = fresh.sim.world.repos["hubber/media-assets"]
    repo.private, repo.visibility = True, "private"
    git = make_git(fresh, tmp_path)
    mirror = git.mirror(url(fresh, "hubber/media-assets"), tmp_path / "ma.git")
    anonymous = make_git(fresh, tmp_path / "anon", token=None)
    with pytest.raises(GitAuthError):
        anonymous.lfs_fetch(mirror)
    assert len(git.lfs_fetch(mirror)) == len(repo.lfs_objects)


def test_lfs_object_missing_on_the_server(fresh, tmp_path):
    repo = fresh.sim.world.repos["hubber/media-assets"]
    lost, *kept = sorted(repo.lfs_objects)
    (fresh.sim.lfs_store(repo) / lost[:2] / lost[2:4] / lost).unlink()
    git = make_git(fresh, tmp_path)
    mirror = git.mirror(url(fresh, "hubber/media-assets"), tmp_path / "ma.git")
    missing: list[str] = []
    assert [o.oid for o in git.lfs_fetch(mirror, missing=missing)] == kept
    assert missing == [lost]


def test_lfs_detection_reads_root_gitattributes_of_every_ref(sim, tmp_path):
    """A ref whose .gitattributes is a directory does not confuse the batch reader."""
    repo = tmp_path / "local.git"
    init_bare(repo)
    history = History()
    who = Person("A", "a@example.com")
    odd = history.commit("refs/heads/odd", who, 1, "tree named .gitattributes",
                         {".gitattributes/x": history.blob(b"filter=lfs")})
    plain = history.commit("refs/heads/main", who, 2, "plain",
                           {".gitattributes": history.blob(b"*.txt text\n")})
    lfs = history.commit("refs/heads/lfs", who, 3, "lfs",
                         {".gitattributes": history.blob(b"*.bin filter=lfs -text\n")})
    marks = history.run(repo)
    git = make_git(sim, tmp_path)
    refs = {"refs/heads/odd": marks[odd], "refs/heads/main": marks[plain]}
    assert not git.uses_lfs(Mirror(repo, refs, False))
    assert git.uses_lfs(Mirror(repo, {**refs, "refs/heads/lfs": marks[lfs]}, False))


# ---------------------------------------------------------------------------------------------
# token hygiene


def test_token_never_in_argv_files_or_bundles(sim, tmp_path, monkeypatch):
    """Wrappers first on PATH record the argv of every git and git-lfs process started."""
    bindir, log = tmp_path / "bin", tmp_path / "argv.log"
    bindir.mkdir()
    for name in ("git", "git-lfs"):
        real = shutil.which(name)
        assert real
        wrapper = bindir / name
        wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "{name} $*" >> "{log}"\n'
                           f'exec "{real}" "$@"\n')
        wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    git = make_git(sim, tmp_path)
    outputs = []
    for name in ("hubber/dotfiles", "hubber/media-assets", "hubber/toolbox.wiki"):
        mirror = git.mirror(url(sim, name), tmp_path / f"{name.replace('/', '_')}.git")
        outputs.append(mirror.path)
        bundle = tmp_path / f"{name.replace('/', '_')}.bundle"
        assert git.bundle(mirror, bundle)
        outputs.append(bundle)
        git.lfs_fetch(mirror)
    assert git.exists(url(sim, "hubber/old-site.wiki"))
    argv = log.read_text()
    assert "git clone --mirror" in argv and "git-lfs fetch --all" in argv
    assert "git ls-remote" in argv and "git bundle create" in argv
    assert_clean(argv, sim.token)
    assert (tmp_path / "hubber_media-assets.git/lfs/objects").is_dir()
    assert files_containing([*outputs, tmp_path / "work"], sim.token) == []


def test_extraheader_only_matches_the_server(sim, tmp_path):
    """git (and git-lfs, which matches the same way) send the header to the base URL only."""
    env = make_git(sim, tmp_path).env(lfs=True)
    port = urlsplit(sim.root).port

    def header_for(target: str) -> str:
        return subprocess.run(["git", "config", "--get-urlmatch", "http.extraheader", target],
                              env=env, capture_output=True, text=True, timeout=30).stdout
    assert header_for(f"{sim.root}/hubber/x.git/info/lfs/objects/batch").startswith(
        "AUTHORIZATION: basic ")
    for elsewhere in ("https://lfs-storage.example.com/o/x", f"https://127.0.0.1:{port + 1}/x",
                      f"http://127.0.0.1:{port}/x", "https://127.0.0.1.example.com/x"):
        assert header_for(elsewhere) == ""
    assert "filter.lfs.process" in env.values()
    assert not [k for k, v in env.items() if sim.token in k or sim.token in v]


def test_no_token_means_no_header(sim, tmp_path):
    env = make_git(sim, tmp_path, token=None).env()
    assert not any("extraheader" in v for v in env.values())
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_CONFIG_NOSYSTEM"] == "1"


# ---------------------------------------------------------------------------------------------
# transient failures, retries and timeouts


class FlakyProxy(ThreadingHTTPServer):
    """Plain HTTP in front of the simulator: the first `failures` requests get a 502."""

    daemon_threads = True

    def __init__(self, upstream: str, ca: Path, failures: int):
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.context = ssl.create_default_context(cafile=str(ca))
        self.failures = failures
        self.answered_502 = 0
        self.lock = threading.Lock()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FlakyProxy

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass

    def body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(parts)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        body = self.body()
        with self.server.lock:
            fail = self.server.answered_502 < self.server.failures
            self.server.answered_502 += fail
        if fail:
            self.answer(502, [("Content-Type", "text/plain")], b"Bad gateway\n")
            return
        host, port = self.server.upstream
        conn = http.client.HTTPSConnection(host, port, context=self.server.context, timeout=30)
        skip = {"host", "content-length", "transfer-encoding", "connection"}
        conn.request(self.command, self.path, body=body or None,
                     headers={k: v for k, v in self.headers.items() if k.lower() not in skip})
        reply = conn.getresponse()
        data = reply.read()
        conn.close()
        self.answer(reply.status, [(k, v) for k, v in reply.getheaders()
                                   if k.lower() not in skip], data)

    do_POST = do_GET

    def answer(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def flaky(sim):
    servers = []

    def start(failures: int) -> FlakyProxy:
        proxy = FlakyProxy(sim.root, sim.ca, failures)
        threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(proxy)
        return proxy

    yield start
    for proxy in servers:
        proxy.shutdown()
        proxy.server_close()


def test_transient_502_is_retried(sim, tmp_path, flaky):
    proxy = flaky(failures=2)
    base = f"http://127.0.0.1:{proxy.server_address[1]}"
    git = Git(base, sim.token, tmp_path / "work", 60, retries=3, backoff=0.01)
    mirror = git.mirror(f"{base}/hubber/toolbox.git", tmp_path / "tb.git")
    assert proxy.answered_502 >= 2
    assert mirror.refs == ref_map(sim.sim.repo_dir("hubber", "toolbox"))


def test_persistent_502_gives_up(sim, tmp_path, flaky):
    proxy = flaky(failures=10**6)
    base = f"http://127.0.0.1:{proxy.server_address[1]}"
    git = Git(base, sim.token, tmp_path / "work", 60, retries=2, backoff=0.01)
    with pytest.raises(GitUnavailable) as caught:
        git.mirror(f"{base}/hubber/toolbox.git", tmp_path / "tb.git")
    assert isinstance(caught.value, GitHubUnavailable)
    assert "after 3 attempts" in str(caught.value) and "502" in str(caught.value)
    assert proxy.answered_502 == 3
    assert not (tmp_path / "tb.git").exists()


def test_silent_server_hits_the_timeout(tmp_path):
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        git = Git(base, "ghp_x", tmp_path / "work", timeout=1.5, retries=0)
        started = time.monotonic()
        with pytest.raises(GitError, match="did not finish within"):
            git.mirror(f"{base}/o/r.git", tmp_path / "r.git")
        assert time.monotonic() - started < 10


@pytest.mark.parametrize(("stderr", "kind"), [
    ("fatal: unable to access 'https://github.com/o/r.git/': The requested URL returned "
     "error: 502", "transient"),
    ("error: RPC failed; HTTP 500 curl 22 The requested URL returned error: 500", "transient"),
    ("error: RPC failed; curl 56 GnuTLS recv error (-9): A TLS packet with unexpected length "
     "was received.\nfatal: early EOF\nfatal: index-pack failed", "transient"),
    ("fatal: unable to access 'https://github.com/o/r.git/': Recv failure: Connection reset "
     "by peer", "transient"),
    ("fatal: the remote end hung up unexpectedly", "transient"),
    ("fatal: unable to access 'https://github.com/o/r.git/': Could not resolve host: "
     "github.com", "transient"),
    ("remote: Repository not found.\nfatal: repository 'https://github.com/o/r.git/' not found",
     "not_found"),
    ("fatal: could not read Username for 'https://github.com': terminal prompts disabled",
     "auth"),
    ("remote: Invalid username or token.\nfatal: Authentication failed for "
     "'https://github.com/o/r.git/'", "auth"),
    ("fatal: unable to access 'https://github.com/o/r.git/': The requested URL returned "
     "error: 403", "auth"),
    ("batch response: Authentication required: Authorization error: https://github.com/o/r.git"
     "/info/lfs/objects/batch", "auth"),
    ("fatal: destination path 'x' already exists and is not an empty directory.", "other"),
])
def test_classify_failure(stderr, kind):
    assert classify_failure(stderr) == kind


def test_bad_urls_are_refused(sim, tmp_path):
    git = make_git(sim, tmp_path)
    # a URL the API names: skipped (RemoteElsewhere), not fetched
    with pytest.raises(RemoteElsewhere, match="without credentials") as caught:
        git.mirror(f"https://x-access-token:{sim.token}@127.0.0.1/o/r.git", tmp_path / "r.git")
    assert_clean(str(caught.value), sim.token)
    with pytest.raises(ConfigError, match="without credentials"):
        Git("ssh://github.com", None, tmp_path / "w", 10)


def test_a_clone_url_with_a_malformed_port_is_skipped_not_a_crash(sim, tmp_path):
    git = make_git(sim, tmp_path)
    for bad in ("https://github.com:99999/a/b.git", "https://127.0.0.1:port/a/b.git"):
        with pytest.raises(RemoteElsewhere, match="outside the git origin"):
            git.mirror(bad, tmp_path / "r.git")


@pytest.mark.parametrize("base", ["https://github.com", "https://GitHub.com",
                                  "https://github.com:443", "https://github.com/"])
def test_the_gist_origin_follows_github_however_it_is_written(tmp_path, base):
    git = Git(base, None, tmp_path / "w", 10)
    try:
        assert "https://gist.github.com" in git.fetch_urls
        assert git._check_remote("https://gist.github.com/abc.git")
    finally:
        git.close()
