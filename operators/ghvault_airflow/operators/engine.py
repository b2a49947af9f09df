"""How Airflow talks to the ghvault engine: its arguments, exit codes and summary line.

Shared by both runners (`.backup`, `.local`): what both take and return
(settings, month and key in, the same XCom out), the command line they start the engine with
(no secrets: the token reaches the engine through its environment only) and the exception
each documented exit code becomes. The codes, the archive key and the summary line are the
engine's contract (:mod:`ghvault.contract`), imported, not restated.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from botocore.exceptions import ClientError
from ghvault.contract import (
    Exit,
    archive_key,
    check_month,
    check_owner,
    check_shard,
    sidecar_key,
)

from ghvault_airflow.settings import (
    VARIABLE_NAME,
    DeploymentSettings,
    SettingsError,
    load_settings,
    run_month,
)

TOKEN_SCOPES = ("classic token scopes repo, read:org, read:user, gist; fine-grained: read access "
                "to contents, issues, pull requests and metadata")
APP_PERMISSIONS = ("read access to contents, metadata, issues, pull requests and, for an "
                   "organisation, members")


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
    """The archive could not be written to S3 (exit 5), or verify could not read it (exit 9)."""


class GitHubUnavailable(BackupFailed):
    """GitHub stayed unavailable after the engine's retries (exit 6)."""


# The exception each exit code of `ghvault run` becomes; any other code is a BackupFailed.
EXIT_CODES: dict[Exit, type[BackupFailed]] = {
    Exit.INTERNAL: BackupFailed, Exit.CONFIG: EngineConfigError, Exit.AUTH: EngineAuthError,
    Exit.OWNER_NOT_FOUND: OwnerNotFound, Exit.DESTINATION: DestinationFailed,
    Exit.GITHUB_UNAVAILABLE: GitHubUnavailable,
}


def engine_error(code: int, *, owner: str, month: str, settings: DeploymentSettings, key: str,
                 token_source: str, where: str, log_lines: Sequence[str] = ()) -> BackupFailed:
    """The exception for the engine's exit ``code``, with a message that says what to do.

    ``token_source`` says where the credential lives ("the SSM parameter /x", see
    ``settings.describe_credential``)."""
    dest = f"s3://{settings.bucket}/{key}"
    reasons = {
        Exit.INTERNAL:
            f"ghvault failed with an internal error backing up {owner} for {month} (exit {code}):"
            " the log lines below say where; rerun the task, and report it if it repeats",
        Exit.CONFIG:
            f"ghvault rejected its arguments or configuration backing up {owner} for {month} "
            f"(exit {code}): fix the DAG params (kinds, repository patterns) or the "
            f"{VARIABLE_NAME} Variable as the log lines below say",
        Exit.AUTH: (
            f"GitHub rejected the GitHub App credentials while backing up {owner} (exit {code}: "
            f"wrong App id or private key, no installation on {owner}, or a missing "
            f"permission): check github_app_id {settings.github_app_id}, the private key in "
            f"{token_source} and the App's installation on {owner} ({APP_PERMISSIONS}); the log"
            " lines below name the credential that failed" if settings.uses_app else
            f"GitHub rejected the token while backing up {owner} (exit {code}: missing, invalid,"
            f" expired or lacking scopes): update {token_source} with a token "
            f"that can read {owner} ({TOKEN_SCOPES})"),
        Exit.OWNER_NOT_FOUND:
            f"GitHub owner {owner!r} does not exist or is not visible to the "
            f"{'GitHub App' if settings.uses_app else 'token'} (exit {code}): fix the owner in "
            f"the DAG's owners, or give the credential in {token_source} access to it",
        Exit.DESTINATION:
            f"ghvault could not write {dest} (exit {code}): check that bucket {settings.bucket} "
            f"exists and that {where} may s3:PutObject, s3:GetObject and "
            "s3:AbortMultipartUpload there, and that the scratch disk is large enough",
        Exit.GITHUB_UNAVAILABLE:
            f"GitHub stayed unavailable while backing up {owner} after the engine's retries "
            f"(exit {code}: server errors, rate limit or network): Airflow retries the task; if "
            "it keeps failing check https://www.githubstatus.com and the token's rate limit",
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
    return _error(EXIT_CODES.get(code, BackupFailed), code, message, log_lines)


def _error(kind: type[BackupFailed], code: int, message: str,
           log_lines: Sequence[str]) -> BackupFailed:
    """`kind` with `message` (one sentence) and the engine's last lines, if any."""
    tail = ".\nLast log lines:\n" + "\n".join(log_lines) if log_lines else "."
    error = kind(message + tail)
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
                     kinds: Any = None, repos: Any = None, exclude_repos: Any = None,
                     shard: str | None = None) -> list[str]:
    """``ghvault`` arguments (after the executable / container ENTRYPOINT). No secrets."""
    args = ["run", "--owner", owner, "--month", month, "--dest", f"s3://{settings.bucket}/{key}",
            "--api-url", settings.github_api_url]
    if shard:
        args += ["--shard", shard]
    if settings.github_git_url:
        args += ["--git-url", settings.github_git_url]
    if settings.state_url:
        args += ["--state", settings.state_url]
    if settings.git_state:
        args += ["--git-state"]
    if kind_list := _as_list(kinds):
        args += ["--include", ",".join(kind_list)]
    if pattern := _as_pattern(repos):
        args += ["--repos", pattern]
    if pattern := _as_pattern(exclude_repos):
        args += ["--exclude-repos", pattern]
    return args


class BackupContract(BaseOperator):
    """What both runners share: their arguments, settings, month, key, and the returned XCom.

    An operator base (not a plain mixin) so that Airflow's operator metaclass wraps this
    ``__init__`` too: default_args then reach these arguments as they reach any operator's.

    :param github_owner: user or organisation login (templated). Not ``owner``: that is
        BaseOperator's task owner, and it cannot be mapped over with ``expand``.
    :param settings: the ``ghvault_settings`` Variable, as a dict or its JSON text (templated;
        the DAG passes the plan's resolved settings; ``settings.SETTINGS_TEMPLATE`` renders
        the Variable's text); None reads the Variable at run time.
    :param month: ``YYYY-MM`` (templated); default: the run's logical month (``run_month``).
    :param kinds: kinds of content to back up (list or comma-separated); default all.
    :param repos: regex (or list of regexes) of repository names to back up.
    :param exclude_repos: regex (or list of regexes) of repository names to leave out.
    :param shard: "K/N" (templated): back up part K of N of the owner into its part's key
        (``contract.archive_key``); None or "": the whole owner.
    :param run_plan: the DAG's resolved plan (``plan.RunPlan.as_dict()``, templated): its
        settings, month, kinds and repository patterns stand in for the arguments not given.
    """

    backup_fields: Sequence[str] = ("github_owner", "settings", "month", "kinds", "repos",
                                    "exclude_repos", "run_plan", "shard")

    def __init__(self, *, github_owner: str, settings: dict | str | None = None,
                 month: str | None = None, kinds: list[str] | str | None = None,
                 repos: list[str] | str | None = None,
                 exclude_repos: list[str] | str | None = None,
                 run_plan: dict | None = None, shard: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shard = shard
        self.github_owner, self.settings, self.month = github_owner, settings, month
        self.kinds, self.repos, self.exclude_repos = kinds, repos, exclude_repos
        self.run_plan = run_plan

    def _from_plan(self) -> None:
        """Fill the arguments not given from the run plan (once rendered)."""
        plan = self.run_plan if isinstance(self.run_plan, dict) else None
        if not plan:
            return
        for name, plan_key in (("settings", "settings"), ("month", "month"),
                               ("kinds", "kinds"), ("repos", "repos"),
                               ("exclude_repos", "exclude_repos")):
            if getattr(self, name) in (None, "", "None", []) and plan.get(plan_key):
                setattr(self, name, plan[plan_key])

    def _resolve(self, context) -> tuple[DeploymentSettings, str, str]:
        """(settings, month, key) for this run; EngineConfigError when any is unusable."""
        self._from_plan()
        value = self.settings
        if value is None:
            from airflow.sdk import Variable

            value = Variable.get(VARIABLE_NAME, default=None)
        try:
            settings = load_settings(value)
            month = self.month if self.month not in (None, "", "None") else run_month(context)
            check_month(month)
            check_owner(self.github_owner)
            shard = check_shard(self.shard) if self.shard not in (None, "", "None") else None
            return settings, month, archive_key(settings.prefix, self.github_owner, month,
                                                shard)
        except (SettingsError, ValueError) as err:
            raise EngineConfigError(str(err)) from err

    def _result(self, settings: DeploymentSettings, month: str, key: str,
                summary: dict | None) -> dict[str, Any]:
        return {"owner": self.github_owner, "month": month, "bucket": settings.bucket,
                "key": key, "manifest_key": sidecar_key(key), "summary": summary,
                **({"shard": self.shard} if self.shard else {})}

    def note_replaced(self, context, settings: DeploymentSettings, key: str) -> None:
        """Before a backup writes `key`: push what it replaces (XCom ``replaces``) so the
        run's summary can say where the previous archive is kept (bucket versioning)."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        client = S3Hook(aws_conn_id=settings.aws_conn_id, region_name=settings.region).get_conn()
        try:
            head = client.head_object(Bucket=settings.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                self.log.warning("Cannot read s3://%s/%s before replacing it: %s",
                                 settings.bucket, key, err)
            return
        try:  # an object written before versioning was enabled has version id "null"
            kept = client.get_bucket_versioning(Bucket=settings.bucket).get("Status") == "Enabled"
        except ClientError as err:
            self.log.warning("Cannot read the versioning of bucket %s: %s", settings.bucket, err)
            kept = None
        replaced = {"owner": self.github_owner, "key": key, "kept": kept,
                    "version_id": head.get("VersionId") or "",
                    "last_modified": str(head.get("LastModified") or "")}
        self.log.info("This backup replaces s3://%s/%s of %s: %s", settings.bucket, key,
                      replaced["last_modified"],
                      {True: f"version {replaced['version_id']} stays in the bucket",
                       False: "the bucket has no versioning, so it is lost",
                       None: "unknown whether the bucket keeps it"}[kept])
        context["ti"].xcom_push("replaces", replaced)

    # What the runners run and how they read a failure; the verification step overrides these.
    doing = "Backing up"
    writes_archive = True  # the backup replaces the month's archive; verification reads it
    needs_token = True  # the local runner reads the GitHub token from SSM only when True
    reports_on_stdout = False  # where the engine's lines explaining a failure go

    def engine_argv(self, settings: DeploymentSettings, month: str, key: str) -> list[str]:
        return engine_arguments(settings, owner=self.github_owner, month=month, key=key,
                                kinds=self.kinds, repos=self.repos,
                                exclude_repos=self.exclude_repos,
                                shard=self.shard if self.shard not in (None, "None") else None)

    def engine_failure(self, code: int, *, settings: DeploymentSettings, month: str, key: str,
                       token_source: str, where: str,
                       log_lines: Sequence[str] = ()) -> BackupFailed:
        return engine_error(code, owner=self.github_owner, month=month, settings=settings,
                            key=key, token_source=token_source, where=where,
                            log_lines=log_lines)


class VerificationFailed(BackupFailed, AirflowFailException):
    """`ghvault verify` found the archive damaged or incomplete (a rerun of it will not help)."""


def verify_error(code: int, *, owner: str, month: str, settings: DeploymentSettings, key: str,
                 where: str, log_lines: Sequence[str] = ()) -> BackupFailed:
    """The exception for a non-zero exit of ``ghvault verify`` on the month's archive."""
    url = f"s3://{settings.bucket}/{key}"
    reasons: dict[Exit, tuple[type[BackupFailed], str]] = {
        Exit.CONFIG: (
            EngineConfigError,
            f"ghvault verify rejected its arguments for {url} (exit {code}): the engine image is "
            "older than the operators; deploy matching versions"),
        Exit.NOT_READY: (
            VerificationFailed,
            f"{url} is already in a cold storage class and cannot be verified without a restore "
            f"(exit {code}): verify right after the backup, before the transition"),
        Exit.UNREADABLE: (
            DestinationFailed,
            f"ghvault verify could not read {url} (exit {code}: missing, access denied or not a "
            f"zip): check that {where} may s3:GetObject it and its manifest"),
    }
    kind, message = reasons.get(code, (
        VerificationFailed,
        f"ghvault verify found problems in the archive of {owner} for {month}, {url} (exit "
        f"{code}): the lines below name each damaged entry; run the backup for {month} again"))
    return _error(kind, code, message, log_lines)


class VerifyContract(BackupContract):
    """The optional verification step: ``ghvault verify s3://BUCKET/KEY`` on the month's
    archive, run by the same runner as the backup (on ECS it costs the Airflow workers no
    memory). Needs no GitHub token. Returns the backup's XCom shape plus ``verified``.

    :param verify_with: the runner that verifies this run's archives (templated; the DAG
        renders the run plan's): "" or None means verification is off and the task skips
        itself; an operator bound to one runner (``runner_kind``) also skips when another
        runner is named.
    """

    doing = "Verifying the archive of"
    writes_archive = False
    needs_token = False
    reports_on_stdout = True  # one line per problem, then the summary
    runner_kind: str | None  # "ecs" or "local"; None: whichever runner verify_with names
    ui_color = "#e1d5e7"

    def __init__(self, *, verify_with: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.verify_with = verify_with

    def execute(self, context):
        if not self.verify_with or self.runner_kind not in (None, self.verify_with):
            why = (f"the {self.verify_with} runner verifies this run" if self.verify_with
                   else "verification is off (the 'verify' setting or param)")
            which = f" with the {self.runner_kind} runner" if self.runner_kind else ""
            raise AirflowSkipException(f"Not verifying{which}: {why}.")
        return super().execute(context)

    def engine_argv(self, settings: DeploymentSettings, month: str, key: str) -> list[str]:
        return ["verify", f"s3://{settings.bucket}/{key}"]

    def engine_failure(self, code: int, *, settings: DeploymentSettings, month: str, key: str,
                       token_source: str, where: str,
                       log_lines: Sequence[str] = ()) -> BackupFailed:
        return verify_error(code, owner=self.github_owner, month=month, settings=settings,
                            key=key, where=where, log_lines=log_lines)

    def _result(self, settings: DeploymentSettings, month: str, key: str,
                summary: dict | None) -> dict[str, Any]:
        return {**super()._result(settings, month, key, summary), "verified": True}
