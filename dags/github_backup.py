"""The monthly ghvault backup: every configured GitHub owner into one S3 archive per month.

This file only wires the operators of the `operators` package together (that package must be
importable by the scheduler, the dag-processor and the workers: ship it beside this file in
the dags folder, or put the repository root on PYTHONPATH). Parsing it reads no Variable,
connection or AWS API: the settings are rendered when the run executes.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

from airflow.sdk import (
    CronDataIntervalTimetable,
    Param,
    TriggerRule,
    dag,
    task,
    task_group,
)
from airflow.sdk.exceptions import AirflowFailException
from ghvault.contract import KINDS, OWNER_PATTERN, archive_key, check_owner, previous_month
from ghvault_airflow.notifications.sns import notify_failure, notify_success
from ghvault_airflow.operators.backup import (
    GithubBackupOperator,
    GithubVerifyOperator,
    LocalBackupOperator,
    LocalVerifyOperator,
)
from ghvault_airflow.sensors.archive import BackupArchiveSensor, GlacierTransitionSensor
from ghvault_airflow.settings import (
    SETTINGS_TEMPLATE,
    VARIABLE_NAME,
    SettingsError,
    load_settings,
    run_month,
)

log = logging.getLogger(__name__)

# The kinds of content `ghvault run --include/--exclude` knows, as the trigger form offers them.
KIND_CHOICES = list(KINDS)

DOC = """
# GitHub backup (ghvault)

Once a month (00:00 UTC on the 1st) this DAG backs up every configured GitHub owner (user or
organisation: repositories with all refs, wikis, LFS objects, issues, pull requests, reviews,
comments, releases and assets, gists, account data) into **one zip archive per owner and
month** in S3, checks it, and reports on SNS:

1. **plan** resolves the run: the deployment settings (Airflow Variable `ghvault_settings`,
   `GHVAULT_*` environment variables on top), the month, the owners, the runner.
2. **runner** picks where the engine runs: `ecs` (a Fargate task of the ghvault image,
   `GithubBackupOperator`; the token reaches the container from SSM through the task
   definition's `secrets`) or `local` (a subprocess of the worker, `LocalBackupOperator`; the
   token is read from SSM at run time).
3. **backup** (one mapped branch per owner, in parallel): `ecs` or `local` writes
   `s3://BUCKET/PREFIX/OWNER/YYYY/MM/OWNER-YYYY-MM.zip` and its `.manifest.json`;
   **archive** checks that both exist and agree (size, SHA-256 checksum/ETag);
   **glacier** checks that an enabled lifecycle rule moves this archive to the cold storage
   class in time and keeps it for the retention, and reports whether last month's archive
   has gone cold; **verify_ecs** / **verify_local** (when the `verify` setting or param asks
   for it) run `ghvault verify` on the new archive with the same runner: every entry's
   SHA-256, every git bundle, every JSON file.
4. **notify** publishes one SNS message with every owner's summary. Any failed task
   publishes a failure message naming the owner, the step and the reason.

A failed backup is retried twice, with exponential backoff from 5 minutes; configuration
errors, a bad token and an unknown owner fail at once. At most four owners are backed up at
the same time in a run (they share the token's GitHub rate limit).

## Which month

A scheduled run covers its data interval: the run at 00:00 on 1 November backs up
**October** (`data_interval_start` 2026-10-01). Catchup is on, so months missed while the
DAG was paused or down are run when it comes back (two at a time). A run with a logical date
covers the last complete month before that date; a run without a logical date (the default
of the trigger form) backs up the month of its `run_after`, i.e. the current, partial month.

## Trigger with parameters

Trigger the DAG from the UI (the form validates every field) or from the CLI:

    airflow dags trigger github_backup \\
      --conf '{"owners": ["octocat"], "exclude": ["lfs", "assets"], "runner": "local"}'

| param           | meaning                                                          |
|-----------------|------------------------------------------------------------------|
| `owners`        | logins to back up; empty: the settings' `owners`                 |
| `include`       | kinds of content to back up; empty: all                          |
| `exclude`       | kinds of content to leave out                                    |
| `repos`         | regex: only repositories whose name matches                      |
| `exclude_repos` | regex: leave out repositories whose name matches                 |
| `runner`        | `ecs`, `local`, or empty for the settings' `runner`              |
| `verify`        | run `ghvault verify` on each new archive; empty: the settings'   |

## Backfill

Re-run past months, for example the second quarter of 2026 (each month's archive replaces
the one at its key; a running scheduler executes the runs of an unpaused DAG):

    airflow backfill create --dag-id github_backup \\
      --from-date 2026-04-01 --to-date 2026-06-30 --reprocess-behavior completed

One month without a scheduler (the date is the end of the month to back up: this backs up
June):

    airflow dags test github_backup 2026-07-01

## Settings (Variable `ghvault_settings`, JSON)

`bucket` (required), `prefix`, `owners` (list), `runner`, `region`, `aws_conn_id`, and for
ECS `cluster`, `task_definition`, `container_name`, `subnets`, `security_groups`,
`assign_public_ip`, `capacity_provider` (`FARGATE_SPOT`), `log_group`, `log_stream_prefix`;
`credential_store` (`ssm` or `secretsmanager`) with `token_parameter` (the GitHub token) or
`github_app_id`, `github_app_installation_id`, `github_app_private_key_secret` (a GitHub
App), `github_api_url`, `github_git_url`, `state_url`,
`sns_topic_arn`, `glacier_storage_class`, `transition_days`, `retention_days`, `engine_env`,
`verify`.
Each can also come from an environment variable `GHVAULT_<KEY>` (e.g. `GHVAULT_BUCKET`),
which wins over the Variable. See `ghvault_airflow.settings`.
"""


# Every task of the mapped group shows its owner as map index (the sensors read it from the
# archive key they check).
OWNER_INDEX = "{{ task.github_owner }}"


def _notify_failure(context) -> None:
    """on_failure_callback: the failure message, with the settings and runner plan resolved."""
    ti = context["ti"]
    runner = ti.xcom_pull(task_ids="plan", key="runner") or "local"
    notify_failure(context, backup_task_id=f"backup.{runner}",
                   settings=ti.xcom_pull(task_ids="plan", key="settings"))


@dag(
    dag_id="github_backup",
    description="Monthly backup of GitHub owners into S3 Glacier, checked and reported on SNS",
    doc_md=DOC,
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=True,
    max_active_runs=2,
    dagrun_timeout=timedelta(hours=36),
    tags=["ghvault", "github", "backup", "s3", "glacier"],
    default_args={
        "owner": "platform",
        "retries": 1,
        "retry_delay": timedelta(minutes=2),
        "execution_timeout": timedelta(hours=1),
        "on_failure_callback": _notify_failure,
    },
    params={
        "owners": Param(
            None, type=["null", "array"], minItems=1, uniqueItems=True,
            items={"type": "string", "pattern": f"^{OWNER_PATTERN}$"},
            title="GitHub owners",
            description="Users or organisations to back up, one per line. Empty: the "
                        "'owners' of the ghvault_settings Variable."),
        "include": Param(
            None, type=["null", "array"], uniqueItems=True,
            items={"type": "string", "enum": KIND_CHOICES}, examples=KIND_CHOICES,
            title="Include only", description="Kinds of content to back up. Empty: all."),
        "exclude": Param(
            None, type=["null", "array"], uniqueItems=True,
            items={"type": "string", "enum": KIND_CHOICES}, examples=KIND_CHOICES,
            title="Exclude", description="Kinds of content to leave out."),
        "repos": Param(
            None, type=["null", "string"], format="regex", title="Repositories",
            description="Regular expression: only repositories whose name matches."),
        "exclude_repos": Param(
            None, type=["null", "string"], format="regex", title="Exclude repositories",
            description="Regular expression: leave out repositories whose name matches."),
        "verify": Param(
            None, type=["null", "boolean"], title="Verify the archives",
            description="Run 'ghvault verify' on each new archive (every entry's SHA-256, "
                        "every git bundle, every JSON file) after the sensors, with the same "
                        "runner. Empty: the settings' 'verify'."),
        "runner": Param(
            "", type="string", enum=["", "ecs", "local"], title="Runner",
            values_display={"": "from the settings", "ecs": "ECS Fargate task",
                            "local": "subprocess of the Airflow worker"},
            description="Where the backup engine runs."),
    },
)
def github_backup():
    @task
    def plan(settings: str, **context) -> list[dict]:
        """Resolve settings, month, runner and owners; one entry per owner for the mapping."""
        ti, params = context["ti"], context["params"]
        try:  # resolved once: every task of the run uses this snapshot (XCom "settings")
            cfg = load_settings(settings)
            runner = params.get("runner") or cfg.runner
            ti.xcom_push("settings", cfg.as_dict())
            ti.xcom_push("runner", runner)
            verify = cfg.verify if params.get("verify") is None else bool(params["verify"])
            ti.xcom_push("verify_with", runner if verify else "")
            if runner == "ecs":
                cfg.require_ecs()
        except SettingsError as err:  # a retry would not fix it
            raise AirflowFailException(str(err)) from err

        owners = list(dict.fromkeys(o.strip() for o in params.get("owners") or cfg.owners
                                    if o.strip()))
        if not owners:
            raise AirflowFailException(
                "No GitHub owners to back up: give 'owners' in the run's params, or set "
                f"'owners' in the {VARIABLE_NAME} Variable (or GHVAULT_OWNERS).")
        include, exclude = params.get("include"), params.get("exclude") or []
        kinds = [k for k in include or KINDS if k not in exclude] if include or exclude else []
        if (include or exclude) and not kinds:
            raise AirflowFailException("The params 'include' and 'exclude' leave nothing to "
                                       "back up: remove a kind from 'exclude'.")
        try:
            for owner in owners:
                check_owner(owner)
            for name in ("repos", "exclude_repos"):
                if params.get(name):
                    re.compile(params[name])
        except (ValueError, re.error) as err:
            raise AirflowFailException(f"Bad params: {err}") from err

        month = run_month(context)
        # One XCom per value the mapped tasks take (an XCom cannot hold None: "" and [] mean
        # "not set", as the operators read them).
        run = {"month": month, "kinds": kinds, "repos": params.get("repos") or "",
               "exclude_repos": params.get("exclude_repos") or "", "bucket": cfg.bucket,
               "prefix": cfg.prefix, "aws_conn_id": cfg.aws_conn_id,
               "storage_class": cfg.glacier_storage_class,
               "transition_days": cfg.transition_days, "retention_days": cfg.retention_days}
        for key, value in run.items():
            ti.xcom_push(key, value)
        log.info("Backing up %s for %s with the %s runner into s3://%s/%s", ", ".join(owners),
                 month, runner, cfg.bucket, cfg.prefix)
        return [{"owner": owner, "key": archive_key(cfg.prefix, owner, month),
                 "previous_key": archive_key(cfg.prefix, owner, previous_month(month))}
                for owner in owners]

    @task.branch
    def runner(runner: str) -> str:
        """Follow the backup task of the chosen runner (the other one is skipped)."""
        return f"backup.{runner}"

    # every backup, sensor and chosen verification succeeded; the other runner's tasks skipped
    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def notify(runner: str, month: str, settings: dict, **context) -> str | None:
        """One SNS message summarising every owner's backup."""
        return notify_success(context, backup_task_id=f"backup.{runner}",
                              glacier_task_id="backup.glacier", month=month, settings=settings,
                              verify_task_id=f"backup.verify_{runner}")

    planned = plan(SETTINGS_TEMPLATE)  # the Variable is read when plan runs, not at parse
    choice = runner(planned["runner"])
    done = notify(planned["runner"], planned["month"], planned["settings"])

    @task_group(group_id="backup")
    def backup(owner: str, key: str, previous_key: str):
        engine = {
            "github_owner": owner, "settings": planned["settings"], "month": planned["month"],
            "kinds": planned["kinds"], "repos": planned["repos"],
            "exclude_repos": planned["exclude_repos"],
            "retries": 2, "retry_delay": timedelta(minutes=5), "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(hours=1), "execution_timeout": timedelta(hours=12),
            "max_active_tis_per_dagrun": 4, "map_index_template": OWNER_INDEX,
        }
        s3 = {"bucket": planned["bucket"], "key": key, "aws_conn_id": planned["aws_conn_id"],
              "map_index_template": OWNER_INDEX}
        ecs = GithubBackupOperator(task_id="ecs", **engine)
        local = LocalBackupOperator(task_id="local", **engine)
        archive = BackupArchiveSensor(task_id="archive", **s3,
                                      trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
        glacier = GlacierTransitionSensor(
            task_id="glacier", **s3, previous_key=previous_key, prefix=planned["prefix"],
            storage_class=planned["storage_class"], transition_days=planned["transition_days"],
            retention_days=planned["retention_days"])
        # each verification task skips itself unless verify_with names its runner
        checks = {**engine, "retries": 1, "execution_timeout": timedelta(hours=4),
                  "verify_with": planned["verify_with"]}
        verify_ecs = GithubVerifyOperator(task_id="verify_ecs", **checks)
        verify_local = LocalVerifyOperator(task_id="verify_local", **checks)
        choice >> [ecs, local]
        [ecs, local] >> archive >> glacier >> [verify_ecs, verify_local]
        [glacier, verify_ecs, verify_local] >> done

    backup.expand_kwargs(planned)


github_backup()
