"""infra/ghvault.yaml: it lints clean, its IAM is least privilege, it deploys into moto's
CloudFormation, its lifecycle rule satisfies the Glacier sensor, and the DAG runs end to end
on the stack's outputs (the Variable set with the README's one-liner, the backup as a
Fargate task of the stack's task definition played by devtools.fargate)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote_plus

import jmespath
import pytest
from ghvault_airflow.lifecycle import DEFAULT_MIN_TRANSITION_SIZE, lifecycle_verdict
from ghvault_airflow.settings import DeploymentSettings, load_settings

from devtools.embedded import (
    DAG_ID,
    Aws,
    RunRecord,
    airflow,
    airflow_env,
    logical_date_for,
    migrate,
    read_notifications,
)
from devtools.fargate import FargateEmulator
from devtools.stack import (
    TEMPLATE,
    deploy,
    lifecycle_configuration,
    load_template,
    resolved_properties,
)

ROOT = Path(__file__).resolve().parents[2]
TOKEN_PARAMETER = "/ghvault/github-token"
# The README's one-liner reads this output with this query (aws ... --output text).
SETTINGS_QUERY = "Stacks[0].Outputs[?OutputKey=='AirflowSettings'].OutputValue"

# Actions AWS offers no resource-level permissions for (Resource "*" is the only option).
UNSCOPED_ACTIONS = {"ecr:GetAuthorizationToken", "ecs:DescribeTaskDefinition", "ecs:ListTasks"}


def camel_to_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


# -- static checks -------------------------------------------------------------------------------


def test_cfn_lint_reports_nothing() -> None:
    result = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), str(TEMPLATE)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", (
        result.stdout + result.stderr)


def identity_statements(template: dict) -> list[tuple[str, dict]]:
    """(resource id, statement) of every IAM identity policy in the template."""
    out = []
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                out += [(logical_id, s) for s in policy["PolicyDocument"]["Statement"]]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            out += [(logical_id, s) for s in props["PolicyDocument"]["Statement"]]
    return out


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_iam_grants_no_wildcard_actions_and_scopes_every_resource() -> None:
    template = load_template()
    statements = identity_statements(template)
    assert {rid for rid, _ in statements} == {"ExecutionRole", "TaskPolicy", "AirflowPolicy",
                                             "ExecutionTokenKeyPolicy", "TaskBucketKeyPolicy"}
    unscoped = set()
    for rid, statement in statements:
        assert statement["Effect"] == "Allow", (rid, statement)
        assert "NotAction" not in statement and "NotResource" not in statement, (rid, statement)
        actions = as_list(statement["Action"])
        assert all("*" not in action for action in actions), (rid, statement)
        assert not any(re.match(r"s3:Delete|s3:PutBucket|iam:(?!PassRole)", a) for a in actions)
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                assert set(actions) <= UNSCOPED_ACTIONS, (rid, statement)
                unscoped.update(actions)
                continue
            # every resource names this stack's resources or parameters; a literal "*"
            # only ends a key prefix or a task id inside them
            text = json.dumps(resource)
            assert any(k in text for k in ("Ref", "Fn::GetAtt", "Fn::Sub", "Fn::If")), (rid, text)
            for sub in re.findall(r'"Fn::Sub": "([^"]*)"', text):
                assert "*" not in sub or sub.endswith("/*"), (rid, sub)
    assert unscoped == UNSCOPED_ACTIONS  # the documented exceptions, and only them
    # ListTasks is confined to the cluster by condition
    list_tasks = next(s for _, s in statements if s["Action"] == "ecs:ListTasks")
    assert list_tasks["Condition"]["ArnEquals"]["ecs:cluster"] == {"Fn::GetAtt": ["Cluster",
                                                                                  "Arn"]}


def test_roles_hold_exactly_what_their_job_needs() -> None:
    template = load_template()
    by_resource: dict[str, set[str]] = {}
    for rid, statement in identity_statements(template):
        by_resource.setdefault(rid, set()).update(as_list(statement["Action"]))
    assert by_resource["ExecutionRole"] == {
        "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage", "ssm:GetParameters",
        "logs:CreateLogStream", "logs:PutLogEvents"}
    assert by_resource["TaskPolicy"] == {
        "s3:ListBucket", "s3:PutObject", "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts", "s3:GetObject", "s3:ListBucketVersions"}
    airflow_actions = by_resource["AirflowPolicy"]
    assert {"ecs:RunTask", "ecs:DescribeTasks", "ecs:StopTask", "iam:PassRole",
            "s3:GetLifecycleConfiguration", "s3:GetObject", "sns:Publish",
            "logs:GetLogEvents"} <= airflow_actions
    assert not any(a.startswith(("s3:Put", "ssm:")) for a in airflow_actions)
    statements = [s for rid, s in identity_statements(template) if rid == "AirflowPolicy"]
    pass_role = next(s for s in statements if s["Action"] == "iam:PassRole")
    assert pass_role["Resource"] == [{"Fn::GetAtt": ["ExecutionRole", "Arn"]},
                                     {"Fn::GetAtt": ["TaskRole", "Arn"]}]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    run_task = next(s for s in statements if s["Action"] == "ecs:RunTask")
    assert run_task["Resource"] == {"Ref": "TaskDefinition"}
    # writes go under the archive prefix and the state prefix only
    writes = [s for rid, s in identity_statements(template)
              if rid == "TaskPolicy" and "s3:PutObject" in as_list(s["Action"])]
    assert sorted(s["Resource"]["Fn::Sub"] for s in writes) == [
        "${Bucket.Arn}/${ArchivePrefix}/*", "${Bucket.Arn}/${StatePrefix}/*"]


def test_resource_policies_allow_only_services_and_deny_plain_http() -> None:
    resources = load_template()["Resources"]
    bucket_policy = resources["BucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert bucket_policy == [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [{"Fn::GetAtt": ["Bucket", "Arn"]}, {"Fn::Sub": "${Bucket.Arn}/*"}],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]
    topic_policy = resources["TopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    for statement in topic_policy:
        if statement["Effect"] == "Allow":
            assert set(statement["Principal"]) == {"Service"}
            assert statement["Action"] == "sns:Publish" and "Condition" in statement
    key_policy = resources["TopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    services = next(s for s in key_policy if s["Sid"] == "ServicesPublishToTheTopic")
    assert services["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]
    assert services["Condition"] == {"StringEquals": {"aws:SourceAccount":
                                                      {"Ref": "AWS::AccountId"}}}


def test_settings_outputs_are_the_variable_keys() -> None:
    template = load_template()
    fields = {f for f in DeploymentSettings.__dataclass_fields__}
    described = {key: out["Description"] for key, out in template["Outputs"].items()}
    settings_outputs = {camel_to_snake(k) for k, d in described.items()
                        if d.startswith("settings key")}
    assert settings_outputs <= fields
    for key in settings_outputs:
        assert described[re.sub(r"(?:^|_)([a-z])", lambda m: m.group(1).upper(), key)
                         ].startswith(f"settings key {key}")
    assert {"bucket", "prefix", "cluster", "task_definition", "subnets", "security_groups",
            "log_group", "token_parameter", "sns_topic_arn", "state_url",
            "glacier_storage_class", "transition_days", "retention_days"} <= settings_outputs


# -- moto's CloudFormation -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(moto_server):
    aws = Aws(moto_server.endpoint)
    return aws, deploy(aws, "ghvault-infra", {"Owners": "octocat,octo-org",
                                              "NotificationEmail": "ops@example.com"})


def test_stack_deploys_into_moto_with_what_users_get(stack) -> None:
    aws, created = stack
    cf = aws.client("cloudformation")
    assert cf.describe_stacks(StackName=created.name)["Stacks"][0]["StackStatus"] == \
        "CREATE_COMPLETE"
    assert {"AWS::S3::Bucket", "AWS::ECS::Cluster", "AWS::ECS::TaskDefinition",
            "AWS::SNS::Topic", "AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::ECR::Repository",
            "AWS::Logs::LogGroup", "AWS::Events::Rule", "AWS::KMS::Key", "AWS::EC2::VPC",
            "AWS::EC2::Subnet", "AWS::EC2::SecurityGroup"} <= set(created.resource_types)
    outputs = created.outputs
    settings = load_settings(outputs["AirflowSettings"], env={})
    settings.require_ecs()
    assert settings.owners == ["octocat", "octo-org"] and settings.runner == "ecs"
    assert settings.state_url == f"s3://{outputs['Bucket']}/ghvault-state/"
    for key, value in outputs.items():  # every settings output agrees with the JSON
        name = camel_to_snake(key)
        if name in DeploymentSettings.__dataclass_fields__:
            parsed = load_settings({"bucket": outputs["Bucket"], name: value}, env={})
            assert getattr(parsed, name) == getattr(settings, name), name

    s3 = aws.client("s3")
    bucket = outputs["Bucket"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=bucket)[
        "PublicAccessBlockConfiguration"].values())
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
        "Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # moto would apply the TLS-only Deny unconditionally (it ignores conditions)
    assert "AWS::S3::BucketPolicy (left out, moto ignores conditions: DenyInsecureTransport)" \
        in created.completed
    notification = s3.get_bucket_notification_configuration(Bucket=bucket)[
        "TopicConfigurations"][0]
    assert notification["TopicArn"] == outputs["SnsTopicArn"]
    assert notification["Filter"]["Key"]["FilterRules"] == [
        {"Name": "prefix", "Value": "github/"}, {"Name": "suffix", "Value": ".zip"}]

    definition = aws.client("ecs").describe_task_definition(
        taskDefinition=outputs["TaskDefinition"])["taskDefinition"]
    container = definition["containerDefinitions"][0]
    assert container["name"] == settings.container_name
    assert container["secrets"] == [{"name": "GITHUB_TOKEN", "valueFrom":
                                     f"arn:aws:ssm:us-east-1:123456789012:parameter"
                                     f"{TOKEN_PARAMETER}"}]
    assert "GITHUB_TOKEN" not in {e["name"] for e in container["environment"]}
    assert container["logConfiguration"]["options"]["awslogs-group"] == settings.log_group
    assert container["image"] == f"{outputs['RepositoryUri']}:0.1.0"
    assert definition["networkMode"] == "awsvpc" and definition["cpu"] == "1024"
    assert definition["taskRoleArn"] == outputs["TaskRoleArn"]
    assert definition["executionRoleArn"] == outputs["ExecutionRoleArn"]
    cluster = aws.client("ecs").describe_clusters(clusters=[settings.cluster])["clusters"][0]
    assert cluster["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]

    groups = aws.client("logs").describe_log_groups(logGroupNamePrefix=settings.log_group)
    assert groups["logGroups"][0]["retentionInDays"] == 90
    repo = aws.client("ecr").describe_repositories(repositoryNames=["ghvault"])[
        "repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    policy_text = json.loads(aws.client("ecr").get_lifecycle_policy(repositoryName="ghvault")[
        "lifecyclePolicyText"])
    assert policy_text["rules"][0]["selection"]["countNumber"] == 5
    rules = aws.client("events").list_rules()["Rules"]
    pattern = json.loads(next(r for r in rules if "TaskStateRule" in r["Name"])["EventPattern"])
    assert pattern["detail"]["taskDefinitionArn"] == [outputs["TaskDefinition"]]
    assert pattern["detail"]["lastStatus"] == ["RUNNING", "STOPPED"]
    sns = aws.client("sns")
    topic = sns.get_topic_attributes(TopicArn=outputs["SnsTopicArn"])["Attributes"]
    assert topic["KmsMasterKeyId"]
    assert json.loads(topic["Policy"])["Statement"][0]["Principal"] == {
        "Service": "s3.amazonaws.com"}
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=outputs["SnsTopicArn"])
    assert [s["Endpoint"] for s in subscriptions["Subscriptions"]] == ["ops@example.com"]


@pytest.mark.parametrize("storage_class", ["GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"])
def test_lifecycle_rule_satisfies_the_glacier_sensor_for_archives_of_every_size(
        moto_server, storage_class: str) -> None:
    aws = Aws(moto_server.endpoint)
    name = f"ghvault-lifecycle-{storage_class.lower().replace('_', '-')}"
    deploy(aws, name, {"GlacierStorageClass": storage_class, "TransitionDays": "3",
                       "RetentionDays": "400", "RepositoryName": name})
    bucket_props = resolved_properties(aws, name)["Bucket"][2]
    config, minimum = lifecycle_configuration(bucket_props)
    assert minimum == "all_storage_classes_128K"
    key = "github/octocat/2026/10/octocat-2026-10.zip"
    for size in (1, DEFAULT_MIN_TRANSITION_SIZE - 1, 50 * 2**30):
        verdict = lifecycle_verdict(config["Rules"], key, size, storage_class, 3, 400,
                                    default_minimum_size=minimum)
        assert verdict.ok and verdict.rule_id == "ghvault-archives-to-glacier", verdict
        assert verdict.expiration_days == 400
    # the state between months is not in the transitioned prefix
    state = lifecycle_verdict(config["Rules"], "ghvault-state/octocat/validators.json",
                              10 * 2**20, storage_class, 3, 400)
    assert not state.ok


# -- end to end on the stack ----------------------------------------------------------------------


@pytest.mark.slow
def test_dag_runs_on_the_stack_outputs_with_the_readme_one_liner(moto_server, sim,
                                                                 tmp_path) -> None:
    aws = Aws(moto_server.endpoint)
    owner = sim.sim.world.owners["user"]
    # README, "Deploy to AWS": the token first (CloudFormation cannot create SecureStrings)
    aws.client("ssm").put_parameter(Name=TOKEN_PARAMETER, Value=sim.token, Type="SecureString",
                                    Overwrite=True)
    created = deploy(aws, "ghvault-e2e-stack", {"Owners": owner, "GithubApiUrl": sim.api,
                                                "RepositoryName": "ghvault-e2e"})
    sqs, sns = aws.client("sqs"), aws.client("sns")
    queue = sqs.create_queue(QueueName="ghvault-stack-e2e")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=created.outputs["SnsTopicArn"], Protocol="sqs", Endpoint=queue_arn,
                  Attributes={"RawMessageDelivery": "false"})

    home = tmp_path / "airflow"
    env = airflow_env(home, aws, {}, extra={
        # the one thing the stack cannot know: how to trust the simulator's TLS certificate
        "GHVAULT_ENGINE_ENV": json.dumps(sim.client_env()),
        # the deferred ECS waiter polls every second here instead of the default 30 s
        "GHVAULT_WAITER_DELAY_SECONDS": "1"})
    env.pop("AIRFLOW_VAR_GHVAULT_SETTINGS")  # the Variable comes from the metadata DB
    migrate(home, env)
    described = aws.client("cloudformation").describe_stacks(StackName=created.name)
    (value,) = jmespath.search(SETTINGS_QUERY, described)  # what `--output text` prints
    airflow(env, "variables", "set", "ghvault_settings", value)
    stored = json.loads(airflow(env, "variables", "get", "ghvault_settings").stdout)
    assert stored == created.settings()

    month = "2026-10"
    log = tmp_path / "dags-test.log"
    with FargateEmulator(moto_server.endpoint) as fargate:
        result = airflow(env, "dags", "test", DAG_ID, logical_date_for(month), log=log,
                         check=False, timeout=600)
    text = log.read_text(errors="replace")
    record = RunRecord(home)
    assert record.state == "success", text[-4000:]
    assert result.returncode == 0
    assert record.states("backup.ecs") == ["success"]
    assert record.states("backup.local") == ["skipped"]

    # the backup task, then (when the DAG verifies) `ghvault verify` in a second task
    container, *verification = fargate.runs
    assert [r.command[0] for r in verification] in ([], ["verify"])
    assert all(r.exit_code == 0 for r in verification)
    assert container.exit_code == 0 and container.secret_names == ["GITHUB_TOKEN"]
    key = f"github/{owner}/2026/10/{owner}-{month}.zip"
    assert container.command[:3] == ["run", "--owner", owner]
    assert f"s3://{created.outputs['Bucket']}/{key}" in container.command
    task = fargate.backend.tasks[created.outputs["Cluster"]][container.task_arn]
    assert task.task_definition_arn == created.outputs["TaskDefinition"]
    assert sim.token not in json.dumps(task.overrides) and sim.token not in text
    # the log went to the stack's log group, and the operator read the summary from it
    events = aws.client("logs").get_log_events(logGroupName=created.outputs["LogGroup"],
                                               logStreamName=container.log_stream)["events"]
    assert events and record.result("backup.ecs", 0)["summary"]["owner"] == owner

    head = aws.client("s3").head_object(Bucket=created.outputs["Bucket"], Key=key)
    assert head["ContentLength"] == record.result("backup.archive", 0)["size"]
    glacier = record.result("backup.glacier", 0)
    assert glacier["rule_id"] == "ghvault-archives-to-glacier"
    assert glacier["storage_class"] == "GLACIER" and glacier["expiration_days"] == 365

    messages = read_notifications(aws, queue)
    s3_events = [json.loads(m["message"]) for m in messages
                 if m["message"].startswith('{"Records"')]
    # S3 URL-encodes the key in its event, as the real service does
    created_keys = {unquote_plus(e["Records"][0]["s3"]["object"]["key"]) for e in s3_events}
    assert created_keys == {key}, [e["Records"][0]["eventName"] for e in s3_events]
    summaries = [m for m in messages if m["subject"] and m["subject"].startswith("ghvault:")]
    assert [m["subject"] for m in summaries] == [
        f"ghvault: backup of {owner} for {month} succeeded"]
