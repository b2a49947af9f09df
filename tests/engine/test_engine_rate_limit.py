"""The primary rate limit: at the reserve the run waits for the reset, and says so.

The simulator's pools refill `rate_window` seconds after they open (GitHub: an hour), so a
small limit and a short window show a whole wait. Below the reserve (50 requests, or a
tenth of the hourly limit when that is smaller) the client must stop and wait for the
reset instead of trickling on, logging a line when the wait starts and every minute
(`rate_log_every` here) with the time of the reset, the requests left and what is held.
"""

from __future__ import annotations

import logging
import re
import time

import pytest
from ghvault.github.client import GitHubClient
from github import Auth

from tests.conftest import start_sim
from tests.engine.helpers import run_ghvault

OWNER = "hubber"
RESET = r"\d\d:\d\d:\d\d UTC"


@pytest.fixture
def small_pool():
    """A simulator whose pool is 120 requests (a run takes about 180), refilled 12 s after
    it opens."""
    running, stop = start_sim(rate_limit=120, rate_window=12)
    yield running
    stop()


@pytest.fixture
def tiny_pool(monkeypatch):
    """30 requests, refilled 4 s after the pool opens: a reserve of 3."""
    running, stop = start_sim(rate_limit=30, rate_window=4)
    for key, value in running.client_env().items():
        monkeypatch.setenv(key, value)
    yield running
    stop()


def test_a_run_at_the_reserve_waits_for_the_reset_and_logs_it(small_pool, moto_server):
    moto_server.client("s3").create_bucket(Bucket="rate-reserve")
    key = f"github/{OWNER}/2026/10/{OWNER}-2026-10.zip"
    started = time.monotonic()
    proc = run_ghvault(small_pool, moto_server, "--owner", OWNER, "--month", "2026-10",
                       "--dest", f"s3://rate-reserve/{key}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    waits = [line for line in proc.stderr.splitlines() if "waiting for the reset at" in line]
    assert len(waits) == 1, proc.stderr[-3000:]
    line = waits[0]
    # the reserve of a 120-request pool is 12: the wait starts with at most 12 left
    m = re.search(rf"GitHub rate limit at the reserve of 12 kept for others, (\d+) of 120 "
                  rf"requests left: waiting for the reset at {RESET} \(in \d+ s\); held: "
                  r"(\d+) requests? \(((GET|POST) /\S+)", line)
    assert m, line
    assert int(m[1]) <= 12 and int(m[2]) >= 1
    assert "rate limit reset at" in proc.stderr and "carrying on" in proc.stderr
    stats = small_pool.stats()
    assert stats["rate_limited"] == 0  # it waited; it never ran the pool dry
    assert time.monotonic() - started < 60


def test_a_long_wait_logs_every_interval(tiny_pool, caplog):
    client = GitHubClient(tiny_pool.api, Auth.Token(tiny_pool.token), rate_log_every=1.0)
    with caplog.at_level(logging.INFO, "ghvault.github"):
        for _ in range(30):
            client.get(f"/users/{OWNER}")
    lines = [r.getMessage() for r in caplog.records]
    starts = [x for x in lines if "waiting for the reset at" in x]
    assert len(starts) >= 1
    assert re.search(rf"GitHub rate limit at the reserve of 3 kept for others, 3 of 30 requests "
                     rf"left: waiting for the reset at {RESET} \(in \d s\); held: 1 request "
                     rf"\(GET /api/v3/users/{OWNER}\)", starts[0]), starts[0]
    again = [x for x in lines if x.startswith("still waiting for the GitHub rate limit reset")]
    assert len(again) >= 2, lines
    assert all(re.search(rf"at {RESET} \(in \d s\), 3 of 30 requests left; held: 1 request",
                         x) for x in again), again
    assert tiny_pool.stats()["rate_limited"] == 0


def test_a_pool_spent_elsewhere_is_waited_out_with_a_log_line(tiny_pool, caplog):
    """Another user of the token spent the pool: GitHub answers 403 with remaining 0, and
    the client waits for the reset (logged) instead of sleeping silently."""
    spender = tiny_pool.session(tiny_pool.token)
    while True:
        r = spender.get(f"{tiny_pool.api}/users/{OWNER}", timeout=30)
        if r.status_code == 403:
            break
    client = GitHubClient(tiny_pool.api, Auth.Token(tiny_pool.token))
    with caplog.at_level(logging.INFO, "ghvault.github"):
        assert client.get(f"/users/{OWNER}")["login"] == OWNER
    starts = [r.getMessage() for r in caplog.records
              if "waiting for the reset at" in r.getMessage()]
    assert len(starts) == 1
    assert re.search(rf"GitHub rate limit spent \(GitHub answered 403\), 0 of 30 requests "
                     rf"left: waiting for the reset at {RESET} \(in \d s\); held: 1 request "
                     rf"\(GET /api/v3/users/{OWNER}\)", starts[0]), starts[0]

