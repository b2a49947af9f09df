"""Deployment settings: one Airflow Variable and/or GHVAULT_* environment variables.

Nothing here touches the network or the metadata database: the DAG renders the Variable's
raw JSON text at run time (:data:`SETTINGS_TEMPLATE`) and the operators parse it with
:func:`load_settings` inside ``execute``. Where the archive goes (its key, the sidecar
manifest, the month) is the engine's contract: :mod:`ghvault.contract`.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ghvault_airflow.shards import check_settings as check_shards

VARIABLE_NAME = "ghvault_settings"
ENV_PREFIX = "GHVAULT_"
# The Variable's JSON text as a template, rendered when a task runs ('' when the Variable is
# unset, so GHVAULT_* environment variables alone can configure a deployment).
SETTINGS_TEMPLATE = "{{ var.value.get('" + VARIABLE_NAME + "', '') }}"

RUNNERS = ("ecs", "local")
CREDENTIAL_STORES = ("ssm", "secretsmanager")
DEFAULT_TOKEN_PARAMETER = "/ghvault/github-token"
APP_KEYS = ("github_app_id", "github_app_installation_id", "github_app_private_key_secret")
COLD_STORAGE_CLASSES = ("GLACIER", "DEEP_ARCHIVE", "GLACIER_IR")
# Variables the engine reads credentials from: they belong in the task definition's `secrets`
# (ECS) or in SSM (local runner), never in settings that end up in overrides and logs.
SECRET_ENV_NAMES = frozenset({
    "GITHUB_TOKEN", "GH_TOKEN", "GITHUB_APP_PRIVATE_KEY", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
})

DEFAULT_BACKUP_TIMEOUT_HOURS = 12

_TRUE = {"true", "1", "yes", "on", "enabled"}
_FALSE = {"false", "0", "no", "off", "disabled"}


class SettingsError(ValueError):
    """The deployment settings are missing a key or carry a bad value."""


@dataclass(frozen=True)
class DeploymentSettings:
    """Where and how backups run. Keys of the ``ghvault_settings`` Variable, one per field.

    bucket                 S3 bucket for archives (required)
    prefix                 key prefix inside the bucket (the lifecycle rule's prefix)
    runner                 "ecs" (Fargate task) or "local" (subprocess of the worker)
    region                 AWS region; default: the Airflow connection's / boto3's
    aws_conn_id            Airflow connection for AWS
    cluster, task_definition, container_name
                           ECS cluster, task definition (family[:revision] or ARN) and the
                           name of the ghvault container in it
    subnets, security_groups, assign_public_ip
                           awsvpc network configuration of the Fargate task
    capacity_provider      e.g. "FARGATE_SPOT"; unset: launch type FARGATE
    log_group, log_stream_prefix
                           the task definition's awslogs group and stream prefix, to stream
                           the container's log into the Airflow task log
    credential_store       where the GitHub credential lives: "ssm" (Parameter Store
                           SecureString) or "secretsmanager" (a Secrets Manager secret)
    token_parameter        the personal access token in that store: the SSM parameter's name
                           or the secret's name or ARN (default /ghvault/github-token when
                           no GitHub App is set)
    github_app_id, github_app_installation_id, github_app_private_key_secret
                           GitHub App credentials instead of a token: the App's numeric id,
                           its installation's id (unset: the engine finds the installation on
                           the owner) and where the App's private key (PEM) lives in the store
    github_api_url         GitHub API base URL (Enterprise: https://HOST/api/v3)
    github_git_url         the git origin when it is not derived from github_api_url (the
                           engine's --git-url; GHE.com: https://SUBDOMAIN.ghe.com)
    state_url              s3://bucket/prefix/ for HTTP validators kept between months
    git_state              also keep each repository's last bundle there and fetch only what
                           changed (the engine's --git-state; needs state_url)
    sns_topic_arn          SNS topic for run summaries and failures
    glacier_storage_class  GLACIER, DEEP_ARCHIVE or GLACIER_IR
    transition_days, retention_days
                           what the bucket's lifecycle rule must do with the archives
    engine_env             extra non-secret environment for the engine
    verify                 run `ghvault verify` on each new archive after the sensors (same
                           runner as the backup), while it is still in S3 Standard
    owners                 logins the DAG backs up when a run's params name none
    backup_timeout_hours   how long one backup task may take (default 12): the task's
                           execution_timeout and the ECS waiter's limit (see backup_timeout)
    waiter_delay_seconds   how often the ECS runner (the triggerer, when deferred) asks ECS
                           whether the task stopped (default 30)
    catchup_months         how far back scheduled runs reach when the DAG catches up (first
                           deployment, scheduler down): 1 backs up only the last complete
                           month; older scheduled runs skip (``airflow backfill create`` asks
                           for them)
    pool, pool_slots       the Airflow pool every backup and verification task runs in, and
                           its size: at most that many engines use the token at once, across
                           runs (created when the scheduler starts: ``ghvault_airflow.pool``)
    shards, owner_shards   parts (Fargate tasks) per owner and month, default 1; per owner
                           as {"big-org": 8} (``ghvault_airflow.shards``)
    """

    bucket: str
    prefix: str = "github"
    runner: str = "ecs"
    region: str | None = None
    aws_conn_id: str = "aws_default"
    cluster: str | None = None
    task_definition: str | None = None
    container_name: str = "ghvault"
    subnets: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    assign_public_ip: bool = True
    capacity_provider: str | None = None
    log_group: str | None = None
    log_stream_prefix: str = "ghvault"
    credential_store: str = "ssm"
    token_parameter: str | None = None
    github_app_id: str | None = None
    github_app_installation_id: str | None = None
    github_app_private_key_secret: str | None = None
    github_api_url: str = "https://api.github.com"
    github_git_url: str | None = None
    state_url: str | None = None
    sns_topic_arn: str | None = None
    glacier_storage_class: str = "GLACIER"
    transition_days: int = 1
    retention_days: int = 365
    engine_env: dict[str, str] = field(default_factory=dict)
    verify: bool = False
    owners: list[str] = field(default_factory=list)
    backup_timeout_hours: int = DEFAULT_BACKUP_TIMEOUT_HOURS
    waiter_delay_seconds: int = 30
    catchup_months: int = 1
    pool: str = "ghvault"
    pool_slots: int = 2
    shards: int = 1
    owner_shards: dict[str, str] = field(default_factory=dict)
    git_state: bool = False

    @property
    def backup_timeout(self) -> timedelta:
        """How long one backup may run: the backup task's ``execution_timeout`` and, through
        :func:`waiter_limits`, the ECS waiter's limit (one fact for both)."""
        return timedelta(hours=self.backup_timeout_hours)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DeploymentSettings:
        """Validate and coerce a mapping (Variable JSON, env strings) into settings."""
        if not isinstance(data, Mapping):
            raise SettingsError(
                f"{VARIABLE_NAME} must be a JSON object, got {type(data).__name__}: "
                f"set the Variable to an object such as {{\"bucket\": \"my-backups\"}}."
            )
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise SettingsError(
                f"{VARIABLE_NAME} has unknown key {unknown[0]!r}: remove it or use one of "
                f"{', '.join(sorted(fields))}."
            )
        values: dict[str, Any] = {}
        for name, value in data.items():
            coerced = _coerce(name, fields[name].type, value)
            if coerced is not None:
                values[name] = coerced
        if not values.get("bucket"):
            raise SettingsError(
                f"{VARIABLE_NAME} has no 'bucket': set it to the S3 bucket that receives the "
                f"archives (or set {ENV_PREFIX}BUCKET)."
            )
        if not values.get("token_parameter") and not any(values.get(k) for k in APP_KEYS):
            values["token_parameter"] = DEFAULT_TOKEN_PARAMETER
        settings = cls(**values)
        settings._validate()
        return settings

    @property
    def uses_app(self) -> bool:
        """True when the engine authenticates as a GitHub App installation."""
        return bool(self.github_app_id)

    @property
    def credential_name(self) -> str:
        """The token's or the App key's name in the credential store."""
        return (self.github_app_private_key_secret if self.uses_app
                else self.token_parameter) or ""

    @property
    def credential_source(self) -> str:
        """Where the credential lives, in words: 'the SSM parameter /x' or 'the Secrets
        Manager secret y'."""
        return describe_credential(self.credential_name, self.credential_store)

    def _validate(self) -> None:
        if self.bucket.startswith("s3://") or "/" in self.bucket:
            _fail("bucket", f"is {self.bucket!r}: give the bucket name only, without s3:// "
                            "or a path (the path goes in 'prefix')")
        if self.runner not in RUNNERS:
            _fail("runner", f"is {self.runner!r}: use 'ecs' or 'local'")
        if self.glacier_storage_class not in COLD_STORAGE_CLASSES:
            _fail("glacier_storage_class", f"is {self.glacier_storage_class!r}: use one of "
                                           f"{', '.join(COLD_STORAGE_CLASSES)}")
        if self.transition_days < 0:
            _fail("transition_days", "is negative: use 0 or more days")
        if self.retention_days <= self.transition_days:
            _fail("retention_days", f"({self.retention_days}) must be greater than "
                                    f"transition_days ({self.transition_days}): S3 expires an "
                                    "object only after it was transitioned")
        if not re.match(r"^https?://[^/\s]+", self.github_api_url):
            _fail("github_api_url", f"is {self.github_api_url!r}: use an https:// URL such as "
                                    "https://api.github.com or https://HOST/api/v3")
        if self.state_url and not self.state_url.startswith("s3://"):
            _fail("state_url", f"is {self.state_url!r}: use s3://bucket/prefix/ (the Fargate "
                               "task has no persistent disk)")
        if self.git_state and not self.state_url:
            _fail("git_state", "needs state_url: the bundles are kept in the state")
        if self.sns_topic_arn and not self.sns_topic_arn.startswith("arn:"):
            _fail("sns_topic_arn", f"is {self.sns_topic_arn!r}: use the topic's ARN "
                                   "(arn:aws:sns:REGION:ACCOUNT:NAME)")
        if self.backup_timeout_hours < 1:
            _fail("backup_timeout_hours", "is less than 1: give the hours a backup may take")
        if not 1 <= self.waiter_delay_seconds <= 600:
            _fail("waiter_delay_seconds", f"is {self.waiter_delay_seconds}: use 1 to 600 seconds")
        if self.catchup_months < 1:
            _fail("catchup_months", "is less than 1: use 1 (only the last complete month) or "
                                    "more")
        if self.pool_slots < 1:
            _fail("pool_slots", "is less than 1: use the number of backups the token may run "
                                "at once (2 is safe for one PAT)")
        if not re.fullmatch(r"[\w.-]{1,256}", self.pool):
            _fail("pool", f"is {self.pool!r}: use letters, digits, '_', '-' or '.'")
        if self.github_git_url and not re.match(r"^https?://[^/\s]+", self.github_git_url):
            _fail("github_git_url", f"is {self.github_git_url!r}: use the git origin's https:// "
                                    "URL such as https://SUBDOMAIN.ghe.com, or unset it")
        self._validate_credentials()
        try:
            check_shards(self.shards, self.owner_shards)
        except ValueError as err:
            raise SettingsError(f"{VARIABLE_NAME}: {err}.") from None
        if not self.container_name:
            _fail("container_name", "is empty: name the ghvault container of the task definition")
        if not self.log_stream_prefix:
            _fail("log_stream_prefix", "is empty: use the task definition's awslogs-stream-prefix")
        leaked = sorted(SECRET_ENV_NAMES & set(self.engine_env))
        if leaked:
            _fail("engine_env", f"sets {leaked[0]}: secrets do not belong in settings (they end "
                                "up in ECS overrides and logs); store the credential in "
                                f"{self.credential_source}")
        app_env = sorted({"GITHUB_APP_ID", "GITHUB_APP_INSTALLATION_ID"} & set(self.engine_env))
        if app_env:
            _fail("engine_env", f"sets {app_env[0]}: use the settings key "
                                f"{app_env[0].lower()} instead")

    def _validate_credentials(self) -> None:
        """Either a token or App credentials, named in a store that can hold them."""
        if self.credential_store not in CREDENTIAL_STORES:
            _fail("credential_store", f"is {self.credential_store!r}: use 'ssm' (Parameter "
                                      "Store SecureString) or 'secretsmanager'")
        app_keys = [k for k in APP_KEYS if getattr(self, k)]
        if self.token_parameter and app_keys:
            _fail("token_parameter", f"is set together with {app_keys[0]}: use either a token "
                                     "(token_parameter) or a GitHub App (github_app_id and "
                                     "github_app_private_key_secret), not both")
        if app_keys and not self.github_app_id:
            _fail("github_app_id", f"is missing while {app_keys[0]} is set: set it to the "
                                   "GitHub App's numeric id (the App's settings page)")
        if self.github_app_id and not self.github_app_id.isdigit():
            _fail("github_app_id", f"is {self.github_app_id!r}: use the App's numeric id, not "
                                   "its name or client id")
        if self.github_app_installation_id and not self.github_app_installation_id.isdigit():
            _fail("github_app_installation_id", f"is {self.github_app_installation_id!r}: use "
                                                "the installation's numeric id, or unset it")
        if self.github_app_id and not self.github_app_private_key_secret:
            _fail("github_app_private_key_secret",
                  f"is missing for GitHub App {self.github_app_id}: name the "
                  f"{'secret' if self.credential_store == 'secretsmanager' else 'SSM parameter'}"
                  " holding the App's private key (PEM)")
        name = self.credential_name
        key = "github_app_private_key_secret" if self.uses_app else "token_parameter"
        if self.credential_store == "ssm" and ":secretsmanager:" in name:
            _fail(key, "is a Secrets Manager ARN while credential_store is 'ssm': set "
                       "credential_store to 'secretsmanager', or name an SSM parameter")
        if self.credential_store == "secretsmanager" and ":ssm:" in name:
            _fail(key, "is an SSM parameter ARN while credential_store is 'secretsmanager': "
                       "set credential_store to 'ssm', or name a Secrets Manager secret")

    def require_ecs(self) -> None:
        """Raise SettingsError unless everything a Fargate run needs is set."""
        for name in ("cluster", "task_definition", "subnets"):
            if not getattr(self, name):
                _fail(name, "is required for runner 'ecs': set it in the Variable (or "
                            f"{ENV_PREFIX}{name.upper()}), or use runner 'local'")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def describe_credential(name: str, store: str | None = None) -> str:
    """'the SSM parameter NAME' or 'the Secrets Manager secret NAME'; without ``store``, from
    the name (an ECS secret's valueFrom is a parameter name or ARN, or a secret ARN)."""
    if store is None:
        store = "secretsmanager" if ":secretsmanager:" in name else "ssm"
    kind = "Secrets Manager secret" if store == "secretsmanager" else "SSM parameter"
    return f"the {kind} {name}"


def _fail(key: str, problem: str) -> None:
    raise SettingsError(f"{VARIABLE_NAME} key {key!r} {problem}.")


def _coerce(name: str, annotation: Any, value: Any) -> Any:
    """Coerce one value to the field's type; env strings become lists, bools, ints, dicts."""
    kind = str(annotation)
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if value == "" and "None" in kind:
            return None
    if kind.startswith("list"):
        if isinstance(value, str) and value.startswith("["):
            try:
                value = json.loads(value)
            except ValueError:
                _fail(name, f"is {value!r}: use a JSON list of strings")
        elif isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            _fail(name, f"is {value!r}: use a list of strings (or a comma-separated string)")
        return [v.strip() for v in value if v.strip()]
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        _fail(name, f"is {value!r}: use true or false")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | str):
            _fail(name, f"is {value!r}: use a whole number")
        try:
            return int(value)
        except ValueError:
            _fail(name, f"is {value!r}: use a whole number")
    if kind.startswith("dict"):
        if isinstance(value, str):
            try:
                value = json.loads(value or "{}")
            except ValueError:
                _fail(name, "is not a JSON object: use {\"NAME\": \"value\"}")
        if not isinstance(value, Mapping):
            _fail(name, f"is {value!r}: use an object of NAME: value strings")
        out = {}
        for key, item in value.items():
            if not isinstance(item, str | int | float) or isinstance(item, bool):
                _fail(name, f"entry {key!r} is {item!r}: use string values")
            out[str(key)] = str(item)
        return out
    # str / str | None
    if name in APP_KEYS[:2] and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # ids are numbers in JSON; the engine reads them as text
    if not isinstance(value, str):
        _fail(name, f"is {value!r}: use a string")
    if name == "prefix":
        return value.strip("/")
    if name in ("github_api_url", "github_git_url"):
        return value.rstrip("/")
    return value


def _parse_value(value: str | Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if not isinstance(value, str):
        raise SettingsError(
            f"{VARIABLE_NAME} must be a JSON object or its text, got {type(value).__name__}."
        )
    text = value.strip()
    if text in ("", "null", "None"):
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        # A DAG of its own may render "{{ var.json.ghvault_settings }}": a Python repr.
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise SettingsError(
                f"{VARIABLE_NAME} is not valid JSON: fix the Variable's value, and render it "
                f"with \"{SETTINGS_TEMPLATE}\"."
            ) from None
    if parsed is None:
        return {}
    if not isinstance(parsed, Mapping):
        raise SettingsError(
            f"{VARIABLE_NAME} must be a JSON object, got {type(parsed).__name__}: set the "
            "Variable to an object such as {\"bucket\": \"my-backups\"}."
        )
    return dict(parsed)


def load_settings(
    value: str | Mapping[str, Any] | None = None, env: Mapping[str, str] = os.environ
) -> DeploymentSettings:
    """Settings from the Variable's JSON (dict or text), with GHVAULT_<KEY> env vars on top."""
    data = _parse_value(value)
    for f in dataclasses.fields(DeploymentSettings):
        env_value = env.get(ENV_PREFIX + f.name.upper())
        if env_value is not None and env_value.strip() != "":
            data[f.name] = env_value
    return DeploymentSettings.from_mapping(data)


def _schedule_timezone(context: Mapping[str, Any]):
    dag = context.get("dag")
    timetable = getattr(dag, "timetable", None)
    tz = getattr(timetable, "timezone", None) or getattr(dag, "timezone", None)
    if isinstance(tz, str):
        import pendulum

        tz = pendulum.timezone(tz)
    return tz


def run_type(context: Mapping[str, Any]) -> str:
    """"scheduled", "backfill", "manual"... ("" when the context has no dag_run)."""
    kind = getattr(context.get("dag_run"), "run_type", None) or ""
    return str(getattr(kind, "value", kind))


def _month_before(moment: datetime) -> str:
    year, month = (moment.year - 1, 12) if moment.month == 1 else (moment.year, moment.month - 1)
    return f"{year:04d}-{month:02d}"


def run_month(context: Mapping[str, Any]) -> str:
    """The run's month, YYYY-MM, read in the schedule's timezone.

    - A manual run with a logical date covers the last complete month before that date
      (``2026-04-01`` and ``2026-04-15`` both back up March), as the UI and the REST API
      infer its data interval. Its ``data_interval_start`` is not trusted: Airflow 3.3's
      ``airflow dags trigger -l DATE`` infers the interval from the trigger *time*
      (``api/common/trigger_dag.py`` passes ``run_after`` = now to
      ``infer_manual_data_interval``), which would back up the current month under a label
      the operator did not ask for.
    - A scheduled or backfill run covers its data interval: ``data_interval_start``.
    - A run without a logical date backs up the month of ``dag_run.run_after`` (the
      current, partial month).
    """
    tz = _schedule_timezone(context)

    def local(moment: datetime) -> datetime:
        return moment.astimezone(tz) if tz is not None and moment.tzinfo is not None else moment

    dag_run = context.get("dag_run")
    logical = context.get("logical_date")
    if logical is not None and run_type(context) == "manual":
        # the month schedule's boundary is 00:00 on the 1st: the last complete month
        # before any moment of April is March (the timetable's infer_manual_data_interval)
        return _month_before(local(logical))
    moment: datetime | None = context.get("data_interval_start")
    if moment is None:
        moment = getattr(dag_run, "run_after", None)
    if moment is None:
        raise ValueError(
            "the task context has neither data_interval_start nor dag_run.run_after: pass "
            "month='YYYY-MM' to the operator."
        )
    moment = local(moment)
    return f"{moment.year:04d}-{moment.month:02d}"


def backup_timeout(settings: DeploymentSettings | None = None,
                   env: Mapping[str, str] = os.environ) -> timedelta:
    """The backup task's ``execution_timeout``: the settings' ``backup_timeout``; at parse
    time, when the Variable is not read, GHVAULT_BACKUP_TIMEOUT_HOURS or the default."""
    if settings is not None:
        return settings.backup_timeout
    hours = _coerce("backup_timeout_hours", "int",
                    env.get(ENV_PREFIX + "BACKUP_TIMEOUT_HOURS") or DEFAULT_BACKUP_TIMEOUT_HOURS)
    if hours < 1:
        _fail("backup_timeout_hours", "is less than 1: give the hours a backup may take")
    return timedelta(hours=hours)


def waiter_limits(timeout: timedelta, delay_seconds: int) -> tuple[int, int]:
    """(waiter_delay, waiter_max_attempts) for the ECS waiter so that it gives up exactly
    when ``timeout`` has passed (rounded up to a whole poll), not before."""
    delay = max(1, int(delay_seconds))
    return delay, max(1, math.ceil(timeout.total_seconds() / delay))
