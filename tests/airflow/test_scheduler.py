"""github_backup under a real scheduler (scheduler, dag-processor, triggerer, api-server,
LocalExecutor, PostgreSQL): see tests/airflow/scheduler_harness.py for the deployment.

Each test works on months no other test touches, so they can run alone (`-k`) or together;
each waits first for the catch-up of the first deployment to end:

| test                         | how the run starts                      | month(s)          |
|------------------------------|-----------------------------------------|-------------------|
| first deployment (catch-up)  | the scheduler, once the DAG is parsed   | the month before now |
| backfill                     | airflow backfill create 05-01..07-31    | 2026-05..07       |
| logical date                 | airflow dags trigger -l 2026-04-01T06:00| 2026-03           |
| clear and rerun              | -l 2026-09-15, then cleared             | 2026-08           |
| a failing owner              | -l 2026-10-15                           | 2026-09           |
| deferrable ECS               | -l 2026-11-15, runner ecs               | 2026-10           |
| the pool                     | -l 2026-02-15 and -l 2026-03-15 at once | 2026-01, 2026-02  |
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import UTC, datetime
from itertools import combinations

import pytest
from ghvault.contract import archive_key

from devtools.fargate import FargateEmulator
from tests.airflow.scheduler_harness import SchedulerStack

pytestmark = [pytest.mark.slow, pytest.mark.scheduler]
NO_SUCH_OWNER = "no-such-owner-404"
BACKUP = "backup.backup"  # the mapped backup task, whichever runner


def key(stack: SchedulerStack, owner: str, month: str) -> str:
    return archive_key(stack.settings["prefix"], owner, month)


def manifests(stack: SchedulerStack, owner: str, month: str) -> tuple[dict, dict]:
    """The sidecar manifest and the archive's own MANIFEST.json."""
    k = key(stack, owner, month)
    sidecar = json.loads(stack.read(k + ".manifest.json"))
    inner = json.loads(zipfile.ZipFile(io.BytesIO(stack.read(k))).read("MANIFEST.json"))
    return sidecar, inner


def written(stack: SchedulerStack, before: dict) -> set[str]:
    """Keys new or changed since the snapshot `before` (stack.archives())."""
    return {k for k, o in stack.archives().items()
            if k not in before or before[k]["ETag"] != o["ETag"]}


def expected_keys(stack: SchedulerStack, owners, months) -> set[str]:
    return {key(stack, o, m) + suffix for o in owners for m in months
            for suffix in ("", ".manifest.json")}


def successes(stack: SchedulerStack, month: str) -> list[dict]:
    return stack.notifications(status="success", month=month)


def caught_up(stack: SchedulerStack) -> list[dict]:
    """The scheduled runs of the first deployment's catch-up, finished (later tests start
    once it is over, so that only their own runs write their months)."""
    return stack.unpause_and_catch_up()


def test_first_deployment_backs_up_only_the_catch_up_months(
        scheduler: SchedulerStack) -> None:
    # deployed unpaused: a paused DAG would ignore `airflow backfill create` without a word
    assert not scheduler.paused(), "the DAG must be created unpaused"
    now = datetime.now(UTC)
    last = f"{now.year - 1}-12" if now.month == 1 else f"{now.year}-{now.month - 1:02d}"
    runs = caught_up(scheduler)
    # the scheduler queued a run for every month since start_date; only the policy's month
    # (catchup_months 1: the month before the first run) was backed up, the others skipped
    assert all(r["state"] == "success" for r in runs), \
        [(r["dag_run_id"], r["state"]) for r in runs]
    backed_up = {}
    for run in runs:
        states = {t["task_id"]: t["state"] for t in scheduler.task_instances(run["dag_run_id"])
                  if t["task_id"] in ("plan", BACKUP)}
        backed_up[run["data_interval_start"][:7]] = states["plan"] == "success"
        assert states["plan"] in ("success", "skipped"), (run["dag_run_id"], states)
    assert [m for m, yes in backed_up.items() if yes] == [last], backed_up
    assert len(backed_up) > 1, "start_date lies months back: the catch-up has older months"
    for owner in scheduler.owners:
        sidecar, inner = manifests(scheduler, owner, last)
        assert sidecar["month"] == inner["month"] == last and sidecar["owner"] == owner
    scheduled = [m for m in scheduler.notifications()
                 if re.search(r"run \S+ \(scheduled\)", m["message"])]
    assert [m["attributes"]["month"] for m in scheduled] == [last], \
        [m["subject"] for m in scheduled]
    assert "2 of 2 owners succeeded" in scheduled[0]["subject"]


def test_backfill_of_three_months(scheduler: SchedulerStack) -> None:
    caught_up(scheduler)
    before, months = scheduler.archives(), ["2026-05", "2026-06", "2026-07"]
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    # the catch-up left a (skipped) run on each of these dates: ask for them again
    scheduler.backfill("2026-05-01", "2026-07-31", "--reprocess-behavior", "completed")
    runs = scheduler.wait_runs(lambda r: r["run_type"] == "backfill"
                               and r["logical_date"][:7] in months, 3, timeout=300)
    assert sorted(r["data_interval_start"][:7] for r in runs) == months
    # exactly one archive and one manifest per owner and month, nothing else
    assert written(scheduler, before) == expected_keys(scheduler, scheduler.owners, months)
    for owner in scheduler.owners:
        for month in months:
            sidecar, inner = manifests(scheduler, owner, month)
            assert sidecar["month"] == inner["month"] == month and sidecar["owner"] == owner
            assert len(scheduler.versions(key(scheduler, owner, month))) == 1
            # an old month's archive holds GitHub as it is today, and says so
            assert inner["taken_at"] == today, (month, inner.get("taken_at"))
    for month in months:
        (note,) = successes(scheduler, month)
        assert f"Content as of {today}" in note["message"], note["message"][:600]


def test_trigger_with_a_logical_date_backs_up_the_month_before(
        scheduler: SchedulerStack) -> None:
    caught_up(scheduler)
    before, owner = scheduler.archives(), scheduler.owners[0]
    # (2026-04-01T00:00 itself has the catch-up's run: one run per logical date)
    run_id = scheduler.trigger("manual-l-2026-04-01", "2026-04-01T06:00:00+00:00",
                               {"owners": [owner]})
    scheduler.wait_runs(lambda r: r["dag_run_id"] == run_id, 1)
    assert written(scheduler, before) == expected_keys(scheduler, [owner], ["2026-03"])
    sidecar, inner = manifests(scheduler, owner, "2026-03")
    assert sidecar["month"] == inner["month"] == "2026-03"
    assert len(successes(scheduler, "2026-03")) == 1


def test_clear_and_rerun_replaces_the_archive_and_keeps_the_previous_version(
        scheduler: SchedulerStack) -> None:
    caught_up(scheduler)
    owner, month = scheduler.owners[0], "2026-08"
    run_id = scheduler.trigger("rerun-2026-09-15", "2026-09-15",
                               {"owners": [owner], "verify": True})
    (first,) = scheduler.wait_runs(lambda r: r["dag_run_id"] == run_id, 1)
    k = key(scheduler, owner, month)
    (original,) = scheduler.versions(k)

    scheduler.clear(run_id)
    scheduler.wait_runs(lambda r: r["dag_run_id"] == run_id
                        and (r["end_date"] or "") > first["end_date"], 1, timeout=300)
    newest, previous = scheduler.versions(k)
    assert newest["IsLatest"] and previous["VersionId"] == original["VersionId"]
    assert newest["ETag"] != original["ETag"]
    # the replaced archive is still there, whole, under its version id
    old = zipfile.ZipFile(io.BytesIO(scheduler.read(k, original["VersionId"])))
    assert json.loads(old.read("MANIFEST.json"))["month"] == month
    sidecar, inner = manifests(scheduler, owner, month)
    assert sidecar["archive"]["size"] == newest["Size"] and inner["month"] == month
    verified = scheduler.task_instances(run_id, "backup.verify")
    assert [t["state"] for t in verified] == ["success"], verified
    first_note, rerun_note = successes(scheduler, month)
    assert original["VersionId"] in rerun_note["message"], rerun_note["message"]


def test_a_failing_owner_beside_a_succeeding_one(scheduler: SchedulerStack) -> None:
    caught_up(scheduler)
    owner, month = scheduler.owners[0], "2026-09"
    before = scheduler.archives()
    run_id = scheduler.trigger("owners-2026-10-15", "2026-10-15",
                               {"owners": [owner, NO_SUCH_OWNER]})
    scheduler.wait_runs(lambda r: r["dag_run_id"] == run_id, 1, expect="failed")
    assert written(scheduler, before) == expected_keys(scheduler, [owner], [month])
    backups = {t["rendered_map_index"]: t for t in scheduler.task_instances(run_id)
               if t["task_id"] == BACKUP}
    assert backups[owner]["state"] == "success"
    # an unknown owner is not retried: it failed at once
    assert backups[NO_SUCH_OWNER]["state"] == "failed"
    assert backups[NO_SUCH_OWNER]["try_number"] == 1
    summaries = [m for m in scheduler.notifications(month=month)
                 if "owners succeeded" in m["subject"]]
    assert len(summaries) == 1, [m["subject"] for m in scheduler.notifications(month=month)]
    (summary,) = summaries
    assert "1 of 2 owners succeeded" in summary["subject"]
    assert NO_SUCH_OWNER in summary["message"] and "does not exist" in summary["message"]
    assert key(scheduler, owner, month) in summary["message"]


def test_deferrable_ecs_runner_through_the_triggerer(scheduler: SchedulerStack,
                                                     moto_server) -> None:
    caught_up(scheduler)
    owner, month = scheduler.owners[0], "2026-10"
    seen: set[str] = set()
    # the engine as a process: this test is about the triggerer's wait; the ECS tests of
    # test_dag_e2e run the image itself
    with FargateEmulator(moto_server.endpoint, runtime="process") as fargate:
        run_id = scheduler.trigger("ecs-2026-11-15", "2026-11-15",
                                   {"owners": [owner], "runner": "ecs"})

        def finished() -> bool:
            seen.update(t["state"] for t in scheduler.task_instances(run_id, BACKUP))
            return scheduler.run(run_id)["state"] in ("success", "failed")

        scheduler.wait_for(finished, 300, f"run {run_id} (ECS) to finish", interval=0.5)
    scheduler.wait_runs(lambda r: r["dag_run_id"] == run_id, 1)
    # the backup waited in the triggerer, not in a worker slot
    assert "deferred" in seen, seen
    # the triggerer's own log of that wait, beside the task's log
    task_logs = scheduler.home / "logs" / "dag_id=github_backup" / f"run_id={run_id}"
    trigger_logs = list(task_logs.glob(f"task_id={BACKUP}/map_index=0/attempt=*.log.trigger.*"))
    assert trigger_logs, f"no trigger log under {task_logs}"
    text = trigger_logs[0].read_text(errors="replace")
    assert f"trigger github_backup/{run_id}/{BACKUP}/0/1 (ID" in text
    assert "Status of the task is RUNNING" in text  # it asked moto's ECS while it waited
    (container,) = fargate.runs
    assert container.exit_code == 0 and container.command[:3] == ["run", "--owner", owner]
    sidecar, inner = manifests(scheduler, owner, month)
    assert sidecar["month"] == inner["month"] == month
    assert len(successes(scheduler, month)) == 1


def test_the_pool_bounds_concurrent_backups(scheduler: SchedulerStack) -> None:
    caught_up(scheduler)
    pool = scheduler.rest("GET", f"/api/v2/pools/{scheduler.pool}")
    assert pool["slots"] == 1
    runs = [scheduler.trigger("pool-2026-02-15", "2026-02-15"),
            scheduler.trigger("pool-2026-03-15", "2026-03-15",
                              {"owners": [scheduler.owners[0]]})]
    done = scheduler.wait_runs(lambda r: r["dag_run_id"] in runs, 2, timeout=300)
    # both runs were under way at the same time ...
    (a, b) = done
    assert a["start_date"] < b["end_date"] and b["start_date"] < a["end_date"]
    # ... yet no two backups (or verifications) in the pool ever ran at once
    pooled = [t for run in runs for t in scheduler.task_instances(run)
              if t["pool"] == pool["name"] and t["state"] == "success"]
    assert len([t for t in pooled if t["task_id"] == BACKUP]) == 3
    for x, y in combinations(pooled, 2):
        assert x["end_date"] <= y["start_date"] or y["end_date"] <= x["start_date"], (
            f"{x['task_id']}[{x['rendered_map_index']}] of {x['dag_run_id']} "
            f"({x['start_date']}..{x['end_date']}) overlapped "
            f"{y['task_id']}[{y['rendered_map_index']}] of {y['dag_run_id']} "
            f"({y['start_date']}..{y['end_date']})")
