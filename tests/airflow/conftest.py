"""The real-scheduler deployment shared by test_scheduler.py and test_scheduler_ui.py.

Package scope: it starts with the first test that asks for it and stops when the tests of
tests/airflow are done, so its daemons do not idle through tests/engine and tests/sim.
"""

from __future__ import annotations

import logging
import time

import pytest

from devtools.embedded import Aws
from tests.airflow.scheduler_harness import SchedulerStack

# Every backup and verification of every run shares one pool slot: concurrent runs
# (backfill, catch-up) must queue their backups, never overlap them.
POOL_SLOTS = 1
# The ECS runner's waiter (in the triggerer) asks moto every 2 s instead of every 30 s.
WAITER_DELAY_SECONDS = 2


@pytest.fixture(scope="package")
def scheduler(tmp_path_factory, moto_server, sim) -> SchedulerStack:
    owners = [sim.sim.world.owners["user"], sim.sim.world.owners["org"]]
    stack = SchedulerStack(tmp_path_factory.mktemp("airflow-scheduler"),
                           Aws(moto_server.endpoint), sim, owners,
                           settings={"pool_slots": POOL_SLOTS,
                                     "waiter_delay_seconds": WAITER_DELAY_SECONDS})
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto: no line per request
    t0 = time.monotonic()
    try:
        stack.start()
    except BaseException:
        stack.stop()
        raise
    print(f"\nreal-scheduler stack up in {time.monotonic() - t0:.0f} s")
    yield stack
    stack.stop()
