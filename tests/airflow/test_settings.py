"""Deployment settings, the archive key, the run's month, the ECS waiter's limits and the
typed run plan."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pendulum
import pytest
from ghvault.contract import archive_key, previous_month
from ghvault_airflow.plan import PlanError, RunPlan
from ghvault_airflow.settings import (
    SettingsError,
    backup_timeout,
    load_settings,
    run_month,
    waiter_limits,
)


def test_archive_key_layout():
    assert archive_key("github", "hubber", "2026-10") == "github/hubber/2026/10/hubber-2026-10.zip"
    assert archive_key("/backups/gh/", "hubworks", "2027-01") == \
        "backups/gh/hubworks/2027/01/hubworks-2027-01.zip"
    assert archive_key("", "hubber", "2026-10") == "hubber/2026/10/hubber-2026-10.zip"
    for owner, month in (("hub/ber", "2026-10"), ("", "2026-10"), ("hubber", "2026-13"),
                         ("hubber", "2026-1"), ("hubber", "October")):
        with pytest.raises(ValueError):
            archive_key("github", owner, month)


def test_previous_month():
    assert previous_month("2026-10") == "2026-09"
    assert previous_month("2027-01") == "2026-12"


def test_run_month_uses_the_data_interval_else_run_after():
    october = pendulum.datetime(2026, 10, 1, tz="UTC")
    assert run_month({"data_interval_start": october,
                      "dag_run": SimpleNamespace(run_after=pendulum.datetime(2026, 11, 1))}) \
        == "2026-10"
    # A run triggered without a logical date has no data_interval_* keys at all.
    assert run_month({"dag_run": SimpleNamespace(run_after=pendulum.datetime(2026, 11, 17))}) \
        == "2026-11"
    assert run_month({"data_interval_start": None,
                      "dag_run": SimpleNamespace(run_after=datetime(2026, 12, 3, tzinfo=UTC))}) \
        == "2026-12"
    with pytest.raises(ValueError, match="month="):
        run_month({})


def test_run_month_reads_the_interval_in_the_schedules_timezone():
    from airflow.sdk import DAG
    from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable

    paris = pendulum.timezone("Europe/Paris")
    dag = DAG("tz", schedule=CronDataIntervalTimetable("0 0 1 * *", timezone=paris),
              start_date=pendulum.datetime(2026, 1, 1, tz=paris))
    start = pendulum.datetime(2026, 10, 1, tz=paris).in_timezone("UTC")  # 2026-09-30T22:00Z
    assert start.month == 9
    assert run_month({"dag": dag, "data_interval_start": start}) == "2026-10"


def test_load_settings_from_dict_json_repr_and_env():
    base = {"bucket": "backups", "prefix": "/gh/", "subnets": ["subnet-1"]}
    assert load_settings(base, env={}) == load_settings(json.dumps(base), env={}) \
        == load_settings(repr(base), env={})
    s = load_settings(base, env={})
    assert (s.prefix, s.runner, s.container_name, s.token_parameter) == \
        ("gh", "ecs", "ghvault", "/ghvault/github-token")
    s = load_settings(json.dumps(base), env={
        "GHVAULT_BUCKET": "other", "GHVAULT_SUBNETS": "subnet-a, subnet-b",
        "GHVAULT_ASSIGN_PUBLIC_IP": "false", "GHVAULT_RETENTION_DAYS": "400",
        "GHVAULT_ENGINE_ENV": '{"SSL_CERT_FILE": "/ca.pem"}', "GHVAULT_OWNERS": "hubber,hubworks",
        "GHVAULT_CAPACITY_PROVIDER": "FARGATE_SPOT", "GHVAULT_UNRELATED": "ignored"})
    assert (s.bucket, s.subnets, s.assign_public_ip, s.retention_days, s.engine_env,
            s.capacity_provider, s.owners) == ("other", ["subnet-a", "subnet-b"], False, 400,
                                               {"SSL_CERT_FILE": "/ca.pem"}, "FARGATE_SPOT",
                                               ["hubber", "hubworks"])
    assert load_settings(None, env={"GHVAULT_BUCKET": "b"}).bucket == "b"


@pytest.mark.parametrize("value, key", [
    ({}, "'bucket'"),
    ("", "'bucket'"),
    ({"bucket": "b", "bukcet": "b"}, "'bukcet'"),
    ({"bucket": "s3://b/x"}, "'bucket'"),
    ({"bucket": "b", "runner": "k8s"}, "'runner'"),
    ({"bucket": "b", "glacier_storage_class": "COLD"}, "'glacier_storage_class'"),
    ({"bucket": "b", "transition_days": 30, "retention_days": 30}, "'retention_days'"),
    ({"bucket": "b", "retention_days": "a year"}, "'retention_days'"),
    ({"bucket": "b", "assign_public_ip": "maybe"}, "'assign_public_ip'"),
    ({"bucket": "b", "subnets": "[1, 2]"}, "'subnets'"),
    ({"bucket": "b", "engine_env": {"GITHUB_TOKEN": "x"}}, "'engine_env'"),
    ({"bucket": "b", "github_api_url": "api.github.com"}, "'github_api_url'"),
    ({"bucket": "b", "state_url": "/var/state"}, "'state_url'"),
    ({"bucket": "b", "git_state": True}, "'git_state'"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
])
def test_load_settings_errors_name_the_key(value, key):
    with pytest.raises(SettingsError, match=key) as info:
        load_settings(value, env={})
    assert str(info.value).endswith(".") and ": " in str(info.value)


def test_ecs_settings_require_cluster_task_definition_and_subnets():
    with pytest.raises(SettingsError, match="'cluster' is required for runner 'ecs'"):
        load_settings({"bucket": "b"}, env={}).require_ecs()
    load_settings({"bucket": "b", "runner": "local"}, env={})  # the local runner needs none


@pytest.mark.parametrize("value, key", [
    ({"bucket": "b", "backup_timeout_hours": 0}, "'backup_timeout_hours'"),
    ({"bucket": "b", "waiter_delay_seconds": 0}, "'waiter_delay_seconds'"),
    ({"bucket": "b", "waiter_delay_seconds": "often"}, "'waiter_delay_seconds'"),
])
def test_timeout_and_waiter_settings_errors(value, key):
    with pytest.raises(SettingsError, match=key):
        load_settings(value, env={})


def test_one_backup_timeout_for_the_task_and_the_waiter():
    settings = load_settings({"bucket": "b"}, env={})
    assert (settings.backup_timeout, settings.waiter_delay_seconds) == (timedelta(hours=12), 30)
    assert backup_timeout(settings) == settings.backup_timeout
    # at parse time the Variable is not read: the environment or the default
    assert backup_timeout(env={}) == timedelta(hours=12)
    assert backup_timeout(env={"GHVAULT_BACKUP_TIMEOUT_HOURS": "20"}) == timedelta(hours=20)
    settings = load_settings({"bucket": "b"}, env={"GHVAULT_BACKUP_TIMEOUT_HOURS": "3",
                                                   "GHVAULT_WAITER_DELAY_SECONDS": "45"})
    assert (settings.backup_timeout, settings.waiter_delay_seconds) == (timedelta(hours=3), 45)
    # the waiter's limit is the timeout, rounded up to a whole poll, never short of it
    assert waiter_limits(timedelta(hours=12), 30) == (30, 1440)
    assert waiter_limits(timedelta(hours=6), 15) == (15, 1440)
    delay, attempts = waiter_limits(timedelta(seconds=100), 30)
    assert (delay, attempts) == (30, 4) and delay * attempts >= 100


# -- the run plan ------------------------------------------------------------------------------

def plan(**changes) -> RunPlan:
    settings = load_settings({"bucket": "backups", "prefix": "gh"}, env={}).as_dict()
    base = {"settings": settings, "month": "2026-10", "runner": "local", "verify": True,
            "run_type": "manual", "taken_at": "2026-12-01", "owners": ["hubber", "hubworks"],
            "kinds": ["git", "issues"], "repos": "^api"}
    return RunPlan(**{**base, **changes})


def test_run_plan_round_trips_through_xcom_json():
    original = plan()
    value = original.as_dict()
    assert json.loads(json.dumps(value)) == value  # what XCom stores
    assert RunPlan.from_mapping(value) == original
    assert value["verify_with"] == "local" and plan(verify=False).as_dict()["verify_with"] == ""
    assert (value["bucket"], value["prefix"]) == ("backups", "gh")
    assert original.per_owner() == [
        {"owner": "hubber", "key": "gh/hubber/2026/10/hubber-2026-10.zip",
         "previous_key": "gh/hubber/2026/09/hubber-2026-09.zip", "shard": ""},
        {"owner": "hubworks", "key": "gh/hubworks/2026/10/hubworks-2026-10.zip",
         "previous_key": "gh/hubworks/2026/09/hubworks-2026-09.zip", "shard": ""}]


@pytest.mark.parametrize("changes, words", [
    ({"runner": "k8s"}, "runner 'k8s' is not one of ecs, local"),
    ({"owners": []}, "no owners"),
    ({"owners": ["hubber", "hubber"]}, "lists an owner twice"),
    ({"owners": ["hub/ber"]}, "not a GitHub user or organisation login"),
    ({"month": "2026-13"}, "YYYY-MM"),
])
def test_run_plan_refuses_what_no_task_could_run(changes, words):
    with pytest.raises(ValueError, match=words):
        plan(**changes)


@pytest.mark.parametrize("value, words", [
    ("{oops", "not a mapping"),
    ({"month": "2026-10"}, "has no 'owners', 'run_type', 'runner', 'settings', 'taken_at'"),
    ({"month": "2026-10", "runner": "ecs", "owners": ["a"], "run_type": "manual",
      "taken_at": "2026-12-01"}, "no 'settings'"),
    ({**plan().as_dict(), "settings": {"bucket": "s3://x"}}, "give the bucket name only"),
])
def test_run_plan_from_a_foreign_xcom_names_the_fix(value, words):
    with pytest.raises(PlanError, match=words):
        RunPlan.from_mapping(value)
