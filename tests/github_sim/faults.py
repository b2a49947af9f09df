"""Fault injection for the simulator: what a client meets on a bad day at GitHub.

A spec is a comma-separated list of items:

    502:0.05          answer 5% of API requests with 502 (also 500, 503, 504)
    secondary:0.02    2% get GitHub's secondary rate limit (403 + retry-after)
    drop:0.01         1% of connections are closed without an answer
    cut:0.01          1% of answers are cut mid-body: the headers promise the whole body,
                      half of it is sent, then the connection is closed
    502@3             the 3rd API request (counted since the last reset) gets a 502
    secondary@5+9     the 5th and 9th get a secondary rate limit; drop@N likewise
    concurrency=4     more than 4 requests in flight for one token: secondary rate limit
    retry-after=2     seconds sent in retry-after with secondary limits (GitHub: 60)
    latency=50        added milliseconds before every API answer (also --latency-ms)
    seed=N            seed of the random draws, so a run is repeatable
    download-cut=N    the next N asset downloads (the storage behind GitHub's redirect)
                      are cut mid-body
    git-outage=S      git transport (smart HTTP, LFS) answers 503 for S seconds, counted
                      from the first git request after the plan is set

Only API requests (REST and GraphQL) are faulted by the kinds above; git transport and
downloads only by the last two options, /_sim/* never.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

KINDS = ("500", "502", "503", "504", "secondary", "drop", "cut")


class FaultSpecError(ValueError):
    pass


@dataclass
class Faults:
    probability: dict[str, float] = field(default_factory=dict)
    schedule: dict[int, str] = field(default_factory=dict)  # request number -> kind
    concurrency: int = 0  # 0: unlimited
    retry_after: int = 60
    latency_ms: int = 0
    seed: int = 0
    download_cut: int = 0  # downloads still to cut
    git_outage: int = 0  # seconds of 503 for git transport
    git_outage_until: float | None = None  # set by the first git request
    spec: str = ""
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def parse(cls, spec: str | None, latency_ms: int = 0) -> Faults:
        f = cls(latency_ms=latency_ms, spec=spec or "")
        for item in (spec or "").replace(" ", "").split(","):
            if not item:
                continue
            if "=" in item:
                key, value = item.split("=", 1)
                try:
                    number = int(value)
                except ValueError:
                    raise FaultSpecError(f"fault option {item!r} needs a whole number") from None
                if key == "concurrency":
                    f.concurrency = number
                elif key == "retry-after":
                    f.retry_after = number
                elif key == "latency":
                    f.latency_ms = number
                elif key == "seed":
                    f.seed = number
                elif key == "download-cut":
                    f.download_cut = number
                elif key == "git-outage":
                    f.git_outage = number
                else:
                    raise FaultSpecError(f"unknown fault option {key!r}")
            elif "@" in item:
                kind, when = item.split("@", 1)
                cls._check_kind(kind)
                for n in when.split("+"):
                    if not n.isdigit() or int(n) < 1:
                        raise FaultSpecError(f"fault {item!r}: request numbers start at 1")
                    f.schedule[int(n)] = kind
            elif ":" in item:
                kind, p = item.split(":", 1)
                cls._check_kind(kind)
                try:
                    prob = float(p)
                except ValueError:
                    raise FaultSpecError(f"fault {item!r}: probability must be a number") from None
                if not 0 <= prob <= 1:
                    raise FaultSpecError(f"fault {item!r}: probability must be within 0..1")
                f.probability[kind] = prob
            else:
                raise FaultSpecError(f"cannot read fault {item!r} (see `--help`)")
        f._rng = random.Random(f.seed)
        return f

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in KINDS:
            raise FaultSpecError(f"unknown fault {kind!r}: one of {', '.join(KINDS)}")

    def draw(self, request_number: int) -> str | None:
        """The fault (if any) for the request_number-th API request."""
        if request_number in self.schedule:
            return self.schedule[request_number]
        with self._lock:
            for kind, p in self.probability.items():
                if p and self._rng.random() < p:
                    return kind
        return None

    def cut_download(self) -> bool:
        """Whether this asset download is to be cut (each takes one of `download-cut`)."""
        with self._lock:
            if self.download_cut > 0:
                self.download_cut -= 1
                return True
        return False

    def git_down(self) -> bool:
        """Whether git transport is in its outage now (the first call opens it)."""
        if not self.git_outage:
            return False
        with self._lock:
            if self.git_outage_until is None:
                self.git_outage_until = time.monotonic() + self.git_outage
            return time.monotonic() < self.git_outage_until

    def describe(self) -> dict:
        return {"spec": self.spec, "probability": self.probability,
                "schedule": {str(k): v for k, v in sorted(self.schedule.items())},
                "concurrency": self.concurrency, "retry_after": self.retry_after,
                "latency_ms": self.latency_ms, "seed": self.seed,
                "download_cut": self.download_cut, "git_outage": self.git_outage}
