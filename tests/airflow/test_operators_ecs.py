"""The ECS operator against moto's ECS (FARGATE in moto's default VPC), in both modes.

RunTask is real, and a hook on the operator's own ECS client plays the container the moment
moto accepts the task (writes its CloudWatch log lines, records its exit code or a failed
start on moto's task), so that the provider's waiter, its trigger (run here as the triggerer
runs it, with aiobotocore), its success check and its last-log-line return value all run
unmodified; the operator uses only their public results.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import quote

import pendulum
import pytest
from airflow.providers.amazon.aws.utils.identifiers import generate_uuid
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from airflow.sdk.module_loading import import_string
from ghvault_airflow.operators.backup import (
    BackupFailed,
    DestinationFailed,
    EngineAuthError,
    EngineConfigError,
    GithubBackupOperator,
    GitHubUnavailable,
    GithubVerifyOperator,
    OwnerNotFound,
    TaskStartFailed,
    VerificationFailed,
    awslogs_stream,
)

from tests.airflow.test_operators_backup import ACCOUNT, REGION, SETTINGS, context_for
from tests.conftest import TOKEN

OCTOBER = pendulum.datetime(2026, 10, 1, tz="UTC")


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


def play_container(ecs, exit_code: int | None, lines: list[str], *,
                   failed_start: str | None = None):
    """A botocore hook that plays the container when moto accepts RunTask: its log lines and
    exit code, or (``failed_start``) a task ECS could not start, as ECS reports it."""
    from moto.ecs.models import ecs_backends

    def after_run_task(parsed, **_):
        for described in parsed.get("tasks", []):
            task = ecs_backends[ACCOUNT][REGION].tasks[ecs.name][described["taskArn"]]
            stream = awslogs_stream("ghvault", "ghvault", task.task_arn)
            logs = ecs.aws.client("logs")
            logs.create_log_stream(logGroupName=ecs.settings["log_group"], logStreamName=stream)
            now = int(time.time() * 1000)
            if lines:
                logs.put_log_events(
                    logGroupName=ecs.settings["log_group"], logStreamName=stream,
                    logEvents=[{"timestamp": now + i, "message": m}
                               for i, m in enumerate(lines)])
            container = task.containers[0]
            container.last_status = "STOPPED"
            container.exitCode = exit_code
            if failed_start:
                task.stop_code, task.stopped_reason = "TaskFailedToStart", failed_start
            task.desired_status = "STOPPED"

    return after_run_task


def ecs_operator(ecs, exit_code: int | None = None, lines: list[str] = (), *,
                 failed_start: str | None = None, **kwargs) -> GithubBackupOperator:
    kwargs.setdefault("waiter_delay", 0)
    op = GithubBackupOperator(task_id="backup", github_owner="hubworks", settings=ecs.settings,
                              region_name=REGION,
                              awslogs_fetch_interval=pendulum.duration(seconds=0.2), **kwargs)
    if exit_code is not None or failed_start:
        op.client.meta.events.register("after-call.ecs.RunTask", play_container(
            ecs, exit_code, list(lines), failed_start=failed_start))
    return op


def run_trigger(trigger) -> dict:
    """What the triggerer does: rebuild the serialized trigger and run it to its event."""
    path, kwargs = trigger.serialize()

    async def first_event():
        async for event in import_string(path)(**kwargs).run():
            return event.payload

    return asyncio.run(first_event())


def run_ecs(ecs, deferrable: bool, exit_code: int | None = None, lines: list[str] = (),
            context: dict | None = None, **kwargs):
    """Run the operator as Airflow would: deferred, the trigger, then a fresh instance's
    execute_complete (the worker that resumes it); or at once, waiting on the worker."""
    context = context or context_for(OCTOBER)
    op = ecs_operator(ecs, exit_code, lines, deferrable=deferrable, **kwargs)
    if not deferrable:
        return op.execute(context)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    event = run_trigger(deferred.value.trigger)
    assert event == {"status": "success", "task_arn": context["ti"].xcoms["ecs_task_arn"],
                     "cluster": ecs.name}
    kwargs.pop("failed_start", None)
    resumed = GithubBackupOperator(task_id="backup", github_owner="hubworks",
                                   settings=json.dumps(ecs.settings), region_name=REGION,
                                   deferrable=True, **kwargs)
    return resumed.execute_complete(context, event)


SUMMARY = {"owner": "hubworks", "month": "2026-10", "counts": {"repos": 3}, "bytes": 1234,
           "api_requests": 42, "duration_s": 1.5}


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "waiting"])
def test_ecs_success_returns_the_key_and_the_summary_from_the_last_log_line(ecs, deferrable):
    context = context_for(OCTOBER, map_index=3)
    result = run_ecs(ecs, deferrable, 0, ["collecting hubworks", json.dumps(SUMMARY)],
                     context=context)
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


def test_a_last_line_that_is_not_a_summary_gives_none(ecs):
    result = run_ecs(ecs, True, 0, [json.dumps(SUMMARY), "a line after the summary"])
    assert result["summary"] is None


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "waiting"])
@pytest.mark.parametrize("code, error, words", [
    (2, EngineConfigError, "exit 2"),
    (3, EngineAuthError, "update the SSM parameter {parameter}"),
    (4, OwnerNotFound, "'hubworks' does not exist"),
    (5, DestinationFailed, "s3://ghvault-archives/github/hubworks/2026/10/"),
    (6, GitHubUnavailable, "githubstatus"),
    (1, BackupFailed, "internal error"),
    (137, BackupFailed, "out of memory"),
])
def test_ecs_exit_codes_become_specific_errors(ecs, deferrable, code, error, words):
    with pytest.raises(error, match=words.format(parameter=ecs.parameter)) as info:
        run_ecs(ecs, deferrable, code, ["starting", f"ERROR: the engine's reason for {code}"])
    assert type(info.value) is error and info.value.exit_code == code
    assert f"the engine's reason for {code}" in str(info.value)  # the container's last lines
    assert isinstance(info.value, AirflowFailException) == (code in (2, 3, 4))


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "waiting"])
def test_a_task_ecs_cannot_start_names_the_fix(ecs, deferrable):
    reason = ("ResourceInitializationError: unable to pull secrets or registry auth: unable "
              "to retrieve secrets from ssm: AccessDeniedException")
    with pytest.raises(TaskStartFailed, match="ECS could not inject the GitHub credential: check "
                                              f"that the SSM parameter {ecs.parameter} exists"):
        run_ecs(ecs, deferrable, failed_start=reason)
    with pytest.raises(TaskStartFailed, match="the engine image cannot be pulled: push it"):
        run_ecs(ecs, deferrable, failed_start="CannotPullContainerError: ghvault:latest")


def test_the_waiters_limit_is_the_tasks_timeout(ecs, capfd):
    settings = {**ecs.settings, "backup_timeout_hours": 2, "waiter_delay_seconds": 20}
    op = GithubBackupOperator(task_id="backup", github_owner="hubworks", settings=settings,
                              region_name=REGION)
    op.client.meta.events.register("after-call.ecs.RunTask", play_container(ecs, 0, ["{}"]))
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context_for(OCTOBER))
    trigger = deferred.value.trigger
    assert (trigger.waiter_delay, trigger.waiter_max_attempts) == (20, 360)  # 2 h of 20 s
    assert deferred.value.timeout == timedelta(hours=2, seconds=60)  # the provider's margin
    assert trigger.log_stream == awslogs_stream("ghvault", "ghvault", trigger.task_arn)
    # a task given its own execution_timeout: the waiter follows it, and says so
    op = GithubBackupOperator(task_id="backup", github_owner="hubworks", settings=settings,
                              region_name=REGION, execution_timeout=timedelta(hours=3))
    op.prepare(context_for(OCTOBER))
    assert (op.waiter_delay, op.waiter_max_attempts) == (20, 540)
    assert "the ECS waiter follows execution_timeout" in "".join(capfd.readouterr())


def test_a_task_outlasting_the_waiter_is_stopped_and_named(ecs):
    # nothing plays the container: moto moves the task one step per DescribeTasks
    op = ecs_operator(ecs, deferrable=False, waiter_delay=1, waiter_max_attempts=2)
    with pytest.raises(BackupFailed, match="did not stop within 2 s .*raise backup_timeout_hours"):
        op.execute(context_for(OCTOBER))
    (task,) = ecs.client.describe_tasks(cluster=ecs.name, tasks=[op.arn])["tasks"]
    assert task["desiredStatus"] == "STOPPED"  # the provider stopped it


def test_ecs_verification_runs_ghvault_verify_on_the_months_archive(ecs):
    key = "github/hubworks/2026/10/hubworks-2026-10.zip"
    op = GithubVerifyOperator(task_id="verify", github_owner="hubworks", settings=ecs.settings,
                              verify_with="ecs", region_name=REGION, waiter_delay=0,
                              deferrable=False,
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
                              deferrable=False,
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
    op = ecs_operator(ecs, 0)
    with pytest.raises(EngineConfigError, match="GITHUB_TOKEN as plain environment"):
        op.execute(context_for())
    op = ecs_operator(ecs, 0, container_name="backup")
    with pytest.raises(EngineConfigError, match="no container named 'backup'"):
        op.execute(context_for())
    assert ecs.client.list_tasks(cluster=ecs.name)["taskArns"] == []  # nothing was started
