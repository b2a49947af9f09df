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
   ECS's `:json-key:version-stage:version-id` suffix), then whatever the test adds
   (`extra_env`: moto's endpoint and credentials stand in for the task role, the
   simulator's CA for GitHub's public one);
3. it refuses to start the task the way ECS does when a secret cannot be read or the
   awslogs log group does not exist (`stopCode` TaskFailedToStart, a
   ResourceInitializationError reason, a STOPPED container without an exit code), or
   when the test asked for it (`fail_next_start`);
4. otherwise it runs the image's ENTRYPOINT (`ghvault`, from this virtualenv) with the
   override's command, streams the merged stdout/stderr into the awslogs stream
   `<prefix>/<container>/<task id>` in moto's CloudWatch Logs, as the awslogs driver does;
5. and records the real exit code: container `lastStatus` STOPPED with `exitCode`, task
   `stopCode` EssentialContainerExited, `desiredStatus` and `lastStatus` STOPPED. The
   amazon provider's own waiter and success check then decide, exactly as against ECS.

`stop_task` (the provider's `on_kill`) kills the running process.

    with FargateEmulator(moto.endpoint, extra_env={...}) as fargate:
        ...  # run the DAG; every task moto receives is run
        fargate.runs  # what ran: command, environment names, exit code, output
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import boto3

DEFAULT_ACCOUNT = "123456789012"
GHVAULT = str(Path(sys.executable).with_name("ghvault"))

# What the image (image/Dockerfile) sets: ENTRYPOINT, CMD and ENV.
IMAGE_ENTRYPOINT = [GHVAULT]
IMAGE_CMD = ["--help"]
IMAGE_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"}


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
    finished: threading.Event = field(default_factory=threading.Event, repr=False)


class TaskStartFailure(Exception):
    """The task cannot start (ECS: stopCode TaskFailedToStart)."""


class FargateEmulator:
    """Run the tasks that moto's ECS receives; see the module docstring."""

    def __init__(self, endpoint: str, *, region: str = "us-east-1",
                 account_id: str = DEFAULT_ACCOUNT, extra_env: dict[str, str] | None = None,
                 entrypoint: list[str] | None = None, poll_interval: float = 0.1,
                 timeout: float = 900) -> None:
        self.endpoint = endpoint
        self.region = region
        self.account_id = account_id
        self.extra_env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                          "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": region,
                          **(extra_env or {})}
        self.entrypoint = entrypoint or IMAGE_ENTRYPOINT
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
        state_manager.set_transition(model_name="ecs::task",
                                     transition={"progression": "manual", "times": 10**9})
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
        self._scratch.cleanup()

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
                worker = threading.Thread(target=self._launch, args=(task,),
                                          name=f"fargate-{arn.rsplit('/', 1)[-1][:8]}",
                                          daemon=True)
                self._workers.append(worker)
                worker.start()

    # -- one task ----------------------------------------------------------------------------

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
            secrets = self._resolve_secrets(cdef.get("secrets", []))
            log_stream = self._open_log_stream(cdef, task)
        except TaskStartFailure as e:
            self._record_stop(task, run, None, "TaskFailedToStart", str(e))
            return

        home = Path(self._scratch.name) / task.id
        home.mkdir(parents=True, exist_ok=True)
        env = {"PATH": f"{Path(GHVAULT).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "HOME": str(home), "TMPDIR": str(home), **IMAGE_ENV}
        env.update({e["name"]: e["value"] for e in cdef.get("environment", [])})
        env.update({e["name"]: e["value"] for e in override.get("environment", [])})
        env.update(secrets)
        env.update(self.extra_env)
        command = list(override.get("command") or cdef.get("command") or IMAGE_CMD)
        argv = list(cdef.get("entryPoint") or self.entrypoint) + command
        run.command = command
        run.secret_names = sorted(secrets)
        run.environment = {k: ("***" if k in secrets else v) for k, v in env.items()}
        run.log_stream = log_stream[1] if log_stream else None

        task.containers[0].last_status = "RUNNING"
        task.started_at = datetime.now(UTC)
        task.last_status = "RUNNING"
        exit_code = self._run_container(task, argv, env, home, run, log_stream)
        self._record_stop(task, run, exit_code, "EssentialContainerExited",
                          "Essential container in task exited")

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

    def _run_container(self, task, argv: list[str], env: dict[str, str], cwd: Path,
                       run: ContainerRun, log_stream: tuple[str, str] | None) -> int:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        shipper = _LogShipper(self._client("logs"), log_stream) if log_stream else None
        reader = threading.Thread(target=self._read_output, args=(proc, run, shipper),
                                  daemon=True)
        reader.start()
        deadline = time.monotonic() + self.timeout
        while proc.poll() is None:
            if shipper:
                shipper.tick()
            # stop_task (the provider's on_kill) sets desiredStatus STOPPED: SIGTERM, as ECS.
            if task.desired_status == "STOPPED" or time.monotonic() > deadline:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                break
            time.sleep(0.1)
        proc.wait()
        reader.join(timeout=30)
        if shipper:
            shipper.flush()
        code = proc.returncode
        return 128 - code if code < 0 else code  # killed by signal N -> 128+N, as Docker

    @staticmethod
    def _read_output(proc: subprocess.Popen, run: ContainerRun, shipper) -> None:
        for line in proc.stdout:
            line = line.rstrip("\n")
            run.output.append(line)
            if shipper:
                shipper.add(line)

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


class _LogShipper:
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
        """Ship what waits once the interval has passed (called while the process runs)."""
        if time.monotonic() - self.last_flush > self.interval:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            events, self.pending = self.pending, []
            self.last_flush = time.monotonic()
            if events:
                self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream,
                                         logEvents=events)
