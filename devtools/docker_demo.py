"""`make run RUNNER=docker`: what the embedded demo adds for the docker runner.

The engine image (`make image` builds it when it is missing), this machine's container
engine (Docker, or podman's Docker API served on a private socket for the run, named to the
Airflow worker by DOCKER_HOST as users' workers name theirs), and the settings keys: the
image, the host network (moto and the simulator listen on 127.0.0.1) and the simulator's CA
bound read-only at the path engine_env names.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from devtools.containers import image_exists, podman_service, require_cli

IMAGE = "ghvault:dev"


def ensure_image(cli: str) -> None:
    if image_exists(cli, IMAGE):
        return
    print(f"{IMAGE} is not in {cli}: building it (make image)", flush=True)
    if subprocess.run([sys.executable, "-m", "devtools.image", "--tag", IMAGE]).returncode:
        raise RuntimeError(f"make image failed: the docker runner has no {IMAGE} to run")


@contextmanager
def docker_runner(ca_files: list[str]) -> Iterator[tuple[dict, dict[str, str]]]:
    """Yield (settings keys, environment for the Airflow worker) for runner docker."""
    cli = require_cli()
    ensure_image(cli)
    settings = {"docker_image": IMAGE, "docker_network": "host",
                "docker_mounts": {path: path for path in ca_files}}
    if cli == "docker":
        print(f"docker runner: {IMAGE} on Docker (DOCKER_HOST or its socket)", flush=True)
        yield settings, {}
        return
    with podman_service() as url:
        print(f"docker runner: {IMAGE} on podman's Docker API at {url} (DOCKER_HOST)",
              flush=True)
        yield settings, {"DOCKER_HOST": url}
