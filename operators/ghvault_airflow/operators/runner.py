"""What every runner but ECS shares: the credential read at run time, the AWS identity
handed to the engine, the engine's lines in the task log, its exit code and summary line.

ECS injects the GitHub credential itself (the task definition's ``secrets``); the ``local``
runner (:mod:`.local`, a subprocess) and the ``docker`` runner (:mod:`.docker_runner`, a
container) read it from SSM or Secrets Manager just before they start the engine and hand
it over in the engine's environment only.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import contextmanager

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
)
from ghvault_airflow.settings import DeploymentSettings

_LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING,
           "ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL}
# The engine's credential variables: the worker's own never reach the engine, only those read
# from the settings' store (the engine would prefer a stray GITHUB_TOKEN to the App).
CREDENTIAL_ENV = frozenset({"GITHUB_TOKEN", "GH_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY",
                            "GITHUB_APP_INSTALLATION_ID"})


class EngineRunner(ABC):
    """Runs the engine of one backup (or verification) operator somewhere other than ECS.

    The operator says what to run (``engine_argv``, ``needs_token``, ``engine_failure``,
    ``_result``); a subclass says where: :meth:`environment` (what the engine gets besides
    the credential), :meth:`run` (start it, stream its lines, return its exit code, stdout
    and stderr tails) and :meth:`stop`.
    """

    name: str
    where = "the worker's AWS credentials"  # whose S3 permissions a failure message names

    def __init__(self, operator: BackupContract, engine_command: list[str] | None = None) -> None:
        self.op = operator
        self.log = operator.log
        self.engine_command = engine_command

    def execute(self, context):
        op = self.op
        settings, month, key = op._resolve(context)
        if op.writes_archive:
            op.note_replaced(context, settings, key)
        env = self.environment(settings)
        secrets: list[str] = []
        if op.needs_token:
            credentials = self.read_credentials(settings)
            env.update(credentials)
            secrets = secret_fragments(credentials)
        argv = self.command(op.engine_argv(settings, month, key))
        self.log.info("%s %s for %s, s3://%s/%s: %s", op.doing, op.github_owner, month,
                      settings.bucket, key, " ".join(argv))
        code, stdout, stderr = self.run(argv, env, secrets, settings)
        if code != 0:
            raise op.engine_failure(code, settings=settings, month=month, key=key,
                                    token_source=settings.credential_source,
                                    where=self.where,
                                    log_lines=(stdout if op.reports_on_stdout
                                               else stderr)[-20:])
        return op._result(settings, month, key, parse_summary(stdout))

    # -- what a runner defines ------------------------------------------------------------------
    @abstractmethod
    def environment(self, settings: DeploymentSettings) -> dict[str, str]:
        """The engine's environment without the credential (added by `execute`)."""

    def command(self, argv: list[str]) -> list[str]:
        return argv

    @abstractmethod
    def run(self, argv: list[str], env: dict[str, str], secrets: Sequence[str],
            settings: DeploymentSettings) -> tuple[int, list[str], list[str]]:
        """Run the engine to its end: (exit code, stdout lines, stderr lines)."""

    @abstractmethod
    def stop(self) -> None:
        """End a running engine (the task is killed)."""

    # -- shared ---------------------------------------------------------------------------------
    def log_line(self, line: str, secrets: Sequence[str] = ()) -> str:
        """One engine line into the task log, at the level it names, secrets hidden; returns
        the cleaned line."""
        line = line.rstrip("\n")
        for secret in secrets:
            line = line.replace(secret, "***")
        level = _LEVEL.search(line[:40])
        self.log.log(_LEVELS[level.group(1)] if level else logging.INFO, "%s", line)
        return line

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
    def aws_environment(settings: DeploymentSettings, *,
                        always_credentials: bool = False) -> dict[str, str]:
        """AWS_* variables that give the engine the Airflow connection's identity and endpoint.

        The keys go in when the connection defines them (or a role to assume); with
        ``always_credentials`` (an engine that does not inherit the worker's environment),
        whatever identity the hook resolves: the worker's role or profile included."""
        if not settings.aws_conn_id:
            return {}
        hook = AwsBaseHook(aws_conn_id=settings.aws_conn_id, region_name=settings.region,
                           client_type="s3")
        config = hook.conn_config
        env: dict[str, str] = {}
        if always_credentials or config.aws_access_key_id or config.role_arn:
            try:
                credentials = hook.get_credentials()
            except AttributeError:  # botocore found no credentials at all (None)
                raise EngineConfigError(
                    f"no AWS credentials for the engine: give the Airflow connection "
                    f"{settings.aws_conn_id!r} keys or a role_arn, or the worker an IAM "
                    "role.") from None
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
