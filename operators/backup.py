"""Backup operators: one owner, one month, one archive at the key the settings dictate.

``GithubBackupOperator`` runs the ghvault container as an ECS (Fargate) task through the amazon
provider's ``EcsRunTaskOperator``; ``LocalBackupOperator`` runs ``ghvault run`` on the worker.
Both take the same arguments, return the same XCom and raise the same exceptions. The GitHub
token never passes through Airflow's arguments: ECS injects it from SSM (the task definition's
``secrets``); the local runner reads it from SSM at run time into the child's environment only.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.exceptions import EcsTaskFailToStart
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
from airflow.providers.amazon.aws.hooks.ssm import SsmHook
from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.sdk.log import mask_secret
from botocore.exceptions import ClientError

from operators.settings import (
    VARIABLE_NAME,
    DeploymentSettings,
    SettingsError,
    archive_key,
    check_month,
    check_owner,
    load_settings,
    manifest_key,
    run_month,
)

SIX_HOURS_OF_15S = 4 * 60 * 6
_LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING,
           "ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL}
TOKEN_SCOPES = ("classic token scopes repo, read:org, read:user, gist; fine-grained: read access "
                "to contents, issues, pull requests and metadata")


class BackupFailed(AirflowException):
    """The backup did not produce its archive (engine exit 1 or an unexpected exit code)."""

    exit_code: int | None = None


class EngineConfigError(BackupFailed, AirflowFailException):
    """Arguments or configuration rejected (exit 2, or settings refused before starting)."""


class EngineAuthError(BackupFailed, AirflowFailException):
    """GitHub rejected the token (exit 3)."""


class OwnerNotFound(BackupFailed, AirflowFailException):
    """The owner does not exist or the token cannot see it (exit 4)."""


class DestinationFailed(BackupFailed):
    """The archive could not be written to S3 (exit 5)."""


class GitHubUnavailable(BackupFailed):
    """GitHub stayed unavailable after the engine's retries (exit 6)."""


EXIT_CODES: dict[int, type[BackupFailed]] = {
    1: BackupFailed, 2: EngineConfigError, 3: EngineAuthError, 4: OwnerNotFound,
    5: DestinationFailed, 6: GitHubUnavailable,
}


def engine_error(code: int, *, owner: str, month: str, settings: DeploymentSettings, key: str,
                 token_source: str, where: str, log_lines: Sequence[str] = ()) -> BackupFailed:
    """The exception for the engine's exit ``code``, with a message that says what to do."""
    dest = f"s3://{settings.bucket}/{key}"
    reasons = {
        1: f"ghvault failed with an internal error backing up {owner} for {month} (exit 1): "
           "the log lines below say where; rerun the task, and report it if it repeats",
        2: f"ghvault rejected its arguments or configuration backing up {owner} for {month} "
           f"(exit 2): fix the DAG params (kinds, repository patterns) or the {VARIABLE_NAME} "
           "Variable as the log lines below say",
        3: f"GitHub rejected the token while backing up {owner} (exit 3: missing, invalid, "
           f"expired or lacking scopes): update the SSM parameter {token_source} with a token "
           f"that can read {owner} ({TOKEN_SCOPES})",
        4: f"GitHub owner {owner!r} does not exist or is not visible to the token (exit 4): fix "
           f"the owner in the DAG's owners, or give the token in the SSM parameter {token_source} "
           "access to it",
        5: f"ghvault could not write {dest} (exit 5): check that bucket {settings.bucket} exists"
           f" and that {where} may s3:PutObject, s3:GetObject and s3:AbortMultipartUpload there,"
           " and that the scratch disk is large enough",
        6: f"GitHub stayed unavailable while backing up {owner} after the engine's retries "
           "(exit 6: server errors, rate limit or network): Airflow retries the task; if it "
           "keeps failing check https://www.githubstatus.com and the token's rate limit",
    }
    signals = {137: "killed with SIGKILL, usually out of memory: raise the task's memory",
               143: "terminated with SIGTERM: it was stopped (by ECS, Spot or Airflow)"}
    if code in reasons:
        message = reasons[code]
    elif code < 0:
        message = f"ghvault was killed by signal {-code} while backing up {owner} for {month}"
    else:
        hint = signals.get(code, "not one of the engine's documented exit codes")
        message = f"ghvault ended with exit code {code} backing up {owner} for {month} ({hint})"
    if log_lines:
        message += ".\nLast log lines:\n" + "\n".join(log_lines)
    else:
        message += "."
    error = EXIT_CODES.get(code, BackupFailed)(message)
    error.exit_code = code
    return error


def _as_list(value: Any) -> list[str] | None:
    """A list from a list, rendered list text, or comma-separated text; None for all/unset."""
    if isinstance(value, str):
        text = value.strip()
        if text in ("", "None", "null", "all", "[]"):
            return None
        if text.startswith("["):
            try:
                value = ast.literal_eval(text)  # rendered Python list, or JSON of strings
            except (ValueError, SyntaxError):
                value = text.strip("[]").replace('"', "").replace("'", "").split(",")
        else:
            value = text.split(",")
    if not value:
        return None
    return [str(v).strip() for v in value if str(v).strip()]


def _as_pattern(value: Any) -> str | None:
    """One regex from a regex or a list of them."""
    if isinstance(value, str) and not value.strip().startswith("["):
        text = value.strip()
        return None if text in ("", "None", "null") else text
    patterns = _as_list(value)
    if not patterns:
        return None
    return patterns[0] if len(patterns) == 1 else "|".join(f"(?:{p})" for p in patterns)


def engine_arguments(settings: DeploymentSettings, *, owner: str, month: str, key: str,
                     kinds: Any = None, repos: Any = None, exclude_repos: Any = None) -> list[str]:
    """``ghvault`` arguments (after the executable / container ENTRYPOINT). No secrets."""
    args = ["run", "--owner", owner, "--month", month, "--dest", f"s3://{settings.bucket}/{key}",
            "--api-url", settings.github_api_url]
    if settings.state_url:
        args += ["--state", settings.state_url]
    if kind_list := _as_list(kinds):
        args += ["--include", ",".join(kind_list)]
    if pattern := _as_pattern(repos):
        args += ["--repos", pattern]
    if pattern := _as_pattern(exclude_repos):
        args += ["--exclude-repos", pattern]
    return args


def parse_summary(lines: Sequence[str]) -> dict | None:
    """The engine's summary: the last line that is a JSON object (normally the very last)."""
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                return parsed
    return None


class _BackupContract:
    """What both runners share: settings, month, key, and the returned XCom."""

    backup_fields: Sequence[str] = ("github_owner", "settings", "month", "kinds", "repos",
                                    "exclude_repos")

    github_owner: str
    settings: dict | str | None
    month: str | None

    def _resolve(self, context) -> tuple[DeploymentSettings, str, str]:
        """(settings, month, key) for this run; EngineConfigError when any is unusable."""
        value = self.settings
        if value is None:
            from airflow.sdk import Variable

            value = Variable.get(VARIABLE_NAME, default=None)
        try:
            settings = load_settings(value)
            month = self.month if self.month not in (None, "", "None") else run_month(context)
            check_month(month)
            check_owner(self.github_owner)
            return settings, month, archive_key(settings.prefix, self.github_owner, month)
        except (SettingsError, ValueError) as err:
            raise EngineConfigError(str(err)) from err

    def _result(self, settings: DeploymentSettings, month: str, key: str,
                summary: dict | None) -> dict[str, Any]:
        return {"owner": self.github_owner, "month": month, "bucket": settings.bucket,
                "key": key, "manifest_key": manifest_key(key), "summary": summary}


class GithubBackupOperator(_BackupContract, EcsRunTaskOperator):
    """Back up one GitHub owner for one month with the ghvault container on ECS Fargate.

    :param github_owner: user or organisation login (templated). Not ``owner``: that is
        BaseOperator's task owner, and it cannot be mapped over with ``expand``.
    :param settings: the ``ghvault_settings`` Variable, as a dict or its JSON text (templated;
        e.g. ``"{{ var.json.ghvault_settings | tojson }}"``); None reads the Variable at run time.
    :param month: ``YYYY-MM`` (templated); default: the run's logical month (``run_month``).
    :param kinds: kinds of content to back up (list or comma-separated); default all.
    :param repos: regex (or list of regexes) of repository names to back up.
    :param exclude_repos: regex (or list of regexes) of repository names to leave out.

    ``cluster``, ``task_definition``, ``container_name``, ``network_configuration``,
    ``launch_type``/``capacity_provider_strategy``, ``awslogs_*``, ``region_name`` and
    ``aws_conn_id`` default to the settings; any other ``EcsRunTaskOperator`` argument passes
    through. Returns ``{"owner", "month", "bucket", "key", "manifest_key", "summary"}`` and
    pushes the ECS task ARN to XCom key ``ecs_task_arn``.
    """

    template_fields: Sequence[str] = (*EcsRunTaskOperator.template_fields,
                                      *_BackupContract.backup_fields)
    template_fields_renderers = {**EcsRunTaskOperator.template_fields_renderers,
                                 "settings": "json"}
    ui_color = "#d5e8d4"

    def __init__(self, *, github_owner: str, settings: dict | str | None = None,
                 month: str | None = None, kinds: list[str] | str | None = None,
                 repos: list[str] | str | None = None,
                 exclude_repos: list[str] | str | None = None,
                 task_definition: str | None = None, cluster: str | None = None,
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
        self.github_owner = github_owner
        self.settings = settings
        self.month = month
        self.kinds = kinds
        self.repos = repos
        self.exclude_repos = exclude_repos
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
        arguments = engine_arguments(settings, owner=self.github_owner, month=month, key=key,
                                     kinds=self.kinds, repos=self.repos,
                                     exclude_repos=self.exclude_repos)
        self.overrides = self.overrides_for(settings, arguments, self.overrides)
        self._token_source = self._token_source or settings.token_parameter
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
        if any(e.get("name") == "GITHUB_TOKEN" for e in container.get("environment", [])):
            raise EngineConfigError(
                f"task definition {self.task_definition!r} carries GITHUB_TOKEN as plain "
                "environment: move it to the container's secrets (valueFrom the SSM parameter).")
        secrets = {s["name"]: s.get("valueFrom", "") for s in container.get("secrets", [])}
        if "GITHUB_TOKEN" in secrets:
            self._token_source = secrets["GITHUB_TOKEN"]
        elif "GITHUB_APP_PRIVATE_KEY" in secrets:
            self._token_source = secrets["GITHUB_APP_PRIVATE_KEY"]
        else:
            self.log.warning("Container %s of %s has no GITHUB_TOKEN secret: the engine will "
                             "have no token", self.container_name, self.task_definition)

    # -- running and checking ---------------------------------------------------------------
    def execute(self, context):
        settings, month, key = self._run_state = self.prepare(context)
        self.check_task_definition()
        self.log.info("Backing up %s for %s to s3://%s/%s", self.github_owner, month,
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
                    f"{err}: ECS could not inject the token; check that the SSM parameter "
                    f"{self._token_source} "
                    "exists and that the task execution role may ssm:GetParameters and "
                    "kms:Decrypt it") from err
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
                return engine_error(
                    container["exitCode"], owner=self.github_owner, month=month,
                    settings=settings, key=key, token_source=self._token_source or "",
                    where="the task role", log_lines=self._last_log_lines())
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


class LocalBackupOperator(_BackupContract, BaseOperator):
    """Back up one GitHub owner for one month by running ``ghvault run`` on the worker.

    Same arguments, XCom and exceptions as :class:`GithubBackupOperator`. The token is read
    from the SSM parameter named by the settings at run time and handed to the child process
    in its environment only. AWS credentials, region and endpoint come from the settings'
    Airflow connection when it defines them, else from the worker's environment.

    :param engine_command: how to start the engine (default: the ``ghvault`` executable
        installed beside this Python, or on PATH).
    """

    template_fields: Sequence[str] = _BackupContract.backup_fields
    template_fields_renderers = {"settings": "json"}
    ui_color = "#dae8fc"

    def __init__(self, *, github_owner: str, settings: dict | str | None = None,
                 month: str | None = None, kinds: list[str] | str | None = None,
                 repos: list[str] | str | None = None,
                 exclude_repos: list[str] | str | None = None,
                 engine_command: list[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.github_owner = github_owner
        self.settings = settings
        self.month = month
        self.kinds = kinds
        self.repos = repos
        self.exclude_repos = exclude_repos
        self.engine_command = engine_command
        self._process: subprocess.Popen | None = None

    def execute(self, context):
        settings, month, key = self._resolve(context)
        token = self.read_token(settings)
        env = {**os.environ, **self.aws_environment(settings), **settings.engine_env,
               "GITHUB_TOKEN": token}
        argv = self._command() + engine_arguments(
            settings, owner=self.github_owner, month=month, key=key, kinds=self.kinds,
            repos=self.repos, exclude_repos=self.exclude_repos)
        self.log.info("Backing up %s for %s to s3://%s/%s: %s", self.github_owner, month,
                      settings.bucket, key, " ".join(argv))
        code, stdout, stderr = self._run(argv, env, token)
        if code != 0:
            raise engine_error(code, owner=self.github_owner, month=month, settings=settings,
                               key=key, token_source=settings.token_parameter,
                               where="the worker's AWS credentials",
                               log_lines=list(stderr)[-20:])
        return self._result(settings, month, key, parse_summary(stdout))

    def read_token(self, settings: DeploymentSettings) -> str:
        hook = SsmHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region)
        name = settings.token_parameter
        try:
            with _no_wire_logging():
                token = hook.get_parameter_value(name).strip()
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code == "ParameterNotFound":
                raise EngineConfigError(
                    f"SSM parameter {name} does not exist: store the GitHub token there "
                    f"(aws ssm put-parameter --type SecureString --name {name} --value ...) or "
                    "set 'token_parameter' in the settings.") from err
            raise EngineConfigError(
                f"cannot read SSM parameter {name} ({code}): allow ssm:GetParameter and "
                "kms:Decrypt on it for the Airflow worker's AWS identity.") from err
        if not token:
            raise EngineAuthError(f"SSM parameter {name} is empty: store the GitHub token in it.")
        mask_secret(token)
        return token

    @staticmethod
    def aws_environment(settings: DeploymentSettings) -> dict[str, str]:
        """AWS_* variables that give the engine the Airflow connection's identity and endpoint."""
        if not settings.aws_conn_id:
            return {}
        hook = AwsBaseHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region,
                           client_type="s3")
        config = hook.conn_config
        env: dict[str, str] = {}
        if config.aws_access_key_id or config.role_arn:
            credentials = hook.get_credentials()
            env.update(AWS_ACCESS_KEY_ID=credentials.access_key,
                       AWS_SECRET_ACCESS_KEY=credentials.secret_key)
            if credentials.token:
                env["AWS_SESSION_TOKEN"] = credentials.token
        if config.endpoint_url:
            env["AWS_ENDPOINT_URL"] = config.endpoint_url
        if s3_endpoint := config.get_service_endpoint_url("s3"):
            env["AWS_ENDPOINT_URL_S3"] = s3_endpoint
        if region := settings.region or config.region_name:
            env["AWS_DEFAULT_REGION"] = env["AWS_REGION"] = region
        return env

    def _command(self) -> list[str]:
        if self.engine_command:
            return list(self.engine_command)
        beside = Path(sys.executable).parent / "ghvault"
        found = str(beside) if beside.exists() else shutil.which("ghvault")
        if found:
            return [found]
        return [sys.executable, "-c", "import sys; from ghvault.cli import main; sys.exit(main())"]

    def _run(self, argv: list[str], env: dict[str, str], token: str):
        """Run the engine; stream stderr into the task log; return (code, stdout, stderr tail)."""
        stdout: deque[str] = deque(maxlen=200)
        stderr: deque[str] = deque(maxlen=200)

        def clean(line: str) -> str:
            return line.rstrip("\n").replace(token, "***")

        def pump_stderr(stream) -> None:
            for line in stream:
                stderr.append(clean(line))
                level = _LEVEL.search(stderr[-1][:40])
                self.log.log(_LEVELS[level.group(1)] if level else logging.INFO, "%s", stderr[-1])

        try:
            self._process = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
        except OSError as err:
            raise EngineConfigError(
                f"cannot start the engine ({argv[0]}: {err.strerror}): install ghvault on the "
                "worker (pip install ./image) or use runner 'ecs'.") from err
        reader = threading.Thread(target=pump_stderr, args=(self._process.stderr,), daemon=True)
        reader.start()
        try:
            for line in self._process.stdout:
                stdout.append(clean(line))
                self.log.info("%s", stdout[-1])
            code = self._process.wait()
            reader.join(timeout=30)
        finally:
            self._stop()
        return code, list(stdout), list(stderr)

    def _stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def on_kill(self) -> None:
        self._stop()


@contextmanager
def _no_wire_logging():
    """Keep botocore/urllib3 DEBUG logging (which prints response bodies) off for a call.

    The Airflow secrets masker learns the token only once the response is parsed: a DEBUG
    task log would otherwise carry the decrypted parameter.
    """
    loggers = [logging.getLogger(name) for name in ("botocore", "boto3", "urllib3")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def backup_operator_class(runner: str) -> type[BaseOperator]:
    """The operator class for a runner: "ecs" or "local"."""
    classes = {"ecs": GithubBackupOperator, "local": LocalBackupOperator}
    try:
        return classes[runner]
    except KeyError:
        raise ValueError(f"runner {runner!r} is not 'ecs' or 'local': fix the runner param "
                         "or the settings' 'runner'.") from None
