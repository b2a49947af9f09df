"""Fargate, played honestly over moto: the tasks moto accepts are really run, here.

moto's ECS accepts `run_task` and then only moves the task's `lastStatus` one step per
`describe_tasks`; its containers stay PENDING and never run. With moto in this process
(`ThreadedMotoServer` shares the process with the test), its backend objects are
reachable, so this harness plays the part of the Fargate agent:

1. it watches moto's ECS backend for tasks it has not seen yet;
2. for each one it reads the task definition's essential container and the task's
   container override, and builds the container's environment the way ECS does: the
   image's ENV, then the task definition's `environment`, then the override's, then the
   `secrets`, resolved from moto's SSM Parameter Store (`valueFrom` is a parameter name or
   ARN; SecureStrings are decrypted) or Secrets Manager (a secret ARN, optionally with
   ECS's `:json-key:version-stage:version-id` suffix), then whatever the caller adds
   (`extra_env`; by default moto's endpoint and test credentials, see `moto_env`);
3. it refuses to start the task the way ECS does when a secret cannot be read, the
   awslogs log group does not exist or the image cannot be "pulled" (`stopCode`
   TaskFailedToStart, a ResourceInitializationError or CannotPullContainerError reason, a
   STOPPED container without an exit code), or when the caller asked for it
   (`fail_next_start`);
4. otherwise it runs the container with the runtime the caller chose (`runtime=`, no
   fallback; devtools/fargate_runtime.py):
   - "container": the task definition's image in the machine's container engine, where
     `image_map` names the local image for it (`ghvault_images`: any repository `ghvault`
     or `.../ghvault`, e.g. the stack's ECR URI, runs the local `ghvault:dev`), with the
     definition's `entryPoint`, `user`, `workingDirectory`, `readonlyRootFilesystem` and
     `mountPoints` (task volumes are anonymous volumes, as Fargate's ephemeral storage),
     the override's command, on the host network, `mounts` bound read-only (the test CA);
   - "process": the image's ENTRYPOINT (`ghvault` from this virtualenv) with that command;
   streaming the merged stdout/stderr into the awslogs stream
   `<prefix>/<container>/<task id>` in moto's CloudWatch Logs, as the awslogs driver does;
5. and records the real exit code: container `lastStatus` STOPPED with `exitCode`, task
   `stopCode` EssentialContainerExited (UserInitiated after StopTask), `desiredStatus` and
   `lastStatus` STOPPED. The amazon provider's own waiter and success check then decide,
   exactly as against ECS.

StopTask (the provider's `on_kill`) sets `desiredStatus` STOPPED and leaves the task
running until its container has exited, as ECS does (moto would mark it STOPPED at once):
SIGTERM, then SIGKILL after the definition's `stopTimeout` (Fargate's default 30 s).

Every task runs as soon as moto has it (`max_running=None`, the default). On Fargate each
task has its own vCPUs; here they share this machine's cores, so a measurement of each
task's own wall time passes `max_running=1` (or k): a task beyond the bound waits,
PROVISIONING, until one ends (a StopTask meanwhile stops it without running it), and
`ContainerRun.wall_s` counts from its start to its exit, not the wait.

    with FargateEmulator(moto.endpoint, runtime="container", docker=client,
                         image_map=ghvault_images("ghvault:dev"),
                         mounts={ca: ca}) as fargate:
        ...  # run the DAG; every task moto receives is run
        fargate.runs  # what ran: command, environment names, exit code, output
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import boto3

from devtools.fargate_runtime import (
    DEFAULT_STOP_TIMEOUT,
    IMAGE_CMD,
    ContainerRuntime,
    ContainerSpec,
    LogShipper,
    ProcessRuntime,
)
from devtools.fargate_turns import Turns

DEFAULT_ACCOUNT = "123456789012"
LOCAL_IMAGE = "ghvault:dev"  # what `make image` builds


def ghvault_images(local: str = LOCAL_IMAGE) -> Callable[[str], str | None]:
    """The image map for ghvault's task definitions: an image whose repository is `ghvault`
    or ends in `/ghvault` (`ghvault:latest`, `<account>.dkr.ecr.<region>.amazonaws.com/
    ns/ghvault:0.1.0`) runs as the local build `local`; any other cannot be pulled."""

    def resolve(image: str) -> str | None:
        ref = image.split("@", 1)[0]
        head, _, last = ref.rpartition("/")
        repository = f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]
        return local if repository == "ghvault" or repository.endswith("/ghvault") else None

    return resolve


def moto_env(endpoint: str, region: str) -> dict[str, str]:
    """How the container reaches moto. On ECS the task role's credentials come from the
    container credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI); here moto's
    test credentials are passed explicitly, and AWS_ENDPOINT_URL points every client at
    moto (on 127.0.0.1: the container shares the host's network)."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": region}


@dataclass
class ContainerRun:
    """One task as the harness handled it."""

    task_arn: str
    started_by: str
    container: str
    command: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)  # secrets shown as "***"
    secret_names: list[str] = field(default_factory=list)
    log_stream: str | None = None
    exit_code: int | None = None
    stop_code: str = ""
    stopped_reason: str = ""
    output: list[str] = field(default_factory=list)
    started_s: float | None = None  # time.monotonic() when its container started
    ended_s: float | None = None  # ... and when it exited
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def wall_s(self) -> float | None:
        """Seconds from the container's start to its exit (None if it never ran)."""
        if self.started_s is None or self.ended_s is None:
            return None
        return self.ended_s - self.started_s


class TaskStartFailure(Exception):
    """The task cannot start (ECS: stopCode TaskFailedToStart)."""


class FargateEmulator:
    """Run the tasks that moto's ECS receives; see the module docstring."""

    def __init__(self, endpoint: str, *, runtime: Literal["container", "process"],
                 docker=None, image_map: Callable[[str], str | None] | None = None,
                 mounts: dict[str, str] | None = None, region: str = "us-east-1",
                 account_id: str = DEFAULT_ACCOUNT, extra_env: dict[str, str] | None = None,
                 entrypoint: list[str] | None = None, poll_interval: float = 0.1,
                 timeout: float = 900, max_running: int | None = None) -> None:
        """runtime "container" runs the images (`docker`: a docker.DockerClient, else one is
        opened with devtools.containers and a missing engine raises EngineError); "process"
        runs `entrypoint` (default: this virtualenv's ghvault) for every task.
        `max_running`: at most this many containers at once, the others wait their turn in
        the order moto received them (None: all at once; see the module docstring)."""
        if runtime not in ("container", "process"):
            raise ValueError(f"runtime must be 'container' or 'process', not {runtime!r}")
        self.max_running = max_running
        self._turns = Turns(max_running)  # raises for a bound below 1
        self.endpoint = endpoint
        self.region = region
        self.account_id = account_id
        self.extra_env = {**moto_env(endpoint, region), **(extra_env or {})}
        self.runtime_name = runtime
        self.docker = docker
        self.image_map = image_map or ghvault_images()
        self.mounts = dict(mounts or {})
        self.entrypoint = entrypoint
        self.runtime: ContainerRuntime | ProcessRuntime | None = None
        self._resources = contextlib.ExitStack()
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.runs: list[ContainerRun] = []
        self._seen: set[str] = set()
        self._start_failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []
        self._scratch = tempfile.TemporaryDirectory(prefix="fargate-")

    # -- control ---------------------------------------------------------------------------

    def __enter__(self) -> FargateEmulator:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        from moto.moto_api import state_manager

        # The harness, not describe_tasks, moves tasks: freeze moto's own progression.
        if self.runtime_name == "container":
            if self.docker is None:
                from devtools.containers import docker_client

                self.docker, _ = self._resources.enter_context(docker_client())
            self.docker.ping()  # an engine that does not answer fails here, not in a task
            self.runtime = ContainerRuntime(self.docker)
        else:
            self.runtime = ProcessRuntime()
        state_manager.set_transition(model_name="ecs::task",
                                     transition={"progression": "manual", "times": 10**9})
        # StopTask as ECS: desiredStatus STOPPED now, lastStatus once the container exited.
        backend = self.backend
        backend.stop_task = self._stop_task
        self._seen.update(self._all_tasks())  # tasks from before the harness are not ours
        self._thread = threading.Thread(target=self._watch, name="fargate-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        from moto.moto_api import state_manager

        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        for worker in self._workers:
            worker.join(timeout=30)
        state_manager.unset_transition(model_name="ecs::task")
        vars(self.backend).pop("stop_task", None)  # moto's own method again
        self._scratch.cleanup()
        self._resources.close()

    def _stop_task(self, cluster_str: str, task_str: str, reason: str):
        task_id = task_str.split("/")[-1]
        cluster = self.backend._get_cluster(cluster_str)
        for arn, task in self.backend.tasks.get(cluster.name, {}).items():
            if arn.endswith(task_id):
                if task.desired_status != "STOPPED":
                    task.desired_status = "STOPPED"
                    task.stopped_reason = reason or "Task stopped by user"
                    task.user_stopped = True
                return task
        raise Exception(f"Could not find task {task_str} on cluster {cluster.name}")

    def fail_next_start(self, reason: str = "CannotPullContainerError: pull image manifest "
                        "has been retried 5 time(s): ghvault:latest: not found") -> None:
        """Make the next task moto receives fail to start with this stoppedReason."""
        with self._lock:
            self._start_failures.append(reason)

    def wait_idle(self, timeout: float = 60) -> None:
        """Wait until every task seen so far has stopped."""
        deadline = time.monotonic() + timeout
        for run in list(self.runs):
            run.finished.wait(max(0.0, deadline - time.monotonic()))

    # -- moto's backend --------------------------------------------------------------------

    @property
    def backend(self):
        from moto.ecs.models import ecs_backends

        return ecs_backends[self.account_id][self.region]

    def _all_tasks(self) -> dict[str, object]:
        for _ in range(5):
            try:
                return {arn: task for tasks in list(self.backend.tasks.values())
                        for arn, task in list(tasks.items())}
            except RuntimeError:  # changed size during iteration: moto is serving a request
                time.sleep(0.01)
        return {}

    def _client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_interval):
            for arn, task in self._all_tasks().items():
                if arn in self._seen:
                    continue
                self._seen.add(arn)
                self._turns.enqueue(arn)
                worker = threading.Thread(target=self._launch_task, args=(task,),
                                          name=f"fargate-{arn.rsplit('/', 1)[-1][:8]}",
                                          daemon=True)
                self._workers.append(worker)
                worker.start()

    # -- one task ----------------------------------------------------------------------------

    def _launch_task(self, task) -> None:
        try:
            self._launch(task)
        finally:  # whatever happened, it no longer holds up the tasks queued behind it
            self._turns.leave(task.task_arn)

    def _launch(self, task) -> None:
        taskdef = self.backend.describe_task_definition(task.task_definition_arn)
        cdef = next((c for c in taskdef.container_definitions if c.get("essential", True)),
                    taskdef.container_definitions[0])
        name = cdef["name"]
        override = next((o for o in task.overrides.get("containerOverrides", [])
                         if o.get("name") == name), {})
        run = ContainerRun(task_arn=task.task_arn, started_by=task.started_by, container=name)
        self.runs.append(run)
        try:
            with self._lock:
                failure = self._start_failures.pop(0) if self._start_failures else None
            if failure:
                raise TaskStartFailure(failure)
            image = self._local_image(cdef["image"])
            secrets = self._resolve_secrets(cdef.get("secrets", []))
            log_stream = self._open_log_stream(cdef, task)
        except TaskStartFailure as e:
            self._turns.leave(task.task_arn)  # now: the tasks behind it need not wait
            self._record_stop(task, run, None, "TaskFailedToStart", str(e))
            return

        env = {e["name"]: e["value"] for e in cdef.get("environment", [])}
        env.update({e["name"]: e["value"] for e in override.get("environment", [])})
        env.update(secrets)
        env.update(self.extra_env)
        scratch = Path(self._scratch.name) / task.id
        scratch.mkdir(parents=True, exist_ok=True)
        spec = ContainerSpec(
            image=image, entrypoint=cdef.get("entryPoint") or self.entrypoint,
            command=list(override.get("command") or cdef.get("command") or IMAGE_CMD),
            environment=env, user=cdef.get("user"), working_dir=cdef.get("workingDirectory"),
            read_only=bool(cdef.get("readonlyRootFilesystem")),
            volumes=[m["containerPath"] for m in cdef.get("mountPoints", [])],
            mounts=self.mounts, stop_timeout=int(cdef.get("stopTimeout") or
                                                 DEFAULT_STOP_TIMEOUT), scratch=scratch)
        run.command = spec.command
        run.secret_names = sorted(secrets)
        run.environment = {k: ("***" if k in secrets else v) for k, v in env.items()}
        run.log_stream = log_stream[1] if log_stream else None

        if self.max_running:
            task.last_status = "PROVISIONING"  # as a task ECS has not placed yet
        if not self._turns.take(task.task_arn, lambda: task.desired_status == "STOPPED"
                                or self._stop.is_set(), self.poll_interval):
            self._record_stop(task, run, None, "UserInitiated",
                              task.stopped_reason or "stopped before it could start")
            return
        try:
            self._run_container(task, run, spec, log_stream)
        finally:
            self._turns.release()

    def _run_container(self, task, run: ContainerRun, spec: ContainerSpec,
                       log_stream: tuple[str, str] | None) -> None:
        task.containers[0].last_status = "RUNNING"
        task.started_at = datetime.now(UTC)
        task.last_status = "RUNNING"
        run.started_s = time.monotonic()
        shipper = LogShipper(self._client("logs"), log_stream) if log_stream else None

        def on_line(line: str) -> None:
            run.output.append(line)
            if shipper:
                shipper.add(line)

        deadline = time.monotonic() + self.timeout
        exit_code = self.runtime.run(
            spec, on_line, tick=shipper.tick if shipper else (lambda: None),
            stop_requested=lambda: (task.desired_status == "STOPPED"
                                    or time.monotonic() > deadline))
        run.ended_s = time.monotonic()
        if shipper:
            shipper.flush()
        if getattr(task, "user_stopped", False):
            self._record_stop(task, run, exit_code, "UserInitiated", task.stopped_reason)
        else:
            self._record_stop(task, run, exit_code, "EssentialContainerExited",
                              "Essential container in task exited")

    def _local_image(self, image: str) -> str:
        """The local image the task definition's image runs as (container runtime)."""
        if self.runtime_name == "process":
            return image  # the process runtime runs this virtualenv's ghvault for any image
        local = self.image_map(image)
        why = (f"the harness's image_map names no local image for {image}" if local is None
               else self.runtime.check_image(local))
        if why:
            raise TaskStartFailure("CannotPullContainerError: pull image manifest has been "
                                   f"retried 5 time(s): {image}: not found ({why})")
        return local

    def _resolve_secrets(self, secrets: list[dict]) -> dict[str, str]:
        values = {}
        for secret in secrets:
            source = secret["valueFrom"]
            if source.startswith("arn:") and source.split(":")[2] == "secretsmanager":
                values[secret["name"]] = self._secrets_manager_value(source)
                continue
            try:
                name = source.split(":parameter", 1)[1] if source.startswith("arn:") else source
                ssm = self._client("ssm")
                param = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
                values[secret["name"]] = param["Value"]
            except Exception as e:  # what ECS says when the execution role cannot read it
                code = getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
                raise TaskStartFailure(
                    "ResourceInitializationError: unable to pull secrets or registry auth: "
                    "execution resource retrieval failed: unable to retrieve secrets from ssm: "
                    f"service call has been retried 1 time(s): {code}: {source}") from e
        return values

    def _secrets_manager_value(self, source: str) -> str:
        """A Secrets Manager `valueFrom` as ECS reads it: the secret's ARN, optionally followed
        by `:json-key:version-stage:version-id` (each part may be empty); the whole
        SecretString, or one key of it when it is JSON. ECS injects no SecretBinary."""
        parts = source.split(":")
        arn = ":".join(parts[:7])
        json_key, stage, version = (parts[7:] + ["", "", ""])[:3]
        request = {"SecretId": arn}
        if stage:
            request["VersionStage"] = stage
        if version:
            request["VersionId"] = version
        problem = None
        try:
            answer = self._client("secretsmanager").get_secret_value(**request)
        except Exception as e:  # noqa: BLE001 - ECS reports whatever the call raised
            code = getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
            problem = f"failed to fetch secret {arn} from secrets manager: {code}"
        else:
            value = answer.get("SecretString")
            if value is None:
                problem = f"secret {arn}: SecretBinary is not supported, use a SecretString"
            elif json_key:
                try:
                    value = json.loads(value)[json_key]
                except (ValueError, KeyError, TypeError):
                    problem = (f"retrieved secret from Secrets Manager did not contain json key "
                               f"{json_key}")
        if problem:
            raise TaskStartFailure(
                "ResourceInitializationError: unable to pull secrets or registry auth: "
                "execution resource retrieval failed: unable to retrieve secret from asm: "
                f"service call has been retried 1 time(s): {problem}")
        return value if isinstance(value, str) else json.dumps(value)

    def _open_log_stream(self, cdef: dict, task) -> tuple[str, str] | None:
        config = cdef.get("logConfiguration") or {}
        if config.get("logDriver") != "awslogs":
            return None
        options = config.get("options", {})
        group = options["awslogs-group"]
        prefix = options.get("awslogs-stream-prefix")
        stream = f"{prefix}/{cdef['name']}/{task.id}" if prefix else task.id
        logs = self._client("logs")
        if options.get("awslogs-create-group") == "true":
            try:
                logs.create_log_group(logGroupName=group)
            except logs.exceptions.ResourceAlreadyExistsException:
                pass
        try:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except logs.exceptions.ResourceNotFoundException as e:
            raise TaskStartFailure(
                "ResourceInitializationError: failed to validate logger args: create stream "
                f"has been retried 1 times: failed to create Cloudwatch log stream: "
                f"ResourceNotFoundException: The specified log group does not exist: {group}"
            ) from e
        return group, stream

    @staticmethod
    def _record_stop(task, run: ContainerRun, exit_code: int | None, stop_code: str,
                     reason: str) -> None:
        container = task.containers[0]
        container.exitCode = exit_code  # None: no exit code, as for a task that never started
        if exit_code is None:
            container.reason = reason
        container.last_status = "STOPPED"
        task.stop_code = stop_code
        task.stopped_reason = reason
        task.stopped_at = datetime.now(UTC)
        task.desired_status = "STOPPED"
        task.last_status = "STOPPED"  # last: the waiter must not see a half-stopped task
        run.exit_code, run.stop_code, run.stopped_reason = exit_code, stop_code, reason
        run.finished.set()
