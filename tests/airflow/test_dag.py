"""The github_backup DAG as the scheduler sees it: imports, structure, schedule, params, plan.

Fast: nothing runs. The DAG file is parsed by Airflow's DagBag from the dags folder (with
AIRFLOW_HOME in a temporary directory); the parse-time test does it in a fresh process in
which reading a Variable or a connection, or opening a network connection, raises.
"""

from __future__ import annotations

import atexit
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
SETTINGS = {"bucket": "archives", "prefix": "github", "runner": "local",
            "owners": ["octocat", "octo-org"]}


def dagbag():
    """Parse the dags folder; Airflow is imported here, with its files kept out of ~/airflow."""
    if "airflow" not in sys.modules and "AIRFLOW_HOME" not in os.environ:
        os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="ghvault-airflow-")
        atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(DAGS))


@pytest.fixture(scope="module")
def dag():
    bag = dagbag()
    assert bag.import_errors == {}
    assert list(bag.dag_ids) == ["github_backup"]
    return bag.dags["github_backup"]  # get_dag() would ask the metadata DB


def test_parse_reads_no_variable_connection_or_network(tmp_path) -> None:
    probe = f"""
import socket, sys
def refuse(*args, **kwargs):
    raise RuntimeError("touched at parse time")
socket.socket.connect = socket.create_connection = refuse
import airflow.sdk, airflow.models
from airflow.sdk.bases.hook import BaseHook
airflow.sdk.Variable.get = airflow.models.Variable.get = staticmethod(refuse)
BaseHook.get_connection = classmethod(refuse)
from airflow.dag_processing.dagbag import DagBag
bag = DagBag({str(DAGS)!r})
print(repr(bag.import_errors), list(bag.dag_ids))
"""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": str(ROOT),
           "AIRFLOW_VAR_GHVAULT_SETTINGS": "this is not JSON: parsing must not read it"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "{} ['github_backup']"


def test_parsing_is_fast(dag) -> None:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        bag = dagbag()
        times.append(time.perf_counter() - start)
        assert bag.import_errors == {}
    assert statistics.median(times) < 1.0, times


def test_tasks_and_their_wiring(dag) -> None:
    # the runner is configuration, not a branch: one backup task per owner whichever runner
    assert set(dag.task_ids) == {"plan", "backup.backup", "backup.archive", "backup.glacier",
                                 "backup.verify", "notify"}
    up = {t: set(dag.get_task(t).upstream_task_ids) for t in dag.task_ids}
    assert up["backup.backup"] == {"plan"}
    assert up["backup.archive"] == {"plan", "backup.backup"}
    assert up["backup.glacier"] == {"plan", "backup.archive"}
    assert up["backup.verify"] == {"plan", "backup.glacier"}
    assert up["notify"] == {"backup.verify"}
    types = {t: type(dag.get_task(t)).__name__ for t in dag.task_ids}
    assert types["backup.backup"] == "GithubBackupOperator"
    assert types["backup.archive"] == "BackupArchiveSensor"
    assert types["backup.glacier"] == "GlacierTransitionSensor"
    assert types["backup.verify"] == "GithubVerifyOperator"
    # one summary per run, whatever failed upstream
    assert dag.get_task("notify").trigger_rule == "all_done"
    assert all(dag.get_task(t).trigger_rule == "all_success" for t in dag.task_ids
               if t != "notify")


def test_one_mapped_branch_per_owner(dag) -> None:
    from airflow.sdk.definitions.taskgroup import MappedTaskGroup

    group = dag.task_group_dict["backup"]
    assert isinstance(group, MappedTaskGroup)
    assert {t.task_id for t in group} == {"backup.backup", "backup.archive", "backup.glacier",
                                          "backup.verify"}
    # expanded over what plan returns: one {"owner", "key", "previous_key"} per owner
    assert [op.task_id for op in group.iter_mapped_dependencies()] == ["plan"]


def test_backup_retries_with_backoff_and_bounded_runs(dag) -> None:
    task = dag.get_task("backup.backup")
    assert task.retries == 2 and task.retry_exponential_backoff == 2.0
    assert task.execution_timeout.total_seconds() == 12 * 3600
    assert dag.get_task("backup.archive").mode == "reschedule"
    assert all(dag.get_task(t).execution_timeout for t in dag.task_ids)
    assert dag.max_active_runs == 2
    assert {"ghvault", "backup"} <= set(dag.tags)
    assert "airflow backfill create --dag-id github_backup" in dag.doc_md
    assert "--conf" in dag.doc_md


def test_every_engine_task_shares_one_pool_across_runs(dag) -> None:
    # issue 14 #3: backfills and catch-up ran six backups at once against one token
    for task_id in ("backup.backup", "backup.verify"):
        assert dag.get_task(task_id).pool == "ghvault"
        assert dag.get_task(task_id).pool_slots == 1
    assert dag.get_task("plan").pool == dag.get_task("notify").pool == "default_pool"


def test_pool_settings_are_read_before_the_rest_is_configured() -> None:
    from ghvault_airflow.plan import pool_settings
    from ghvault_airflow.settings import SettingsError

    # a starting scheduler creates the pool, maybe before the Variable exists
    defaults = pool_settings(None, env={})
    assert (defaults.pool, defaults.pool_slots) == ("ghvault", 2)
    sized = pool_settings('{"bucket": "b", "pool_slots": 3}', env={})
    assert (sized.pool, sized.pool_slots) == ("ghvault", 3)
    named = pool_settings(None, env={"GHVAULT_POOL": "gh", "GHVAULT_POOL_SLOTS": "5"})
    assert (named.pool, named.pool_slots) == ("gh", 5)
    with pytest.raises(SettingsError, match="'pool_slots' is less than 1"):
        pool_settings({"pool_slots": 0}, env={})


def test_monthly_schedule_with_month_long_intervals(dag) -> None:
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.catchup is True
    # issue 14 #3: a paused DAG ignores `airflow backfill create` without a word; created
    # unpaused, the catch-up policy keeps its first activation to last month's backup
    assert dag.is_paused_upon_creation is False
    timetable = coerce_to_core_timetable(dag.timetable)
    first = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True))
    assert first.data_interval == DataInterval(datetime(2026, 1, 1, tzinfo=UTC),
                                               datetime(2026, 2, 1, tzinfo=UTC))
    assert first.run_after == datetime(2026, 2, 1, tzinfo=UTC)
    # the run after January covers February, and so on, month by month
    second = timetable.next_dagrun_info(last_automated_data_interval=first.data_interval,
                                        restriction=TimeRestriction(dag.start_date, None, True))
    assert second.data_interval.start == datetime(2026, 2, 1, tzinfo=UTC)
    # `airflow dags test github_backup 2026-11-01` (and any time later that day, or later in
    # November) covers October: the last complete month before the date given
    for run_after in (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, 3, tzinfo=UTC),
                      datetime(2026, 11, 30, 23, tzinfo=UTC)):
        manual = timetable.infer_manual_data_interval(run_after=run_after)
        assert manual == DataInterval(datetime(2026, 10, 1, tzinfo=UTC),
                                      datetime(2026, 11, 1, tzinfo=UTC)), run_after


def validate(dag, **conf) -> dict:
    params = copy.deepcopy(dag.params)  # setting a value changes the Param object itself
    params.update(conf)
    return params.validate()


def test_params_accept_a_valid_trigger_form(dag) -> None:
    assert validate(dag) == {"owners": None, "include": None, "exclude": None, "repos": None,
                             "exclude_repos": None, "verify": None, "runner": "",
                             "shards": None}
    assert validate(dag, owners=["octocat", "my-org"], include=["git", "issues"],
                    exclude=["lfs"], repos="^api-", exclude_repos="-archive$",
                    runner="ecs")["owners"] == ["octocat", "my-org"]


@pytest.mark.parametrize("conf", [
    {"owners": []},  # an empty list is not "use the settings": that is null
    {"owners": ["octocat", "octocat"]},
    {"owners": ["-not-a-login"]},
    {"owners": "octocat"},
    {"include": ["git", "everything"]},
    {"exclude": ["secrets"]},
    {"repos": "("},
    {"runner": "kubernetes"},
])
def test_params_reject_bad_values(dag, conf) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        validate(dag, **conf)


# -- plan: the only logic in the DAG file --------------------------------------------------------


class FakeTI:
    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key: str, value) -> None:
        assert value is not None, f"XCom {key} cannot hold None"
        self.pushed[key] = value


def plan(dag, settings: dict | str, monkeypatch=None, **params):
    ti = FakeTI()
    context = {"ti": ti, "params": {**validate(dag), **params},
               "data_interval_start": datetime(2026, 10, 1, 3, tzinfo=UTC)}
    text = settings if isinstance(settings, str) else json.dumps(settings)
    return dag.get_task("plan").python_callable(text, **context), ti.pushed


def test_plan_maps_owners_from_the_settings(dag) -> None:
    owners, pushed = plan(dag, SETTINGS)
    assert owners == [
        {"owner": "octocat", "key": "github/octocat/2026/10/octocat-2026-10.zip",
         "previous_key": "github/octocat/2026/09/octocat-2026-09.zip", "shard": ""},
        {"owner": "octo-org", "key": "github/octo-org/2026/10/octo-org-2026-10.zip",
         "previous_key": "github/octo-org/2026/09/octo-org-2026-09.zip", "shard": ""}]
    # one XCom value, the run plan, instead of a dozen keys
    assert list(pushed) == ["plan"]
    run = pushed["plan"]
    assert run["month"] == "2026-10" and run["runner"] == "local"
    assert run["owners"] == ["octocat", "octo-org"]
    assert run["kinds"] == [] and run["repos"] == ""
    assert run["settings"]["bucket"] == "archives"  # the snapshot every task uses
    assert (run["storage_class"], run["transition_days"], run["retention_days"]) == (
        "GLACIER", 1, 365)
    assert run["taken_at"] == f"{datetime.now(UTC):%Y-%m-%d}"
    from ghvault_airflow.plan import RunPlan

    assert RunPlan.from_mapping(run).month == "2026-10"


def test_plan_params_win_over_settings(dag, monkeypatch) -> None:
    monkeypatch.setenv("GHVAULT_PREFIX", "backups")
    owners, pushed = plan(dag, SETTINGS, owners=["solo"], include=["git", "lfs", "issues"],
                          exclude=["lfs"], repos="^api-", runner="local")
    assert [o["owner"] for o in owners] == ["solo"]
    assert owners[0]["key"] == "backups/solo/2026/10/solo-2026-10.zip"
    assert pushed["plan"]["kinds"] == ["git", "issues"] and pushed["plan"]["repos"] == "^api-"


def test_verification_step_from_settings_or_params(dag) -> None:
    def verify_with(settings, **params):
        return plan(dag, settings, **params)[1]["plan"]["verify_with"]

    assert verify_with(SETTINGS) == ""  # off: the verification task skips itself
    assert verify_with({**SETTINGS, "verify": True}) == "local"
    assert verify_with({**SETTINGS, "verify": True}, verify=False) == ""  # the param wins
    assert verify_with({**SETTINGS, "cluster": "c", "task_definition": "t", "subnets": ["s"]},
                       runner="ecs", verify=True) == "ecs"


def test_plan_owners_from_the_environment(dag, monkeypatch) -> None:
    monkeypatch.setenv("GHVAULT_OWNERS", "a-user, an-org")
    owners, _ = plan(dag, {"bucket": "archives", "runner": "local"})
    assert [o["owner"] for o in owners] == ["a-user", "an-org"]


def test_plan_fails_with_what_to_fix(dag, monkeypatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.delenv("GHVAULT_OWNERS", raising=False)
    with pytest.raises(AirflowFailException, match="No GitHub owners to back up"):
        plan(dag, {"bucket": "archives", "runner": "local"})
    with pytest.raises(AirflowFailException, match="leave nothing to back up"):
        plan(dag, SETTINGS, include=["git"], exclude=["git"])
    with pytest.raises(AirflowFailException, match="'cluster' is required for runner 'ecs'"):
        plan(dag, SETTINGS, runner="ecs")
    with pytest.raises(AirflowFailException, match="no 'bucket'"):
        plan(dag, "")
    with pytest.raises(AirflowFailException, match="not valid JSON"):
        plan(dag, "{bucket: archives")
    with pytest.raises(AirflowFailException, match="is not a GitHub user"):
        plan(dag, SETTINGS, owners=["bad login"])
    with pytest.raises(AirflowFailException, match="set GHVAULT_POOL=other in the environment"):
        plan(dag, {**SETTINGS, "pool": "other"})


# -- honest months (issue 14 #1) and the catch-up policy (#2) -----------------------------------


class FakeRun:
    def __init__(self, run_type: str, run_after: datetime | None = None,
                 clear_number: int = 0) -> None:
        self.run_type, self.run_after, self.clear_number = run_type, run_after, clear_number
        self.run_id = f"{run_type}__test"


def month_of(dag, run_type: str, *, logical: datetime | None, interval_start: datetime | None,
             run_after: datetime | None = None) -> str:
    from ghvault_airflow.settings import run_month

    context = {"dag": dag, "dag_run": FakeRun(run_type, run_after)}
    if logical is not None:
        context["logical_date"] = logical
    if interval_start is not None:
        context["data_interval_start"] = interval_start
    return run_month(context)


def test_trigger_with_a_logical_date_backs_up_the_month_before_it(dag) -> None:
    from airflow.serialization.encoders import coerce_to_core_timetable

    timetable = coerce_to_core_timetable(dag.timetable)
    today = datetime(2026, 12, 1, 9, tzinfo=UTC)
    for logical in (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 15, 12, tzinfo=UTC)):
        # what `airflow dags trigger -l` stores: an interval inferred from the trigger time
        cli_interval = timetable.infer_manual_data_interval(run_after=today)
        assert cli_interval.start == datetime(2026, 11, 1, tzinfo=UTC)
        assert month_of(dag, "manual", logical=logical, interval_start=cli_interval.start,
                        run_after=today) == "2026-03"
        # the month the UI/REST API infer from the logical date itself
        honest = timetable.infer_manual_data_interval(run_after=logical)
        assert f"{honest.start:%Y-%m}" == "2026-03"


def test_scheduled_and_backfill_runs_cover_their_data_interval(dag) -> None:
    october = datetime(2026, 10, 1, tzinfo=UTC)
    for run_type in ("scheduled", "backfill"):
        assert month_of(dag, run_type, logical=october, interval_start=october) == "2026-10"


def test_a_run_without_logical_date_backs_up_the_current_month(dag) -> None:
    assert month_of(dag, "manual", logical=None, interval_start=None,
                    run_after=datetime(2026, 12, 5, tzinfo=UTC)) == "2026-12"


def test_catch_up_reaches_back_only_as_far_as_the_policy() -> None:
    from ghvault_airflow.plan import catchup_skip_reason

    now = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)

    def skipped(month, run_type="scheduled", months=1, cleared=0):
        return catchup_skip_reason(month=month, run_type=run_type, clear_number=cleared,
                                   now=now, catchup_months=months)

    assert skipped("2026-11") is None  # the month before the first run
    reason = skipped("2026-01")
    assert "Not backing up 2026-01" in reason and "airflow backfill create" in reason
    assert all(skipped(f"2026-{m:02d}") for m in range(1, 11))  # the ten older ones
    assert skipped("2026-09", months=3) is None and skipped("2026-08", months=3)
    # asked for: a backfill, a manual run, a cleared scheduled run
    assert skipped("2026-01", run_type="backfill") is None
    assert skipped("2026-01", run_type="manual") is None
    assert skipped("2026-01", cleared=1) is None


def test_plan_skips_old_scheduled_runs_and_says_why(dag) -> None:
    from airflow.sdk.exceptions import AirflowSkipException
    from ghvault.contract import previous_month

    last = previous_month(f"{datetime.now(UTC):%Y-%m}")
    old = previous_month(previous_month(last))
    ti = FakeTI()

    def run(month: str, run_type: str, settings=SETTINGS):
        start = datetime(int(month[:4]), int(month[5:]), 1, tzinfo=UTC)
        context = {"ti": ti, "params": validate(dag), "dag_run": FakeRun(run_type),
                   "logical_date": start, "data_interval_start": start}
        return dag.get_task("plan").python_callable(json.dumps(settings), **context)

    with pytest.raises(AirflowSkipException, match=f"Not backing up {old}"):
        run(old, "scheduled")
    assert "catchup_months" in ti.pushed["skipped"]
    assert run(last, "scheduled")[0]["key"].endswith(f"-{last}.zip")
    assert run(old, "backfill")[0]["key"].endswith(f"-{old}.zip")
    assert ti.pushed["plan"]["run_type"] == "backfill"
    assert run(old, "scheduled", {**SETTINGS, "catchup_months": 3})


def test_notify_fails_the_run_when_plan_failed_and_skips_when_plan_skipped(dag) -> None:
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    class PullTI:
        def __init__(self, values):
            self.values = values

        def xcom_pull(self, task_ids, key="return_value", **_):
            return self.values.get(key)

    notify = dag.get_task("notify").python_callable
    with pytest.raises(AirflowFailException, match="plan failed: nothing was backed up"):
        notify(ti=PullTI({}))
    with pytest.raises(AirflowSkipException, match="catch-up policy"):
        notify(ti=PullTI({"skipped": "Not backing up 2026-01"}))
