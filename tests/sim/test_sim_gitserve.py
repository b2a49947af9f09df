"""The simulator's TLS, git smart HTTP and LFS pieces, against the real git and git-lfs clients.

A throwaway HTTPS server (ThreadingHTTPServer, HTTP/1.1 keep-alive) routes
`/{owner}/{repo}.git/...` to gitserve the way the simulator does; the repositories live in
tmp directories.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from tests.github_sim import gitserve, tls

TOKEN = "ghp_gitserveTEST0123456789abcdef01234567"
REPO_ROOT = Path(__file__).resolve().parents[2]
GITCONFIG = """\
[user]
\tname = Sim Tester
\temail = tester@example.com
[init]
\tdefaultBranch = main
[filter "lfs"]
\tclean = git-lfs clean -- %f
\tsmudge = git-lfs smudge -- %f
\tprocess = git-lfs filter-process
\trequired = true
"""


# ---------------------------------------------------------------------------------------------
# the throwaway server


@dataclass
class SimRepo:
    directory: Path
    private: bool = False
    writable: bool = False
    store: Path | None = None


class GitHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    repos: dict[str, SimRepo]
    signer: gitserve.HmacSigner
    seen: list[dict[str, str]]

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        self.route()

    do_HEAD = do_POST = do_PUT = do_GET

    def route(self) -> None:
        path = urlsplit(self.path).path
        self.seen.append({"method": self.command, "path": self.path,
                          "te": self.headers.get("Transfer-Encoding") or "",
                          "ce": self.headers.get("Content-Encoding") or "",
                          "gp": self.headers.get("Git-Protocol") or ""})
        if path.startswith("/_sim/lfs/"):
            fake_sim = SimpleNamespace(
                unsign=self.signer.unsign,
                lfs_store_for=lambda name: getattr(self.repos.get(name), "store", None))
            gitserve.lfs_object(self, fake_sim, path[len("/_sim/lfs/"):])
            return
        m = re.match(r"^/(?P<full>[^/]+/[^/]+?)\.git(?P<rest>/.*)?$", path)
        repo = self.repos.get(m["full"]) if m else None
        authed = gitserve.parse_git_auth(self.headers) == TOKEN
        if m is None or repo is None or (repo.private and not authed):
            if not authed:
                gitserve.send_git_auth_challenge(self)
                return
            body = b"Repository not found.\n"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        write = authed and repo.writable
        rest = m["rest"] or "/"
        if rest.startswith("/info/lfs"):
            assert repo.store is not None
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            host = self.headers["Host"]
            gitserve.lfs_batch(self, repo.store, f"https://{host}", m["full"], body, write,
                               self.signer)
            return
        if "git-receive-pack" in self.path and not authed:
            gitserve.send_git_auth_challenge(self)
            return
        gitserve.serve_git(self, repo.directory, rest, write)
        self.seen[-1]["bytes"] = str(self.gitserve_bytes_sent)


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    context: ssl.SSLContext

    def finish_request(self, request, client_address) -> None:
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


def start_server(context: ssl.SSLContext, handler: type) -> TLSServer:
    server = TLSServer(("127.0.0.1", 0), handler)
    server.context = context
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return server


# ---------------------------------------------------------------------------------------------
# helpers and fixtures


def git(*args: str, env: dict[str, str], cwd: Path | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)
    if check and proc.returncode:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def refs(repo: Path, env: dict[str, str]) -> list[str]:
    return git("for-each-ref", "--format=%(objectname) %(refname)", env=env,
               cwd=repo).stdout.splitlines()


def basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


def with_auth(env: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {**env, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: {basic(token)}"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> tuple[Path, Path, Path]:
    return tls.ensure_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def base_env(tmp_path_factory, certs) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(GITCONFIG)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GIT_") and "proxy" not in k.lower()}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_SSL_CAINFO": str(certs[0]), "SSL_CERT_FILE": str(certs[0]),
                "no_proxy": "*", "NO_PROXY": "*"})
    return env


@pytest.fixture(scope="module")
def world(tmp_path_factory, base_env, certs):
    """The server and its repositories: o/public (read-only), o/private, o/writable, o/lfs
    (writable, empty), o/lfs-readonly (empty)."""
    env = base_env
    base = tmp_path_factory.mktemp("repos")
    src = base / "src"
    src.mkdir()
    git("init", "-q", env=env, cwd=src)
    (src / "README.md").write_text("hello\n")
    (src / "big.dat").write_bytes(os.urandom(6 << 20))
    git("add", ".", env=env, cwd=src)
    git("commit", "-qm", "first", env=env, cwd=src)
    git("tag", "-a", "v1.0", "-m", "release 1.0", env=env, cwd=src)
    git("checkout", "-qb", "feature", env=env, cwd=src)
    (src / "feature.txt").write_text("feature\n")
    git("add", ".", env=env, cwd=src)
    git("commit", "-qm", "feature work", env=env, cwd=src)
    git("checkout", "-q", "main", env=env, cwd=src)
    (src / "docs").mkdir()
    (src / "docs/guide.md").write_text("# guide\n" * 50)
    git("add", ".", env=env, cwd=src)
    git("commit", "-qm", "docs", env=env, cwd=src)
    git("branch", "dev", "feature", env=env, cwd=src)
    for i in range(40):  # enough wants that git gzips its fetch requests
        git("tag", f"light-{i:02d}", "HEAD~1" if i % 2 else "HEAD", env=env, cwd=src)

    def bare(name: str, source: Path | None = src) -> Path:
        d = base / "git" / "o" / f"{name}.git"
        if source is None:
            git("init", "-q", "--bare", str(d), env=env)
        else:
            git("clone", "-q", "--bare", str(source), str(d), env=env)
            feature = git("rev-parse", "refs/heads/feature", env=env, cwd=d).stdout.strip()
            git("update-ref", "refs/pull/1/head", feature, env=env, cwd=d)
        return d

    repos = {
        "o/public": SimRepo(bare("public")),
        "o/private": SimRepo(bare("private"), private=True),
        "o/writable": SimRepo(bare("writable"), writable=True),
        "o/lfs": SimRepo(bare("lfs", None), writable=True, store=base / "lfs" / "o" / "lfs"),
        "o/lfs-readonly": SimRepo(bare("lfs-readonly", None),
                                  store=base / "lfs" / "o" / "lfs-readonly"),
    }
    seen: list[dict[str, str]] = []
    handler = type("H", (GitHandler,), {"repos": repos, "signer": gitserve.HmacSigner(),
                                        "seen": seen})
    server = start_server(tls.server_context(certs[1], certs[2]), handler)
    root = f"https://127.0.0.1:{server.server_address[1]}"
    yield SimpleNamespace(root=root, repos=repos, seen=seen, src=src, env=env)
    server.shutdown()
    server.server_close()


def client_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


# ---------------------------------------------------------------------------------------------
# tls.py


def test_certs_reused_and_well_formed(certs, tmp_path):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    ca_path, cert_path, key_path = certs
    assert key_path.stat().st_mode & 0o777 == 0o600
    before = [p.read_bytes() for p in certs]
    mtimes = [p.stat().st_mtime_ns for p in certs]
    assert tls.ensure_certs(ca_path.parent) == certs
    assert [p.read_bytes() for p in certs] == before
    assert [p.stat().st_mtime_ns for p in certs] == mtimes
    ca = x509.load_pem_x509_certificate(before[0])
    cert = x509.load_pem_x509_certificate(before[1])
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == tls.CA_NAME
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    # A broken set is replaced by a fresh, consistent one.
    other = tmp_path / "tls"
    tls.ensure_certs(other)
    (other / tls.CERT_FILE).write_bytes(before[1])  # signed by a different CA
    fresh = tls.ensure_certs(other)
    assert fresh[1].read_bytes() != before[1]
    assert tls._valid(*fresh)


def test_certs_concurrent_generation(tmp_path):
    code = ("import sys; from pathlib import Path; from tests.github_sim.tls import ensure_certs;"
            "ca, cert, key = ensure_certs(Path(sys.argv[1])); print(ca.read_text(), end='')")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "tls")],
                              cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    paths = tls.ensure_certs(tmp_path / "tls")
    assert tls._valid(*paths)
    assert set(outputs) == {paths[0].read_text()}  # everybody got the one CA
    assert not [p for p in (tmp_path / "tls").iterdir() if p.name.startswith(".ca.pem")]


def test_tls_clients_trust_only_the_ca(certs, tmp_path):
    ca, cert, key = certs

    class Hello(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, *args) -> None:
            pass

    server = start_server(tls.server_context(cert, key), Hello)
    port = server.server_address[1]
    try:
        for host in ("127.0.0.1", "localhost"):
            with urllib.request.urlopen(f"https://{host}:{port}/",
                                        context=client_context(ca), timeout=10) as r:
                assert r.read() == b"ok\n"
        with pytest.raises(urllib.error.URLError) as e:
            urllib.request.urlopen(f"https://127.0.0.1:{port}/",
                                   context=ssl.create_default_context(), timeout=10)
        assert isinstance(e.value.reason, ssl.SSLCertVerificationError)
        # SSL_CERT_FILE alone makes a default Python context trust the simulator.
        code = ("import urllib.request,sys; "
                "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())")
        env = {**os.environ, "SSL_CERT_FILE": str(ca)}
        out = subprocess.run([sys.executable, "-c", code, f"https://localhost:{port}/"],
                             env=env, capture_output=True, text=True, timeout=30)
        assert out.stdout == "ok\n\n", out.stderr
        if shutil.which("curl"):
            out = subprocess.run(["curl", "-sS", "--cacert", str(ca),
                                  f"https://127.0.0.1:{port}/"], capture_output=True,
                                 text=True, timeout=30)
            assert out.stdout == "ok\n", out.stderr
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------
# auth parsing


@pytest.mark.parametrize("header, token", [
    (None, None),
    ("", None),
    (basic("tok1"), "tok1"),
    ("Basic " + base64.b64encode(b"anyone:tok2").decode(), "tok2"),
    ("Basic " + base64.b64encode(b"tok3:x-oauth-basic").decode(), "tok3"),
    ("Basic " + base64.b64encode(b"tok4:").decode(), "tok4"),
    ("Basic " + base64.b64encode(b"tok5").decode(), "tok5"),
    ("basic " + base64.b64encode(b"u:tok6").decode(), "tok6"),
    ("Bearer tok7", "tok7"),
    ("token tok8", "tok8"),
    ("Basic !!!notbase64", None),
    ("Digest abc", None),
    ("Bearer", None),
])
def test_parse_git_auth(header, token):
    headers = {} if header is None else {"Authorization": header}
    assert gitserve.parse_git_auth(headers) == token


# ---------------------------------------------------------------------------------------------
# git


@pytest.mark.parametrize("version", ["2", "0"])
def test_clone_mirror_gets_every_ref(world, tmp_path, version):
    dst = tmp_path / "mirror.git"
    start = len(world.seen)
    git("-c", f"protocol.version={version}", "clone", "-q", "--mirror",
        f"{world.root}/o/public.git", str(dst), env=world.env)
    expected = refs(world.repos["o/public"].directory, world.env)
    assert refs(dst, world.env) == expected
    assert any(r.endswith(" refs/pull/1/head") for r in expected)
    assert any(r.endswith(" refs/tags/v1.0") for r in expected)
    git("fsck", "--no-progress", env=world.env, cwd=dst)
    mine = world.seen[start:]
    protocols = {r["gp"] for r in mine}
    assert protocols == ({"version=2"} if version == "2" else {""})
    assert any(r["ce"] == "gzip" for r in mine)  # the many-wants request was gzipped
    assert sum(int(r.get("bytes", 0)) for r in mine) > 6 << 20  # the pack was counted


def test_ls_remote(world):
    out = git("ls-remote", f"{world.root}/o/public.git", env=world.env).stdout.splitlines()
    listed = {line.replace("\t", " ") for line in out
              if not line.endswith("^{}") and not line.endswith("\tHEAD")}
    assert listed == set(refs(world.repos["o/public"].directory, world.env))
    head = git("rev-parse", "main", env=world.env, cwd=world.src).stdout.strip()
    assert f"{head}\tHEAD" in out
    assert any(line.endswith("refs/tags/v1.0^{}") for line in out)  # the tag is peeled


def test_private_repo_needs_credentials(world, tmp_path, certs):
    url = f"{world.root}/o/private.git"
    request = urllib.request.Request(f"{url}/info/refs?service=git-upload-pack")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, context=client_context(certs[0]), timeout=10)
    assert e.value.code == 401
    assert e.value.headers["WWW-Authenticate"] == 'Basic realm="GitHub"'
    denied = git("ls-remote", url, env=world.env, check=False)
    assert denied.returncode != 0
    assert not (tmp_path / "nope.git").exists()

    expected = refs(world.repos["o/private"].directory, world.env)
    git("clone", "-q", "--mirror", url, str(tmp_path / "a.git"), env=with_auth(world.env))
    assert refs(tmp_path / "a.git", world.env) == expected
    in_url = url.replace("https://", f"https://x-access-token:{TOKEN}@")
    git("clone", "-q", "--mirror", in_url, str(tmp_path / "b.git"), env=world.env)
    assert refs(tmp_path / "b.git", world.env) == expected
    wrong = git("ls-remote", url, env=with_auth(world.env, "ghp_wrong"), check=False)
    assert wrong.returncode != 0


def test_dumb_http_is_not_served(world, certs):
    conn = http.client.HTTPSConnection(urlsplit(world.root).netloc,
                                       context=client_context(certs[0]), timeout=10)
    try:
        for path, status in (("/o/public.git/info/refs", 403), ("/o/public.git/HEAD", 404),
                             ("/o/public.git/objects/info/packs", 404)):
            conn.request("GET", path)  # one keep-alive connection for all
            response = conn.getresponse()
            body = response.read()
            assert response.status == status, (path, body)
        assert b"dumb-http" in gitserve.DUMB_REFUSAL.encode()
    finally:
        conn.close()


def test_push_refused_without_write_and_allowed_with_it(world, tmp_path):
    env = world.env
    work = tmp_path / "work"
    git("clone", "-q", str(world.src), str(work), env=env)
    (work / "more.dat").write_bytes(os.urandom(2 << 20))  # > http.postBuffer: chunked upload
    git("add", ".", env=env, cwd=work)
    git("commit", "-qm", "more", env=env, cwd=work)

    anonymous = git("push", f"{world.root}/o/public.git", "HEAD:refs/heads/new", env=env,
                    cwd=work, check=False)
    assert anonymous.returncode != 0
    refused = git("push", f"{world.root}/o/public.git", "HEAD:refs/heads/new",
                  env=with_auth(env), cwd=work, check=False)
    assert refused.returncode != 0
    assert "Permission to o/public.git denied" in refused.stderr
    assert "403" in refused.stderr
    assert "refs/heads/new" not in "\n".join(refs(world.repos["o/public"].directory, env))

    start = len(world.seen)
    git("push", f"{world.root}/o/writable.git", "HEAD:refs/heads/new", env=with_auth(env),
        cwd=work)
    head = git("rev-parse", "HEAD", env=env, cwd=work).stdout.strip()
    server_dir = world.repos["o/writable"].directory
    assert git("rev-parse", "refs/heads/new", env=env, cwd=server_dir).stdout.strip() == head
    assert any(r["te"] == "chunked" and r["path"].endswith("/git-receive-pack")
               for r in world.seen[start:])
    hidden = git("push", f"{world.root}/o/writable.git", "HEAD:refs/pull/9/head",
                 env=with_auth(env), cwd=work, check=False)
    assert hidden.returncode != 0
    assert "hidden ref" in hidden.stderr


def test_lfs_round_trip(world, tmp_path):
    env = world.env
    auth = with_auth(env)
    work = tmp_path / "lfs-work"
    work.mkdir()
    git("init", "-q", env=env, cwd=work)
    (work / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
    contents = {"a.bin": os.urandom(300_000), "b.bin": os.urandom(1_500_000)}
    for name, data in contents.items():
        (work / name).write_bytes(data)
    git("add", ".", env=env, cwd=work)
    git("commit", "-qm", "lfs files", env=env, cwd=work)
    contents["a2"] = os.urandom(70_000)  # a second version: only in history
    (work / "a.bin").write_bytes(contents["a2"])
    git("commit", "-qam", "new a", env=env, cwd=work)
    pointer = git("show", "HEAD:a.bin", env=env, cwd=work).stdout
    assert pointer.startswith("version https://git-lfs.github.com/spec/v1")
    oids = {hashlib.sha256(d).hexdigest() for d in contents.values()}

    readonly = f"{world.root}/o/lfs-readonly.git"
    refused = subprocess.run(["git", "lfs", "push", "--all", readonly], cwd=work, env=auth,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert not world.repos["o/lfs-readonly"].store.exists()

    url = f"{world.root}/o/lfs.git"
    out = subprocess.run(["git", "lfs", "push", "--all", url], cwd=work, env=auth,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    store = world.repos["o/lfs"].store
    for oid in oids:
        assert hashlib.sha256(gitserve.lfs_object_path(store, oid).read_bytes()).hexdigest() \
            == oid
    git("push", "-q", url, "--all", env={**auth, "GIT_LFS_SKIP_PUSH": "1"}, cwd=work)

    mirror = tmp_path / "lfs-mirror.git"
    git("clone", "-q", "--mirror", url, str(mirror), env=auth)
    out = subprocess.run(["git", "lfs", "fetch", "--all"], cwd=mirror, env=auth,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    fetched = {p.name: p for p in (mirror / "lfs" / "objects").rglob("*") if p.is_file()}
    assert set(fetched) == oids
    for oid, p in fetched.items():
        assert hashlib.sha256(p.read_bytes()).hexdigest() == oid


def test_lfs_batch_api(world, certs, tmp_path):
    store = world.repos["o/lfs"].store
    data = b"lfs payload " * 1000
    oid = hashlib.sha256(data).hexdigest()
    missing = hashlib.sha256(b"nobody has this").hexdigest()
    conn = http.client.HTTPSConnection(urlsplit(world.root).netloc,
                                       context=client_context(certs[0]), timeout=10)

    def call(method: str, path: str, body: bytes | None = None, auth: bool = True,
             headers: dict[str, str] | None = None):
        h = {"Accept": gitserve.LFS_MEDIA_TYPE, **(headers or {})}
        if auth:
            h["Authorization"] = basic(TOKEN)
        if body is not None:
            h["Content-Type"] = gitserve.LFS_MEDIA_TYPE
        conn.request(method, path, body=body, headers=h)
        response = conn.getresponse()
        return response, response.read()

    def batch(operation: str, objects: list[dict], repo: str = "o/lfs", auth: bool = True):
        body = json.dumps({"operation": operation, "transfers": ["basic"],
                           "objects": objects}).encode()
        return call("POST", f"/{repo}.git/info/lfs/objects/batch", body, auth)

    try:
        r, body = batch("download", [{"oid": missing, "size": 3}, {"oid": "xyz", "size": 1}])
        assert r.status == 200
        assert r.headers["Content-Type"] == gitserve.LFS_MEDIA_TYPE
        answer = json.loads(body)
        assert answer["transfer"] == "basic"
        assert answer["objects"][0]["error"] == {"code": 404, "message":
                                                 "Object does not exist"}
        assert answer["objects"][1]["error"]["code"] == 422

        r, body = batch("upload", [{"oid": oid, "size": len(data)}], auth=False)
        assert r.status == 401 and r.headers["LFS-Authenticate"] == 'Basic realm="GitHub"'
        r, body = batch("upload", [{"oid": oid, "size": len(data)}], repo="o/lfs-readonly")
        assert r.status == 403, body

        r, body = batch("upload", [{"oid": oid, "size": len(data)}])
        actions = json.loads(body)["objects"][0]["actions"]
        assert actions["upload"]["expires_in"] > 0
        upload = urlsplit(actions["upload"]["href"])
        upload_path = f"{upload.path}?{upload.query}"
        r, body = call("PUT", upload_path, b"x" + data[1:], auth=False,
                       headers={"Content-Type": "application/octet-stream"})
        assert r.status == 422 and not gitserve.lfs_object_path(store, oid).exists()
        r, body = call("PUT", upload_path.replace(oid, missing), data, auth=False)
        assert r.status == 403  # the token is for another object
        r, body = call("PUT", upload_path, data, auth=False)
        assert r.status == 200, body
        verify = urlsplit(actions["verify"]["href"])
        r, body = call("POST", f"{verify.path}?{verify.query}",
                       json.dumps({"oid": oid, "size": len(data)}).encode(), auth=False)
        assert r.status == 200, body
        r, body = batch("upload", [{"oid": oid, "size": len(data)}])
        assert "actions" not in json.loads(body)["objects"][0]  # already there

        r, body = batch("download", [{"oid": oid, "size": len(data)}], auth=False)
        obj = json.loads(body)["objects"][0]
        assert obj["authenticated"] is True
        href = urlsplit(obj["actions"]["download"]["href"])
        assert href.path == f"/_sim/lfs/o/lfs/{oid}"
        r, body = call("GET", f"{href.path}?{href.query}", auth=False)
        assert r.status == 200 and body == data
        r, body = call("GET", f"{href.path}?{href.query}", auth=False,
                       headers={"Range": "bytes=100-"})
        assert r.status == 206 and body == data[100:]
        assert r.headers["Content-Range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
        r, body = call("GET", f"{href.path}?token=forged", auth=False)
        assert r.status == 403
        r, body = call("GET", "/o/lfs.git/info/lfs/locks")
        assert r.status == 200 and json.loads(body) == {"locks": []}
    finally:
        conn.close()


def test_lfs_object_finds_the_store_through_a_simulator(tmp_path):
    store = tmp_path / "store"
    sim = SimpleNamespace(world=SimpleNamespace(repos={"o/r": "repo"}),
                          lfs_store=lambda repo: store if repo == "repo" else None)
    assert gitserve._store_for(sim, "o/r") == store
    assert gitserve._store_for(sim, "o/missing") is None


def test_pacer_caps_bandwidth():
    handler = SimpleNamespace(wfile=io.BytesIO(), sim=SimpleNamespace(git_kbps=1024))
    pacer = gitserve._Pacer(handler, None)  # type: ignore[arg-type]
    started = time.monotonic()
    pacer.write(b"x" * 32_000)  # 1024 kbit/s = 128 kB/s: 0.25 s
    elapsed = time.monotonic() - started
    assert handler.wfile.getvalue() == b"x" * 32_000
    assert 0.2 <= elapsed < 1.5
