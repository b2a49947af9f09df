"""Both backup operators: what they take, what they ask ECS for, the local runner.

The local operator runs the real engine against the GitHub simulator, moto's S3 and moto's
SSM. The ECS operator against moto's ECS: test_operators_ecs.py; settings, keys and the run
plan: test_settings.py.
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from urllib.parse import quote

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from ghvault_airflow.operators.backup import (
    EngineAuthError,
    EngineConfigError,
    GithubBackupOperator,
    GithubVerifyOperator,
    LocalBackupOperator,
    LocalVerifyOperator,
    OwnerNotFound,
    VerificationFailed,
    awslogs_stream,
    engine_arguments,
)
from ghvault_airflow.settings import DeploymentSettings

from tests.conftest import OTHER_TOKEN, TOKEN

REGION = "us-east-1"
ACCOUNT = "123456789012"


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
    # deferrable by default; the waiter gives up after the settings' 12 hours, polled every 30 s
    assert (op.reattach, op.propagate_tags, op.deferrable, op.waiter_delay,
            op.waiter_max_attempts) == (True, "TASK_DEFINITION", True, 30, 1440)
    assert (op.aws_conn_id, op.region_name) == ("aws_default", REGION)
    assert awslogs_stream(op.awslogs_stream_prefix, op.container_name,
                          f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/ghvault/abc123") == \
        "ghvault/ghvault/abc123"  # the awslogs driver's name


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
    kept = DeploymentSettings(bucket="b", state_url="s3://b/state/", git_state=True)
    assert engine_arguments(kept, owner="o", month="2026-01", key="k")[-3:] == [
        "--state", "s3://b/state/", "--git-state"]


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


# -- the local operator: the real engine, the simulator, moto's S3 and SSM -------------------

def runner_aws(aws, monkeypatch, bucket_prefix: str) -> tuple[str, str, str]:
    """What a runner test needs in moto: AWS only through the Airflow connection (none in the
    worker's environment), a new bucket, the token in SSM and a stale one beside it;
    returns (bucket, token parameter, stale token parameter)."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", "aws://testing:testing@/?region_name="
                       f"{REGION}&endpoint_url={quote(aws.endpoint, safe='')}")
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    bucket = f"{bucket_prefix}-{uuid.uuid4().hex[:8]}"
    aws.client("s3").create_bucket(Bucket=bucket)
    ssm = aws.client("ssm")
    good, bad = f"/{bucket}/token", f"/{bucket}/old-token"
    ssm.put_parameter(Name=good, Type="SecureString", Value=TOKEN)
    ssm.put_parameter(Name=bad, Type="SecureString", Value=OTHER_TOKEN)
    return bucket, good, bad


@pytest.fixture
def local(aws, sim, monkeypatch):
    """Settings for the local runner. AWS reaches the engine only through the connection."""
    bucket, good, bad = runner_aws(aws, monkeypatch, "ghvault")
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
