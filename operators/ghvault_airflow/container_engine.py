"""The container engine the docker runner talks to: where it listens, a client, log lines.

Docker's Engine API, served by Docker or by podman (``podman system service``, or the
``podman.socket`` unit at /run/podman/podman.sock), through the ``docker`` SDK. No Airflow
import here: devtools (``make image``, the container tests, the Fargate harness) connect and
read container logs with these same functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

DOCKER_SOCKET = "/var/run/docker.sock"
PODMAN_SOCKET = "/run/podman/podman.sock"  # rootful podman's API socket (podman.socket)
URL_SCHEMES = ("unix://", "tcp://", "ssh://", "npipe://", "http://", "https://")


class NoContainerEngine(RuntimeError):
    """No engine was found or configured; the message names the fix."""


def engine_url(configured: str | None = None, env: Mapping[str, str] = os.environ) -> str | None:
    """The engine's API URL: the configured one, else DOCKER_HOST (None: the SDK reads it with
    its TLS variables), else Docker's default socket, else podman's."""
    if configured:
        return configured
    if env.get("DOCKER_HOST"):
        return None
    for path in (DOCKER_SOCKET, PODMAN_SOCKET):
        if Path(path).is_socket():
            return f"unix://{path}"
    raise NoContainerEngine(
        f"no container engine on this worker (DOCKER_HOST is unset and neither {DOCKER_SOCKET} "
        f"nor {PODMAN_SOCKET} exists): start Docker or podman's API service "
        "(systemctl enable --now podman.socket), or set 'docker_url' in the settings.")


def describe(url: str | None) -> str:
    return url or os.environ.get("DOCKER_HOST", "DOCKER_HOST")


def connect(url: str | None, timeout: int = 120):
    """A ``docker.DockerClient`` for ``url`` (None: from DOCKER_HOST and DOCKER_TLS_VERIFY /
    DOCKER_CERT_PATH, as the docker CLI reads them). Raises docker.errors.DockerException
    when nothing answers there."""
    import docker

    if url is None:
        client = docker.from_env(version="auto", timeout=timeout)
    else:
        client = docker.DockerClient(base_url=url, version="auto", timeout=timeout)
    client.ping()
    return client


def stream_lines(container, on_line: Callable[[str], None], *, stdout: bool = True,
                 stderr: bool = True) -> None:
    """Call ``on_line`` for each line the container writes (to stdout, stderr or both,
    interleaved), as it writes them, until it exits (chunks of the log stream split at
    newlines)."""
    import docker

    buffer = b""
    try:
        for chunk in container.logs(stream=True, follow=True, stdout=stdout, stderr=stderr):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                on_line(line.decode(errors="replace"))
    except docker.errors.APIError as e:  # removed (stopped by on_kill) before or while
        # following: Docker answers 404; podman 500 "no such container"
        if not isinstance(e, docker.errors.NotFound) and "no such container" not in str(e):
            raise
    if buffer:
        on_line(buffer.decode(errors="replace"))
