"""The container engine on this machine, for `make image`, the container tests and the runners.

A running Docker engine (`docker info` succeeds) wins; otherwise podman, whose Docker
Engine API (`podman system service`) the `docker` SDK talks to. The engine-finding part is
standard library only, so `make image` can use it before the virtualenv exists; the SDK is
imported only by `docker_client`.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


class EngineError(RuntimeError):
    """No container engine can run here; the message names the fix."""


def docker_running() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True,
                               timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def engine_cli() -> str | None:
    """"docker" where a Docker engine runs, else "podman" where podman is installed."""
    if docker_running():
        return "docker"
    return "podman" if shutil.which("podman") else None


def require_cli() -> str:
    cli = engine_cli()
    if cli is None:
        raise EngineError("no container engine: run `make image`, which installs podman "
                          "(or start a Docker engine)")
    return cli


def image_exists(cli: str, ref: str) -> bool:
    return subprocess.run([cli, "image", "inspect", ref], capture_output=True).returncode == 0


@contextlib.contextmanager
def podman_service(socket_dir: Path | None = None, timeout: float = 30) -> Iterator[str]:
    """Serve podman's Docker-compatible API on a private socket; yield its unix:// URL.

    The service is ours: it is stopped (by its pid) when the block ends."""
    with contextlib.ExitStack() as stack:
        if socket_dir is None:
            socket_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="ghvault-podman-")))
        sock = socket_dir / "podman.sock"
        url = f"unix://{sock}"
        log = stack.enter_context(open(socket_dir / "service.log", "w+b"))
        proc = subprocess.Popen(["podman", "system", "service", "--time=0", url],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while not sock.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
                    raise EngineError(f"`podman system service` did not serve {url} "
                                      f"(exit {proc.poll()}): {' | '.join(tail)}")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def docker_client() -> Iterator[tuple[object, str]]:
    """A `docker.DockerClient` for this machine's engine and the engine's CLI name:
    Docker's own socket (DOCKER_HOST honoured), or a podman service started for the block."""
    # the product's client (the docker runner's): DOCKER_HOST or Docker's own socket
    from ghvault_airflow.container_engine import connect, engine_url

    cli = require_cli()
    if cli == "docker":
        client = connect(engine_url(), timeout=120)
        try:
            yield client, cli
        finally:
            client.close()
        return
    with podman_service() as url:
        client = connect(url, timeout=120)
        try:
            yield client, cli
        finally:
            client.close()

