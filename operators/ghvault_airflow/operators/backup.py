"""Backup operators: one owner, one month, one archive at the key the settings dictate.

``GithubBackupOperator`` runs the engine with the run's runner, which is configuration (the
``runner`` argument, the run plan's or the settings' ``runner``), not a task of its own: ``ecs``
runs the ghvault container as an ECS (Fargate) task through the amazon provider's
``EcsRunTaskOperator``; any other runner is a class of :data:`RUNNERS` (``local``:
``ghvault run`` on the worker, :class:`~.local.LocalRunner`; ``docker``: the engine image on
the worker's container engine, :class:`~.docker_runner.DockerRunner`).
``LocalBackupOperator`` is the local runner as an operator of its own. All take the same
arguments, return the same XCom and raise the same exceptions. The GitHub token never passes
through Airflow's arguments: ECS injects it from SSM (the task definition's ``secrets``); the
local and docker runners (``.runner``) read it from SSM at run time into the engine's
environment only (the child process's, the container's).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

from airflow.providers.amazon.aws.exceptions import EcsTaskFailToStart
from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from botocore.exceptions import ClientError, WaiterError
from ghvault.contract import parse_summary

from ghvault_airflow.operators.docker_runner import DockerRunner
from ghvault_airflow.operators.engine import (  # noqa: F401  (the exceptions are this module's API too)
    EXIT_CODES,
    BackupContract,
    BackupFailed,
    DestinationFailed,
    EngineAuthError,
    EngineConfigError,
    GitHubUnavailable,
    OwnerNotFound,
    VerificationFailed,
    VerifyContract,
    engine_arguments,
    engine_error,
)
from ghvault_airflow.operators.local import (  # noqa: F401  (the local operators: this module's API)
    LocalBackupOperator,
    LocalRunner,
    LocalVerifyOperator,
)
from ghvault_airflow.settings import (
    DeploymentSettings,
    SettingsError,
    describe_credential,
    waiter_limits,
)

# The runners other than the operator's own ECS path: name -> class(operator), with
# execute(context) and stop(). Their names are settings.RUNNERS.
RUNNERS = {"local": LocalRunner, "docker": DockerRunner}


class TaskStartFailed(BackupFailed):
    """ECS accepted the task but could not start its container (stopCode TaskFailedToStart)."""


def awslogs_stream(prefix: str, container: str, task_arn: str) -> str:
    """The stream the awslogs driver writes a container's output to:
    ``prefix-name/container-name/ecs-task-id`` (AWS's documented naming)."""
    return f"{prefix}/{container}/{task_arn.rsplit('/', 1)[-1]}"


class GithubBackupOperator(BackupContract, EcsRunTaskOperator):
    """Back up one GitHub owner for one month with the ghvault container on ECS Fargate.

    Takes :class:`~ghvault_airflow.operators.engine.BackupContract`'s arguments (``github_owner``,
    ``settings``, ``month``, ``kinds``, ``repos``, ``exclude_repos``). ``cluster``,
    ``task_definition``, ``container_name``, ``network_configuration``,
    ``launch_type``/``capacity_provider_strategy``, ``awslogs_*``, ``region_name`` and
    ``aws_conn_id`` default to the settings; any other ``EcsRunTaskOperator`` argument passes
    through. Returns ``{"owner", "month", "bucket", "key", "manifest_key", "summary"}`` and
    pushes the ECS task ARN to XCom key ``ecs_task_arn``; ``summary`` is the engine's summary
    line, which is the container's last log line the provider returns.

    Deferrable by default: the triggerer waits for the task, no worker slot is held. The
    waiter polls every ``waiter_delay`` seconds (default: the settings'
    ``waiter_delay_seconds``) and gives up when the task's ``execution_timeout`` (else the
    settings' ``backup_timeout``) has passed. A container that ends on a non-zero exit code
    raises the engine's exception for it (:mod:`~ghvault_airflow.operators.engine`); a task
    ECS could not start raises :class:`TaskStartFailed` naming the likely fix.
    """

    template_fields: Sequence[str] = (*EcsRunTaskOperator.template_fields,
                                      *BackupContract.backup_fields, "runner")
    template_fields_renderers = {**EcsRunTaskOperator.template_fields_renderers,
                                 "settings": "json"}
    ui_color = "#d5e8d4"

    def __init__(self, *, task_definition: str | None = None, cluster: str | None = None,
                 overrides: dict | None = None, launch_type: str | None = None,
                 aws_conn_id: str | None = None,
                 reattach: bool = True, propagate_tags: str | None = "TASK_DEFINITION",
                 deferrable: bool = True, waiter_delay: int | None = None,
                 waiter_max_attempts: int | None = None,
                 number_logs_exception: int = 20, runner: str | None = None,
                 engine_command: list[str] | None = None, **kwargs) -> None:
        self.runner = runner
        self.engine_command = engine_command
        self._other_runner = None
        self._conn_from_settings = aws_conn_id is None
        # waiter_delay / waiter_max_attempts left None are derived in prepare() from the
        # settings and the task's execution_timeout (settings.waiter_limits)
        super().__init__(task_definition=task_definition, cluster=cluster,
                         overrides=overrides or {}, launch_type=launch_type,
                         aws_conn_id=aws_conn_id or "aws_default", reattach=reattach,
                         propagate_tags=propagate_tags, deferrable=deferrable,
                         waiter_delay=waiter_delay, waiter_max_attempts=waiter_max_attempts,
                         number_logs_exception=number_logs_exception, **kwargs)
        self._token_source: str | None = None
        self._run_state: tuple[DeploymentSettings, str, str] | None = None

    # -- building the task ------------------------------------------------------------------
    def prepare(self, context) -> tuple[DeploymentSettings, str, str]:
        """Fill every ECS argument from the settings; return (settings, month, key)."""
        settings, month, key = self._resolve(context)
        try:
            settings.require_ecs()
        except SettingsError as err:
            raise EngineConfigError(str(err)) from err
        if self._conn_from_settings:
            self.aws_conn_id = settings.aws_conn_id
        self.region_name = self.region_name or settings.region
        self.cluster = self.cluster or settings.cluster
        self.task_definition = self.task_definition or settings.task_definition
        self.container_name = self.container_name or settings.container_name
        self.awslogs_group = self.awslogs_group or settings.log_group
        self.awslogs_stream_prefix = self.awslogs_stream_prefix or settings.log_stream_prefix
        self.awslogs_region = self.awslogs_region or settings.region
        if not self.network_configuration:
            self.network_configuration = self.network_for(settings)
        if not self.launch_type and not self.capacity_provider_strategy:
            if settings.capacity_provider:
                self.capacity_provider_strategy = [
                    {"capacityProvider": settings.capacity_provider, "weight": 1}]
            else:
                self.launch_type = "FARGATE"
        arguments = self.engine_argv(settings, month, key)
        self.overrides = self.overrides_for(settings, arguments, self.overrides)
        self._token_source = self._token_source or settings.credential_source
        self.set_waiter_limits(settings)
        return settings, month, key

    def set_waiter_limits(self, settings: DeploymentSettings) -> None:
        """Give up waiting exactly when the task's time is up: the waiter's (or, deferred,
        the trigger's) limit is the task's execution_timeout, else the settings'
        backup_timeout; one poll every waiter_delay_seconds."""
        limit = self.execution_timeout or settings.backup_timeout
        mismatch = self.execution_timeout and self.execution_timeout != settings.backup_timeout
        if mismatch and not isinstance(self, VerifyContract):  # verification is shorter
            self.log.warning("execution_timeout %s is not the settings' backup_timeout %s: "
                             "the ECS waiter follows execution_timeout", self.execution_timeout,
                             settings.backup_timeout)
        if self.waiter_delay is None:
            self.waiter_delay = settings.waiter_delay_seconds
        if self.waiter_max_attempts is None:
            self.waiter_max_attempts = waiter_limits(limit, self.waiter_delay)[1]

    @staticmethod
    def network_for(settings: DeploymentSettings) -> dict:
        config: dict[str, Any] = {"subnets": list(settings.subnets),
                                  "assignPublicIp": "ENABLED" if settings.assign_public_ip
                                  else "DISABLED"}
        if settings.security_groups:
            config["securityGroups"] = list(settings.security_groups)
        return {"awsvpcConfiguration": config}

    def overrides_for(self, settings: DeploymentSettings, arguments: list[str],
                      extra: dict | None = None) -> dict:
        """RunTask overrides: the engine's command and NON-secret environment for its container.

        Other containers' and task-level overrides given to the operator are kept; the
        environment given for the ghvault container is merged under the settings' one.
        """
        environment = {}
        if settings.region:
            environment["AWS_DEFAULT_REGION"] = settings.region
        environment.update(settings.engine_env)
        overrides = {k: v for k, v in (extra or {}).items() if k != "containerOverrides"}
        containers = [dict(c) for c in (extra or {}).get("containerOverrides", [])]
        ours = next((c for c in containers if c.get("name") == self.container_name), None)
        if ours is None:
            ours = {"name": self.container_name}
            containers.append(ours)
        given = {e["name"]: e["value"] for e in ours.get("environment", [])}
        ours["command"] = arguments
        ours["environment"] = [{"name": k, "value": v}
                               for k, v in {**given, **environment}.items()]
        overrides["containerOverrides"] = containers
        return overrides

    def check_task_definition(self) -> None:
        """Fail fast when the task definition cannot run the engine safely."""
        try:
            definition = self.client.describe_task_definition(
                taskDefinition=self.task_definition)["taskDefinition"]
        except ClientError as err:
            if err.response["Error"]["Code"] in ("AccessDeniedException", "AccessDenied"):
                self.log.warning("Cannot read task definition %s (%s): skipping its checks",
                                 self.task_definition, err)
                return
            raise EngineConfigError(
                f"ECS task definition {self.task_definition!r} cannot be read ({err}): register "
                "it (infra/) or fix 'task_definition' in the settings.") from err
        containers = {c["name"]: c for c in definition.get("containerDefinitions", [])}
        container = containers.get(self.container_name)
        if container is None:
            raise EngineConfigError(
                f"task definition {self.task_definition!r} has no container named "
                f"{self.container_name!r} (it has {', '.join(sorted(containers))}): set "
                "'container_name' in the settings.")
        plain = {e.get("name") for e in container.get("environment", [])}
        for name in sorted(plain & {"GITHUB_TOKEN", "GITHUB_APP_PRIVATE_KEY"}):
            raise EngineConfigError(
                f"task definition {self.task_definition!r} carries {name} as plain "
                "environment: move it to the container's secrets (valueFrom the SSM parameter "
                "or the Secrets Manager secret).")
        secrets = {s["name"]: s.get("valueFrom", "") for s in container.get("secrets", [])}
        if "GITHUB_TOKEN" in secrets:
            self._token_source = describe_credential(secrets["GITHUB_TOKEN"])
        elif "GITHUB_APP_PRIVATE_KEY" in secrets:
            self._token_source = describe_credential(secrets["GITHUB_APP_PRIVATE_KEY"])
        else:
            self.log.warning("Container %s of %s has no GITHUB_TOKEN secret: the engine will "
                             "have no token", self.container_name, self.task_definition)

    # -- running and checking ---------------------------------------------------------------
    # Only the provider's public API: execute / execute_complete return the container's last
    # log line (the engine's summary line); a failure is read back from describe_tasks.
    def resolved_runner(self, context) -> str:
        """The runner argument, else the run plan's, else the settings' ``runner``."""
        plan = self.run_plan if isinstance(self.run_plan, dict) else {}
        runner = self.runner or plan.get("runner") or self._resolve(context)[0].runner
        if runner != "ecs" and runner not in RUNNERS:
            raise EngineConfigError(f"runner {runner!r} is not one of ecs, "
                                    f"{', '.join(RUNNERS)}: fix the runner param or the "
                                    "settings' 'runner'.")
        return runner

    def execute(self, context):
        runner = self.resolved_runner(context)
        if runner != "ecs":
            self._other_runner = RUNNERS[runner](self, self.engine_command)
            return self._other_runner.execute(context)
        settings, month, key = self._run_state = self.prepare(context)
        if self.writes_archive:
            self.note_replaced(context, settings, key)
        self.check_task_definition()
        self.log.info("%s %s for %s, s3://%s/%s (waiting at most %s, polling every %d s%s)",
                      self.doing, self.github_owner, month, settings.bucket, key,
                      self.execution_timeout or settings.backup_timeout, self.waiter_delay,
                      ", deferred to the triggerer" if self.deferrable else "")
        with self._engine_failures():
            last_line = super().execute(context)  # deferrable: raises TaskDeferred
        return self._result(settings, month, key, self.read_summary(last_line))

    def execute_complete(self, context, event: dict[str, Any] | None = None):
        settings, month, key = self._run_state = self.prepare(context)
        with self._engine_failures():
            last_line = super().execute_complete(context, event)
        return self._result(settings, month, key, self.read_summary(last_line))

    def on_kill(self) -> None:
        if self._other_runner is not None:
            self._other_runner.stop()
        else:
            super().on_kill()

    @contextmanager
    def _engine_failures(self):
        """Turn the provider's failures into the engine's specific exceptions."""
        try:
            yield
        except AirflowSkipException:  # skip_on_exit_code
            raise
        except EcsTaskFailToStart as err:
            raise self.start_failure(str(err)) from err
        except (AirflowException, WaiterError) as err:
            error = self.engine_failure_of_task()
            if error is None and isinstance(err, WaiterError) and "max attempts" in str(
                    err).lower():
                error = BackupFailed(
                    f"The ECS task {self.arn} backing up {self.github_owner} did not stop "
                    f"within {self.waiter_delay * self.waiter_max_attempts} s ({err}): raise "
                    "backup_timeout_hours in the settings (and the task's execution_timeout), "
                    "or back up fewer repositories per task")
            if error is None:
                raise
            raise error from err

    def start_failure(self, reason: str) -> TaskStartFailed:
        """The exception for a task ECS could not start, naming the likely fix."""
        lowered = reason.lower()
        if "secret" in lowered or "ssm" in lowered:
            fix = (f"ECS could not inject the GitHub credential: check that "
                   f"{self._token_source} exists and that the task execution role may read it "
                   "(ssm:GetParameters or secretsmanager:GetSecretValue, and kms:Decrypt)")
        elif "cannotpullcontainer" in lowered:
            fix = ("the engine image cannot be pulled: push it to the registry the task "
                   f"definition {self.task_definition} names, and let the execution role pull it")
        elif "log group" in lowered or "awslogs" in lowered:
            fix = (f"create the CloudWatch log group {self.awslogs_group} (infra/ghvault.yaml "
                   "does), or fix 'log_group' in the settings")
        else:
            fix = "see the task's stoppedReason in the ECS console; Airflow retries the task"
        return TaskStartFailed(f"ECS could not start the task backing up {self.github_owner} "
                               f"({reason}): {fix}.")

    def engine_failure_of_task(self) -> BackupFailed | None:
        """The engine's exception for the stopped task's container exit code (None when the
        container did not end on a non-zero code of its own: the provider's error stands)."""
        if not self.arn or self._run_state is None:
            return None
        settings, month, key = self._run_state
        tasks = self.client.describe_tasks(cluster=self.cluster, tasks=[self.arn])["tasks"]
        for task in tasks:
            if task.get("stopCode") == "SpotInterruption":
                return BackupFailed(
                    f"Fargate Spot reclaimed the task backing up {self.github_owner} "
                    f"({task.get('stoppedReason', '')}): Airflow retries it; set "
                    "capacity_provider to FARGATE if this keeps happening.")
            if task.get("stopCode") == "TaskFailedToStart":
                return self.start_failure(task.get("stoppedReason", ""))
            for container in task.get("containers", []):
                if container.get("name") != self.container_name:
                    continue
                if container.get("lastStatus") != "STOPPED" or not container.get("exitCode"):
                    continue
                return self.engine_failure(
                    container["exitCode"], settings=settings, month=month, key=key,
                    token_source=self._token_source or "", where="the task role",
                    log_lines=self.last_log_lines())
        return None

    def last_log_lines(self, limit: int | None = None) -> list[str]:
        """The container's last CloudWatch log lines (the awslogs stream of this task)."""
        if not (self.awslogs_group and self.awslogs_stream_prefix and self.arn):
            return []
        logs = AwsLogsHook(aws_conn_id=self.aws_conn_id, region_name=self.resolve_awslogs_region(),
                           verify=self.verify, config=self.botocore_config).conn
        try:
            events = logs.get_log_events(
                logGroupName=self.awslogs_group,
                logStreamName=awslogs_stream(self.awslogs_stream_prefix, self.container_name,
                                             self.arn),
                startFromHead=False, limit=limit or self.number_logs_exception)["events"]
        except ClientError as err:
            self.log.warning("Cannot read the container's log: %s", err)
            return []
        return [e["message"] for e in events]

    def read_summary(self, last_line: str | None) -> dict | None:
        """The engine's summary: the last log line the provider returned."""
        summary = parse_summary([last_line] if last_line else [])
        if summary is None and (self.awslogs_group and self.do_xcom_push):
            self.log.warning("The container's last log line is not the engine's summary: %r",
                             last_line)
        return summary


class GithubVerifyOperator(VerifyContract, GithubBackupOperator):
    """Run ``ghvault verify s3://BUCKET/KEY`` on the month's archive with the runner that
    ``verify_with`` names (on ecs: a task of the same task definition), or skip when it is
    empty (verification off). Same arguments as :class:`GithubBackupOperator` plus
    ``verify_with``; the container's token secret is not used."""

    template_fields: Sequence[str] = (*GithubBackupOperator.template_fields, "verify_with")
    runner_kind = None

    def resolved_runner(self, context) -> str:
        if not self.runner and self.verify_with:
            self.runner = self.verify_with
        return super().resolved_runner(context)
