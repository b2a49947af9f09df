"""Git smart HTTP and the Git LFS API, served the way github.com serves them.

Git: `serve_git` runs the real `git http-backend` (CGI) for `/{owner}/{repo}.git/info/refs`,
`/git-upload-pack` and `/git-receive-pack`, streaming the answer (packs are never held in
memory; request bodies larger than `SPOOL_IN_MEMORY` are spooled to a temporary file).
Protocols v0 and v2, chunked and gzip-encoded request bodies all work. Like GitHub, the dumb
protocol is not served, pushes to `refs/pull/*` are refused ("deny updating a hidden ref"),
objects pushed are fsck-checked, and partial clone filters are allowed.

Auth: `parse_git_auth` pulls a token out of the Authorization header the way GitHub reads it;
`send_git_auth_challenge` answers 401 + `WWW-Authenticate: Basic realm="GitHub"`. Deciding who
may read or write is the caller's business: these functions only parse and serve.

LFS: `lfs_batch` serves `{repo}.git/info/lfs/...` (the batch API and the lock-verify call that
`git lfs push` makes). Objects are stored as `{store}/{oid[0:2]}/{oid[2:4]}/{oid}` and moved
through `{root}/_sim/lfs/{owner}/{repo}/{oid}?token=...`, a URL carrying a short-lived signed
token (like GitHub's media URLs, it needs no GitHub credentials); `lfs_object` serves it.

Bandwidth: when the handler has `sim.git_kbps` (or `kbps=` is given), git and LFS bodies sent
to the client are paced to that many kilobits per second per request. After `serve_git` and
`lfs_object` downloads, `handler.gitserve_bytes_sent` holds the body bytes sent (for stats).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import parse_qsl, quote, urlsplit

BLOCK = 64 * 1024
SPOOL_IN_MEMORY = 1 << 20  # request bodies above this go to a temporary file
DISCARD_LIMIT = 8 << 20  # unwanted bodies above this are not read: the connection is closed
LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
LFS_TTL = 3600  # seconds an LFS action href stays valid (GitHub: expires_in 3600)
OID = re.compile(r"^[0-9a-f]{64}$")
SERVICES = ("git-upload-pack", "git-receive-pack")
DUMB_REFUSAL = ("Please upgrade your git client.\nGitHub.com no longer supports git over "
                "dumb-http: https://github.com/blog/809-git-dumb-http-transport-to-be-turned-"
                "off-in-90-days\n")
# Server-side git configuration, given to http-backend through GIT_CONFIG_COUNT.
GIT_SERVER_CONFIG = (
    ("safe.directory", "*"),
    ("http.uploadpack", "true"),
    ("http.getanyfile", "false"),
    ("uploadpack.allowFilter", "true"),
    ("uploadpack.allowReachableSHA1InWant", "true"),
    ("receive.hideRefs", "refs/pull"),
    ("receive.fsckObjects", "true"),
    ("receive.autogc", "false"),
    ("gc.auto", "0"),
)
_PROTOCOL_HEADER = re.compile(r"^[A-Za-z0-9=:._-]{1,200}$")


class BadRequestBody(Exception):
    """The request body could not be read (malformed chunking, or the client went away)."""


# ---------------------------------------------------------------------------------------------
# request bodies


def iter_request_body(handler: BaseHTTPRequestHandler) -> Iterator[bytes]:
    """The request body in pieces (Content-Length or `Transfer-Encoding: chunked`), undecoded.

    Marks the handler so `send_git_auth_challenge`/`discard_body` know the body is consumed.
    Raises BadRequestBody on malformed chunking or a short body.
    """
    _mark_body_read(handler)
    rfile = handler.rfile
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        while True:
            line = rfile.readline(1026)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequestBody(f"bad chunk size line {line[:40]!r}") from None
            if size < 0:
                raise BadRequestBody("negative chunk size")
            if size == 0:
                while True:  # trailers, up to the blank line
                    line = rfile.readline(65537)
                    if line in (b"\r\n", b"\n", b""):
                        return
            yield from _read_exactly(rfile, size)
            if rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequestBody("chunk not followed by CRLF")
    else:
        try:
            length = int(handler.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadRequestBody("bad Content-Length") from None
        if length < 0:
            raise BadRequestBody("bad Content-Length")
        yield from _read_exactly(rfile, length)


def _mark_body_read(handler: BaseHTTPRequestHandler) -> None:
    # Keyed by this request's header object: one handler serves a whole keep-alive connection.
    handler._gitserve_body_read = handler.headers  # type: ignore[attr-defined]


def _body_was_read(handler: BaseHTTPRequestHandler) -> bool:
    return getattr(handler, "_gitserve_body_read", None) is handler.headers


def _read_exactly(rfile: IO[bytes], n: int) -> Iterator[bytes]:
    while n > 0:
        piece = rfile.read(min(n, BLOCK))
        if not piece:
            raise BadRequestBody("client closed the connection mid-body")
        n -= len(piece)
        yield piece


def _has_body(handler: BaseHTTPRequestHandler) -> bool:
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        return True
    try:
        return int(handler.headers.get("Content-Length") or 0) > 0
    except ValueError:
        return True


def discard_body(handler: BaseHTTPRequestHandler, limit: int = DISCARD_LIMIT) -> None:
    """Read and drop an unread request body so the keep-alive connection stays in step.

    Bodies declared larger than `limit` (or chunked ones that turn out so) are not read: the
    connection is marked to close after the answer instead.
    """
    if _body_was_read(handler) or not _has_body(handler):
        return
    try:
        declared = int(handler.headers.get("Content-Length") or 0)
    except ValueError:
        declared = limit + 1
    if declared > limit:
        _mark_body_read(handler)
        handler.close_connection = True
        return
    seen = 0
    try:
        for piece in iter_request_body(handler):
            seen += len(piece)
            if seen > limit:
                handler.close_connection = True
                return
    except (BadRequestBody, OSError):
        handler.close_connection = True


# ---------------------------------------------------------------------------------------------
# answers


class _Pacer:
    """Writes to the client, at most `kbps` kilobits per second (0: unlimited)."""

    def __init__(self, handler: BaseHTTPRequestHandler, kbps: int | None):
        if kbps is None:
            kbps = getattr(getattr(handler, "sim", None), "git_kbps", 0) or 0
        self.handler = handler
        self.wfile = handler.wfile
        self.rate = kbps * 125  # bytes per second
        self.start = time.monotonic()
        self.sent = 0
        handler.gitserve_bytes_sent = 0  # type: ignore[attr-defined]

    def write(self, data: bytes, payload: int | None = None) -> None:
        """Send `data`, of which `payload` bytes (default all) count as body bytes."""
        counted = len(data) if payload is None else payload
        self.handler.gitserve_bytes_sent += counted  # type: ignore[attr-defined]
        if not self.rate:
            self.wfile.write(data)
            return
        step = max(1024, min(16384, self.rate // 8))
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            self.wfile.write(piece)
            self.sent += len(piece)
            ahead = self.sent / self.rate - (time.monotonic() - self.start)
            if ahead > 0:
                time.sleep(ahead)


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str,
          headers: dict[str, str] | None = None) -> int:
    discard_body(handler)
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    if handler.close_connection:
        handler.send_header("Connection", "close")
    handler.end_headers()
    if handler.command != "HEAD" and body:
        handler.wfile.write(body)
    return status


def _text(handler: BaseHTTPRequestHandler, status: int, text: str,
          headers: dict[str, str] | None = None) -> int:
    return _send(handler, status, text.encode(), "text/plain; charset=utf-8", headers)


def _lfs_json(handler: BaseHTTPRequestHandler, status: int, payload: Any,
              headers: dict[str, str] | None = None) -> int:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return _send(handler, status, body, LFS_MEDIA_TYPE, headers)


def _lfs_error(handler: BaseHTTPRequestHandler, status: int, message: str,
               headers: dict[str, str] | None = None) -> int:
    return _lfs_json(handler, status, {
        "message": message, "documentation_url": "https://docs.github.com/articles/about-git-"
                                                 "large-file-storage"}, headers)


# ---------------------------------------------------------------------------------------------
# auth


def parse_git_auth(headers: Any) -> str | None:
    """The token in an Authorization header, the ways GitHub's git and LFS endpoints accept it.

    `Basic base64(user:token)` (any user, e.g. x-access-token), `Basic base64(token:)` or
    `Basic base64(token:x-oauth-basic)`, `Bearer token`, `token TOKEN`. None when absent or
    unreadable.
    """
    value = (headers.get("Authorization") or "").strip()
    scheme, _, cred = value.partition(" ")
    scheme, cred = scheme.lower(), cred.strip()
    if not cred:
        return None
    if scheme in ("bearer", "token"):
        return cred
    if scheme != "basic":
        return None
    try:
        decoded = base64.b64decode(cred, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    token = user if password in ("", "x-oauth-basic") else password
    return token or None


def send_git_auth_challenge(handler: BaseHTTPRequestHandler, message: str | None = None,
                            *, body_consumed: bool = False) -> int:
    """401 with `WWW-Authenticate: Basic realm="GitHub"` (git then retries with credentials).

    Call it before reading the request body (it reads and drops it), or say body_consumed=True.
    For `/info/lfs` paths the answer is LFS JSON with `LFS-Authenticate` as well. `message`
    (e.g. "Invalid username or token. Password authentication is not supported for Git
    operations.") becomes the body, which git shows as "remote: ...".
    """
    if body_consumed:
        _mark_body_read(handler)
    headers = {"WWW-Authenticate": 'Basic realm="GitHub"'}
    if "/info/lfs" in urlsplit(handler.path).path:
        headers["LFS-Authenticate"] = 'Basic realm="GitHub"'
        return _lfs_error(handler, 401, message or "Authentication required", headers)
    return _text(handler, 401, f"{message}\n" if message else "", headers)


# ---------------------------------------------------------------------------------------------
# git smart HTTP


@lru_cache(maxsize=1)
def _http_backend() -> str:
    override = os.environ.get("GHSIM_GIT_HTTP_BACKEND")
    if override:
        return override
    try:
        exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True,
                                   check=True).stdout.strip()
        candidate = Path(exec_path) / "git-http-backend"
        if candidate.exists():
            return str(candidate)
    except (OSError, subprocess.CalledProcessError):
        pass
    return "/usr/lib/git-core/git-http-backend"


def _repo_label(handler: BaseHTTPRequestHandler) -> str:
    m = re.match(r"^/(.+?)\.git(?:/|$)", urlsplit(handler.path).path)
    return m.group(1) if m else urlsplit(handler.path).path.strip("/")


def _cgi_env(handler: BaseHTTPRequestHandler, repo_dir: Path, path_info: str, query: str,
             write_allowed: bool, remote_user: str | None,
             content_length: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GIT_") or k.startswith("GIT_TRACE")}
    config = [*GIT_SERVER_CONFIG, ("http.receivepack", "true" if write_allowed else "false")]
    # The server's git is configured here alone, not by whoever runs the simulator.
    env["GIT_CONFIG_NOSYSTEM"], env["GIT_CONFIG_GLOBAL"] = "1", os.devnull
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for i, (k, v) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = k, v
    server = getattr(handler, "server", None)
    address = getattr(server, "server_address", ("127.0.0.1", 0))
    env.update({
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_SOFTWARE": "GitHub.com",
        "SERVER_PROTOCOL": handler.request_version,
        "SERVER_NAME": str(address[0]),
        "SERVER_PORT": str(address[1]),
        "REQUEST_METHOD": handler.command,
        "GIT_PROJECT_ROOT": str(repo_dir),
        "PATH_INFO": path_info,
        "PATH_TRANSLATED": f"{repo_dir}{path_info}",
        "QUERY_STRING": query,
        "REMOTE_ADDR": str(handler.client_address[0]),
        "GIT_HTTP_EXPORT_ALL": "1",
    })
    for header, var in (("Content-Type", "CONTENT_TYPE"),
                        ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
                        ("Accept", "HTTP_ACCEPT"),
                        ("User-Agent", "HTTP_USER_AGENT")):
        value = handler.headers.get(header)
        if value:
            env[var] = value
    if content_length is not None:
        env["CONTENT_LENGTH"] = str(content_length)
    protocol = handler.headers.get("Git-Protocol")
    if protocol and _PROTOCOL_HEADER.match(protocol):
        env["GIT_PROTOCOL"] = env["HTTP_GIT_PROTOCOL"] = protocol
    if remote_user:
        env["REMOTE_USER"] = remote_user
    return env


def serve_git(handler: BaseHTTPRequestHandler, repo_dir: Path, path_info: str,
              write_allowed: bool, *, remote_user: str | None = None,
              kbps: int | None = None, refusal: str | None = None) -> int:
    """Answer one git smart-HTTP request for the bare repository `repo_dir`; the status sent.

    `path_info` is what follows `.git` in the URL path ("/info/refs", "/git-upload-pack",
    "/git-receive-pack"); the query string is taken from handler.path. The request body must
    not have been read yet. Pushes (receive-pack, including its ref advertisement) get 403
    "Permission to {owner}/{repo}.git denied[ to {remote_user}]." unless write_allowed
    (`refusal` replaces that text, e.g. GitHub's "This repository was archived so it is
    read-only."). `remote_user` becomes REMOTE_USER. `kbps` caps the answer's bandwidth
    (default: handler.sim.git_kbps if present). Status 0: the client went away (the connection
    is then closed).
    """
    handler.gitserve_bytes_sent = 0  # type: ignore[attr-defined]
    query = urlsplit(handler.path).query
    if path_info == "/info/refs":
        service = dict(parse_qsl(query)).get("service")
        if service not in SERVICES:
            return _text(handler, 403, DUMB_REFUSAL)
    elif path_info in ("/git-upload-pack", "/git-receive-pack"):
        service = path_info[1:]
    else:
        return _text(handler, 404, "Not Found\n")
    if not (repo_dir / "objects").is_dir():
        return _text(handler, 404, "Repository not found.\n")
    if service == "git-receive-pack" and not write_allowed:
        who = f" to {remote_user}" if remote_user else ""
        text = refusal or f"Permission to {_repo_label(handler)}.git denied{who}."
        return _text(handler, 403, text.rstrip("\n") + "\n")

    stdin: Any = subprocess.DEVNULL
    feed: bytes | None = None
    spool: IO[bytes] | None = None
    length: int | None = None
    try:
        if _has_body(handler):
            declared = handler.headers.get("Content-Length")
            chunked = "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower()
            if not chunked and declared and int(declared) <= SPOOL_IN_MEMORY:
                feed = b"".join(iter_request_body(handler))
                stdin, length = subprocess.PIPE, len(feed)
            else:
                spool = tempfile.TemporaryFile(prefix="ghsim-git-body-")
                for piece in iter_request_body(handler):
                    spool.write(piece)
                length = spool.tell()
                spool.seek(0)
                stdin = spool
        else:
            length = 0 if handler.command == "POST" else None
    except (BadRequestBody, ValueError, OSError):
        if spool is not None:
            spool.close()
        handler.close_connection = True
        try:
            return _text(handler, 400, "Bad request body\n")
        except OSError:
            return 0

    env = _cgi_env(handler, repo_dir, path_info, query, write_allowed, remote_user, length)
    try:
        proc = subprocess.Popen([_http_backend()], stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, cwd=str(repo_dir))
    finally:
        if spool is not None:
            spool.close()  # the child has its own descriptor
    threads: list[threading.Thread] = []
    stderr_tail: list[bytes] = []
    if feed is not None:
        threads.append(threading.Thread(target=_feed, args=(proc.stdin, feed), daemon=True))
    threads.append(threading.Thread(target=_drain, args=(proc.stderr, stderr_tail), daemon=True))
    for t in threads:
        t.start()
    try:
        return _relay(handler, proc, kbps)
    finally:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for t in threads:
            t.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
        if proc.returncode and os.environ.get("GHSIM_LOG"):
            err = b"".join(stderr_tail).decode(errors="replace").strip()
            handler.log_message("git http-backend exited %s: %s", proc.returncode, err)


def _feed(pipe: IO[bytes] | None, data: bytes) -> None:
    assert pipe is not None
    try:
        pipe.write(data)
    except (BrokenPipeError, OSError):
        pass
    finally:
        try:
            pipe.close()
        except OSError:
            pass


def _drain(pipe: IO[bytes] | None, tail: list[bytes]) -> None:
    assert pipe is not None
    kept = 0
    for line in iter(lambda: pipe.read1(BLOCK), b""):  # type: ignore[attr-defined]
        tail.append(line)
        kept += len(line)
        while kept > BLOCK and len(tail) > 1:
            kept -= len(tail.pop(0))
    pipe.close()


def _relay(handler: BaseHTTPRequestHandler, proc: subprocess.Popen, kbps: int | None) -> int:
    """Parse the CGI answer of `proc`, send it to the client, streaming its body."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    head = b""
    while True:
        cut = min((i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0),
                  default=-1)
        if cut >= 0 or len(head) > BLOCK:
            break
        data = os.read(fd, BLOCK)
        if not data:
            break
        head += data
    if cut < 0:
        proc.kill()
        return _text(handler, 500, "git http-backend failed\n")
    sep = 4 if head[cut:cut + 4] == b"\r\n\r\n" else 2
    rest = head[cut + sep:]
    status, reason = 200, "OK"
    headers: list[tuple[str, str]] = []
    for raw in head[:cut].split(b"\n"):
        line = raw.rstrip(b"\r").decode("latin-1")
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not name:
            continue
        if name.lower() == "status":
            code, _, reason = value.partition(" ")
            status = int(code) if code.isdigit() else 500
        elif name.lower() not in ("transfer-encoding", "connection"):
            headers.append((name, value))
    content_length = next((v for k, v in headers if k.lower() == "content-length"), None)
    chunked = content_length is None and handler.request_version == "HTTP/1.1"
    if content_length is None and not chunked:
        handler.close_connection = True
    try:
        handler.send_response(status, reason or None)
        for k, v in headers:
            handler.send_header(k, v)
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        if handler.command == "HEAD":
            proc.kill()
            return status
        out = _Pacer(handler, kbps)
        data = rest
        while True:
            if data:
                out.write(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data,
                          len(data))
            data = os.read(fd, BLOCK)
            if not data:
                break
        if chunked:
            handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
    except OSError:  # BrokenPipe, ConnectionReset, ssl.SSLError: the client went away
        handler.close_connection = True
        proc.kill()
        return 0
    return status


# ---------------------------------------------------------------------------------------------
# Git LFS


class Signer(Protocol):
    """What signs LFS hrefs (the Simulator has these two methods)."""

    def sign(self, payload: str, ttl: int = 300) -> str: ...

    def unsign(self, token: str) -> str | None: ...


class HmacSigner:
    """An HMAC token `base64(payload|expires|mac)`, the same format as Simulator.sign."""

    def __init__(self, secret: bytes | None = None):
        self.secret = secret or os.urandom(16)

    def sign(self, payload: str, ttl: int = 300) -> str:
        expires = int(time.time()) + ttl
        mac = hmac.new(self.secret, f"{payload}|{expires}".encode(), "sha256").hexdigest()[:32]
        return base64.urlsafe_b64encode(f"{payload}|{expires}|{mac}".encode()).decode()

    def unsign(self, token: str) -> str | None:
        try:
            payload, expires, mac = base64.urlsafe_b64decode(token).decode().rsplit("|", 2)
            good = hmac.new(self.secret, f"{payload}|{expires}".encode(),
                            "sha256").hexdigest()[:32]
            if not hmac.compare_digest(mac, good) or int(expires) < time.time():
                return None
        except (ValueError, UnicodeDecodeError, binascii.Error):
            return None
        return payload


DEFAULT_SIGNER = HmacSigner()


def lfs_object_path(store: Path, oid: str) -> Path:
    return store / oid[0:2] / oid[2:4] / oid


def _lfs_href(root_url: str, full_name: str, oid: str, token: str, suffix: str = "") -> str:
    return f"{root_url}/_sim/lfs/{full_name}/{oid}{suffix}?token={quote(token, safe='')}"


def _action(href: str) -> dict[str, Any]:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=LFS_TTL)
    return {"href": href, "header": {}, "expires_in": LFS_TTL,
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}


def lfs_batch(handler: BaseHTTPRequestHandler, store: Path, root_url: str, full_name: str,
              body: bytes, write_allowed: bool, signer: Signer | None = None) -> int:
    """Serve `{full_name}.git/info/lfs/...` (the route is read from handler.path).

    POST objects/batch (download/upload), POST locks/verify, GET locks. `body` is the request
    body the caller has already read (if it is b"" and the request was chunked, it is read
    here). `store` is the repository's object directory, `root_url` the server's
    scheme://host[:port] for the action hrefs, `signer` signs them (default: DEFAULT_SIGNER;
    `lfs_object` must be given the same one). Without write_allowed, uploads get 401 when no
    credentials were sent and 403 otherwise.
    """
    if not body and "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        try:
            body = b"".join(iter_request_body(handler))
        except BadRequestBody:
            handler.close_connection = True
            return _lfs_error(handler, 400, "Bad request body")
    _mark_body_read(handler)
    path = urlsplit(handler.path).path
    route = path.split("/info/lfs", 1)[1].rstrip("/") if "/info/lfs" in path else ""
    method = handler.command
    if route == "/objects/batch" and method == "POST":
        return _lfs_batch(handler, store, root_url, full_name, body, write_allowed,
                          signer or DEFAULT_SIGNER)
    if route == "/locks/verify" and method == "POST":
        if not write_allowed:
            return _lfs_refuse(handler, "You must have push access to verify locks")
        return _lfs_json(handler, 200, {"ours": [], "theirs": []})
    if route == "/locks" and method in ("GET", "HEAD"):
        return _lfs_json(handler, 200, {"locks": []})
    if route.startswith("/locks") and method == "POST":
        if not write_allowed:
            return _lfs_refuse(handler, "You must have push access to create a lock")
        return _lfs_error(handler, 501, "Locking is not supported by the simulator")
    return _lfs_error(handler, 404, "Not Found")


def _lfs_refuse(handler: BaseHTTPRequestHandler, message: str) -> int:
    if parse_git_auth(handler.headers) is None:
        return send_git_auth_challenge(handler, body_consumed=True)
    return _lfs_error(handler, 403, message)


def _lfs_batch(handler: BaseHTTPRequestHandler, store: Path, root_url: str, full_name: str,
               body: bytes, write_allowed: bool, signer: Signer) -> int:
    try:
        request = json.loads(body or b"null")
    except ValueError:
        return _lfs_error(handler, 422, "Unable to parse the request body as JSON")
    if not isinstance(request, dict) or not isinstance(request.get("objects"), list):
        return _lfs_error(handler, 422, "Invalid request: objects must be a list")
    operation = request.get("operation")
    if operation not in ("download", "upload"):
        return _lfs_error(handler, 422, f"Invalid operation: {operation!r}")
    if request.get("hash_algo", "sha256") != "sha256":
        return _lfs_error(handler, 409, "Unsupported hash algorithm")
    if operation == "upload" and not write_allowed:
        return _lfs_refuse(handler, f"Permission to {full_name}.git denied.")
    root_url = root_url.rstrip("/")
    answers = []
    for obj in request["objects"]:
        oid = obj.get("oid") if isinstance(obj, dict) else None
        size = obj.get("size") if isinstance(obj, dict) else None
        if not isinstance(oid, str) or not OID.match(oid) or type(size) is not int or size < 0:
            answers.append({"oid": oid, "size": size,
                            "error": {"code": 422, "message": "Invalid object"}})
            continue
        answer: dict[str, Any] = {"oid": oid, "size": size}
        path = lfs_object_path(store, oid)
        have = path.is_file()
        if operation == "download":
            if not have:
                answer["error"] = {"code": 404, "message": "Object does not exist"}
            else:
                token = signer.sign(f"lfs|download|{full_name}|{oid}", LFS_TTL)
                answer["authenticated"] = True
                answer["actions"] = {"download": _action(
                    _lfs_href(root_url, full_name, oid, token))}
        elif not (have and path.stat().st_size == size):
            up = signer.sign(f"lfs|upload|{full_name}|{oid}|{size}", LFS_TTL)
            check = signer.sign(f"lfs|verify|{full_name}|{oid}|{size}", LFS_TTL)
            answer["authenticated"] = True
            answer["actions"] = {
                "upload": _action(_lfs_href(root_url, full_name, oid, up)),
                "verify": _action(_lfs_href(root_url, full_name, oid, check, "/verify"))}
        answers.append(answer)
    return _lfs_json(handler, 200, {"transfer": "basic", "objects": answers,
                                    "hash_algo": "sha256"})


def _store_for(sim: Any, full_name: str) -> Path | None:
    finder: Callable[[str], Path | None] | None = getattr(sim, "lfs_store_for", None)
    if callable(finder):
        return finder(full_name)
    repos = getattr(getattr(sim, "world", None), "repos", None)
    if repos is None or not hasattr(sim, "lfs_store"):
        return None
    repo = repos.get(full_name)
    return sim.lfs_store(repo) if repo is not None else None


def lfs_object(handler: BaseHTTPRequestHandler, sim: Any, rest: str, *,
               store: Path | None = None, kbps: int | None = None) -> int:
    """Serve `/_sim/lfs/{rest}`: GET/HEAD `{owner}/{repo}/{oid}` (download, Range supported),
    PUT `{owner}/{repo}/{oid}` (upload: sha256 and size checked, then renamed into place),
    POST `{owner}/{repo}/{oid}/verify`. The `token` query parameter must be one `lfs_batch`
    signed for that operation, repository and oid: no other credentials are looked at.

    `sim` provides `unsign` (the signer given to lfs_batch) and, unless `store` is given,
    the repository's store: `sim.lfs_store_for(full_name)` if it has it, else
    `sim.lfs_store(sim.world.repos[full_name])`. The request body must not have been read.
    """
    handler.gitserve_bytes_sent = 0  # type: ignore[attr-defined]
    m = re.match(r"^(?P<repo>[^/]+/[^/]+)/(?P<oid>[0-9a-f]{64})(?P<verify>/verify)?$", rest)
    if not m:
        return _text(handler, 404, "Not Found\n")
    full_name, oid = m["repo"], m["oid"]
    method = handler.command
    if m["verify"]:
        operation = "verify" if method == "POST" else None
    else:
        operation = {"GET": "download", "HEAD": "download", "PUT": "upload"}.get(method)
    if operation is None:
        return _text(handler, 405, "Method Not Allowed\n")
    token = dict(parse_qsl(urlsplit(handler.path).query)).get("token", "")
    payload = (getattr(sim, "unsign", None) or DEFAULT_SIGNER.unsign)(token) if token else None
    parts = (payload or "").split("|")
    if parts[:4] != ["lfs", operation, full_name, oid]:
        return _text(handler, 403, "Request has expired or its signature does not match\n")
    if store is None:
        store = _store_for(sim, full_name)
    if store is None:
        return _text(handler, 404, "Not Found\n")
    path = lfs_object_path(store, oid)
    if operation == "download":
        return _lfs_download(handler, path, kbps)
    size = int(parts[4])
    if operation == "upload":
        return _lfs_upload(handler, path, oid, size)
    try:
        asked = json.loads(b"".join(iter_request_body(handler)) or b"{}")
    except (BadRequestBody, ValueError):
        handler.close_connection = True
        asked = {}
    if not isinstance(asked, dict) or asked.get("oid", oid) != oid:
        return _lfs_error(handler, 422, "Verification request does not match the object")
    if path.is_file() and path.stat().st_size == size:
        return _lfs_json(handler, 200, {})
    return _lfs_error(handler, 404, "Object does not exist")


def _lfs_download(handler: BaseHTTPRequestHandler, path: Path, kbps: int | None) -> int:
    try:
        f = path.open("rb")
    except (FileNotFoundError, IsADirectoryError):
        return _text(handler, 404, "Not Found\n")
    with f:
        total = os.fstat(f.fileno()).st_size
        start, end = 0, total - 1
        status = 200
        extra: dict[str, str] = {"Accept-Ranges": "bytes"}
        rng = re.match(r"^bytes=(\d*)-(\d*)$", (handler.headers.get("Range") or "").strip())
        if rng and (rng[1] or rng[2]):
            if rng[1]:
                start = int(rng[1])
                end = min(int(rng[2]), total - 1) if rng[2] else total - 1
            else:  # suffix range: the last N bytes
                start = max(0, total - int(rng[2]))
            if start >= total or start > end:
                return _text(handler, 416, "Requested Range Not Satisfiable\n",
                             {"Content-Range": f"bytes */{total}"})
            status = 206
            extra["Content-Range"] = f"bytes {start}-{end}/{total}"
        discard_body(handler)
        length = max(0, end - start + 1)
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/octet-stream")
            handler.send_header("Content-Length", str(length))
            for k, v in extra.items():
                handler.send_header(k, v)
            handler.end_headers()
            if handler.command == "HEAD":
                return status
            f.seek(start)
            out = _Pacer(handler, kbps)
            left = length
            while left > 0:
                data = f.read(min(BLOCK, left))
                if not data:  # the file shrank under us: cut the connection
                    handler.close_connection = True
                    break
                out.write(data)
                left -= len(data)
        except OSError:
            handler.close_connection = True
            return 0
    return status


def _lfs_upload(handler: BaseHTTPRequestHandler, path: Path, oid: str, size: int) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{oid}.", suffix=".part", dir=path.parent)
    digest, seen, ok = hashlib.sha256(), 0, False
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                for piece in iter_request_body(handler):
                    seen += len(piece)
                    if seen > size:
                        handler.close_connection = True
                        break
                    digest.update(piece)
                    f.write(piece)
            except BadRequestBody:
                handler.close_connection = True
                return _lfs_error(handler, 400, "Incomplete upload")
        if seen != size:
            return _lfs_error(handler, 422, f"Size mismatch: expected {size} bytes")
        if digest.hexdigest() != oid:
            return _lfs_error(handler, 422, "Object content does not match its oid")
        os.chmod(tmp, 0o644)
        # A new inode renamed over any old link: files hard-linked from a cache stay untouched.
        os.replace(tmp, path)
        ok = True
    finally:
        if not ok:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    return _send(handler, 200, b"", "text/plain; charset=utf-8")


__all__ = [
    "BadRequestBody", "DEFAULT_SIGNER", "HmacSigner", "LFS_MEDIA_TYPE", "Signer",
    "discard_body", "iter_request_body", "lfs_batch", "lfs_object", "lfs_object_path",
    "parse_git_auth", "send_git_auth_challenge", "serve_git",
]
