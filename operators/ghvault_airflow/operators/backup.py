"""Backup operators: one owner, one month, one archive at the key the settings dictate.

``GithubBackupOperator`` runs the ghvault container as an ECS (Fargate) task through the amazon
provider's ``EcsRunTaskOperator``; ``LocalBackupOperator`` runs ``ghvault run`` on the worker.
Both take the same arguments, return the same XCom and raise the same exceptions. The GitHub
token never passes through Airflow's arguments: ECS injects it from SSM (the task definition's
``secrets``); the local runner (``.local``) reads it from SSM at run time into the
child's environment only.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.providers.amazon.aws.exceptions import EcsTaskFailToStart
from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from botocore.exceptions import ClientError
from ghvault.contract import parse_summary

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
from ghvault_airflow.operators.local import LocalBackupOperator, LocalVerifyOperator
from ghvault_airflow.settings import DeploymentSettings, SettingsError, describe_credential

SIX_HOURS_OF_15S = 4 * 60 * 6


class GithubBackupOperator(BackupContract, EcsRunTaskOperator):
    """Back up one GitHub owner for one month with the ghvault container on ECS Fargate.

    Takes :class:`~ghvault_airflow.operators.engine.BackupContract`'s arguments (``github_owner``,
    ``settings``, ``month``, ``kinds``, ``repos``, ``exclude_repos``). ``cluster``,
    ``task_definition``, ``container_name``, ``network_configuration``,
    ``launch_type``/``capacity_provider_strategy``, ``awslogs_*``, ``region_name`` and
    ``aws_conn_id`` default to the settings; any other ``EcsRunTaskOperator`` argument passes
    through. Returns ``{"owner", "month", "bucket", "key", "manifest_key", "summary"}`` and
    pushes the ECS task ARN to XCom key ``ecs_task_arn``.
    """

    template_fields: Sequence[str] = (*EcsRunTaskOperator.template_fields,
                                      *BackupContract.backup_fields)
    template_fields_renderers = {**EcsRunTaskOperator.template_fields_renderers,
                                 "settings": "json"}
    ui_color = "#d5e8d4"

    def __init__(self, *, task_definition: str | None = None, cluster: str | None = None,
                 overrides: dict | None = None, launch_type: str | None = None,
                 aws_conn_id: str | None = None,
                 reattach: bool = True, propagate_tags: str | None = "TASK_DEFINITION",
                 waiter_delay: int = 15, waiter_max_attempts: int = SIX_HOURS_OF_15S,
                 number_logs_exception: int = 20, **kwargs) -> None:
        self._conn_from_settings = aws_conn_id is None
        super().__init__(task_definition=task_definition, cluster=cluster,
                         overrides=overrides or {}, launch_type=launch_type,
                         aws_conn_id=aws_conn_id or "aws_default", reattach=reattach,
                         propagate_tags=propagate_tags, waiter_delay=waiter_delay,
                         waiter_max_attempts=waiter_max_attempts,
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
        return settings, month, key

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
    def execute(self, context):
        settings, month, key = self._run_state = self.prepare(context)
        self.check_task_definition()
        self.log.info("%s %s for %s, s3://%s/%s", self.doing, self.github_owner, month,
                      settings.bucket, key)
        super().execute(context)  # defers in deferrable mode: execute_complete resumes
        return self._result(settings, month, key, self.read_summary())

    def execute_complete(self, context, event: dict[str, Any] | None = None):
        settings, month, key = self._run_state = self.prepare(context)
        super().execute_complete(context, event)
        return self._result(settings, month, key, self.read_summary())

    def _check_success_task(self) -> None:
        try:
            super()._check_success_task()
        except AirflowSkipException:
            raise
        except EcsTaskFailToStart as err:
            if "secret" in str(err).lower() or "ssm" in str(err).lower():
                raise EcsTaskFailToStart(
                    f"{err}: ECS could not inject the GitHub credential; check that "
                    f"{self._token_source} exists and that the task execution role may read it "
                    "(ssm:GetParameters or secretsmanager:GetSecretValue, and kms:Decrypt)"
                ) from err
            raise
        except AirflowException as err:
            error = self._engine_error()
            if error is None:
                raise
            raise error from err

    def _engine_error(self) -> BackupFailed | None:
        """The engine's exception for a STOPPED container with a non-zero exit code."""
        settings, month, key = self._run_state
        tasks = self.client.describe_tasks(cluster=self.cluster, tasks=[self.arn])["tasks"]
        for task in tasks:
            if task.get("stopCode") == "SpotInterruption":
                return BackupFailed(
                    f"Fargate Spot reclaimed the task backing up {self.github_owner} "
                    f"({task.get('stoppedReason', '')}): Airflow retries it; set "
                    "capacity_provider to FARGATE if this keeps happening.")
            for container in task.get("containers", []):
                if container.get("name") != self.container_name:
                    continue
                if container.get("lastStatus") != "STOPPED" or not container.get("exitCode"):
                    continue  # not the engine's own failure: the provider's message stands
                return self.engine_failure(
                    container["exitCode"], settings=settings, month=month, key=key,
                    token_source=self._token_source or "", where="the task role",
                    log_lines=self._last_log_lines())
        return None

    @cached_property
    def _logs(self):
        return AwsLogsHook(aws_conn_id=self.aws_conn_id, region_name=self.resolve_awslogs_region(),
                           verify=self.verify, config=self.botocore_config).conn

    def _last_log_lines(self, limit: int | None = None) -> list[str]:
        if not self._aws_logs_enabled() or not self.arn:
            return []
        try:
            events = self._logs.get_log_events(
                logGroupName=self.awslogs_group, logStreamName=self._get_logs_stream_name(),
                startFromHead=False, limit=limit or self.number_logs_exception)["events"]
        except ClientError as err:
            self.log.warning("Cannot read the container's log: %s", err)
            return []
        return [e["message"] for e in events]

    def read_summary(self) -> dict | None:
        return parse_summary(self._last_log_lines(limit=10))


class GithubVerifyOperator(VerifyContract, GithubBackupOperator):
    """Run ``ghvault verify s3://BUCKET/KEY`` on the month's archive as an ECS task of the
    same task definition (the optional verification step of the ecs runner). Same arguments
    as :class:`GithubBackupOperator` plus ``verify_with``; the container's token secret is
    not used."""

    template_fields: Sequence[str] = (*GithubBackupOperator.template_fields, "verify_with")
    runner_kind = "ecs"


def backup_operator_class(runner: str, *, verify: bool = False) -> type[BaseOperator]:
    """The operator class for a runner, "ecs" or "local": the backup, or with ``verify`` the
    verification step."""
    classes = {("ecs", False): GithubBackupOperator, ("local", False): LocalBackupOperator,
               ("ecs", True): GithubVerifyOperator, ("local", True): LocalVerifyOperator}
    try:
        return classes[runner, verify]
    except KeyError:
        raise ValueError(f"runner {runner!r} is not 'ecs' or 'local': fix the runner param "
                         "or the settings' 'runner'.") from None
