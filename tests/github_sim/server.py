"""The simulator's HTTP(S) server: GitHub's REST and GraphQL APIs, git and LFS, /_sim/*.

One `Simulator` holds the world (copied from the generation cache into a private runtime
directory, so pushes and mutations never touch the cache), the rate-limit pools, the fault
plan and the statistics. `Handler` turns each HTTP request into the answer GitHub gives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from . import attachments, generate, gitserve, rest, rest_app, rest_settings  # noqa: F401
from .accounting import RateLimits, Stats
from .app import NOT_ACCESSIBLE, App, Identity, check_credential_kind, identify
from .faults import Faults
from .graphql_api import GraphQLEndpoint
from .graphql_reads import reads
from .model import Repo, World
from .routing import ApiError, Ctx, Paged, Reply, cut_page, match
from .urls import Urls

SCHEMA = Path(__file__).resolve().parents[2] / "node_modules/@octokit/graphql-schema/schema.json"
GIT_PATH = re.compile(r"^/(?P<owner>[^/_][^/]*)/(?P<name>[^/]+?)(?P<wiki>\.wiki)?\.git"
                      r"(?P<rest>/.*)?$")
GIST_PATH = re.compile(r"^/gist/(?P<id>[0-9a-f]+)\.git(?P<rest>/.*)?$")
API_VERSION = "2022-11-28"


class Simulator:
    def __init__(self, size: str = "tiny", seed: int = 7, tokens: list[str] | None = None,
                 rate_limit: int = 5000, faults: Faults | None = None,
                 workdir: Path | None = None, git_kbps: int = 0, rate_window: int = 3600,
                 app_token_ttl: int | None = None):
        world, cache_dir = generate.load(size, seed)
        self.world: World = world
        self.size, self.seed = size, seed
        self.tokens = tokens or ["ghp_" + hashlib.sha256(f"sim{seed}".encode()).hexdigest()[:36]]
        self.rate = RateLimits(limit=rate_limit, window=rate_window)
        self.scopes: dict[str, frozenset[str]] = {}  # token -> its scopes, when not SCOPES
        self.faults = faults or Faults()
        self.stats = Stats()
        self.git_kbps = git_kbps
        self.secret = os.urandom(16)
        self.lock = threading.RLock()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="ghsim-"))
        for part in ("git", "lfs"):
            src, dst = cache_dir / part, self.workdir / part
            if src.exists() and not dst.exists():
                # Hard links: git never rewrites an object or pack in place, and refs are
                # replaced by rename, so the cache stays untouched by pushes and mutations.
                subprocess.run(["cp", "-al", str(src), str(dst)], check=True)
        self.graphql = GraphQLEndpoint(lambda: self.world, SCHEMA)
        # --app-token-ttl: a GitHub App installed on both owners (app.py)
        self.app = App(world, app_token_ttl, self.workdir) if app_token_ttl else None
        # --split-git-host: git and LFS live on this other origin (and only there)
        self.git_root: str | None = None

    # who is asking --------------------------------------------------------------------

    # A PAT's OAuth scopes: every token has these unless `scopes` (tests) says otherwise.
    SCOPES = frozenset({"gist", "read:org", "read:project", "read:user", "repo"})

    def scopes_of(self, token: str | None, who: Identity) -> frozenset[str] | None:
        """The OAuth scopes of a PAT; None for an app's tokens (permissions instead)."""
        if who.grant is not None or who.app_jwt:
            return None
        return self.scopes.get(token or "", self.SCOPES)

    @property
    def owner_login(self) -> str:
        return self.world.owners["user"]

    def identify(self, token: str | None) -> Identity:
        who = identify(token, self.tokens, self.owner_login, self.app)
        if who.expired:
            self.stats.add("expired_tokens_refused")
        return who

    # paths on disk ----------------------------------------------------------------------

    def repo_dir(self, owner: str, name: str, wiki: bool = False) -> Path:
        return self.workdir / "git" / owner / f"{name}{'.wiki' if wiki else ''}.git"

    def gist_dir(self, gist_id: str) -> Path:
        return self.workdir / "git" / "gist" / f"{gist_id}.git"

    def lfs_store(self, repo: Repo) -> Path:
        return self.workdir / "lfs" / repo.owner / repo.name

    def sign(self, payload: str, ttl: int = 300) -> str:
        expires = int(time.time()) + ttl
        mac = hmac.new(self.secret, f"{payload}|{expires}".encode(), "sha256").hexdigest()[:32]
        return base64.urlsafe_b64encode(f"{payload}|{expires}|{mac}".encode()).decode()

    def unsign(self, token: str) -> str | None:
        try:
            payload, expires, mac = base64.urlsafe_b64decode(token).decode().rsplit("|", 2)
        except (ValueError, UnicodeDecodeError):
            return None
        good = hmac.new(self.secret, f"{payload}|{expires}".encode(), "sha256").hexdigest()[:32]
        if not hmac.compare_digest(mac, good) or int(expires) < time.time():
            return None
        return payload

    def mutate(self) -> dict:
        from .mutate import apply_month

        with self.lock:
            return apply_month(self)

    def close(self) -> None:
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def token_from(headers) -> tuple[str | None, bool]:
    """(token, header_present) from `Authorization: token|Bearer X` or Basic with a token."""
    value = headers.get("Authorization")
    if not value:
        return None, False
    scheme, _, cred = value.strip().partition(" ")
    scheme = scheme.lower()
    if scheme in ("token", "bearer"):
        return cred.strip(), True
    if scheme == "basic":
        try:
            user, _, password = base64.b64decode(cred.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return "", True
        if password in ("", "x-oauth-basic"):
            return user, True
        return password, True
    return "", True


def http_date(stamp: str) -> str:
    dt = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return format_datetime(dt, usegmt=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    leaving: str | None = None  # the rate key of an API request not yet answered (api())
    server_version = "GitHub.com"
    sys_version = ""
    sim: Simulator  # set on the subclass made by make_server

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        if os.environ.get("GHSIM_LOG"):
            super().log_message(format, *args)

    # plumbing ---------------------------------------------------------------------------

    def base_root(self) -> str:
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        return f"{scheme}://{host}"

    def body(self) -> bytes:
        """The request body, read once. Every API answer reads it first, even a fault or
        an error, or its bytes would be taken for the next request on the connection."""
        if self._body is None:
            length = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(length) if length else b""
        return self._body

    def send(self, status: int, payload: bytes, headers: dict[str, str],
             content_type: str = "application/json; charset=utf-8") -> int:
        if content_type.startswith("application/json"):  # bodies name attachment hosts
            payload = attachments.rewrite(payload, self.sim.git_root or self.base_root(),
                                          self.base_root(),
                                          lambda text: attachments.image_jwt(self.sim, text))
        if self.leaving is not None:  # an API request (api()): answered now
            self.sim.stats.leave(self.leaving)
            self.leaving = None
        self.send_response(status)
        if status != 304:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(0 if status == 304 else len(payload)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if status != 304 and self.command != "HEAD":
            if getattr(self, "cut_body", False):  # the `cut` fault: half, then hang up
                self.cut_body = False
                self.wfile.write(payload[:len(payload) // 2])
                self.wfile.flush()
                self.drop()
                return len(payload) // 2
            self.wfile.write(payload)
        return 0 if status == 304 else len(payload)

    def drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self) -> None:
        self.dispatch()

    def do_HEAD(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def do_PUT(self) -> None:
        self.dispatch()

    def do_PATCH(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    def dispatch(self) -> None:
        self._body: bytes | None = None
        self.cut_body = False
        parts = urlsplit(self.path)
        path = parts.path
        role = getattr(self.server, "role", "both")  # "api", "git" (split) or "both"
        if role != "api" and attachments.WEB_PATH.match(path):
            return attachments.serve_web(self, self.sim, path)
        if (role != "git" and attachments.IMAGE_PATH.match(path)) or path.startswith(
                "/_sim/objects/"):
            return attachments.serve_storage(self, self.sim, path)
        if path.startswith("/_sim/") and (role != "git" or path.startswith("/_sim/lfs/")):
            return self.sim_control(path, dict(parse_qsl(parts.query)))
        m = GIST_PATH.match(path) if role != "api" else None
        if m:
            return self.git_gist(m)
        m = GIT_PATH.match(path) if role != "api" else None
        if m and not path.startswith("/api/"):
            return self.git_repo(m)
        if role == "git":  # a git host serves no API (as github.com does not)
            self.body()
            return self.plain(404, "Not Found\n")
        prefix = ""
        if path == "/api/v3" or path.startswith("/api/v3/"):
            prefix, path = "/api/v3", path[len("/api/v3"):] or "/"
        if path in ("/graphql", "/api/graphql") and prefix == "":
            return self.api(path="/graphql", prefix="", query={}, graphql=True)
        self.api(path=path.rstrip("/") or "/", prefix=prefix,
                 query=dict(parse_qsl(parts.query, keep_blank_values=True)))

    # the API ----------------------------------------------------------------------------

    def api(self, path: str, prefix: str, query: dict[str, str], graphql: bool = False) -> None:
        sim = self.sim
        token, sent_auth = token_from(self.headers)
        who = sim.identify(token if sent_auth else None)
        key = who.rate_key or f"anon:{self.client_address[0]}"
        anon = who.rate_key is None
        self.body()
        number, in_flight = sim.stats.begin(key)
        self.leaving = key  # send() takes the request out of flight before it answers
        status, nbytes, endpoint, label = 500, 0, "unknown", None
        try:
            if graphql:
                endpoint, label = "POST /graphql", reads(sim.graphql.schema, self.body())
            else:
                route, params = match(self.command if self.command != "HEAD" else "GET", path)
                endpoint = f"{self.command} {route.template}" if route else f"{self.command} ?"
            if sim.faults.latency_ms:
                time.sleep(sim.faults.latency_ms / 1000)
            fault = sim.faults.draw(number)
            if fault is None and sim.faults.concurrency and in_flight > sim.faults.concurrency:
                fault = "secondary"
            if fault == "drop":
                sim.stats.fault("drop")
                status = 0
                return self.drop()
            if fault == "cut":
                sim.stats.fault("cut")
                self.cut_body = True
            root = self.base_root()
            urls = Urls(root=root, api=root + prefix, web=sim.git_root)
            common = {"X-GitHub-Request-Id": uuid.uuid4().hex[:20].upper(),
                      "X-GitHub-Api-Version-Selected": API_VERSION,
                      "X-GitHub-Media-Type": "github.v3; format=json",
                      "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
                      "Access-Control-Allow-Origin": "*"}
            if who.error:
                status = 401
                nbytes = self.send(401, json.dumps({
                    "message": who.error, "documentation_url": "https://docs.github.com/rest",
                    "status": "401"}).encode(), common)
                return
            resource = "graphql" if graphql else "core"
            if fault in ("500", "502", "503", "504"):
                sim.stats.fault(fault)
                status = int(fault)
                body = {"message": "Server Error"} if fault != "502" else None
                payload = json.dumps(body).encode() if body else (
                    b"<html><body><h1>502 Bad Gateway</h1></body></html>")
                nbytes = self.send(status, payload, common,
                                   "application/json" if body else "text/html")
                return
            pool = sim.rate.peek(key, resource, anon)
            rl = self.rate_headers(pool, resource)
            if fault == "secondary":
                sim.stats.fault("secondary")
                sim.stats.add("rate_limited")
                sim.stats.add("secondary_rate_limited")
                status = 403
                nbytes = self.send(403, json.dumps({
                    "message": "You have exceeded a secondary rate limit. Please wait a few "
                               "minutes before you try again. If you reach out to GitHub Support "
                               "for help, please include the request ID "
                               f"{common['X-GitHub-Request-Id']}.",
                    "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/"
                                         "overview/rate-limits-for-the-rest-api#about-secondary-"
                                         "rate-limits",
                    "status": "403"}).encode(),
                    {**common, **rl, "retry-after": str(sim.faults.retry_after)})
                return
            if graphql:
                status, nbytes = self.answer_graphql(key, who, common, label)
                return
            status, nbytes = self.answer_rest(route, params, key, who, urls, query, common)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            status = 0
            self.close_connection = True
        finally:
            sim.stats.end(key, endpoint, status, nbytes, label, left=self.leaving is None)
            self.leaving = None
            if not graphql:
                sim.stats.add("rest_requests")

    def rate_headers(self, pool, resource: str) -> dict[str, str]:
        return {"x-ratelimit-limit": str(pool.limit), "x-ratelimit-remaining": str(pool.remaining),
                "x-ratelimit-reset": str(pool.reset), "x-ratelimit-used": str(pool.used),
                "x-ratelimit-resource": resource}

    def rate_limited(self, pool, resource: str, common: dict, viewer: str | None,
                     key: str = "") -> int:
        self.sim.stats.add("rate_limited")
        acct = self.sim.world.account(viewer) if viewer else None
        who = f"user ID {acct.id}" if acct else (
            f"installation ID {key.split(':', 1)[1]}" if key.startswith("installation:")
            else self.client_address[0])
        return self.send(403, json.dumps({
            "message": f"API rate limit exceeded for {who}. If you reach out to GitHub Support "
                       "for help, please include the request ID "
                       f"{common['X-GitHub-Request-Id']} and timestamp "
                       f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-"
                                 "rest-api", "status": "403"}).encode(),
            {**common, **self.rate_headers(pool, resource)})

    def answer_rest(self, route, params, key, who: Identity, urls, query, common
                    ) -> tuple[int, int]:
        sim = self.sim
        viewer, anon = who.viewer, who.rate_key is None
        if params is None:
            err = ApiError(404, "Not Found")
            return 404, self.send(404, json.dumps(err.body).encode(), common)
        if route is None:
            err = ApiError(404, "Not Found")
            return 404, self.send(404, json.dumps(err.body).encode(), common)
        free = route.template == "/rate_limit"
        ctx = Ctx(world=sim.world, urls=urls, viewer=viewer, query=query, headers=self.headers,
                  sim=sim, rate_key=key, grant=who.grant, app_jwt=who.app_jwt, body=self.body())
        extra: dict[str, str] = {}
        try:
            check_credential_kind(route.template, who, extra)
            result = route.handler(ctx, **params)
            if isinstance(result, Paged):
                items, link = cut_page(result, urls.api + self.path_only(), query)
                reply = Reply(items)
                if link:
                    extra["Link"] = link
            else:
                reply = result
            status = reply.status
            payload = reply.raw if reply.raw is not None else json.dumps(
                reply.body, separators=(",", ":")).encode()
            extra.update(reply.headers)
        except ApiError as e:
            status, payload, reply = e.status, json.dumps(e.body).encode(), None
            extra.update(e.headers)
        headers = dict(common)
        if status == 200 and reply is not None and reply.raw is None:
            etag = 'W/"' + hashlib.sha256(payload).hexdigest()[:40] + '"'
            headers["ETag"] = etag
            headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
            if reply.last_modified:
                headers["Last-Modified"] = http_date(reply.last_modified)
            if self.not_modified(etag, reply.last_modified):
                pool = sim.rate.peek(key, "core", anon)
                return 304, self.send(304, b"", {**headers, **extra,
                                                 **self.rate_headers(pool, "core")})
        if free:
            pool = sim.rate.peek(key, "core", anon)
        else:
            ok, pool = sim.rate.try_charge(key, "core", anon)
            if not ok:
                return 403, self.rate_limited(pool, "core", common, viewer, key)
            sim.stats.charge(f"{self.command} {route.template}")
        headers.update(self.rate_headers(pool, "core"))
        if viewer and who.grant is None:
            headers["X-OAuth-Scopes"] = ", ".join(sorted(sim.scopes_of(
                token_from(self.headers)[0], who) or ()))
            headers["X-Accepted-OAuth-Scopes"] = "repo"
        headers.update(extra)
        ctype = reply.content_type if reply is not None else "application/json; charset=utf-8"
        return status, self.send(status, payload, headers, ctype)

    def path_only(self) -> str:
        path = urlsplit(self.path).path
        return path[len("/api/v3"):] if path.startswith("/api/v3") else path

    def not_modified(self, etag: str, last_modified: str | None) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm:
            tags = [t.strip() for t in inm.split(",")]
            bare = etag[2:]
            return any(t in (etag, bare, "*") or t.removeprefix("W/") == bare for t in tags)
        ims = self.headers.get("If-Modified-Since")
        if ims and last_modified:
            try:
                since = parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
            changed = datetime.strptime(last_modified, "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=UTC)
            return changed <= since
        return False

    def answer_graphql(self, key: str, who: Identity, common: dict, label: str
                       ) -> tuple[int, int]:
        sim = self.sim
        body = self.body()
        viewer = who.viewer
        if who.app_jwt:
            return 403, self.send(403, json.dumps({
                "message": NOT_ACCESSIBLE, "documentation_url": "https://docs.github.com/graphql",
                "status": "403"}).encode(), common)
        if viewer is None:
            return 401, self.send(401, json.dumps({
                "message": "This endpoint requires you to be authenticated.",
                "documentation_url": "https://docs.github.com/graphql/guides/forming-calls-with-"
                                     "graphql#authenticating-with-graphql"}).encode(), common)
        pool = sim.rate.peek(key, "graphql", False)
        if pool.remaining == 0:
            return 403, self.rate_limited(pool, "graphql", common, viewer, key)
        sim.stats.add("graphql_requests")
        ctx = Ctx(world=sim.world, urls=Urls(self.base_root(), self.base_root() + "/api/v3"),
                  viewer=viewer, query={}, headers=self.headers, grant=who.grant)
        charged = {"called": False, "ok": False}

        def rate_info(cost: int) -> dict:
            ok, p = sim.rate.try_charge(key, "graphql", False, cost)
            charged.update(called=True, ok=ok)
            return {"limit": p.limit, "remaining": p.remaining, "used": p.used,
                    "reset": p.reset, "exceeded": not ok}

        token = token_from(self.headers)[0]
        status, answer, cost = sim.graphql.execute(body, viewer, ctx.can_see, rate_info,
                                                   html_root=sim.git_root or self.base_root(),
                                                   scopes=sim.scopes_of(token, who))
        if not charged["called"] and cost:  # refused before execution: still costs a point
            ok, _ = sim.rate.try_charge(key, "graphql", False, cost)
            charged["ok"] = ok
        if not charged["ok"]:
            cost = 0
        sim.stats.charge_graphql(label, cost)
        pool = sim.rate.peek(key, "graphql", False)
        return status, self.send(status, json.dumps(answer, separators=(",", ":")).encode(),
                                 {**common, **self.rate_headers(pool, "graphql")})

    # git and LFS ------------------------------------------------------------------------

    def git_repo(self, m: re.Match) -> None:
        sim = self.sim
        owner, name, wiki, rest_path = m["owner"], m["name"], bool(m["wiki"]), m["rest"] or "/"
        if self.git_outage():
            return
        token = gitserve.parse_git_auth(self.headers)
        who = sim.identify(token)
        viewer = who.viewer
        if token is not None and viewer is None:
            sim.stats.add("git_requests")
            return gitserve.send_git_auth_challenge(
                self, "Invalid username or token. Password authentication is not supported "
                      "for Git operations.")
        repo = sim.world.repos.get(f"{owner}/{name}")
        ctx = Ctx(sim.world, Urls(self.base_root(), self.base_root()), viewer, {}, self.headers,
                  grant=who.grant)
        visible = repo is not None and ctx.can_see(repo)
        if not visible:
            sim.stats.add("git_requests")
            if viewer is None:
                return gitserve.send_git_auth_challenge(self)
            return self.plain(404, "Repository not found.\n")
        assert repo is not None
        write = viewer is not None and ctx.is_admin(repo) and not repo.archived
        if rest_path.startswith("/info/lfs"):
            sim.stats.add("lfs_requests")
            if repo.private and viewer is None:
                return gitserve.send_git_auth_challenge(self)
            return gitserve.lfs_batch(self, sim.lfs_store(repo), self.base_root(),
                                      repo.full_name, self.body(), write, sim)
        directory = sim.repo_dir(repo.owner, repo.name, wiki)
        sim.stats.add("git_requests")
        if wiki and not directory.exists():
            return self.plain(404, "Repository not found.\n")
        if "git-receive-pack" in rest_path + urlsplit(self.path).query and viewer is None:
            return gitserve.send_git_auth_challenge(self)
        gitserve.serve_git(self, directory, rest_path, write,
                           refusal="This repository was archived so it is read-only."
                           if repo.archived else None)
        sim.stats.add("git_bytes", getattr(self, "gitserve_bytes_sent", 0))

    def git_gist(self, m: re.Match) -> None:
        sim = self.sim
        if self.git_outage():
            return
        gist = sim.world.gists.get(m["id"])
        sim.stats.add("git_requests")
        if gist is None:
            return self.plain(404, "Repository not found.\n")
        viewer = sim.identify(gitserve.parse_git_auth(self.headers)).viewer
        gitserve.serve_git(self, sim.gist_dir(gist.id), m["rest"] or "/",
                           viewer is not None and viewer == gist.owner)
        sim.stats.add("git_bytes", getattr(self, "gitserve_bytes_sent", 0))

    def git_outage(self) -> bool:
        """The `git-outage` fault: 503 to every git request while it lasts (True: answered)."""
        if not self.sim.faults.git_down():
            return False
        self.body()
        self.sim.stats.fault("git-outage")
        self.sim.stats.add("git_requests")
        self.plain(503, "Service Unavailable\n")
        return True

    def plain(self, status: int, text: str) -> None:
        self.send(status, text.encode(), {}, "text/plain; charset=utf-8")

    # /_sim ------------------------------------------------------------------------------

    def sim_control(self, path: str, query: dict[str, str]) -> None:
        sim = self.sim
        if path.startswith("/_sim/lfs/"):
            sim.stats.add("lfs_requests")
            return gitserve.lfs_object(self, sim, path[len("/_sim/lfs/"):])
        if path.startswith("/_sim/downloads/"):
            return rest.serve_download(self, sim, path[len("/_sim/downloads/"):])
        if path == "/_sim/stats" and self.command == "GET":
            out = sim.stats.snapshot()
            out["faults_config"] = sim.faults.describe()
            return self.send(200, json.dumps(out, indent=1).encode(), {})
        if path == "/_sim/reset" and self.command == "POST":
            sim.stats.clear()
            if query.get("rate_limits", "1") != "0":
                sim.rate.reset()
            return self.send(200, b'{"ok":true}', {})
        if path == "/_sim/faults" and self.command == "POST":
            try:
                sim.faults = Faults.parse(self.body().decode() or None,
                                          int(query.get("latency_ms", "0")))
            except ValueError as e:
                return self.send(400, json.dumps({"error": str(e)}).encode(), {})
            return self.send(200, json.dumps(sim.faults.describe()).encode(), {})
        if path == "/_sim/mutate" and self.command == "POST":
            return self.send(200, json.dumps(sim.mutate()).encode(), {})
        if path == "/_sim/counts" and self.command == "GET":
            return self.send(200, json.dumps(sim.world.counts()).encode(), {})
        self.send(404, b'{"error":"unknown simulator control"}', {})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    tls: ssl.SSLContext | None = None
    role = "both"  # with --split-git-host: "api" for the API origin, "git" for git and LFS

    def finish_request(self, request, client_address) -> None:
        # The TLS handshake happens here, in the connection's own thread, so one slow
        # client cannot hold up the accept loop.
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


def make_server(sim: Simulator, port: int = 0, host: str = "127.0.0.1",
                tls: ssl.SSLContext | None = None, role: str = "both") -> Server:
    handler = type("SimHandler", (Handler,), {"sim": sim})
    server = Server((host, port), handler)
    server.tls = tls
    server.role = role
    return server


def make_git_server(sim: Simulator, api: Server, host: str = "127.0.0.1") -> Server:
    """--split-git-host: a second origin (another port, the same TLS) for git and LFS; the
    API server `api` stops serving git, and the API's URLs point at the new origin."""
    git = make_server(sim, 0, host, api.tls, role="git")
    api.role = "api"
    sim.git_root = f"{'https' if api.tls else 'http'}://{host}:{git.server_address[1]}"
    return git
