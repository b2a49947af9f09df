"""Fixtures of the engine's tests (the shared simulator and moto are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.conftest import RunningSim, start_sim


@pytest.fixture(scope="module")
def gh() -> RunningSim:
    """A private tiny simulator per test module: its tests set faults and read its request
    counts, which the shared simulator's other users must not see."""
    running, stop = start_sim()
    yield running
    stop()
