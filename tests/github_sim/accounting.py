"""Rate limits and request accounting, as GitHub keeps them.

Each token has one pool per resource ("core" for REST, "graphql" for GraphQL points) that
refills an hour after its window opened (`window`: shorter in tests that wait for a
reset). Unauthenticated clients share a pool per address with GitHub's limit of 60.
Stats count what clients did, exactly.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass


@dataclass
class Pool:
    limit: int
    used: int = 0
    reset: int = 0  # epoch seconds
    window: int = 3600  # seconds from the first charge of a window to its reset

    def refresh(self, now: float) -> None:
        if now >= self.reset:
            self.used = 0
            self.reset = int(now) + self.window

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


class RateLimits:
    def __init__(self, limit: int = 5000, graphql_limit: int = 5000,
                 anonymous_limit: int = 60, window: int = 3600):
        self.limits = {"core": limit, "graphql": graphql_limit}
        self.window = window
        self.anonymous_limit = anonymous_limit
        self.pools: dict[tuple[str, str], Pool] = {}
        self.lock = threading.Lock()

    def pool(self, who: str, resource: str, anonymous: bool) -> Pool:
        key = (who, resource)
        pool = self.pools.get(key)
        if pool is None:
            limit = self.anonymous_limit if anonymous else self.limits[resource]
            pool = self.pools[key] = Pool(limit, window=self.window)
        pool.refresh(time.time())
        return pool

    def try_charge(self, who: str, resource: str, anonymous: bool, cost: int = 1
                   ) -> tuple[bool, Pool]:
        """Charge `cost`; False (nothing charged) when the pool cannot pay for it."""
        with self.lock:
            pool = self.pool(who, resource, anonymous)
            if pool.remaining < cost or pool.remaining == 0:
                return False, pool
            pool.used += cost
            return True, pool

    def peek(self, who: str, resource: str, anonymous: bool) -> Pool:
        with self.lock:
            return self.pool(who, resource, anonymous)

    def reset(self) -> None:
        with self.lock:
            self.pools.clear()


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.requests_total = 0
        self.rest_requests = 0
        self.charged = 0  # requests (and GraphQL points) paid from a primary rate limit
        self.graphql_requests = 0
        self.graphql_cost = 0
        self.not_modified = 0
        self.rate_limited = 0
        self.secondary_rate_limited = 0
        self.faults: dict[str, int] = defaultdict(int)
        self.by_endpoint: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        # POST /graphql broken down by what each query reads (graphql_reads.py): requests by
        # status, and the points charged
        self.graphql_by_query: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.graphql_cost_by_query: dict[str, int] = defaultdict(int)
        self.charged_by_endpoint: dict[str, int] = defaultdict(int)  # REST
        self.by_status: dict[str, int] = defaultdict(int)
        self.bytes_served = 0
        self.in_flight = 0
        self.peak_concurrency = 0
        self.in_flight_by_token: dict[str, int] = defaultdict(int)
        self.git_requests = 0
        self.git_bytes = 0
        self.lfs_requests = 0
        self.downloads = 0
        # attachment hosts (attachments.py): web-origin asks, storage downloads, and
        # storage requests that carried an Authorization header (a leaked token)
        self.attachment_requests = self.attachment_downloads = self.attachment_token_sent = 0
        self.installation_tokens_issued = 0  # POST /app/installations/{id}/access_tokens
        self.expired_tokens_refused = 0  # requests (API, git, LFS) with an expired one
        self.started = time.time()

    def begin(self, token_key: str) -> tuple[int, int]:
        """An API request arrived: its number (1-based) and the token's requests in flight."""
        with self.lock:
            self.requests_total += 1
            self.in_flight += 1
            self.peak_concurrency = max(self.peak_concurrency, self.in_flight)
            self.in_flight_by_token[token_key] += 1
            return self.requests_total, self.in_flight_by_token[token_key]

    def leave(self, token_key: str) -> None:
        """An API request's answer is about to go out: it is no longer in flight. Counted
        before the first byte is written, so that a client which has read an answer and
        sends its next request is never seen with both in flight."""
        with self.lock:
            self.in_flight -= 1
            self.in_flight_by_token[token_key] -= 1

    def end(self, token_key: str, endpoint: str, status: int, nbytes: int,
            reads: str | None = None, left: bool = False) -> None:
        """The request is done (`left`: `leave` was already called for it)."""
        if not left:
            self.leave(token_key)
        with self.lock:
            self.by_endpoint[endpoint][str(status)] += 1
            if reads is not None:
                self.graphql_by_query[reads][str(status)] += 1
            self.by_status[str(status)] += 1
            self.bytes_served += nbytes
            if status == 304:
                self.not_modified += 1

    def add(self, name: str, amount: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + amount)

    def charge(self, endpoint: str) -> None:
        """A REST request paid from the core rate limit."""
        with self.lock:
            self.charged += 1
            self.charged_by_endpoint[endpoint] += 1

    def charge_graphql(self, reads: str, cost: int) -> None:
        with self.lock:
            self.graphql_cost += cost
            self.charged += cost
            if cost:
                self.graphql_cost_by_query[reads] += cost

    def fault(self, kind: str) -> None:
        with self.lock:
            self.faults[kind] += 1

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "requests_total": self.requests_total,
                "rest_requests": self.rest_requests,
                "charged": self.charged,
                "graphql_requests": self.graphql_requests,
                "graphql_cost": self.graphql_cost,
                "not_modified": self.not_modified,
                "rate_limited": self.rate_limited,
                "secondary_rate_limited": self.secondary_rate_limited,
                "faults": dict(self.faults),
                "by_endpoint": {k: dict(v) for k, v in sorted(self.by_endpoint.items())},
                "graphql_by_query": {k: dict(v)
                                     for k, v in sorted(self.graphql_by_query.items())},
                "graphql_cost_by_query": dict(sorted(self.graphql_cost_by_query.items())),
                "charged_by_endpoint": dict(sorted(self.charged_by_endpoint.items())),
                "by_status": dict(self.by_status),
                "bytes_served": self.bytes_served,
                "peak_concurrency": self.peak_concurrency,
                "git_requests": self.git_requests,
                "git_bytes": self.git_bytes,
                "lfs_requests": self.lfs_requests,
                "downloads": self.downloads,
                "attachment_requests": self.attachment_requests,
                "attachment_downloads": self.attachment_downloads,
                "attachment_token_sent": self.attachment_token_sent,
                "installation_tokens_issued": self.installation_tokens_issued,
                "expired_tokens_refused": self.expired_tokens_refused,
                "seconds": round(time.time() - self.started, 3),
            }
