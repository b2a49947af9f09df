"""The monthly ghvault backup: every configured GitHub owner into one S3 archive per month.

This file only wires the operators of the `ghvault_airflow` package together (that package
must be installed where the scheduler, the dag-processor and the workers run). Parsing it
reads no Variable, connection or AWS API: the settings are rendered when the run executes.
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
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from ghvault.contract import KINDS, OWNER_PATTERN, SHARD_MAX, check_owner, previous_month
from ghvault_airflow.notifications.sns import notify_failure
from ghvault_airflow.notifications.summary import notify_run, record_failure
from ghvault_airflow.operators.backup import GithubBackupOperator, GithubVerifyOperator
from ghvault_airflow.plan import PlanError, RunPlan, catchup_skip_reason, parse_time_pool
from ghvault_airflow.sensors.archive import BackupArchiveSensor, GlacierTransitionSensor
from ghvault_airflow.settings import (
    RUNNERS,
    SETTINGS_TEMPLATE,
    VARIABLE_NAME,
    SettingsError,
    backup_timeout,
    load_settings,
    run_month,
    run_type,
)
from ghvault_airflow.shards import counts_for

log = logging.getLogger(__name__)

# The kinds of content `ghvault run --include/--exclude` knows, as the trigger form offers them.
KIND_CHOICES = list(KINDS)
# Every backup and verification task, across runs, holds a slot of this pool (fixed at parse).
POOL = parse_time_pool()

DOC = """
# GitHub backup (ghvault)

Once a month (00:00 UTC on the 1st) this DAG backs up every configured GitHub owner (user or
organisation: repositories with all refs, wikis, LFS objects, issues, pull requests, reviews,
comments, releases and assets, gists, account data) into **one zip archive per owner and
month** in S3, checks it, and reports on SNS:

1. **plan** resolves the run into one run plan (XCom `plan`): the deployment settings
   (Airflow Variable `ghvault_settings`, `GHVAULT_*` environment variables on top), the
   params, the month, the owners, the runner, whether to verify. It skips scheduled runs
   older than the catch-up policy (below).
2. **backup** (one mapped group per owner, in parallel, each engine task holding a slot of
   the pool `ghvault`):
   **backup** runs the engine with the plan's runner: `ecs` (a Fargate task of the ghvault
   image; the token reaches the container from SSM through the task definition's
   `secrets`) or `local` (a subprocess of the worker; the token is read from SSM at run
   time). It writes `s3://BUCKET/PREFIX/OWNER/YYYY/MM/OWNER-YYYY-MM.zip` and its
   `.manifest.json`;
   **archive** checks that both exist and agree (size, SHA-256 checksum/ETag);
   **glacier** checks that an enabled lifecycle rule moves this archive to the cold storage
   class in time and keeps it for the retention, and reports whether last month's archive
   has gone cold;
   **verify** runs `ghvault verify` on the new archive with the same runner (every entry's
   SHA-256, every git bundle, every JSON file), or is skipped when verification is off.
3. **notify** (whatever happened upstream) publishes one SNS message for the run, "N of M
   owners succeeded": every owner with its figures, or the step that failed and why; then
   fails the run if any owner failed. A failure of plan publishes its own message.

A failed backup is retried twice, with exponential backoff from 5 minutes; configuration
errors, a bad token and an unknown owner fail at once. At most `pool_slots` (default 2)
engines run at the same time across all runs (they share the token's GitHub rate limit).

## Which month

A scheduled or backfill run covers its data interval: the run at 00:00 on 1 November backs
up **October** (`data_interval_start` 2026-10-01). A run with a logical date covers the last
complete month before that date: `airflow dags trigger github_backup -l 2026-04-01` backs
up March (the data interval Airflow's CLI stores for it is not used: it is inferred from the
trigger time). A run without a logical date (the default of the trigger form) backs up the
month of its `run_after`, i.e. the current, partial month.

Catch-up is on but bounded by the setting `catchup_months` (default 1): when the DAG is
first deployed (it is created unpaused, so that a backfill works at once) only the last
complete month is backed up; the older scheduled runs skip, saying why. Ask for older
months with a backfill. Any archive holds GitHub as it is on the day it ran: the
manifest says `month` and `taken_at`, the run's log and summary say so.

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
| `shards`        | parts (ECS tasks) per owner; empty: the settings' `shards`       |

## Backfill

Re-run past months, for example the second quarter of 2026 (each month's archive replaces
the one at its key, kept as a noncurrent version when the bucket has versioning, which the
summary names; a running scheduler executes the runs of an unpaused DAG):

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
App), `github_api_url`, `github_git_url`, `state_url`, `git_state`,
`sns_topic_arn`, `glacier_storage_class`, `transition_days`, `retention_days`, `engine_env`,
`verify`, `catchup_months`, `pool`, `pool_slots` (the scheduler creates the pool when it
starts; `python -m ghvault_airflow.plan pool` resizes it at once), `shards` and
`owner_shards` (parts per owner: one backup group, one ECS task, per part; an owner counts
as backed up only when all its parts are).
Each can also come from an environment variable `GHVAULT_<KEY>` (e.g. `GHVAULT_BUCKET`),
which wins over the Variable. See `ghvault_airflow.settings`.
"""


# Every task of the mapped group shows its owner (and part) as map index (the sensors read
# them from the archive key they check).
OWNER_INDEX = "{{ task.github_owner }}{{ (' part ' ~ task.shard) if task.shard else '' }}"
# The sensors take the run plan's values through their templated fields.
PLAN = "ti.xcom_pull(task_ids='plan', key='plan')"


def from_plan(name: str) -> str:
    return "{{ " + PLAN + "['" + name + "'] }}"


def _notify_failure(context) -> None:
    """plan's on_failure_callback: the run could not start (settings, params)."""
    notify_failure(context)


@dag(
    dag_id="github_backup",
    description="Monthly backup of GitHub owners into S3 Glacier, checked and reported on SNS",
    doc_md=DOC,
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    # catch-up on, bounded by the settings' catchup_months in plan (ghvault_airflow.plan)
    catchup=True,
    # active once deployed: a paused DAG ignores `airflow backfill create` without a word,
    # and the catch-up policy keeps the first activation to last month's backup
    is_paused_upon_creation=False,
    max_active_runs=2,
    dagrun_timeout=timedelta(hours=36),
    tags=["ghvault", "github", "backup", "s3", "glacier"],
    default_args={
        "owner": "platform",
        "retries": 1,
        "retry_delay": timedelta(minutes=2),
        "execution_timeout": timedelta(hours=1),
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
        "shards": Param(
            None, type=["null", "integer"], minimum=1, maximum=SHARD_MAX, title="Shards",
            description="Parts (one ECS task each) every owner of this run is split into; "
                        "a failed part is retried alone. Empty: the settings' 'shards' and "
                        "'owner_shards'."),
        "runner": Param(
            "", type="string", enum=["", *RUNNERS], title="Runner",
            values_display={"": "from the settings", "ecs": "ECS Fargate task",
                            "local": "subprocess of the Airflow worker"},
            description="Where the backup engine runs."),
    },
)
def github_backup():
    @task(on_failure_callback=_notify_failure)
    def plan(settings: str, **context) -> list[dict]:
        """Resolve settings, month, runner and owners into the run plan (XCom "plan", the
        snapshot every task of the run reads); return one entry per owner for the mapping."""
        ti, params = context["ti"], context["params"]
        try:
            cfg = load_settings(settings)
            runner = params.get("runner") or cfg.runner
            verify = cfg.verify if params.get("verify") is None else bool(params["verify"])
            if runner == "ecs":
                cfg.require_ecs()
        except SettingsError as err:  # a retry would not fix it
            raise AirflowFailException(str(err)) from err
        if cfg.pool != POOL:
            raise AirflowFailException(
                f"The settings name pool {cfg.pool!r} but the DAG's tasks were parsed with pool "
                f"{POOL!r}: a task's pool is fixed when the file is parsed, so set "
                f"GHVAULT_POOL={cfg.pool} in the environment of the dag-processor and workers "
                "(or set 'pool' back).")

        month = run_month(context)
        dag_run = context.get("dag_run")
        now = datetime.now(UTC)
        skip = catchup_skip_reason(month=month, run_type=run_type(context),
                                   clear_number=getattr(dag_run, "clear_number", 0) or 0,
                                   now=now, catchup_months=cfg.catchup_months)
        if skip:
            ti.xcom_push("skipped", skip)  # notify tells a skip from a failure by it
            raise AirflowSkipException(skip)

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
            shards = counts_for(owners, cfg.shards, cfg.owner_shards, params.get("shards"))
        except (ValueError, re.error) as err:
            raise AirflowFailException(f"Bad params: {err}") from err

        try:
            run = RunPlan(settings=cfg.as_dict(), runner=runner, month=month,
                          run_type=run_type(context), taken_at=f"{now:%Y-%m-%d}", owners=owners,
                          kinds=kinds, repos=params.get("repos") or "",
                          exclude_repos=params.get("exclude_repos") or "", verify=verify,
                          shards=shards)
        except PlanError as err:
            raise AirflowFailException(str(err)) from err
        ti.xcom_push("plan", run.as_dict())
        log.info("Backing up %s for %s with the %s runner into s3://%s/%s (content as of %s)",
                 ", ".join(owners), month, runner, cfg.bucket, cfg.prefix, run.taken_at)
        if month < previous_month(f"{now:%Y-%m}"):
            log.warning("%s ended before today: the archives will hold GitHub as it is on %s, "
                        "labelled %s (manifest: month vs taken_at)", month, run.taken_at, month)
        return run.per_owner()

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def notify(**context) -> dict:
        """One SNS message for the run: every owner, succeeded or failed; fails the run when
        any owner failed (after publishing)."""
        ti = context["ti"]
        plan_value = ti.xcom_pull(task_ids="plan", key="plan")
        if not plan_value and ti.xcom_pull(task_ids="plan", key="skipped"):
            raise AirflowSkipException("plan skipped this run (catch-up policy): nothing to "
                                       "report.")
        if not plan_value:  # fail, or the run would succeed with nothing done
            raise AirflowFailException("plan failed: nothing was backed up; its SNS message "
                                       "and log say why.")
        outcome = notify_run(context, plan_value)
        if outcome["failed"]:
            raise AirflowFailException(
                f"{len(outcome['failed'])} of {len(plan_value['owners'])} owners failed "
                f"({', '.join(outcome['failed'])}): the SNS summary and the steps' logs say why.")
        return outcome

    planned = plan(SETTINGS_TEMPLATE)  # the Variable is read when plan runs, not at parse
    done = notify()

    @task_group(group_id="backup")
    def backup(owner: str, key: str, previous_key: str, shard: str):
        engine = {
            "github_owner": owner, "shard": shard, "run_plan": planned["plan"], "pool": POOL,
            "on_failure_callback": record_failure, "map_index_template": OWNER_INDEX,
        }
        s3 = {"bucket": from_plan("bucket"), "key": key, "aws_conn_id": from_plan("aws_conn_id"),
              "on_failure_callback": record_failure, "map_index_template": OWNER_INDEX}
        # the runner is configuration (the plan's): one task, whichever runner
        run = GithubBackupOperator(
            task_id="backup", retries=2, retry_delay=timedelta(minutes=5),
            retry_exponential_backoff=2.0, max_retry_delay=timedelta(hours=1),
            execution_timeout=backup_timeout(), **engine)
        archive = BackupArchiveSensor(task_id="archive", **s3)
        glacier = GlacierTransitionSensor(
            task_id="glacier", **s3, previous_key=previous_key, prefix=from_plan("prefix"),
            storage_class=from_plan("storage_class"),
            transition_days=from_plan("transition_days"),
            retention_days=from_plan("retention_days"))
        # skips itself unless the plan asks for verification (verify_with names the runner)
        verify = GithubVerifyOperator(task_id="verify", retries=1,
                                      execution_timeout=timedelta(hours=4),
                                      verify_with=from_plan("verify_with"), **engine)
        run >> archive >> glacier >> verify >> done

    backup.expand_kwargs(planned)


github_backup()
