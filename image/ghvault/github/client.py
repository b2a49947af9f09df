"""The GitHub client: PyGithub's requester underneath, our accounting and caching on top.

PyGithub gives us authentication (PAT, GitHub App installation tokens), GitHub Enterprise
base URLs, connection pooling and its `GithubRetry` (5xx and dropped connections with
exponential backoff, `retry-after` on secondary limits, waiting for the reset on primary
limits, a bounded number of tries). We go below its object layer for three reasons it
cannot serve: conditional requests (`If-None-Match` with a stored ETag, answered by a free
304), request accounting, and never triggering its lazy per-object completion. So lists
are walked here by following `Link: rel="next"` with `requester.requestJson`, and the list
payloads are kept as they came.

Where the token goes: only to the API origin (scheme, host and port of --api-url), over
https unless the API URL itself is http. PyGithub's requester always talks to its own host;
the one URL we take from an answer and request ourselves, a release asset's `url`, is
checked first: one on any other origin is refused (`UntrustedLocation`, a skipped item with
its reason) and never requested. The storage redirect GitHub answers for a download is
followed without the header.

Retries: 5xx answers and dropped connections are retried by GithubRetry (and urllib3 for
downloads); an answer whose body is cut short (a chunked or Content-Length body that ends
early) is retried here, since urllib3 has handed the response over by then. Every message
after the tries are spent says how many were made.

Rate limit: when the core pool falls to `RATE_RESERVE` requests left (50, or a tenth of
the hourly limit when that is smaller) the client stops and waits for the reset rather
than spending the rest; so it does when GitHub answers a primary rate limit (the pool was
spent elsewhere). Waiting logs one line when it starts and one every minute: the time of
the reset, the requests left and the requests held.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
import urllib3
from github import Auth, Github, GithubException, GithubRetry
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import AuthError, GitHubUnavailable, NotFound, OptionalDenied
from .cache import HttpCache

log = logging.getLogger("ghvault.github")
LINK_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
USER_AGENT = "ghvault (+https://github.com/ghvault)"
# What a request that never got an answer raises once the retries are spent: requests'
# errors (OSError subclasses, as are socket and TLS errors) and the urllib3 and http.client
# errors that escape them. Anything else is a bug and must surface as one (exit 1).
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    OSError, urllib3.exceptions.HTTPError, http.client.HTTPException)
# What an answer whose body ended early raises (the status line and headers came, the
# body was cut): retried here, a GET being idempotent.
CUT_BODY: tuple[type[BaseException], ...] = (
    requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError,
    urllib3.exceptions.ProtocolError, http.client.IncompleteRead)
# Requests of the core pool kept for others sharing the token: at this many left (or a
# tenth of the hourly limit when that is smaller) the client waits for the reset.
RATE_RESERVE = 50
RATE_LOG_EVERY = 60.0  # seconds between the log lines of one wait for the reset


class UntrustedLocation(NotFound):
    """An API answer names a URL outside the API origin (or plain http where the API is
    https): the token is not sent there, so the item is skipped like a missing one."""


@dataclass
class Accounting:
    requests: int = 0  # every API request sent, 304s included
    not_modified: int = 0
    graphql_requests: int = 0
    graphql_cost: int = 0
    rate_limit: int | None = None
    rate_remaining: int | None = None
    rate_reset: int | None = None
    by_kind: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, kind: str, headers: dict[str, Any], status: int) -> None:
        with self.lock:
            self.requests += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            if status == 304:
                self.not_modified += 1
            if headers.get("x-ratelimit-resource", "core") == "core":
                for attr, header in (("rate_limit", "x-ratelimit-limit"),
                                     ("rate_remaining", "x-ratelimit-remaining"),
                                     ("rate_reset", "x-ratelimit-reset")):
                    value = headers.get(header)
                    if value is not None and str(value).isdigit():
                        setattr(self, attr, int(value))

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": self.requests, "not_modified": self.not_modified,
                    "rate_limited_requests": self.requests - self.not_modified,
                    "graphql_requests": self.graphql_requests,
                    "graphql_cost": self.graphql_cost, "rate_limit": self.rate_limit,
                    "rate_remaining": self.rate_remaining, "rate_reset": self.rate_reset}


def clock_text(stamp: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(stamp))


class RateGate:
    """Holds requests until the primary rate limit resets, and says so in the log.

    Every thread that must wait registers what it was about to request; the thread that
    opened the wait logs when it starts and every `log_every` seconds until the reset:
    the reset time, the requests left and the requests held.
    """

    def __init__(self, log_every: float = RATE_LOG_EVERY):
        self.log_every = log_every
        self.cond = threading.Condition()
        self.held: dict[int, str] = {}
        self.until = 0.0
        self.leader: int | None = None

    def hold(self, reset: float, left: int | None, limit: int | None, what: str,
             why: str) -> None:
        """Wait until `reset` (epoch seconds); `what` is the held request, `why` the
        reason for the first log line."""
        me = threading.get_ident()
        with self.cond:
            self.held[me] = what
            try:
                if self.leader is None or reset > self.until + 1:
                    self.until, self.leader = max(reset, self.until), me
                    log.warning("GitHub rate limit %s, %s of %s requests left: waiting for "
                                "the reset at %s (in %s); held: %s", why, _or_unknown(left),
                                _or_unknown(limit), clock_text(self.until),
                                _duration(self.until - time.time()), self._held())
                next_log = time.time() + self.log_every
                while (now := time.time()) < self.until:
                    self.cond.wait(min(self.until, next_log) - now)
                    now = time.time()
                    if self.leader == me and next_log <= now < self.until:
                        log.warning("still waiting for the GitHub rate limit reset at %s "
                                    "(in %s), %s of %s requests left; held: %s",
                                    clock_text(self.until), _duration(self.until - now),
                                    _or_unknown(left), _or_unknown(limit), self._held())
                        next_log += self.log_every
                if self.leader == me:
                    self.leader = None
                    log.info("GitHub rate limit reset at %s: carrying on",
                             clock_text(self.until))
            finally:
                del self.held[me]

    def _held(self) -> str:
        items = sorted(self.held.values())
        shown = ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
        return f"{len(items)} request{'s' if len(items) != 1 else ''} ({shown})"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _or_unknown(value: int | None) -> str:
    return "?" if value is None else str(value)


class _Retry(GithubRetry):
    """GithubRetry whose wait for a primary rate limit reset goes through the client's
    RateGate (logged), instead of one silent sleep."""

    def __init__(self, gate: RateGate | None = None, **kwargs: Any):
        self.gate = gate
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> _Retry:
        kw["gate"] = self.gate
        return super().new(**kw)

    def sleep(self, response: Any = None) -> None:
        headers = getattr(response, "headers", None) or {}
        reset = str(headers.get("x-ratelimit-reset", ""))
        if self.gate is not None and getattr(response, "status", 0) in (403, 429) and \
                headers.get("x-ratelimit-remaining") == "0" and reset.isdigit() and \
                "retry-after" not in headers:
            limit = str(headers.get("x-ratelimit-limit", ""))
            last = self.history[-1] if self.history else None
            what = f"{last.method} {urlsplit(last.url or '').path}" if last else "a retry"
            self.gate.hold(int(reset) + 1, 0, int(limit) if limit.isdigit() else None,
                           what, "spent (GitHub answered 403)")
            return
        super().sleep(response)


def make_auth(env: dict[str, str] | None = None) -> Auth.Auth:
    """A PAT from GITHUB_TOKEN, or a GitHub App installation from GITHUB_APP_ID,
    GITHUB_APP_PRIVATE_KEY (PEM text or a path to it) and GITHUB_APP_INSTALLATION_ID."""
    env = dict(os.environ if env is None else env)
    token = env.get("GITHUB_TOKEN", "").strip()
    if token:
        return Auth.Token(token)
    app_id, key, inst = (env.get("GITHUB_APP_ID"), env.get("GITHUB_APP_PRIVATE_KEY"),
                         env.get("GITHUB_APP_INSTALLATION_ID"))
    if app_id and key and inst:
        if not key.lstrip().startswith("-----BEGIN") and os.path.exists(key):
            with open(key) as f:
                key = f.read()
        return Auth.AppAuth(app_id, key).get_installation_auth(int(inst))
    raise AuthError("no GitHub credentials: set GITHUB_TOKEN (a token with repo, read:org, "
                    "read:user and gist scopes) or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and "
                    "GITHUB_APP_INSTALLATION_ID")


class GitHubClient:
    def __init__(self, api_url: str, auth: Auth.Auth, *, concurrency: int = 4,
                 cache: HttpCache | None = None, max_tries: int = 8,
                 secondary_wait: float = 60.0, timeout: int = 60,
                 rate_reserve: int = RATE_RESERVE, rate_log_every: float = RATE_LOG_EVERY):
        self.gate = RateGate(rate_log_every)
        self.rate_reserve = rate_reserve
        # raise_on_status=False: when the tries are spent we get GitHub's last answer back
        # (and can name it), instead of urllib3's generic RetryError.
        retry = _Retry(gate=self.gate, secondary_rate_wait=secondary_wait, total=max_tries,
                       backoff_factor=0.5, backoff_max=60, raise_on_status=False)
        verify: bool | str = (os.environ.get("REQUESTS_CA_BUNDLE")
                              or os.environ.get("SSL_CERT_FILE") or True)
        self.api_url = api_url.rstrip("/")
        api = urlsplit(self.api_url)
        self.api_origin = _origin(self.api_url)
        self.api_scheme = api.scheme
        # seconds_between_requests=None: PyGithub's default 0.25 s pause would cap us at
        # 4 requests/s whatever the concurrency; we pace by the rate-limit headers instead.
        self.gh = Github(auth=auth, base_url=self.api_url, per_page=100, retry=retry,
                         pool_size=concurrency + 2, seconds_between_requests=None,
                         timeout=timeout, user_agent=USER_AGENT, verify=verify, lazy=True)
        self.requester = self.gh.requester
        self.auth = auth
        self.max_tries = max_tries
        # Plain requests for asset downloads (see download()), with the same retry policy
        # for 5xx and dropped connections.
        self.http = requests.Session()
        self.http.verify = verify
        self.http.headers["User-Agent"] = USER_AGENT
        self.http.mount("https://", HTTPAdapter(max_retries=Retry(
            total=max_tries, backoff_factor=0.5, status_forcelist=[500, 502, 503, 504],
            allowed_methods={"GET"}, raise_on_status=False)))
        self.http.mount("http://", self.http.adapters["https://"])
        self.cache = cache
        self.acct = Accounting()
        self.pace_lock = threading.Lock()

    # plumbing ---------------------------------------------------------------------------

    def _url(self, path: str, params: dict[str, Any] | None = None) -> str:
        url = path if path.startswith("http") else f"{self.api_url}{path}"
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        return url

    def _pace(self, what: str = "a request") -> None:
        """Below the reserve, wait for the reset (logged) instead of spending the rest."""
        a = self.acct
        left, reset, limit = a.rate_remaining, a.rate_reset, a.rate_limit
        if left is None or reset is None or limit is None:
            return
        if left > min(self.rate_reserve, limit // 10) or reset <= time.time():
            return
        self.gate.hold(reset + 1, left, limit, what,
                       f"at the reserve of {min(self.rate_reserve, limit // 10)} kept for others")

    def _request(self, url: str, kind: str, headers: dict[str, str] | None = None
                 ) -> tuple[int, dict[str, Any], str]:
        for attempt in range(1, self.max_tries + 2):
            self._pace(f"GET {self._path(url)}")
            try:
                status, resp_headers, body = self.requester.requestJson("GET", url,
                                                                        headers=headers)
            except GithubException as e:  # retries exhausted inside GithubRetry
                self.acct.record(kind, {}, e.status or 0)
                raise self._error(e.status, e.data, url) from None
            except CUT_BODY as e:
                self.acct.record(kind, {}, 0)
                if attempt > self.max_tries:
                    raise self._unanswered(url, e, attempt) from None
                self._cut(url, e, attempt)
                continue
            except TRANSPORT_ERRORS as e:
                raise self._unanswered(url, e, self.max_tries + 1) from None
            self.acct.record(kind, resp_headers, status)
            return status, resp_headers, body
        raise AssertionError("unreachable")

    def _cut(self, url: str, error: BaseException, attempt: int) -> None:
        delay = min(60.0, 0.5 * 2 ** (attempt - 1))
        log.warning("GitHub's answer to %s was cut short (%s, try %d of %d); retrying in "
                    "%.1f s", self._path(url), type(error).__name__, attempt,
                    self.max_tries + 1, delay)
        time.sleep(delay)

    def _path(self, url: str) -> str:
        return urlsplit(url).path

    def _unanswered(self, url: str, error: BaseException, tries: int) -> GitHubUnavailable:
        what = "cut its answer to" if isinstance(error, CUT_BODY) else "did not answer"
        return GitHubUnavailable(f"GitHub {what} {self._path(url)} in {tries} tries "
                                 f"({type(error).__name__}): check connectivity or try later")

    def _error(self, status: int | None, data: Any, url: str) -> Exception:
        message = data.get("message") if isinstance(data, dict) else str(data or "")
        path = self._path(url)
        if status == 401:
            return AuthError(f"GitHub refused the token ({message}): set GITHUB_TOKEN to a "
                             "valid token")
        if status == 404:
            return NotFound(f"{path} was not found (404)")
        if status == 403 and "rate limit" not in (message or "").lower():
            return OptionalDenied(f"{path} is forbidden to this token (403: {message})")
        if status in (403, 429):
            return GitHubUnavailable(f"GitHub kept rate-limiting {path} in {self.max_tries + 1} "
                                     f"tries ({message}): wait for the rate limit to reset, "
                                     "or lower --concurrency")
        return GitHubUnavailable(f"GitHub answered {status} for {path} in {self.max_tries + 1} "
                                 "tries: try again later")

    def _get_cached(self, url: str, kind: str) -> tuple[Any, dict[str, Any]]:
        """GET with `If-None-Match` when we hold the ETag; a 304 serves the stored body."""
        cached = self.cache.get(url) if self.cache else None
        headers = {"If-None-Match": cached["etag"]} if cached and cached.get("etag") else None
        status, resp_headers, body = self._request(url, kind, headers)
        if status == 304 and cached is not None:
            return json.loads(cached["body"]), {"link": cached.get("link", ""), **resp_headers}
        if status >= 400:
            try:
                data = json.loads(body) if body else {}
            except ValueError:
                data = {"message": body[:200]}
            raise self._error(status, data, url)
        if self.cache is not None and resp_headers.get("etag"):
            self.cache.put(url, {"etag": resp_headers["etag"], "body": body,
                                 "link": resp_headers.get("link", "")})
        return (json.loads(body) if body else None), resp_headers

    # the API ----------------------------------------------------------------------------

    def get(self, path: str, params: dict[str, Any] | None = None, kind: str = "rest") -> Any:
        data, _ = self._get_cached(self._url(path, params), kind)
        return data

    def paginate(self, path: str, params: dict[str, Any] | None = None, kind: str = "rest",
                 etags: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a list, 100 per page, following `Link: rel="next"` as GitHub says.
        `etags` collects each page's validator: equal lists of ETags mean an equal list."""
        url: str | None = self._url(path, {"per_page": 100, **(params or {})})
        while url:
            data, headers = self._get_cached(url, kind)
            if etags is not None:
                etags.append(headers.get("etag", ""))
            if isinstance(data, dict):  # a few lists come wrapped, e.g. {"total_count", ...}
                data = next((v for v in data.values() if isinstance(v, list)), [])
            yield from data or []
            m = LINK_NEXT.search(headers.get("link", "") or "")
            url = m.group(1) if m else None

    def paginate_newest_first(self, path: str, params: dict[str, Any] | None = None,
                              kind: str = "rest", slim: Any = None, refresh: Any = None
                              ) -> Iterator[dict[str, Any]]:
        """Every item of a list that only grows at its front, newest first, each with an
        immutable `id` (a repository's issue events). Without a cache this is `paginate`.

        With one, the list as read last time is kept (a memo in the cache: each item as
        `slim(item)` makes it, one JSON text per item), and this run reads pages only until
        it meets last time's newest item; when the items from there on that page are last
        time's, in order, the rest of the list is last time's too. `refresh(slim_item)`
        turns each of those back into the item as it reads now (for events: the issue
        each embeds, from this run's issue list), or returns None to drop it (its issue was
        deleted or transferred). Anything else (last time's newest item gone, a different
        order) reads the whole list, as does a run without a memo. The memo is updated
        when the iteration is complete.
        """
        if self.cache is None:
            yield from self.paginate(path, params, kind)
            return
        slim = slim or (lambda item: item)
        first = self._url(path, {"per_page": 100, **(params or {})})
        memo_key = "/ghvault/newest-first" + HttpCache.key(first)
        memo = self.cache.get(memo_key)
        old = memo.get("items") if isinstance(memo, dict) else None
        front = self._front(first, kind, old) if old else None
        kept: list[str] = []

        def keep(item: dict[str, Any]) -> dict[str, Any]:
            kept.append(json.dumps(slim(item), separators=(",", ":")))
            return item

        if front is None:
            for item in self.paginate(path, params, kind):
                yield keep(item)
        else:
            for item in front:
                yield keep(item)
            for text in old or []:
                item = json.loads(text)
                item = refresh(item) if refresh is not None else item
                if item is not None:
                    yield keep(item)
        self.cache.put(memo_key, {"items": kept})

    def _front(self, url: str | None, kind: str, old: list[str]
               ) -> list[dict[str, Any]] | None:
        """The items before last time's newest (see paginate_newest_first), or None when
        the list did not simply grow at its front."""
        old_ids = [json.loads(text).get("id") for text in old[:100]]
        top = old_ids[0]
        fresh: list[dict[str, Any]] = []
        while url:
            data, headers = self._get_cached(url, kind)
            page = data if isinstance(data, list) else []
            pos = next((i for i, item in enumerate(page) if item.get("id") == top), None)
            if pos is not None:
                overlap = [item.get("id") for item in page[pos:]]
                if overlap != old_ids[:len(overlap)]:
                    return None
                return fresh + page[:pos]
            fresh += page
            m = LINK_NEXT.search(headers.get("link", "") or "")
            url = m.group(1) if m else None
        return None  # last time's newest item is gone

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """A GraphQL query (never a mutation: retrying a cut answer is safe)."""
        for attempt in range(1, self.max_tries + 2):
            self._pace("POST /graphql")
            try:
                headers, data = self.requester.graphql_query(query, variables)
            except GithubException as e:
                self.acct.record("graphql", {}, e.status or 0)
                raise self._error(e.status, e.data, self.requester.graphql_url) from None
            except CUT_BODY as e:
                self.acct.record("graphql", {}, 0)
                if attempt > self.max_tries:
                    raise self._unanswered(self.requester.graphql_url, e, attempt) from None
                self._cut(self.requester.graphql_url, e, attempt)
                continue
            except TRANSPORT_ERRORS as e:
                raise self._unanswered(self.requester.graphql_url, e,
                                       self.max_tries + 1) from None
            break
        self.acct.record("graphql", {}, 200)
        with self.acct.lock:
            self.acct.graphql_requests += 1
            cost = ((data.get("data") or {}).get("rateLimit") or {}).get("cost")
            self.acct.graphql_cost += int(cost or 1)
        return data["data"]

    def check_location(self, url: str) -> None:
        """UntrustedLocation unless `url` is on the API origin, where the token may go."""
        if _origin(url) != self.api_origin:
            parts = urlsplit(url)
            shown = parts._replace(netloc=parts.netloc.rpartition("@")[2], query="").geturl()
            raise UntrustedLocation(
                f"the API named {shown[:200]!r}, outside the API origin {self.api_origin}: "
                "not requested, so the token is not sent there (check --api-url, or the "
                "item on GitHub)")

    def download(self, url: str, dest: str) -> None:
        """A release asset. The API answers 302 to pre-signed object storage on another
        host. PyGithub's getFile refuses redirects outside the API prefix on Enterprise
        servers, so this one is ours: the token goes to the API only, never to storage.
        An asset `url` outside the API origin is refused (UntrustedLocation) unrequested.
        A body cut short is downloaded again, a bounded number of times."""
        self.check_location(url)
        tries = self.max_tries + 1
        for attempt in range(1, tries + 1):
            try:
                self._download_once(url, dest)
                return
            except CUT_BODY as e:
                if attempt == tries:
                    raise GitHubUnavailable(
                        f"the download of {self._path(url)} was cut short in each of {tries} "
                        f"tries ({type(e).__name__}): try again later") from None
                self._cut(url, e, attempt)
            except requests.RequestException as e:
                raise GitHubUnavailable(f"could not download {self._path(url)} in {tries} "
                                        f"tries ({type(e).__name__}): try again later") from None

    def _download_once(self, url: str, dest: str) -> None:
        resp = self._asset_request(url)
        hops = 0
        while resp.status_code in (301, 302, 303, 307, 308) and hops < 5:
            # Storage on another host: no Authorization (the session carries none).
            where = urljoin(resp.url or url, resp.headers.get("Location", ""))
            resp.close()
            if urlsplit(where).scheme not in ("https", "http"):
                raise UntrustedLocation(f"the download of {self._path(url)} was redirected "
                                        f"to a {urlsplit(where).scheme or 'relative'} URL: "
                                        "not followed (check the item on GitHub)")
            resp = self.http.get(where, timeout=300, stream=True)
            hops += 1
        if resp.status_code == 404:
            raise NotFound(f"{self._path(url)} was not found (404)")
        if resp.status_code >= 400:
            raise self._error(resp.status_code, _message(resp), url)
        with open(dest, "wb") as f:
            for chunk in resp.iter_content(1 << 16):
                f.write(chunk)

    def _asset_request(self, url: str) -> requests.Response:
        """The API half of a download, with GitHub's rate-limit rules: a 403/429 carrying
        `retry-after` (secondary limit) or `x-ratelimit-remaining: 0` (primary) is waited
        out and tried again, a bounded number of times, like GithubRetry does for the rest."""
        for attempt in range(self.max_tries + 1):
            self._pace(f"GET {self._path(url)}")
            resp = self.http.get(url, headers={"Accept": "application/octet-stream",
                                               "Authorization": self.auth_header()},
                                 allow_redirects=False, timeout=60, stream=True)
            self.acct.record("asset", resp.headers, resp.status_code)
            if resp.status_code not in (403, 429) or attempt == self.max_tries:
                return resp
            reset = resp.headers.get("x-ratelimit-reset", "")
            if "retry-after" in resp.headers:
                resp.close()
                time.sleep(min(float(resp.headers["retry-after"]), 3600.0))
            elif resp.headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
                resp.close()
                self.gate.hold(int(reset) + 1, 0, self.acct.rate_limit,
                               f"GET {self._path(url)}", "spent (GitHub answered 403)")
            else:
                return resp  # a real permission problem
        return resp

    def auth_header(self) -> str:
        return f"{self.auth.token_type} {self.auth.token}"

    def close(self) -> None:
        self.gh.close()
        self.http.close()


def _origin(url: str) -> str:
    """scheme://host:port of `url`, with the scheme's default port made explicit."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme, 0)
    except ValueError:
        port = -1
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


def _message(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        body = None
    return body if isinstance(body, dict) and "message" in body else {"message": resp.reason}
