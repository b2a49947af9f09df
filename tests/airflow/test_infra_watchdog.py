"""The watchdog in infra/ghvault.yaml: an EventBridge Scheduler schedule that runs the
engine's task definition once a month with `ghvault list --expect previous`, independent of
Airflow.

moto's CloudFormation has no handler for AWS::Scheduler::Schedule (it skips it, as it says),
so the template is checked statically, `devtools.stack` creates the schedule in moto's
Scheduler from the template's resolved properties, `devtools.scheduler.fire` does what
Scheduler does when it fires (RunTask with the target's parameters and input, under the
target's role), and `devtools.fargate` runs the task: the real `ghvault list --expect` over
the stack's bucket, publishing to the stack's topic."""

from __future__ import annotations

import json
import time

import pytest
from ghvault.contract import archive_key, expected_month, parse_summary, sidecar_key

from devtools.embedded import Aws, read_notifications
from devtools.fargate import FargateEmulator, ghvault_images
from devtools.scheduler import fire, run_task_request
from devtools.stack import deploy, load_template
from tests.conftest import IMAGE

TOKEN_PARAMETER = "/ghvault/github-token"


def statements(resource: dict) -> list[dict]:
    props = resource["Properties"]
    if "Policies" in props:
        return [s for p in props["Policies"] for s in p["PolicyDocument"]["Statement"]]
    return props["PolicyDocument"]["Statement"]


def test_template_schedules_the_engine_task_monthly_with_expect_previous() -> None:
    template = load_template()
    day = template["Parameters"]["WatchdogDay"]
    assert (day["Default"], day["MinValue"], day["MaxValue"]) == (4, 1, 28)
    schedule = template["Resources"]["WatchdogSchedule"]
    assert schedule["Type"] == "AWS::Scheduler::Schedule"
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == {"Fn::Sub": "cron(0 6 ${WatchdogDay} * ? *)"}
    assert props["ScheduleExpressionTimezone"] == "UTC"
    assert props["State"] == {"Ref": "WatchdogState"}
    target = props["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["Cluster", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["WatchdogSchedulerRole", "Arn"]}
    assert target["EcsParameters"]["TaskDefinitionArn"] == {"Ref": "TaskDefinition"}
    assert target["EcsParameters"]["CapacityProviderStrategy"] == [
        {"CapacityProvider": {"Ref": "CapacityProvider"}, "Weight": 1}]
    text, variables = target["Input"]["Fn::Sub"]
    command = json.loads(text)["containerOverrides"][0]["command"]
    assert command == ["list", "s3://${Bucket}/${ArchivePrefix}/", "--expect", "previous",
                       "--owners", "${OwnerList}", "--notify-topic", "${Topic}"]
    assert variables == {"OwnerList": {"Fn::Join": [",", {"Ref": "Owners"}]}}
    assert json.loads(text)["containerOverrides"][0]["name"] == "ghvault"


def test_scheduler_role_runs_only_the_task_and_passes_only_its_two_roles() -> None:
    resources = load_template()["Resources"]
    role = resources["WatchdogSchedulerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount":
                                                   {"Ref": "AWS::AccountId"}}}
    run, pass_role = statements(resources["WatchdogSchedulerRole"])
    assert (run["Action"], run["Resource"]) == ("ecs:RunTask", {"Ref": "TaskDefinition"})
    assert run["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": ["Cluster",
                                                                             "Arn"]}}}
    assert pass_role["Action"] == "iam:PassRole"
    assert pass_role["Resource"] == [{"Fn::GetAtt": ["ExecutionRole", "Arn"]},
                                     {"Fn::GetAtt": ["TaskRole", "Arn"]}]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    # the task role gains publishing to this topic (and its key, through SNS) only
    policy = resources["WatchdogTaskPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "TaskRole"}]
    publish, key = statements(resources["WatchdogTaskPolicy"])
    assert (publish["Action"], publish["Resource"]) == ("sns:Publish", {"Ref": "Topic"})
    assert key["Resource"] == {"Fn::GetAtt": ["TopicKey", "Arn"]}
    assert key["Condition"] == {"StringEquals": {"kms:ViaService": {
        "Fn::Sub": "sns.${AWS::Region}.amazonaws.com"}}}
    # listing the month and reading its sidecar: the task role's existing grants
    task = {s["Sid"]: s for s in statements(resources["TaskPolicy"])}
    assert task["CheckTheBucket"]["Action"] == "s3:ListBucket"
    assert "s3:GetObject" in task["WriteArchives"]["Action"]


@pytest.fixture(scope="module")
def stack(moto_server):
    aws = Aws(moto_server.endpoint)
    # the task definition injects the token: it must exist for the task to start
    aws.client("ssm").put_parameter(Name=TOKEN_PARAMETER, Value="ghp_watchdog_not_used",
                                    Type="SecureString", Overwrite=True)
    return aws, deploy(aws, "ghvault-watchdog", {"Owners": "octocat,octo-org",
                                                 "WatchdogDay": "5",
                                                 "RepositoryName": "watchdog/ghvault"})


def test_the_stack_creates_the_schedule_moto_cannot(stack) -> None:
    aws, created = stack
    assert "AWS::Scheduler::Schedule (created with the Scheduler API)" in created.completed
    schedule = aws.client("scheduler").get_schedule(Name="ghvault-watchdog-WatchdogSchedule")
    assert schedule["ScheduleExpression"] == "cron(0 6 5 * ? *)"
    assert schedule["State"] == "ENABLED"
    request = run_task_request(schedule["Target"])
    assert request["taskDefinition"] == created.outputs["TaskDefinition"]
    assert request["cluster"].endswith(f"cluster/{created.outputs['Cluster']}")
    assert request["capacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE", "weight": 1, "base": 0}]
    vpc = request["networkConfiguration"]["awsvpcConfiguration"]
    assert vpc["subnets"] == created.outputs["Subnets"].split(",")
    assert vpc["securityGroups"] == [created.outputs["SecurityGroups"]]
    assert vpc["assignPublicIp"] == "ENABLED"
    (override,) = request["overrides"]["containerOverrides"]
    assert override["command"] == [
        "list", f"s3://{created.outputs['Bucket']}/github/", "--expect", "previous",
        "--owners", "octocat,octo-org", "--notify-topic", created.outputs["SnsTopicArn"]]
    role = aws.client("iam").get_role(RoleName=schedule["Target"]["RoleArn"].split("/")[-1])
    assert role["Role"]["Arn"] == created.outputs["WatchdogSchedulerRoleArn"]


@pytest.mark.slow
def test_the_schedule_fires_a_fargate_task_that_reports_the_missing_owner(stack,
                                                                         engine) -> None:
    aws, created = stack
    outputs = created.outputs
    bucket, topic = outputs["Bucket"], outputs["SnsTopicArn"]
    month = expected_month("previous")  # what the task computes at its start, as here
    s3 = aws.client("s3")
    key = archive_key("github", "octocat", month)
    s3.put_object(Bucket=bucket, Key=key, Body=b"z" * 321)
    s3.put_object(Bucket=bucket, Key=sidecar_key(key), Body=json.dumps(
        {"archive": {"size": 321}}).encode())
    sqs = aws.client("sqs")
    queue = sqs.create_queue(QueueName="ghvault-watchdog-e2e")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    # the stack's image (.../watchdog/ghvault) runs as the local build in the engine
    with FargateEmulator(aws.endpoint, runtime="container", docker=engine.client,
                         image_map=ghvault_images(IMAGE)) as fargate:
        (task_arn,) = fire(aws, "ghvault-watchdog-WatchdogSchedule")
        for _ in range(100):  # the harness picks the task up within its poll interval
            if fargate.runs:
                break
            time.sleep(0.1)
        fargate.wait_idle(timeout=120)
    (run,) = fargate.runs
    assert run.task_arn == task_arn and run.command[:4] == ["list", f"s3://{bucket}/github/",
                                                            "--expect", "previous"]
    assert run.exit_code == 10, "\n".join(run.output)
    task = aws.client("ecs").describe_tasks(cluster=outputs["Cluster"], tasks=[task_arn])[
        "tasks"][0]
    assert task["taskDefinitionArn"] == outputs["TaskDefinition"]
    assert task["containers"][0]["exitCode"] == 10
    assert f"octocat  {month}  ok  s3://{bucket}/{key} (321 B; sidecar agrees)" in run.output
    assert any(line.startswith(f"octo-org  {month}  MISSING  no archive at")
               for line in run.output)
    summary = parse_summary(run.output)
    assert summary["missing"] == ["octo-org"] and summary["ok"] == ["octocat"]
    # the task's log went to the stack's log group
    events = aws.client("logs").get_log_events(logGroupName=outputs["LogGroup"],
                                               logStreamName=run.log_stream)["events"]
    assert any("octo-org" in e["message"] for e in events)

    watchdog = [m for m in read_notifications(aws, queue)
                if (m["subject"] or "").startswith("ghvault watchdog")]
    assert [m["subject"] for m in watchdog] == [
        f"ghvault watchdog: octo-org without a complete archive for {month}"]
    assert watchdog[0]["attributes"] == {"status": "failure", "month": month,
                                         "source": "watchdog", "owner": "octo-org"}
    assert summary["notified"] and "octo-org" in watchdog[0]["message"]
