"""Settings, the archive key, and both backup operators.

The ECS operator runs against moto's ECS (FARGATE in moto's default VPC): RunTask is real,
and a hook on the operator's own ECS client plays the container the moment moto accepts
the task (writes its CloudWatch log lines, records its exit code on moto's task), so that
the provider's waiter, its log fetcher and its success check all run unmodified. The local
operator runs the real engine against the GitHub simulator, moto's S3 and moto's SSM.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import quote

import pendulum
import pytest
from airflow.providers.amazon.aws.utils.identifiers import generate_uuid
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred
from airflow.sdk.module_loading import import_string
from ghvault.contract import archive_key, previous_month
from ghvault_airflow.operators.backup import (
    BackupFailed,
    DestinationFailed,
    EngineAuthError,
    EngineConfigError,
    GithubBackupOperator,
    GitHubUnavailable,
    GithubVerifyOperator,
    LocalBackupOperator,
    LocalVerifyOperator,
    OwnerNotFound,
    VerificationFailed,
    backup_operator_class,
    engine_arguments,
)
from ghvault_airflow.settings import (
    DeploymentSettings,
    SettingsError,
    load_settings,
    run_month,
)

from tests.conftest import OTHER_TOKEN, TOKEN

REGION = "us-east-1"
ACCOUNT = "123456789012"


# -- settings and keys -----------------------------------------------------------------------

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


def test_backup_operator_class():
    assert backup_operator_class("ecs") is GithubBackupOperator
    assert backup_operator_class("local") is LocalBackupOperator
    assert backup_operator_class("ecs", verify=True) is GithubVerifyOperator
    assert backup_operator_class("local", verify=True) is LocalVerifyOperator
    with pytest.raises(ValueError, match="runner"):
        backup_operator_class("k8s")


# -- the ECS operator: what it asks ECS for --------------------------------------------------

SETTINGS = {
    "bucket": "ghvault-archives", "prefix": "github", "region": REGION,
    "cluster": "ghvault", "task_definition": "ghvault-backup", "container_name": "ghvault",
    "subnets": ["subnet-1", "subnet-2"], "security_groups": ["sg-1"], "assign_public_ip": False,
    "log_group": "/ghvault/backup", "log_stream_prefix": "ghvault",
    "token_parameter": "/ghvault/github-token", "github_api_url": "https://ghe.example/api/v3",
    "state_url": "s3://ghvault-state/validators/", "engine_env": {"GHVAULT_CONCURRENCY": "8"},
}


@dataclass
class FakeTaskInstance:
    """What the operators use of the task instance: its identity and xcom_push."""

    run_id: str = field(default_factory=lambda: f"manual__{uuid.uuid4()}")
    dag_id: str = "github_backup"
    task_id: str = "backup"
    map_index: int = 0
    try_number: int = 1
    xcoms: dict = field(default_factory=dict)

    def xcom_push(self, key, value):
        self.xcoms[key] = value


def context_for(month_start: datetime | None = None, **ti) -> dict:
    run_after = pendulum.datetime(2026, 11, 1, tz="UTC")
    ctx = {"ti": FakeTaskInstance(**ti), "dag_run": SimpleNamespace(run_after=run_after)}
    if month_start is not None:
        ctx["data_interval_start"] = month_start
    return ctx


def test_overrides_carry_the_command_and_no_secret():
    op = GithubBackupOperator(task_id="backup", github_owner="hubworks", settings=SETTINGS,
                              kinds=["git", "issues"], repos=["^api", "web$"],
                              exclude_repos="-archive$")
    settings, month, key = op.prepare(context_for(pendulum.datetime(2026, 10, 1, tz="UTC")))
    assert (month, key) == ("2026-10", "github/hubworks/2026/10/hubworks-2026-10.zip")
    (container,) = op.overrides["containerOverrides"]
    assert container["name"] == "ghvault"
    assert container["command"] == [
        "run", "--owner", "hubworks", "--month", "2026-10",
        "--dest", "s3://ghvault-archives/github/hubworks/2026/10/hubworks-2026-10.zip",
        "--api-url", "https://ghe.example/api/v3", "--state", "s3://ghvault-state/validators/",
        "--include", "git,issues", "--repos", "(?:^api)|(?:web$)", "--exclude-repos",
        "-archive$"]
    assert container["environment"] == [{"name": "AWS_DEFAULT_REGION", "value": REGION},
                                         {"name": "GHVAULT_CONCURRENCY", "value": "8"}]
    assert "TOKEN" not in json.dumps(op.overrides).upper()
    assert op.network_configuration == {"awsvpcConfiguration": {
        "subnets": ["subnet-1", "subnet-2"], "securityGroups": ["sg-1"],
        "assignPublicIp": "DISABLED"}}
    assert (op.cluster, op.task_definition, op.container_name) == \
        ("ghvault", "ghvault-backup", "ghvault")
    assert (op.launch_type, op.capacity_provider_strategy) == ("FARGATE", None)
    assert (op.awslogs_group, op.awslogs_stream_prefix, op.awslogs_region) == \
        ("/ghvault/backup", "ghvault", REGION)
    assert (op.reattach, op.propagate_tags, op.waiter_delay, op.waiter_max_attempts) == \
        (True, "TASK_DEFINITION", 15, 1440)
    assert (op.aws_conn_id, op.region_name) == ("aws_default", REGION)
    op.arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/ghvault/abc123"
    assert op._get_logs_stream_name() == "ghvault/ghvault/abc123"  # the awslogs driver's name


def test_capacity_provider_explicit_arguments_and_extra_overrides():
    spot = {**SETTINGS, "capacity_provider": "FARGATE_SPOT", "assign_public_ip": True,
            "security_groups": []}
    op = GithubBackupOperator(task_id="b", github_owner="hubber", settings=json.dumps(spot),
                              month="2026-07")
    op.prepare(context_for())
    assert (op.launch_type, op.capacity_provider_strategy) == \
        (None, [{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
    assert op.network_configuration == {"awsvpcConfiguration": {
        "subnets": ["subnet-1", "subnet-2"], "assignPublicIp": "ENABLED"}}

    op = GithubBackupOperator(
        task_id="b", github_owner="hubber", settings=spot, cluster="other", launch_type="EC2",
        aws_conn_id="aws_prod", container_name="engine",
        overrides={"memory": "4096", "containerOverrides": [
            {"name": "engine", "environment": [{"name": "EXTRA", "value": "1"}]},
            {"name": "sidecar", "command": ["sleep"]}]})
    op.prepare(context_for())
    assert (op.cluster, op.launch_type, op.capacity_provider_strategy, op.aws_conn_id) == \
        ("other", "EC2", None, "aws_prod")
    assert op.overrides["memory"] == "4096"
    engine, sidecar = op.overrides["containerOverrides"]
    assert engine["name"] == "engine" and engine["command"][:2] == ["run", "--owner"]
    assert {"name": "EXTRA", "value": "1"} in engine["environment"]
    assert sidecar == {"name": "sidecar", "command": ["sleep"]}


@pytest.mark.parametrize("settings, month, message", [
    ({"bucket": "b"}, None, "'cluster' is required"),
    ("{{ not rendered", None, "not valid JSON"),
    (SETTINGS, "2026-13", "not YYYY-MM"),
])
def test_bad_settings_fail_without_retry(settings, month, message):
    op = GithubBackupOperator(task_id="b", github_owner="hubber", settings=settings, month=month)
    with pytest.raises(EngineConfigError, match=message) as info:
        op.prepare(context_for())
    assert isinstance(info.value, AirflowFailException)


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("template", ["{{ var.json.ghvault_settings | tojson }}",
                                      "{{ var.json.ghvault_settings }}"])
def test_settings_rendered_from_the_variable_at_run_time(monkeypatch, native, template):
    from airflow.sdk import DAG
    from airflow.sdk.execution_time.context import VariableAccessor

    monkeypatch.setenv("AIRFLOW_VAR_GHVAULT_SETTINGS", json.dumps(SETTINGS))
    with DAG(f"render_{native}", schedule=None, render_template_as_native_obj=native) as dag:
        op = GithubBackupOperator(task_id="b", github_owner="{{ params.owner }}",
                                  settings=template, params={"owner": "hubber"})
    op.render_template_fields({"var": {"json": VariableAccessor(deserialize_json=True)},
                               "params": {"owner": "hubber"}, "dag": dag, "task": op})
    assert op.github_owner == "hubber"
    op.prepare(context_for(pendulum.datetime(2026, 10, 1, tz="UTC")))
    assert op.network_configuration["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"


def test_engine_arguments_for_all_kinds_and_rendered_lists():
    s = DeploymentSettings(bucket="b")
    assert engine_arguments(s, owner="o", month="2026-01", key="k.zip") == [
        "run", "--owner", "o", "--month", "2026-01", "--dest", "s3://b/k.zip",
        "--api-url", "https://api.github.com"]
    # Params rendered without native objects arrive as text.
    args = engine_arguments(s, owner="o", month="2026-01", key="k", kinds="['git', 'wiki']",
                            repos="None", exclude_repos="[]")
    assert args[-2:] == ["--include", "git,wiki"]


def test_mapping_over_github_owner_and_default_args_owner():
    from airflow.sdk import DAG

    with DAG("m", schedule=None, default_args={"owner": "platform"}):
        mapped = GithubBackupOperator.partial(task_id="ecs", settings=SETTINGS) \
            .expand(github_owner=["hubber", "hubworks"])
        local = LocalBackupOperator.partial(task_id="local").expand(github_owner=["hubber"])
    assert mapped.owner == local.owner == "platform"  # Airflow's task owner is untouched


@pytest.mark.parametrize("operator_class", [GithubBackupOperator, LocalBackupOperator,
                                            GithubVerifyOperator, LocalVerifyOperator])
def test_default_args_reach_every_constructor_argument(operator_class):
    """Airflow fills from default_args only the arguments of the __init__s its operator
    metaclass wraps: the shared ones (github_owner, settings, month, verify_with) too."""
    from airflow.sdk import DAG

    defaults = {"owner": "platform", "retries": 3, "github_owner": "hubber",
                "settings": SETTINGS, "month": "2026-10", "kinds": ["git"],
                "verify_with": "local"}
    with DAG("d", schedule=None, default_args=defaults):
        op = operator_class(task_id="t")
    assert (op.owner, op.retries, op.github_owner, op.month, op.kinds) == (
        "platform", 3, "hubber", "2026-10", ["git"])
    assert op.settings == SETTINGS
    if operator_class in (GithubVerifyOperator, LocalVerifyOperator):
        assert op.verify_with == "local"
        mapped = operator_class.partial(task_id="m", settings=SETTINGS, verify_with="ecs") \
            .expand(github_owner=["hubber", "hubworks"])
        assert mapped.partial_kwargs["verify_with"] == "ecs"


# -- the ECS operator against moto's ECS -----------------------------------------------------

@pytest.fixture
def ecs(aws, monkeypatch):
    """A Fargate-ready account in moto: cluster, task definition with the token secret, logs."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", "aws://testing:testing@/?region_name="
                       f"{REGION}&endpoint_url={quote(aws.endpoint, safe='')}")
    name = f"ghvault-{uuid.uuid4().hex[:8]}"
    ec2 = aws.client("ec2")
    subnet = ec2.describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    group = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [subnet["VpcId"]]},
        {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]["GroupId"]
    parameter = f"/{name}/github-token"
    aws.client("ssm").put_parameter(Name=parameter, Type="SecureString", Value=TOKEN)
    client = aws.client("ecs")
    client.create_cluster(clusterName=name)
    client.register_task_definition(
        family=name, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=[{
            "name": "ghvault", "image": "ghvault:latest", "memory": 512, "essential": True,
            "secrets": [{"name": "GITHUB_TOKEN", "valueFrom": parameter}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": f"/{name}", "awslogs-region": REGION,
                "awslogs-stream-prefix": "ghvault"}}}])
    aws.client("logs").create_log_group(logGroupName=f"/{name}")
    settings = {**SETTINGS, "cluster": name, "task_definition": name, "log_group": f"/{name}",
                "subnets": [subnet["SubnetId"]], "security_groups": [group],
                "token_parameter": parameter}
    return SimpleNamespace(aws=aws, client=client, name=name, settings=settings,
                           parameter=parameter)


def play_container(ecs, exit_code: int, lines: list[str]):
    """A botocore hook that plays the container when moto accepts RunTask."""
    from moto.ecs.models import ecs_backends

    def after_run_task(parsed, **_):
        for described in parsed.get("tasks", []):
            task = ecs_backends[ACCOUNT][REGION].tasks[ecs.name][described["taskArn"]]
            stream = f"ghvault/ghvault/{task.id}"
            logs = ecs.aws.client("logs")
            logs.create_log_stream(logGroupName=ecs.settings["log_group"], logStreamName=stream)
            now = int(time.time() * 1000)
            logs.put_log_events(
                logGroupName=ecs.settings["log_group"], logStreamName=stream,
                logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)])
            container = task.containers[0]
            container.last_status = "STOPPED"
            container.exitCode = exit_code
            task.desired_status = "STOPPED"

    return after_run_task


def ecs_operator(ecs, exit_code: int, lines: list[str], **kwargs) -> GithubBackupOperator:
    op = GithubBackupOperator(task_id="backup", github_owner="hubworks", settings=ecs.settings,
                              region_name=REGION, waiter_delay=0,
                              awslogs_fetch_interval=pendulum.duration(seconds=0.2), **kwargs)
    op.client.meta.events.register("after-call.ecs.RunTask", play_container(ecs, exit_code, lines))
    return op


SUMMARY = {"owner": "hubworks", "month": "2026-10", "counts": {"repos": 3}, "bytes": 1234,
           "api_requests": 42, "duration_s": 1.5}


def test_ecs_success_returns_the_key_and_the_summary(ecs):
    op = ecs_operator(ecs, 0, ["collecting hubworks", json.dumps(SUMMARY)])
    context = context_for(pendulum.datetime(2026, 10, 1, tz="UTC"), map_index=3)
    result = op.execute(context)
    key = "github/hubworks/2026/10/hubworks-2026-10.zip"
    assert result == {"owner": "hubworks", "month": "2026-10", "bucket": "ghvault-archives",
                      "key": key, "manifest_key": key + ".manifest.json", "summary": SUMMARY}
    arn = context["ti"].xcoms["ecs_task_arn"]
    (task,) = ecs.client.describe_tasks(cluster=ecs.name, tasks=[arn])["tasks"]
    ti = context["ti"]
    assert task["startedBy"] == generate_uuid(ti.dag_id, ti.task_id, ti.run_id, "3")
    assert task["launchType"] == "FARGATE"
    assert task["overrides"]["containerOverrides"][0]["command"][:6] == [
        "run", "--owner", "hubworks", "--month", "2026-10", "--dest"]
    assert TOKEN not in json.dumps(task, default=str) + json.dumps(result)
    assert all(TOKEN not in str(getattr(op, f)) for f in op.template_fields)


@pytest.mark.parametrize("code, error, words", [
    (2, EngineConfigError, "exit 2"),
    (3, EngineAuthError, "update the SSM parameter {parameter}"),
    (4, OwnerNotFound, "'hubworks' does not exist"),
    (5, DestinationFailed, "s3://ghvault-archives/github/hubworks/2026/10/"),
    (6, GitHubUnavailable, "githubstatus"),
    (1, BackupFailed, "internal error"),
    (137, BackupFailed, "out of memory"),
])
def test_ecs_exit_codes_become_specific_errors(ecs, code, error, words):
    op = ecs_operator(ecs, code, ["starting", f"ERROR: the engine's reason for {code}"])
    with pytest.raises(error, match=words.format(parameter=ecs.parameter)) as info:
        op.execute(context_for(pendulum.datetime(2026, 10, 1, tz="UTC")))
    assert type(info.value) is error and info.value.exit_code == code
    assert f"the engine's reason for {code}" in str(info.value)  # the container's last lines
    assert isinstance(info.value, AirflowFailException) == (code in (2, 3, 4))


def test_ecs_deferrable_defers_then_completes_with_the_mapping(ecs):
    context = context_for(pendulum.datetime(2026, 10, 1, tz="UTC"))
    op = ecs_operator(ecs, 3, ["bad credentials"], deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    arn = context["ti"].xcoms["ecs_task_arn"]
    assert (trigger.task_arn, trigger.log_group) == (arn, ecs.settings["log_group"])
    assert trigger.log_stream == f"ghvault/ghvault/{arn.rsplit('/', 1)[1]}"
    assert trigger.waiter_max_attempts == 1440  # 6 hours of 15 s polls by default
    # The triggerer: the serialized trigger, rebuilt and run with aiobotocore against moto.
    path, kwargs = trigger.serialize()
    trigger_class = import_string(path)
    assert kwargs["region_name"] == REGION and kwargs["log_stream"] == trigger.log_stream

    async def first_event():
        async for event in trigger_class(**kwargs).run():
            return event.payload

    event = asyncio.run(first_event())
    assert event == {"status": "success", "task_arn": arn, "cluster": ecs.name}
    # A fresh instance resumes, as after the triggerer (its settings are rendered again).
    resumed = GithubBackupOperator(task_id="backup", github_owner="hubworks",
                                   settings=json.dumps(ecs.settings), region_name=REGION)
    with pytest.raises(EngineAuthError, match=ecs.parameter) as info:
        resumed.execute_complete(context, event)
    assert "bad credentials" in str(info.value)


def test_ecs_verification_runs_ghvault_verify_on_the_months_archive(ecs):
    key = "github/hubworks/2026/10/hubworks-2026-10.zip"
    op = GithubVerifyOperator(task_id="verify", github_owner="hubworks", settings=ecs.settings,
                              verify_with="ecs", region_name=REGION, waiter_delay=0,
                              awslogs_fetch_interval=pendulum.duration(seconds=0.2))
    op.client.meta.events.register("after-call.ecs.RunTask", play_container(
        ecs, 0, ["verifying", json.dumps({"ok": True, "entries": 12})]))
    context = context_for(pendulum.datetime(2026, 10, 1, tz="UTC"))
    result = op.execute(context)
    assert result["verified"] is True and result["key"] == key
    assert result["summary"] == {"ok": True, "entries": 12}
    (task,) = ecs.client.describe_tasks(cluster=ecs.name,
                                        tasks=[context["ti"].xcoms["ecs_task_arn"]])["tasks"]
    assert task["overrides"]["containerOverrides"][0]["command"] == [
        "verify", f"s3://ghvault-archives/{key}"]

    op = GithubVerifyOperator(task_id="verify", github_owner="hubworks", settings=ecs.settings,
                              verify_with="ecs", region_name=REGION, waiter_delay=0,
                              awslogs_fetch_interval=pendulum.duration(seconds=0.2))
    op.client.meta.events.register("after-call.ecs.RunTask", play_container(
        ecs, 1, ["BAD repos/api/git.bundle: sha256 differs from the manifest"]))
    with pytest.raises(VerificationFailed, match="found problems in the archive of hubworks "
                                                 "for 2026-10") as info:
        op.execute(context_for(pendulum.datetime(2026, 10, 1, tz="UTC")))
    assert "repos/api/git.bundle" in str(info.value)
    assert isinstance(info.value, AirflowFailException)  # a retry would verify the same bytes


def test_ecs_refuses_a_task_definition_with_a_plaintext_token_or_wrong_container(ecs):
    ecs.client.register_task_definition(
        family=ecs.name, networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", containerDefinitions=[{
            "name": "ghvault", "image": "ghvault:latest", "memory": 512,
            "environment": [{"name": "GITHUB_TOKEN", "value": TOKEN}]}])
    op = ecs_operator(ecs, 0, [])
    with pytest.raises(EngineConfigError, match="GITHUB_TOKEN as plain environment"):
        op.execute(context_for())
    op = ecs_operator(ecs, 0, [], container_name="backup")
    with pytest.raises(EngineConfigError, match="no container named 'backup'"):
        op.execute(context_for())
    assert ecs.client.list_tasks(cluster=ecs.name)["taskArns"] == []  # nothing was started


# -- the local operator: the real engine, the simulator, moto's S3 and SSM -------------------

@pytest.fixture
def local(aws, sim, monkeypatch):
    """Settings for the local runner. AWS reaches the engine only through the connection."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", "aws://testing:testing@/?region_name="
                       f"{REGION}&endpoint_url={quote(aws.endpoint, safe='')}")
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    bucket = f"ghvault-{uuid.uuid4().hex[:8]}"
    aws.client("s3").create_bucket(Bucket=bucket)
    ssm = aws.client("ssm")
    good, bad = f"/{bucket}/token", f"/{bucket}/old-token"
    ssm.put_parameter(Name=good, Type="SecureString", Value=TOKEN)
    ssm.put_parameter(Name=bad, Type="SecureString", Value=OTHER_TOKEN)
    env = {k: v for k, v in sim.client_env().items()}
    settings = {"bucket": bucket, "runner": "local", "region": REGION, "token_parameter": good,
                "github_api_url": sim.api, "engine_env": env}
    return SimpleNamespace(aws=aws, sim=sim, bucket=bucket, settings=settings, bad=bad)


def test_local_backup_runs_the_engine_and_keeps_the_token_out(local, caplog, capfd):
    owner = local.sim.sim.world.owners["org"]
    op = LocalBackupOperator(task_id="backup", github_owner=owner,
                             settings=json.dumps(local.settings), kinds="issues,labels")
    caplog.set_level(logging.DEBUG)
    result = op.execute(context_for(pendulum.datetime(2026, 10, 1, tz="UTC")))
    key = f"github/{owner}/2026/10/{owner}-2026-10.zip"
    assert {k: result[k] for k in ("owner", "month", "bucket", "key", "manifest_key")} == {
        "owner": owner, "month": "2026-10", "bucket": local.bucket, "key": key,
        "manifest_key": key + ".manifest.json"}
    summary = result["summary"]
    assert summary["owner"] == owner and summary["month"] == "2026-10"
    assert summary["counts"] and summary["api_requests"] > 0
    s3 = local.aws.client("s3")
    head = s3.head_object(Bucket=local.bucket, Key=key)
    manifest = json.loads(s3.get_object(Bucket=local.bucket,
                                        Key=key + ".manifest.json")["Body"].read())
    assert manifest["archive"]["size"] == head["ContentLength"]
    logged = caplog.text + "".join(capfd.readouterr())
    assert f"backing up {owner}" in logged and "repositories into s3://" in logged  # stderr
    assert TOKEN not in logged and TOKEN not in json.dumps(result)
    assert all(TOKEN not in str(getattr(op, f)) for f in op.template_fields)


def test_local_backup_bad_token_missing_parameter_and_unknown_owner(local, caplog, capfd):
    month = pendulum.datetime(2026, 9, 1, tz="UTC")
    bad = {**local.settings, "token_parameter": local.bad}
    op = LocalBackupOperator(task_id="b", github_owner="hubber", settings=bad)
    with pytest.raises(EngineAuthError, match=f"update the SSM parameter {local.bad}") as info:
        op.execute(context_for(month))
    assert info.value.exit_code == 3 and OTHER_TOKEN not in str(info.value)
    assert OTHER_TOKEN not in caplog.text + "".join(capfd.readouterr())

    missing = {**local.settings, "token_parameter": "/nowhere/token"}
    op = LocalBackupOperator(task_id="b", github_owner="hubber", settings=missing)
    with pytest.raises(EngineConfigError, match="SSM parameter /nowhere/token does not exist"):
        op.execute(context_for(month))

    op = LocalBackupOperator(task_id="b", github_owner="nobody-at-all", settings=local.settings)
    with pytest.raises(OwnerNotFound, match="'nobody-at-all' does not exist") as info:
        op.execute(context_for(month))
    assert info.value.exit_code == 4
    s3 = local.aws.client("s3")
    assert s3.list_objects_v2(Bucket=local.bucket).get("KeyCount", 0) == 0


def test_local_verification_passes_a_good_archive_and_names_a_damaged_entry(local):
    owner = local.sim.sim.world.owners["org"]
    month = pendulum.datetime(2026, 8, 1, tz="UTC")
    LocalBackupOperator(task_id="backup", github_owner=owner, settings=local.settings,
                        kinds="git,issues,labels").execute(context_for(month))
    verify = LocalVerifyOperator(task_id="verify", github_owner=owner, settings=local.settings,
                                 verify_with="local")
    result = verify.execute(context_for(month))
    key = f"github/{owner}/2026/08/{owner}-2026-08.zip"
    assert result["verified"] is True and result["key"] == key

    # the same archive with one JSONL entry cut short, put back under the same key
    s3 = local.aws.client("s3")
    original = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=local.bucket,
                                                        Key=key)["Body"].read()))
    damaged_name = next(n for n in original.namelist() if n.endswith(".jsonl")
                        and original.getinfo(n).file_size > 40)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as copy:
        for info in original.infolist():
            data = original.read(info.filename)
            copy.writestr(info, data[: len(data) // 2] if info.filename == damaged_name
                          else data)
    s3.put_object(Bucket=local.bucket, Key=key, Body=out.getvalue())
    with pytest.raises(VerificationFailed, match=re.escape(damaged_name)):
        LocalVerifyOperator(task_id="verify", github_owner=owner, settings=local.settings,
                            verify_with="local").execute(context_for(month))
    # verification off, or done by the other runner: the task skips itself
    for verify_with in ("", None, "ecs"):
        op = LocalVerifyOperator(task_id="verify", github_owner=owner, settings=local.settings,
                                 verify_with=verify_with)
        with pytest.raises(AirflowSkipException, match="Not verifying with the local runner"):
            op.execute(context_for(month))
