"""Helpers the engine's tests share: the real `ghvault run` CLI against a simulator and moto."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import TOKEN

GHVAULT = str(Path(sys.executable).with_name("ghvault"))


def run_ghvault(sim, moto, *args: str, token: str = TOKEN, extra_env: dict | None = None,
                timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, **sim.client_env(), **moto.env(), "GITHUB_TOKEN": token,
           **(extra_env or {})}
    env.pop("AWS_CA_BUNDLE", None)
    return subprocess.run([GHVAULT, "run", "--api-url", sim.api, *args], env=env,
                          capture_output=True, text=True, timeout=timeout)
