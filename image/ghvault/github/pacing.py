"""Pacing by GitHub's rate limit: the request accounting, the gate that holds requests
until the reset (and says so in the log), and PyGithub's retry routed through it."""

from __future__ import annotations

import http.client
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from github import GithubRetry

log = logging.getLogger("ghvault.github")
RATE_LOG_EVERY = 60.0  # seconds between the log lines of one wait for the reset
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


class RetryThroughGate(GithubRetry):
    """GithubRetry whose wait for a primary rate limit reset goes through the client's
    RateGate (logged), instead of one silent sleep."""

    def __init__(self, gate: RateGate | None = None, **kwargs: Any):
        self.gate = gate
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> RetryThroughGate:
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
