"""infra/ghvault.yaml's GitHub credentials: for each auth mode (token or App) and store (SSM or
Secrets Manager) the task definition's secret and environment, IAM on exactly that one
parameter or secret for the execution role and the Airflow policy, the settings output; and
the Fargate harness resolving a Secrets Manager `valueFrom` as ECS does."""

from __future__ import annotations

import hashlib
import sys
import time

import pytest
from ghvault_airflow.settings import load_settings

from devtools.embedded import Aws
from devtools.fargate import FargateEmulator
from devtools.stack import deploy, load_template
from tests.airflow.cfn_conditions import effective
from tests.airflow.test_infra import CREDENTIAL_MODES, identity_statements

SECRET_ARN = CREDENTIAL_MODES["app-secretsmanager"]["GithubCredentialSecretArn"]
SSM_ARN = ("arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${Name}")
KEY = "arn:aws:kms:us-east-1:123456789012:key/3333-4444"


def container(template: dict) -> dict:
    return template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]


def statement(template: dict, resource: str, sid: str) -> dict:
    return next(s for rid, s in identity_statements(template) if rid == resource
                and s.get("Sid") == sid)


def ssm_arn_of(parameter: str) -> dict:
    return {"Fn::Sub": [SSM_ARN, {"Name": {"Ref": parameter}}]}


@pytest.mark.parametrize("mode", CREDENTIAL_MODES)
def test_the_task_gets_exactly_one_credential_from_the_chosen_store(mode: str) -> None:
    template = effective(load_template(), {**CREDENTIAL_MODES[mode], "GithubTokenKmsKeyArn": KEY})
    app, store = mode.split("-")[0] == "app", mode.split("-")[1]
    source = ({"Ref": "GithubCredentialSecretArn"} if store == "secretsmanager" else
              ssm_arn_of("GithubAppPrivateKeyParameterName" if app else
                         "GithubTokenParameterName"))
    (secret,) = container(template)["Secrets"]
    assert secret == {"Name": "GITHUB_APP_PRIVATE_KEY" if app else "GITHUB_TOKEN",
                      "ValueFrom": source}
    environment = {e["Name"] for e in container(template)["Environment"]}
    assert environment == ({"AWS_DEFAULT_REGION", "GITHUB_APP_ID"} if app
                           else {"AWS_DEFAULT_REGION"})
    with_installation = effective(load_template(), {**CREDENTIAL_MODES[mode],
                                                    "GithubAppInstallationId": "77"})
    assert {e["Name"]: e["Value"] for e in container(with_installation)["Environment"]
            if e["Name"].startswith("GITHUB_")} == (
        {"GITHUB_APP_ID": {"Ref": "GithubAppId"},
         "GITHUB_APP_INSTALLATION_ID": {"Ref": "GithubAppInstallationId"}} if app else {})
    # ECS reads it with the execution role; the local runner with the Airflow policy
    for resource, action in (("ExecutionRole", "ssm:GetParameters"),
                             ("AirflowPolicy", "ssm:GetParameter")):
        read = statement(template, resource, "ReadTheCredential")
        assert read["Action"] == ("secretsmanager:GetSecretValue" if store == "secretsmanager"
                                  else action)
        assert read["Resource"] == source
    service = f"{'secretsmanager' if store == 'secretsmanager' else 'ssm'}.${{AWS::Region}}"
    decrypt = statement(template, "ExecutionTokenKeyPolicy", "DecryptTheCredential")
    assert decrypt["Resource"] == {"Ref": "GithubTokenKmsKeyArn"}
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == {
        "Fn::Sub": f"{service}.amazonaws.com"}
    keys = statement(template, "AirflowPolicy", "UseTheKeys")
    assert {"Ref": "GithubTokenKmsKeyArn"} in keys["Resource"]
    assert {"Fn::Sub": f"{service}.amazonaws.com"} in keys["Condition"]["StringEquals"][
        "kms:ViaService"]
    # nothing of the other store anywhere
    other = "ssm:" if store == "secretsmanager" else "secretsmanager:"
    assert not any(str(s["Action"]).startswith(other) for _, s in identity_statements(template))


def test_without_a_key_nothing_decrypts_the_credential() -> None:
    template = effective(load_template(), CREDENTIAL_MODES["app-ssm"])
    assert "ExecutionTokenKeyPolicy" not in template["Resources"]
    keys = statement(template, "AirflowPolicy", "UseTheKeys")
    assert keys["Resource"] == {"Fn::GetAtt": ["TopicKey", "Arn"]}


def test_rules_refuse_an_app_without_its_id_and_secrets_manager_without_the_secret() -> None:
    rules = load_template()["Rules"]
    assert rules["AppNeedsItsId"]["RuleCondition"] == {"Fn::Equals": [{"Ref": "GithubAuth"},
                                                                      "app"]}
    assert "GithubAppId" in rules["AppNeedsItsId"]["Assertions"][0]["AssertDescription"]
    assert "GithubCredentialSecretArn" in rules["SecretsManagerNeedsTheSecret"]["Assertions"][
        0]["AssertDescription"]


@pytest.mark.parametrize("mode", ["token-secretsmanager", "app-ssm"])
def test_the_settings_output_names_the_credential_and_loads(moto_server, mode: str) -> None:
    parameters = {**CREDENTIAL_MODES[mode], "RepositoryName": f"ghvault-cred-{mode}",
                  "GithubGitUrl": "https://octo.ghe.com", "GithubAppInstallationId": "77"}
    stack = deploy(Aws(moto_server.endpoint), f"ghvault-cred-{mode}", parameters)
    settings = load_settings(stack.outputs["AirflowSettings"], env={})
    assert settings.github_git_url == "https://octo.ghe.com"
    if mode == "app-ssm":
        assert (settings.github_app_id, settings.github_app_installation_id) == ("12345", "77")
        assert settings.credential_source == (
            "the SSM parameter /ghvault/github-app-private-key")
        assert stack.outputs["GithubAppPrivateKeySecret"] == settings.credential_name
    else:
        assert not settings.uses_app and settings.credential_store == "secretsmanager"
        assert settings.token_parameter == SECRET_ARN
        assert settings.github_app_installation_id is None  # only with GithubAuth app
    # outputs of the other mode are not there (conditions, in moto and read statically)
    for outputs in (stack.outputs, effective(load_template(), parameters)["Outputs"]):
        assert ("TokenParameter" in outputs) == (mode == "token-secretsmanager")
        assert ("GithubAppId" in outputs) == ("GithubAppInstallationId" in outputs) == (
            mode == "app-ssm")


# -- the Fargate harness resolves Secrets Manager as ECS does ------------------------------------


def run_task(aws: Aws, cluster: str, family: str, value_from: str) -> dict:
    ecs = aws.client("ecs")
    ecs.register_task_definition(family=family, networkMode="awsvpc", cpu="256", memory="512",
                                 requiresCompatibilities=["FARGATE"], containerDefinitions=[{
                                     "name": "ghvault", "image": "ghvault", "memory": 512,
                                     "secrets": [{"name": "GITHUB_TOKEN",
                                                  "valueFrom": value_from}]}])
    ec2 = aws.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]
    group = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [subnet["VpcId"]]},
        {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]["GroupId"]
    network = {"awsvpcConfiguration": {"subnets": [subnet["SubnetId"]],
                                       "securityGroups": [group]}}
    arn = ecs.run_task(cluster=cluster, taskDefinition=family, launchType="FARGATE",
                       networkConfiguration=network)["tasks"][0]["taskArn"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        task = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
        if task["lastStatus"] == "STOPPED":
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {arn} did not stop")


def test_fargate_harness_injects_a_secret_a_json_key_of_it_or_refuses_to_start(
        moto_server) -> None:
    aws = Aws(moto_server.endpoint)
    aws.client("ecs").create_cluster(clusterName="ghvault-secrets")
    sm = aws.client("secretsmanager")
    plain = sm.create_secret(Name="ghvault-harness/plain", SecretString="ghp_plain_value")["ARN"]
    shaped = sm.create_secret(Name="ghvault-harness/json",
                              SecretString='{"token": "ghp_json_value"}')["ARN"]
    printer = [sys.executable, "-c", "import hashlib, os; print(hashlib.sha256("
               "os.environ['GITHUB_TOKEN'].encode()).hexdigest())"]
    with FargateEmulator(moto_server.endpoint, runtime="process", entrypoint=printer) as fargate:
        for family, value_from, expected in (
                ("plain", plain, "ghp_plain_value"),
                ("json-key", f"{shaped}:token::", "ghp_json_value")):
            task = run_task(aws, "ghvault-secrets", f"ghvault-sm-{family}", value_from)
            assert task["containers"][0]["exitCode"] == 0, task.get("stoppedReason")
            run = fargate.runs[-1]
            assert run.output == [hashlib.sha256(expected.encode()).hexdigest()]
            assert run.environment["GITHUB_TOKEN"] == "***"
        missing = plain.replace("plain", "missing")
        refused = run_task(aws, "ghvault-secrets", "ghvault-sm-missing", missing)
    assert refused["stopCode"] == "TaskFailedToStart"
    assert "unable to retrieve secret from asm" in refused["stoppedReason"]
    assert "ResourceNotFoundException" in refused["stoppedReason"]
