"""How the suite is split between pytest-xdist's workers (`pytest -n 4`; `--dist loadscope
--no-loadscope-reorder`, pyproject.toml's addopts).

Most of the suite waits (servers, subprocesses, git, latency) rather than computes, so
more workers than cores pay. xdist hands out units of work; `unit_of` says which:

- "scheduler": every test of the real-scheduler deployment (tests/airflow/conftest.py's
  package fixture `scheduler`), far too heavy to start on two workers;
- otherwise the test's module, so a module-scoped fixture (a private simulator, an Airflow
  metadata DB, a moto deployment) is built once, as it is without xdist;
- except in the modules of `SPREAD`, whose tests are long, independent of each other's
  order and share only a cheap module fixture: each test is a unit of its own, and each
  worker that gets one builds the module fixture for itself.

Why our own scheduler (xdist's documented `pytest_xdist_make_scheduler` hook) and not
`--dist loadgroup` with `xdist_group` marks: xdist 3.8 groups by rewriting `item._nodeid`,
which pytest 9.2's nodes no longer read, so every mark is silently ignored.

The longest units go first (`FIRST`; xdist hands units out in collection order with
`--no-loadscope-reorder`), so that no worker starts a long one when the others are nearly
done. With `-n 0` none of this applies and the order is pytest's.
"""

from __future__ import annotations

import os

import pytest
from xdist.scheduler import LoadScopeScheduling

SCHEDULER_FIXTURE = "scheduler"
SCHEDULER = ("tests/airflow/test_scheduler.py", "tests/airflow/test_scheduler_ui.py")
# each test one or more `airflow dags test` runs (30-90 s); the module's deployment ~10 s
SPREAD = ("tests/airflow/test_dag_e2e.py",)
# the units that take longest, longest first: the real-scheduler deployment, then the DAG runs
FIRST = ("scheduler", *SPREAD, "tests/container/test_docker_runner_dag.py",
         "tests/airflow/test_dag_shards.py", "tests/container/test_image.py",
         "tests/container/test_docker_runner.py", "tests/engine/test_engine_git_state.py")


def unit_of(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    if module in SCHEDULER:
        return "scheduler"
    return nodeid if module in SPREAD else module


class UnitScheduling(LoadScopeScheduling):
    """xdist's loadscope with `unit_of` as the scope."""

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log) -> LoadScopeScheduling | None:
    if config.getoption("dist") == "loadscope":
        return UnitScheduling(config, log)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if SCHEDULER_FIXTURE in getattr(item, "fixturenames", ()) and module not in SCHEDULER:
            raise pytest.UsageError(f"{module} uses the real-scheduler deployment: add it to "
                                    "SCHEDULER in tests/parallel.py (one worker starts it)")
    if os.environ.get("PYTEST_XDIST_WORKER"):  # every worker sorts alike: same collection
        def rank(item: pytest.Item) -> int:
            unit = unit_of(item.nodeid)
            unit = unit.split("::", 1)[0] if unit.startswith(SPREAD) else unit
            return FIRST.index(unit) if unit in FIRST else len(FIRST)

        items.sort(key=rank)  # stable: the order within a unit is kept
