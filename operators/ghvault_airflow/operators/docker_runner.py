"""Run the ghvault engine image in the Airflow worker's container engine (the `docker` runner).

For the docker-compose deployment and for users without ECS: the image ECS would run
(``docker_image``), started through the ``docker`` SDK on Docker or podman
(:mod:`ghvault_airflow.container_engine` finds it). Same arguments, XCom and exceptions as
the other runners; the credential is read at run time (:class:`~.runner.EngineRunner`)
and reaches the container in its environment at create time only.

Why not the Airflow docker provider's ``DockerOperator``: the runner is configuration of one
operator (``GithubBackupOperator``), not an operator of its own, so an operator would have
to be built and executed inside ``execute``; its ``environment`` is a templated (rendered)
field, so the token would have to go through ``private_environment`` set after rendering; it
binds a host temp dir by default (``mount_tmp_dir``) and reads the summary from its own XCom
conventions; and it adds a provider to the worker's dependencies for what is one create,
start, stream, wait and remove here.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import deque
from collections.abc import Sequence

from ghvault_airflow.container_engine import (
    NoContainerEngine,
    connect,
    describe,
    engine_url,
    stream_lines,
)
from ghvault_airflow.operators.engine import BackupContract, BackupFailed, EngineConfigError
from ghvault_airflow.operators.runner import EngineRunner
from ghvault_airflow.settings import DeploymentSettings

WORKDIR = "/tmp/ghvault"  # the image's WORKDIR, HOME and TMPDIR (image/Dockerfile)
STOP_TIMEOUT = 30  # seconds from SIGTERM to SIGKILL on on_kill, as Fargate's default
LABEL = "org.ghvault.runner"


class DockerRunner(EngineRunner):
    """Runs the engine of one backup (or verification) operator as a container.

    The container runs the image's ENTRYPOINT (``ghvault``; ``engine_command`` replaces it)
    with the engine's arguments as its command, as the image's non-root user on a read-only
    root filesystem, with an anonymous volume at the image's workdir (removed with the
    container), on ``docker_network``, with ``docker_mounts`` bound read-only. Its environment
    is the settings' ``engine_env``, the AWS identity of the settings' Airflow connection
    (keys, session token, region, endpoint: resolved by the provider's hook when the task
    runs, never stored) and the GitHub credential. Its output streams into the task log line
    by line; stdout's last line is the engine's summary.
    """

    name = "docker"

    def __init__(self, operator: BackupContract, engine_command: list[str] | None = None) -> None:
        super().__init__(operator, engine_command)
        self._container = None
        self._lock = threading.RLock()  # on_kill runs in a signal handler of this thread

    def environment(self, settings: DeploymentSettings) -> dict[str, str]:
        self.where = f"the AWS identity of the Airflow connection {settings.aws_conn_id!r}"
        # nothing of the worker's own environment: the container gets what is listed here
        return {**self.aws_environment(settings, always_credentials=True), **settings.engine_env}

    def run(self, argv: list[str], env: dict[str, str], secrets: Sequence[str],
            settings: DeploymentSettings) -> tuple[int, list[str], list[str]]:
        from docker.types import Mount  # the SDK loads when a container starts, not at parse

        client = self._client(settings)
        try:
            image = self._image(client, settings)
            workdir = image.attrs.get("Config", {}).get("WorkingDir") or WORKDIR
            mounts = [Mount(target=workdir, source=None, type="volume")]
            mounts += [Mount(target=inside, source=host, type="bind", read_only=True)
                       for host, inside in settings.docker_mounts.items()]
            name = container_name(self.op)
            with self._lock:
                self._container = client.containers.create(
                    settings.docker_image, command=argv, entrypoint=self.engine_command,
                    environment=env, name=name, network_mode=settings.docker_network,
                    read_only=True, mounts=mounts, stop_signal="SIGTERM",
                    labels={LABEL: "docker", "org.ghvault.owner": self.op.github_owner,
                            "org.ghvault.task": f"{self.op.dag_id}.{self.op.task_id}"})
            container = self._container
            self.log.info("container %s of %s on %s (network %s)", name, settings.docker_image,
                          describe(settings.docker_url), settings.docker_network)
            # stdout (the summary, verify's findings) and stderr (the engine's log) each
            # followed as written: reading them back after the exit can miss the last line
            lines = {"stdout": deque(maxlen=200), "stderr": deque(maxlen=200)}
            readers = [threading.Thread(
                target=stream_lines, daemon=True,
                args=(container, lambda line, kept=kept: kept.append(
                    self.log_line(line, secrets))),
                kwargs={"stdout": stream == "stdout", "stderr": stream == "stderr"})
                for stream, kept in lines.items()]
            container.start()
            for reader in readers:
                reader.start()
            code = int(container.wait()["StatusCode"])
            for reader in readers:
                reader.join(timeout=30)
            return code, list(lines["stdout"]), list(lines["stderr"])
        finally:
            self.stop()  # still running only when the task is being stopped or timed out
            client.close()

    def stop(self) -> None:
        """Stop the container if it runs (SIGTERM, SIGKILL after STOP_TIMEOUT seconds), then
        remove it with its workdir volume. on_kill, and the end of every run."""
        import docker  # loaded when a container starts, not at each DAG parse

        with self._lock:
            container, self._container = self._container, None
        if container is None:
            return
        try:
            container.reload()
            if container.status in ("running", "created", "paused", "restarting"):
                self.log.info("stopping container %s (SIGTERM, SIGKILL after %d s)",
                              container.name, STOP_TIMEOUT)
                container.stop(timeout=STOP_TIMEOUT)
            container.remove(force=True, v=True)  # v: the workdir volume goes with it
        except docker.errors.NotFound:
            pass

    # -- helpers ------------------------------------------------------------------------------
    def _client(self, settings: DeploymentSettings):
        import docker  # loaded when a container starts, not at each DAG parse

        try:
            url = engine_url(settings.docker_url)
        except NoContainerEngine as err:
            raise EngineConfigError(str(err)) from None
        try:
            client = connect(url, timeout=60)
        except docker.errors.DockerException as err:
            # retried: an engine restarting on the worker comes back
            raise BackupFailed(
                f"the container engine at {describe(url)} does not answer ({_first_line(err)}): "
                "start Docker or podman's API service on the worker, or fix 'docker_url' in "
                "the settings.") from None
        # the log stream and wait() block as long as the engine runs (hours): no read timeout
        client.api.timeout = None
        return client

    def _image(self, client, settings: DeploymentSettings):
        import docker  # loaded when a container starts, not at each DAG parse

        ref = settings.docker_image
        try:
            return client.images.get(ref)
        except docker.errors.ImageNotFound:
            pass
        self.log.info("pulling %s", ref)
        try:
            return client.images.pull(ref)
        except docker.errors.DockerException as err:
            raise EngineConfigError(
                f"the engine image {ref} is not on the worker's container engine and cannot be "
                f"pulled ({_first_line(err)}): build it (make image), push it where the worker "
                "can pull it, or fix 'docker_image' in the settings.") from None


def container_name(op: BackupContract) -> str:
    """A readable, unique name: ghvault-OWNER-TASK-xxxxxxxx (docker's name alphabet)."""
    stem = re.sub(r"[^a-zA-Z0-9_.-]+", "-", f"{op.github_owner}-{op.task_id}")[:80]
    return f"ghvault-{stem}-{uuid.uuid4().hex[:8]}"


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
