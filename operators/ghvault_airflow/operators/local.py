"""Run the ghvault engine as a subprocess of the Airflow worker (the `local` runner).

For Airflow deployments without ECS, and for the embedded run (`make run`). Same arguments,
XCom and exceptions as the ECS runner (`.backup.GithubBackupOperator`); the token or the
GitHub App's private key is read from SSM or Secrets Manager at run time into the child's
environment only.
"""

from __future__ import annotations

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
from pathlib import Path

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.secrets_manager import SecretsManagerHook
from airflow.providers.amazon.aws.hooks.ssm import SsmHook
from airflow.sdk.log import mask_secret
from botocore.exceptions import ClientError
from ghvault.contract import parse_summary

from ghvault_airflow.operators.engine import (
    BackupContract,
    EngineAuthError,
    EngineConfigError,
    VerifyContract,
)
from ghvault_airflow.settings import DeploymentSettings

_LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING,
           "ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL}
# The engine's credential variables: the worker's own never reach the child, only those read
# from the settings' store (the engine would prefer a stray GITHUB_TOKEN to the App).
CREDENTIAL_ENV = frozenset({"GITHUB_TOKEN", "GH_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY",
                            "GITHUB_APP_INSTALLATION_ID"})


class LocalRunner:
    """Runs the engine of one backup (or verification) operator as a subprocess of the worker.

    The runner of :class:`LocalBackupOperator`, and of :class:`~.backup.GithubBackupOperator`
    when the run's runner is ``local``: the operator says what to run (``engine_argv``,
    ``needs_token``, ``engine_failure``, ``_result``), this class how. The token (or the
    GitHub App's private key) is read from the SSM parameter or Secrets Manager secret the
    settings name, at run time, and handed to the child process in its environment only.
    AWS credentials, region and endpoint come from the settings' Airflow connection when it
    defines them, else from the worker's environment.
    """

    name = "local"

    def __init__(self, operator: BackupContract, engine_command: list[str] | None = None) -> None:
        self.op = operator
        self.log = operator.log
        self.engine_command = engine_command
        self._process: subprocess.Popen | None = None

    def execute(self, context):
        op = self.op
        settings, month, key = op._resolve(context)
        if op.writes_archive:
            op.note_replaced(context, settings, key)
        env = {name: value for name, value in os.environ.items() if name not in CREDENTIAL_ENV}
        env.update(self.aws_environment(settings))
        env.update(settings.engine_env)
        secrets: list[str] = []
        if op.needs_token:
            credentials = self.read_credentials(settings)
            env.update(credentials)
            secrets = secret_fragments(credentials)
        argv = self._command() + op.engine_argv(settings, month, key)
        self.log.info("%s %s for %s, s3://%s/%s: %s", op.doing, op.github_owner, month,
                      settings.bucket, key, " ".join(argv))
        code, stdout, stderr = self._run(argv, env, secrets)
        if code != 0:
            raise op.engine_failure(code, settings=settings, month=month, key=key,
                                    token_source=settings.credential_source,
                                    where="the worker's AWS credentials",
                                    log_lines=(stdout if op.reports_on_stdout
                                               else stderr)[-20:])
        return op._result(settings, month, key, parse_summary(stdout))

    def read_credentials(self, settings: DeploymentSettings) -> dict[str, str]:
        """The engine's credential variables: GITHUB_TOKEN, or GITHUB_APP_ID,
        GITHUB_APP_PRIVATE_KEY (the PEM text) and GITHUB_APP_INSTALLATION_ID."""
        what = "the GitHub App's private key" if settings.uses_app else "the GitHub token"
        value = self.read_secret(settings, what).strip()
        for fragment in secret_fragments({"": value}):
            mask_secret(fragment)
        if not settings.uses_app:
            return {"GITHUB_TOKEN": value}
        if not value.startswith("-----BEGIN"):
            raise EngineAuthError(
                f"{settings.credential_source} does not hold a PEM private key: store the .pem "
                "file GitHub generated for the App in it (its text, BEGIN line included).")
        env = {"GITHUB_APP_ID": settings.github_app_id, "GITHUB_APP_PRIVATE_KEY": value}
        if settings.github_app_installation_id:
            env["GITHUB_APP_INSTALLATION_ID"] = settings.github_app_installation_id
        return env

    def read_secret(self, settings: DeploymentSettings, what: str) -> str:
        """The credential's text from SSM (SecureString, decrypted) or Secrets Manager."""
        name, source = settings.credential_name, settings.credential_source
        store = settings.credential_store
        try:
            with _no_wire_logging():
                if store == "secretsmanager":
                    value = SecretsManagerHook(aws_conn_id=settings.aws_conn_id,
                                               region_name=settings.region).get_secret(name)
                else:
                    value = SsmHook(aws_conn_id=settings.aws_conn_id,
                                    region_name=settings.region).get_parameter_value(name)
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code in ("ParameterNotFound", "ResourceNotFoundException"):
                create = ("aws secretsmanager create-secret --name NAME --secret-string ..."
                          if store == "secretsmanager" else
                          f"aws ssm put-parameter --type SecureString --name {name} --value ...")
                key = ("github_app_private_key_secret" if settings.uses_app
                       else "token_parameter")
                raise EngineConfigError(
                    f"The {source[4:]} does not exist: store {what} there ({create}) "
                    f"or set '{key}' in the settings.") from err
            action = ("secretsmanager:GetSecretValue" if store == "secretsmanager"
                      else "ssm:GetParameter")
            raise EngineConfigError(
                f"cannot read {source} ({code}): allow {action} and kms:Decrypt on it for the "
                "Airflow worker's AWS identity.") from err
        if isinstance(value, bytes):  # SecretBinary: ECS cannot inject it either
            raise EngineConfigError(
                f"The {source[4:]} holds binary data: store {what} as its "
                "SecretString (aws secretsmanager put-secret-value --secret-string ...).")
        if not value or not value.strip():
            raise EngineAuthError(f"The {source[4:]} is empty: store {what} in it.")
        return value

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

    def _run(self, argv: list[str], env: dict[str, str], secrets: Sequence[str] = ()):
        """Run the engine; stream stderr into the task log; return (code, stdout, stderr tail)."""
        stdout: deque[str] = deque(maxlen=200)
        stderr: deque[str] = deque(maxlen=200)

        def clean(line: str) -> str:
            line = line.rstrip("\n")
            for secret in secrets:
                line = line.replace(secret, "***")
            return line

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

    def stop(self) -> None:
        self._stop()


class LocalBackupOperator(BackupContract):
    """Back up one GitHub owner for one month by running ``ghvault run`` on the worker
    (:class:`LocalRunner`).

    Same arguments (:class:`~.engine.BackupContract`'s), XCom and exceptions as
    :class:`GithubBackupOperator`, which runs this same code when the run's runner is
    ``local``.

    :param engine_command: how to start the engine (default: the ``ghvault`` executable
        installed beside this Python, or on PATH).
    """

    template_fields: Sequence[str] = BackupContract.backup_fields
    template_fields_renderers = {"settings": "json"}
    ui_color = "#dae8fc"

    def __init__(self, *, engine_command: list[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.engine_command = engine_command
        self._runner: LocalRunner | None = None

    def execute(self, context):
        self._runner = LocalRunner(self, self.engine_command)
        return self._runner.execute(context)

    def read_credentials(self, settings: DeploymentSettings) -> dict[str, str]:
        return LocalRunner(self).read_credentials(settings)

    aws_environment = staticmethod(LocalRunner.aws_environment)

    def on_kill(self) -> None:
        if self._runner is not None:
            self._runner.stop()


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


class LocalVerifyOperator(VerifyContract, LocalBackupOperator):
    """Run ``ghvault verify`` on the month's archive on the worker (the optional verification
    step of the local runner). Same arguments as :class:`LocalBackupOperator` plus
    ``verify_with``; no token."""

    template_fields: Sequence[str] = (*LocalBackupOperator.template_fields, "verify_with")
    runner_kind = "local"


def secret_fragments(credentials: dict[str, str]) -> list[str]:
    """What to hide from logs: the token, or each line of a PEM key (a log line holds at most
    one of them; the BEGIN/END lines are not secret). Longest first."""
    out = set()
    for name, value in credentials.items():
        if name in ("GITHUB_APP_ID", "GITHUB_APP_INSTALLATION_ID"):
            continue
        out.add(value)
        out.update(line.strip() for line in value.splitlines()
                   if len(line.strip()) >= 16 and not line.startswith("-----"))
    return sorted(out, key=len, reverse=True)
