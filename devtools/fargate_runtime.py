"""How devtools.fargate runs one task's essential container, and ships its output.

Two runtimes, chosen by the harness's caller, never by a fallback:

- `ContainerRuntime`: the task definition's image (mapped to a local build) in the machine's
  container engine through the `docker` SDK, with the definition's user, working directory,
  read-only root and volumes, on the host network (moto and the simulator listen on
  127.0.0.1); StopTask is `docker stop` with the definition's `stopTimeout`: SIGTERM, then
  SIGKILL when the time runs out, as the ECS agent does.
- `ProcessRuntime`: the image's ENTRYPOINT (`ghvault`) from this virtualenv as a child
  process, for machines without a container engine; SIGTERM, then SIGKILL after
  `stopTimeout`.

Both stream the merged stdout/stderr, line by line, into the run and the awslogs stream.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ghvault_airflow.container_engine import stream_lines

GHVAULT = str(Path(sys.executable).with_name("ghvault"))

# What the image (image/Dockerfile) sets: ENTRYPOINT, CMD and ENV (the process runtime
# plays them; the container runtime gets them from the image itself).
IMAGE_ENTRYPOINT = [GHVAULT]
IMAGE_CMD = ["--help"]
IMAGE_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"}
DEFAULT_STOP_TIMEOUT = 30  # Fargate's, when the container definition names none


@dataclass
class ContainerSpec:
    """What ECS would start for the task's essential container."""

    image: str  # the local image the task definition's image maps to
    entrypoint: list[str] | None  # the definition's entryPoint (None: the image's)
    command: list[str]
    environment: dict[str, str]  # definition, override, secrets, then the harness's own
    user: str | None = None
    working_dir: str | None = None
    read_only: bool = False
    volumes: list[str] = field(default_factory=list)  # container paths of task volumes
    mounts: dict[str, str] = field(default_factory=dict)  # host path -> container path (ro)
    stop_timeout: int = DEFAULT_STOP_TIMEOUT
    scratch: Path | None = None  # the process runtime's HOME and TMPDIR


StopRequested = Callable[[], bool]


class ProcessRuntime:
    """The image's ENTRYPOINT from this virtualenv, as a child process."""

    name = "process"

    def run(self, spec: ContainerSpec, on_line: Callable[[str], None],
            stop_requested: StopRequested, tick: Callable[[], None]) -> int:
        home = spec.scratch
        env = {"PATH": f"{Path(GHVAULT).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "HOME": str(home), "TMPDIR": str(home), **IMAGE_ENV, **spec.environment}
        argv = list(spec.entrypoint or IMAGE_ENTRYPOINT) + spec.command
        proc = subprocess.Popen(argv, env=env, cwd=home, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        reader = threading.Thread(target=lambda: [on_line(line.rstrip("\n"))
                                                  for line in proc.stdout], daemon=True)
        reader.start()
        while proc.poll() is None:
            tick()
            if stop_requested():
                proc.terminate()  # SIGTERM, then SIGKILL after stopTimeout, as the agent
                try:
                    proc.wait(timeout=spec.stop_timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                break
            time.sleep(0.1)
        proc.wait()
        reader.join(timeout=30)
        code = proc.returncode
        return 128 - code if code < 0 else code  # killed by signal N -> 128+N, as Docker


class ContainerRuntime:
    """The image in the container engine, through the `docker` SDK (Docker or podman)."""

    name = "container"

    def __init__(self, client) -> None:
        self.client = client  # docker.DockerClient

    def check_image(self, image: str) -> str | None:
        """None when the engine has the image, else why it cannot be "pulled"."""
        import docker

        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            return f"{image} is not in the local engine (build it: make image)"
        return None

    def run(self, spec: ContainerSpec, on_line: Callable[[str], None],
            stop_requested: StopRequested, tick: Callable[[], None]) -> int:
        from docker.types import Mount

        # Task volumes without a host path are Fargate's ephemeral storage: an anonymous
        # volume each, which the engine fills from the image's directory at that path (so
        # the image's owner, UID 10001, can write it), removed with the container.
        mounts = [Mount(target=path, source=None, type="volume") for path in spec.volumes]
        mounts += [Mount(target=inside, source=host, type="bind", read_only=True)
                   for host, inside in spec.mounts.items()]
        container = self.client.containers.create(
            spec.image, command=spec.command, entrypoint=spec.entrypoint,
            environment=spec.environment, user=spec.user, working_dir=spec.working_dir,
            read_only=spec.read_only, mounts=mounts, network_mode="host",
            stop_signal="SIGTERM", labels={"ghvault.fargate": "task"})
        try:
            container.start()
            reader = threading.Thread(target=stream_lines, args=(container, on_line),
                                      daemon=True)
            reader.start()
            result: dict = {}
            waiter = threading.Thread(target=lambda: result.update(container.wait()),
                                      daemon=True)
            waiter.start()
            while waiter.is_alive():
                tick()
                if stop_requested():
                    # docker stop: SIGTERM, SIGKILL once stopTimeout has passed (the agent's)
                    container.stop(timeout=spec.stop_timeout)
                    break
                waiter.join(0.1)
            waiter.join()
            reader.join(timeout=30)
            return int(result["StatusCode"])
        finally:
            container.remove(force=True, v=True)

class LogShipper:
    """Puts container output into CloudWatch Logs in small batches, as the awslogs driver."""

    def __init__(self, logs, group_stream: tuple[str, str], batch: int = 50,
                 interval: float = 0.5) -> None:
        self.logs = logs
        self.group, self.stream = group_stream
        self.batch = batch
        self.interval = interval
        self.pending: list[dict] = []
        self.last_flush = time.monotonic()
        self.last_ts = 0
        self.lock = threading.Lock()

    def add(self, line: str) -> None:
        with self.lock:
            # Strictly increasing timestamps keep the lines' order for readers sorting by time.
            self.last_ts = max(int(time.time() * 1000), self.last_ts + 1)
            self.pending.append({"timestamp": self.last_ts, "message": line or " "})
            full = len(self.pending) >= self.batch
        if full:
            self.flush()
        else:
            self.tick()

    def tick(self) -> None:
        """Ship what waits once the interval has passed (called while the task runs)."""
        if time.monotonic() - self.last_flush > self.interval:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            events, self.pending = self.pending, []
            self.last_flush = time.monotonic()
            if events:
                self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream,
                                         logEvents=events)
