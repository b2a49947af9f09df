"""Run the ghvault engine as a subprocess of the Airflow worker (the `local` runner).

For Airflow deployments without ECS, and for the embedded run (`make run`). Same arguments,
XCom and exceptions as the ECS runner (`.backup.GithubBackupOperator`); the token is
read from SSM at run time into the child's environment only.
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


class LocalRunner:
    """Runs the engine of one backup (or verification) operator as a subprocess of the worker.

    The runner of :class:`LocalBackupOperator`, and of :class:`~.backup.GithubBackupOperator`
    when the run's runner is ``local``: the operator says what to run (``engine_argv``,
    ``needs_token``, ``engine_failure``, ``_result``), this class how. The token is read
    from the SSM parameter named by the settings at run time and handed to the child
    process in its environment only. AWS credentials, region and endpoint come from the
    settings' Airflow connection when it defines them, else from the worker's environment.
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
        env = {**os.environ, **self.aws_environment(settings), **settings.engine_env}
        token = None
        if op.needs_token:
            env["GITHUB_TOKEN"] = token = self.read_token(settings)
        argv = self._command() + op.engine_argv(settings, month, key)
        self.log.info("%s %s for %s, s3://%s/%s: %s", op.doing, op.github_owner, month,
                      settings.bucket, key, " ".join(argv))
        code, stdout, stderr = self._run(argv, env, token)
        if code != 0:
            raise op.engine_failure(code, settings=settings, month=month, key=key,
                                    token_source=settings.token_parameter,
                                    where="the worker's AWS credentials",
                                    log_lines=(stdout if op.reports_on_stdout
                                               else stderr)[-20:])
        return op._result(settings, month, key, parse_summary(stdout))

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

    def _run(self, argv: list[str], env: dict[str, str], token: str | None):
        """Run the engine; stream stderr into the task log; return (code, stdout, stderr tail)."""
        stdout: deque[str] = deque(maxlen=200)
        stderr: deque[str] = deque(maxlen=200)

        def clean(line: str) -> str:
            line = line.rstrip("\n")
            return line.replace(token, "***") if token else line

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

    def read_token(self, settings: DeploymentSettings) -> str:
        return LocalRunner(self).read_token(settings)

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
