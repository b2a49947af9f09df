"""The GitHub client: PyGithub's requester underneath, our accounting and caching on top.

PyGithub gives us authentication (PAT, GitHub App installation tokens: see auth.py, the
requester asks the auth for the current token on every request), GitHub Enterprise
base URLs, connection pooling and its `GithubRetry` (5xx and dropped connections with
exponential backoff, `retry-after` on secondary limits, waiting for the reset on primary
limits, a bounded number of tries). We go below its object layer for three reasons it
cannot serve: conditional requests (`If-None-Match` with a stored ETag, answered by a free
304), request accounting, and never triggering its lazy per-object completion. So lists
are walked here by following `Link: rel="next"` with `requester.requestJson` (pages 2..N
read ahead once page 1 names the last: pages.py), and the list payloads are kept as they
came.

Requests in flight: at most `concurrency` at any time (GitHub's secondary rate limits count
concurrent requests), whichever thread makes them: every request to GitHub (REST, GraphQL,
downloads) first takes one of the client's `slots`.

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

import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from github import Auth, Github, GithubException
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import GitHubUnavailable, NotFound, OptionalDenied
from .auth import USER_AGENT, credential_name, missing_access, refused, tls_verify
from .cache import HttpCache
from .download import Downloads, UntrustedLocation
from .listmemo import ListMemo
from .pacing import (
    CUT_BODY,
    RATE_LOG_EVERY,
    TRANSPORT_ERRORS,
    Accounting,
    RateGate,
    RetryThroughGate,
    clock_text,
)
from .pages import LINK_NEXT, walk
from .urls import origin

log = logging.getLogger("ghvault.github")
# Requests of the core pool kept for others sharing the token: at this many left (or a
# tenth of the hourly limit when that is smaller) the client waits for the reset.
RATE_RESERVE = 50
__all__ = ["Accounting", "GitHubClient", "RateGate", "UntrustedLocation", "clock_text"]


class GitHubClient(Downloads):
    def __init__(self, api_url: str, auth: Auth.Auth, *, concurrency: int = 4,
                 cache: HttpCache | None = None, max_tries: int = 8,
                 secondary_wait: float = 60.0, timeout: int = 60,
                 rate_reserve: int = RATE_RESERVE, rate_log_every: float = RATE_LOG_EVERY,
                 read_ahead: int | None = None):
        self.gate = RateGate(rate_log_every)
        # Requests in flight, from any thread (the jobs' and the pages read ahead).
        self.slots = threading.BoundedSemaphore(concurrency)
        # Pages of one list requested ahead of the one handed over (pages.py); the pool's
        # threads only wait for slots, so they never raise the requests in flight.
        self.read_ahead = concurrency if read_ahead is None else read_ahead
        self.ahead = ThreadPoolExecutor(max(1, self.read_ahead), thread_name_prefix="ahead")
        self.rate_reserve = rate_reserve
        # raise_on_status=False: when the tries are spent we get GitHub's last answer back
        # (and can name it), instead of urllib3's generic RetryError.
        retry = RetryThroughGate(gate=self.gate, secondary_rate_wait=secondary_wait,
                                 total=max_tries, backoff_factor=0.5, backoff_max=60,
                                 raise_on_status=False)
        verify = tls_verify()
        self.api_url = api_url.rstrip("/")
        api = urlsplit(self.api_url)
        self.api_origin = origin(self.api_url)
        self.api_scheme = api.scheme
        # seconds_between_requests=None: PyGithub's default 0.25 s pause would cap us at
        # 4 requests/s whatever the concurrency; we pace by the rate-limit headers instead.
        self._github_args = dict(auth=auth, base_url=self.api_url, per_page=100, retry=retry,
                                 pool_size=2, seconds_between_requests=None, timeout=timeout,
                                 user_agent=USER_AGENT, verify=verify, lazy=True)
        # One PyGithub instance per thread: its Requester keeps one connection object that
        # stores a request in request() for getresponse() to send, so two threads sharing it
        # can each send the other's request (tests/engine/test_engine_client_threads.py).
        self._per_thread = threading.local()
        self._instances: list[Github] = []
        self._instances_lock = threading.Lock()
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
        renewed = False
        for attempt in range(1, self.max_tries + 2):
            self._pace(f"GET {self._path(url)}")
            generation = getattr(self.auth, "generation", None)
            try:
                with self.slots:
                    status, resp_headers, body = self.requester.requestJson(
                        "GET", url, headers=headers)
            except GithubException as e:  # retries exhausted inside GithubRetry
                self.acct.record(kind, {}, e.status or 0)
                if not renewed and self._token_expired(e.status, generation, url):
                    renewed = True
                    continue
                raise self._error(e.status, e.data, url, e.headers) from None
            except CUT_BODY as e:
                self.acct.record(kind, {}, 0)
                if attempt > self.max_tries:
                    raise self._unanswered(url, e, attempt) from None
                self._cut(url, e, attempt)
                continue
            except TRANSPORT_ERRORS as e:
                raise self._unanswered(url, e, self.max_tries + 1) from None
            self.acct.record(kind, resp_headers, status)
            if not renewed and self._token_expired(status, generation, url):
                renewed = True
                continue
            return status, resp_headers, body
        raise AssertionError("unreachable")

    def _token_expired(self, status: int | None, generation: int | None, url: str) -> bool:
        """A 401 to a request whose installation token expired while it was under way: a
        wait for the rate limit inside urllib3's retry re-sends the headers it was first
        sent with. Such a request is sent once more, with a fresh token."""
        expired_since = getattr(self.auth, "expired_since", None)
        if status != 401 or generation is None or expired_since is None or \
                not expired_since(generation):
            return False
        log.info("%s was refused after its installation token expired (a wait for the rate "
                 "limit outlasted it): sending it again with a fresh token", self._path(url))
        return True

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

    def _error(self, status: int | None, data: Any, url: str,
               headers: dict[str, Any] | None = None) -> Exception:
        message = data.get("message") if isinstance(data, dict) else str(data or "")
        path = self._path(url)
        if status == 401:
            return refused(self.auth, message)
        if status == 404:
            return NotFound(f"{path} was not found (404)")
        if status == 403 and "rate limit" not in (message or "").lower():
            return OptionalDenied(f"{path} is forbidden to {credential_name(self.auth)} "
                                  f"(403: {message}){missing_access(headers or {})}")
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
            raise self._error(status, data, url, resp_headers)
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
        first = self._url(path, {"per_page": 100, **(params or {})})
        for data, headers in walk(first, lambda url: self._get_cached(url, kind), self.ahead,
                                  self.read_ahead):
            if etags is not None:
                etags.append(headers.get("etag", ""))
            if isinstance(data, dict):  # a few lists come wrapped, e.g. {"total_count", ...}
                data = next((v for v in data.values() if isinstance(v, list)), [])
            yield from data or []

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
        memo = ListMemo(self.cache, "/ghvault/newest-first" + HttpCache.key(first))
        head = list(itertools.islice(memo.items(), 100))  # old items: text, one per item
        front = self._front(first, kind, head) if head else None
        with memo.writer() as kept:
            def keep(item: dict[str, Any]) -> dict[str, Any]:
                kept.add(json.dumps(slim(item), separators=(",", ":")))
                return item

            if front is None:
                for item in self.paginate(path, params, kind):
                    yield keep(item)
            else:
                for item in front:
                    yield keep(item)
                for text in memo.items():
                    item = json.loads(text)
                    item = refresh(item) if refresh is not None else item
                    if item is not None:
                        yield keep(item)
            kept.commit()

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
        renewed = False
        for attempt in range(1, self.max_tries + 2):
            self._pace("POST /graphql")
            generation = getattr(self.auth, "generation", None)
            try:
                with self.slots:
                    headers, data = self.requester.graphql_query(query, variables)
            except GithubException as e:
                self.acct.record("graphql", {}, e.status or 0)
                if not renewed and self._token_expired(e.status, generation,
                                                       self.requester.graphql_url):
                    renewed = True
                    continue
                if scopes := insufficient_scopes(e.data):
                    raise OptionalDenied(f"{credential_name(self.auth)} lacks a scope this "
                                         f"needs ({scopes})") from None
                raise self._error(e.status, e.data, self.requester.graphql_url,
                                  e.headers) from None
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

    def auth_header(self) -> str:
        return f"{self.auth.token_type} {self.auth.token}"

    @property
    def requester(self) -> Any:
        """This thread's PyGithub requester (see __init__ for why not one for all)."""
        gh = getattr(self._per_thread, "gh", None)
        if gh is None:
            gh = self._per_thread.gh = Github(**self._github_args)
            with self._instances_lock:
                self._instances.append(gh)
        return gh.requester

    def close(self) -> None:
        self.ahead.shutdown(wait=False, cancel_futures=True)
        with self._instances_lock:
            for gh in self._instances:
                gh.close()
            self._instances.clear()
        self.http.close()


def insufficient_scopes(data: Any) -> str | None:
    """GitHub's INSUFFICIENT_SCOPES error of a GraphQL answer (its message names the scope
    the token lacks, e.g. read:project), else None."""
    errors = data.get("errors") if isinstance(data, dict) else None
    for err in errors if isinstance(errors, list) else ():
        if isinstance(err, dict) and err.get("type") == "INSUFFICIENT_SCOPES":
            return str(err.get("message") or "INSUFFICIENT_SCOPES")[:400]
    return None
