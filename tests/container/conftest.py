"""The engine image, built once per session, and this machine's container engine.

No skip: where no container engine can start, every container test fails with the reason
(CI must run them)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.containers import EngineError, docker_client

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "ghvault:dev"


@dataclass
class Engine:
    client: object  # docker.DockerClient
    cli: str  # "docker" or "podman"
    build_seconds: float


@pytest.fixture(scope="session")
def engine() -> Engine:
    """`make image`'s build (a no-op on a warm layer cache), then an SDK client."""
    started = time.monotonic()
    build = subprocess.run([sys.executable, "-m", "devtools.image", "--tag", IMAGE], cwd=ROOT,
                           capture_output=True, text=True, timeout=1500)
    took = time.monotonic() - started
    if build.returncode != 0:
        pytest.fail(f"`make image` failed, so no container test can run:\n"
                    f"{(build.stdout + build.stderr)[-3000:]}", pytrace=False)
    with contextlib.ExitStack() as stack:
        try:
            client, cli = stack.enter_context(docker_client())
        except (EngineError, OSError) as exc:
            pytest.fail(f"the container engine cannot start: {exc}", pytrace=False)
        except Exception as exc:  # docker.errors.DockerException: the API did not answer
            pytest.fail(f"the container engine's API does not answer: {exc}", pytrace=False)
        yield Engine(client, cli, took)
