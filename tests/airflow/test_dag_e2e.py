"""The github_backup DAG end to end: real Airflow, moto as AWS, the simulator as GitHub.

Every run is `airflow dags test` (SQLite metadata DB, migrated once for the module) in a
subprocess with the settings Variable and the aws_default connection given through the
environment, except where a run needs what the CLI cannot express (no logical date, a
shorter sensor timeout, no retries): those call the same `DAG.test()` the CLI calls, from a
small script (`DAG_TEST`). The ECS runner goes through the real GithubBackupOperator and
the amazon provider; `devtools.fargate.FargateEmulator` plays Fargate over moto: it runs the
container command with the task definition's environment and its SSM secret, streams the
output to CloudWatch Logs and records the real exit code on moto's task.

Each run's SNS messages are read back through the SQS queue subscribed to the topic. The
ECS failure cases poll ECS every second instead of every 15 s (`waiter_delay`).

Backfill: `airflow backfill create` only queues runs for a scheduler; here the three months
are run one by one with `airflow dags test`, whose logical date is chosen so that each run
has the data interval `backfill create` gives that month (checked with `--dry-run`).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devtools.embedded import (
    DAG_ID,
    LIFECYCLE_RULE,
    Aws,
    RunRecord,
    airflow,
    airflow_env,
    logical_date_for,
    migrate,
    provision,
    read_notifications,
)
from devtools.fargate import FargateEmulator

pytestmark = pytest.mark.slow

BUCKET = "ghvault-e2e"
NO_RULE_BUCKET = "ghvault-e2e-no-lifecycle"
OTHER_RULE_BUCKET = "ghvault-e2e-other-prefix"
CLUSTER = "ghvault"
LOG_GROUP = "/ghvault/backup"

# What `airflow dags test` does, with the knobs the CLI lacks: no logical date (run_after
# instead), attributes of tasks changed before the run (e.g. a short sensor timeout).
DAG_TEST = """
import json, os, sys
from datetime import datetime
from airflow.dag_processing.dagbag import DagBag

spec = json.loads(sys.argv[1])
dag = DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).get_dag("github_backup")
for task_id, attrs in spec.get("tweaks", {}).items():
    for name, value in attrs.items():
        setattr(dag.get_task(task_id), name, value)
logical = spec.get("logical_date")
run = dag.test(logical_date=datetime.fromisoformat(logical) if logical else None,
               run_after=datetime.fromisoformat(spec["run_after"]) if spec.get("run_after")
               else None, run_conf=spec.get("conf"))
print("DAG_TEST_RUN_ID", run.run_id, run.state)
"""


@dataclass
class Run:
    record: RunRecord
    notifications: list[dict]
    log: str
    returncode: int
    fargate_runs: list = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.record.state

    def only_notification(self) -> dict:
        assert len(self.notifications) == 1, self.notifications
        return self.notifications[0]


class Deployment:
    """moto resources + the Airflow home shared by every run of this module."""

    def __init__(self, home: Path, aws: Aws, sim, resources: dict,
                 network: tuple[str, str]) -> None:
        self.home, self.aws, self.sim, self.resources = home, aws, sim, resources
        self.subnet, self.security_group = network
        self.owner = sim.sim.world.owners["user"]
        self.org = sim.sim.world.owners["org"]

    def settings(self, **overrides) -> dict:
        base = {
            "bucket": BUCKET, "prefix": "github", "runner": "local", "region": "us-east-1",
            "owners": [self.owner], "token_parameter": self.resources["token_parameter"],
            "github_api_url": self.sim.api, "sns_topic_arn": self.resources["topic_arn"],
            "engine_env": self.sim.client_env(),
            "cluster": CLUSTER, "task_definition": "ghvault", "container_name": "ghvault",
            "subnets": [self.subnet], "security_groups": [self.security_group],
            "log_group": LOG_GROUP, "log_stream_prefix": "ghvault",
            "waiter_delay_seconds": 1,  # the (deferred) ECS waiter polls every second here
        }
        base.update(overrides)
        return base

    def run(self, *, month: str | None = None, logical_date: str | None = None,
            run_after: str | None = None, conf: dict | None = None, tweaks: dict | None = None,
            settings: dict | None = None, log_name: str = "run") -> Run:
        """One DAG run; `airflow dags test` unless run_after or tweaks need DAG.test()."""
        read_notifications(self.aws, self.resources["queue_url"], wait=0)  # start clean
        env = airflow_env(self.home, self.aws, settings or self.settings())
        log = self.home / f"{log_name}.log"
        if run_after is None and not tweaks:
            args = ["dags", "test", DAG_ID, logical_date or logical_date_for(month)]
            if conf:
                args += ["--conf", json.dumps(conf)]
            result = airflow(env, *args, log=log, check=False, timeout=600)
        else:
            spec = {"logical_date": logical_date or (logical_date_for(month) if month else None),
                    "run_after": run_after, "conf": conf, "tweaks": tweaks or {}}
            with log.open("w") as out:
                result = subprocess.run([sys.executable, "-c", DAG_TEST, json.dumps(spec)],
                                        env=env, stdout=out, stderr=subprocess.STDOUT,
                                        text=True, timeout=600)
        text = log.read_text(errors="replace")
        assert "Traceback" not in text.split("[DAG TEST] starting", 1)[0], text[-4000:]
        return Run(RunRecord(self.home), read_notifications(self.aws,
                                                            self.resources["queue_url"]),
                   text, result.returncode)

    def archive(self, key: str, bucket: str = BUCKET) -> tuple[dict, dict, zipfile.ZipFile]:
        s3 = self.aws.client("s3")
        head = s3.head_object(Bucket=bucket, Key=key)
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=key + ".manifest.json")[
            "Body"].read())
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return head, manifest, zipfile.ZipFile(io.BytesIO(body))


def key_of(owner: str, month: str) -> str:
    return f"github/{owner}/{month[:4]}/{month[5:]}/{owner}-{month}.zip"


def register_ecs(aws: Aws, token_parameter: str) -> tuple[str, str]:
    """Cluster, log group, a Fargate task definition whose token comes from SSM, and the
    subnet and security group of its network configuration. (moto's RunTask needs a
    security group; ECS would take the VPC's default.)"""
    ecs, logs, ec2, ssm = (aws.client(s) for s in ("ecs", "logs", "ec2", "ssm"))
    ecs.create_cluster(clusterName=CLUSTER)
    logs.create_log_group(logGroupName=LOG_GROUP)
    arn = ssm.get_parameter(Name=token_parameter)["Parameter"]["ARN"]
    ecs.register_task_definition(
        family="ghvault", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="1024", memory="2048",
        containerDefinitions=[{
            "name": "ghvault", "image": "ghvault:latest", "essential": True, "memory": 2048,
            "environment": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
            "secrets": [{"name": "GITHUB_TOKEN", "valueFrom": arn}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": LOG_GROUP, "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "ghvault"}},
        }])
    subnet = ec2.describe_subnets()["Subnets"][0]
    group = ec2.create_security_group(GroupName="ghvault-backup", Description="ghvault task",
                                      VpcId=subnet["VpcId"])["GroupId"]
    return subnet["SubnetId"], group


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, moto_server, sim) -> Deployment:
    aws = Aws(moto_server.endpoint)
    resources = provision(aws, BUCKET, sim.token, name="ghvault-e2e")
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=NO_RULE_BUCKET)
    s3.create_bucket(Bucket=OTHER_RULE_BUCKET)
    s3.put_bucket_lifecycle_configuration(Bucket=OTHER_RULE_BUCKET, LifecycleConfiguration={
        "Rules": [{**LIFECYCLE_RULE, "Filter": {"Prefix": "other/"}}]})
    network = register_ecs(aws, resources["token_parameter"])
    home = tmp_path_factory.mktemp("airflow")
    deployment = Deployment(home, aws, sim, resources, network)
    migrate(home, airflow_env(home, aws, deployment.settings()))
    return deployment


@pytest.fixture
def fargate(moto_server):
    with FargateEmulator(moto_server.endpoint) as emulator:
        yield emulator


def assert_backed_up(deployment: Deployment, run: Run, owner: str, month: str,
                     backup_task: str, index: int = 0) -> None:
    key = key_of(owner, month)
    result = run.record.result(backup_task, index)
    assert result["owner"] == owner and result["month"] == month and result["key"] == key
    head, manifest, archive = deployment.archive(key)
    assert manifest["owner"] == owner and manifest["month"] == month
    assert manifest["archive"]["size"] == head["ContentLength"]
    assert "MANIFEST.json" in archive.namelist()
    assert any(n.endswith(".bundle") for n in archive.namelist())
    verified = run.record.result("backup.archive", index)
    assert verified["key"] == key and verified["size"] == head["ContentLength"]
    glacier = run.record.result("backup.glacier", index)
    assert glacier["rule_id"] == LIFECYCLE_RULE["ID"] and glacier["storage_class"] == "GLACIER"


# -- the two runners ---------------------------------------------------------------------------


def test_local_runner_backs_up_every_owner_and_reports_once(deployment: Deployment) -> None:
    owners = [deployment.owner, deployment.org]
    run = deployment.run(month="2026-10", settings=deployment.settings(owners=owners),
                         log_name="local")
    assert run.state == "success", run.log[-3000:]
    assert run.record.states("backup.ecs") == ["skipped"]
    assert run.record.states("backup.local") == ["success", "success"]
    # verification was not asked for: both runners' verify tasks were skipped by the branch
    assert run.record.states("backup.verify_local") == ["skipped", "skipped"]
    assert run.record.states("backup.verify_ecs") == ["skipped", "skipped"]
    assert run.record.states("notify") == ["success"]
    for index, owner in enumerate(owners):
        assert_backed_up(deployment, run, owner, "2026-10", "backup.local", index)
        summary = run.record.result("backup.local", index)["summary"]
        assert summary["owner"] == owner and summary["counts"]["repos"] > 0
    note = run.only_notification()
    assert note["subject"] == "ghvault: backup of 2 owners for 2026-10 succeeded"
    assert note["attributes"] == {"status": "success", "month": "2026-10", "dag_id": DAG_ID}
    for owner in owners:
        assert f"s3://{BUCKET}/{key_of(owner, '2026-10')}" in note["message"]
    # the token is read from SSM by the task and goes nowhere else
    assert deployment.sim.token not in run.log
    assert deployment.sim.token not in json.dumps(list(run.record.xcom.values()))


def test_ecs_runner_through_the_provider_and_emulated_fargate(deployment: Deployment,
                                                              fargate: FargateEmulator) -> None:
    run = deployment.run(month="2026-10", conf={"runner": "ecs", "exclude": ["lfs"],
                                                "verify": True}, log_name="ecs")
    assert run.state == "success", run.log[-3000:]
    assert run.record.states("backup.local") == ["skipped"]
    assert_backed_up(deployment, run, deployment.owner, "2026-10", "backup.ecs")
    container, verification = fargate.runs
    # the verification step ran `ghvault verify` in a second task of the same definition
    archive_url = f"s3://{BUCKET}/{key_of(deployment.owner, '2026-10')}"
    assert verification.command == ["verify", archive_url]
    assert verification.exit_code == 0
    assert run.record.states("backup.verify_ecs") == ["success"]
    assert run.record.states("backup.verify_local") == ["skipped"]
    verified = run.record.result("backup.verify_ecs", 0)
    assert verified["verified"] is True and verified["summary"]["ok"] is True
    assert verified["summary"]["bundles"] > 0  # verify's JSON summary line, read from the log
    assert container.exit_code == 0 and container.stop_code == "EssentialContainerExited"
    assert container.command[:3] == ["run", "--owner", deployment.owner]
    assert "--include" in container.command and "lfs" not in container.command[
        container.command.index("--include") + 1].split(",")
    assert container.secret_names == ["GITHUB_TOKEN"]  # injected from SSM by "ECS"
    task = fargate.backend.tasks[CLUSTER][container.task_arn]
    assert deployment.sim.token not in json.dumps(task.overrides)
    # deferrable by default: the provider's trigger waited (inline under `dags test`)
    assert run.log.count("TaskDoneTrigger") >= 2  # the backup and the verification
    # the provider streamed the container's CloudWatch log into the task log, and the
    # operator read the engine's summary line from it
    assert run.record.result("backup.ecs", 0)["summary"]["owner"] == deployment.owner
    assert run.record.result("backup.ecs", 0, key="ecs_task_arn") == container.task_arn
    assert deployment.sim.token not in run.log
    note = run.only_notification()
    assert note["subject"] == f"ghvault: backup of {deployment.owner} for 2026-10 succeeded"
    assert "Verified (ghvault verify)" in note["message"]
    assert f"is intact ({verified['summary']['entries']} entries" in note["message"]


# -- failures ------------------------------------------------------------------------------------


def assert_failure_reported(run: Run, task_id: str, *, owner: str | None, reason: str) -> dict:
    assert run.state == "failed"
    assert "failed" in run.record.states(task_id)
    assert run.record.states("notify") == ["upstream_failed"]
    note = run.only_notification()
    assert note["attributes"]["status"] == "failure"
    assert note["attributes"]["task_id"] == task_id
    assert f"FAILED at {task_id}" in note["subject"]
    if owner:
        assert note["attributes"]["owner"] == owner
        assert owner in note["subject"]
    assert reason in note["message"], note["message"]
    return note


def test_engine_exit_code_fails_the_run_and_names_the_owner(deployment: Deployment) -> None:
    run = deployment.run(month="2026-10", conf={"owners": ["no-such-owner-404"]},
                         log_name="bad-owner")
    note = assert_failure_reported(run, "backup.local", owner="no-such-owner-404",
                                   reason="does not exist")
    assert "OwnerNotFound" in note["message"]
    assert run.record.states("backup.archive") == ["upstream_failed"]


def test_engine_exit_code_through_ecs(deployment: Deployment, fargate: FargateEmulator) -> None:
    run = deployment.run(month="2026-10", conf={"owners": ["no-such-owner-404"],
                                                "runner": "ecs"},
                         tweaks={"backup.ecs": {"waiter_delay": 1}}, log_name="ecs-bad-owner")
    assert_failure_reported(run, "backup.ecs", owner="no-such-owner-404",
                            reason="does not exist")
    assert [r.exit_code for r in fargate.runs] == [4]  # the engine's "owner not found"


def test_task_failing_to_start_fails_the_run(deployment: Deployment,
                                             fargate: FargateEmulator) -> None:
    fargate.fail_next_start("CannotPullContainerError: ghvault:latest: not found")
    run = deployment.run(month="2026-10", conf={"runner": "ecs"},
                         tweaks={"backup.ecs": {"retries": 0, "waiter_delay": 1}},
                         log_name="no-start")
    assert_failure_reported(run, "backup.ecs", owner=deployment.owner,
                            reason="CannotPullContainerError")
    assert fargate.runs[0].stop_code == "TaskFailedToStart"


def test_missing_archive_fails_the_archive_sensor(deployment: Deployment, moto_server) -> None:
    # A container that exits 0 without writing anything: the backup "succeeds", the
    # sensor finds nothing at the key and fails when its timeout runs out.
    with FargateEmulator(moto_server.endpoint, entrypoint=["true"]) as fargate:
        run = deployment.run(month="2026-03", conf={"runner": "ecs"},
                             tweaks={"backup.archive": {"timeout": 3, "poke_interval": 1},
                                     "backup.ecs": {"waiter_delay": 1}},
                             log_name="missing-archive")
    assert [r.exit_code for r in fargate.runs] == [0]
    assert run.record.states("backup.ecs") == ["success"]
    assert_failure_reported(run, "backup.archive", owner=deployment.owner,
                            reason=f"{key_of(deployment.owner, '2026-03')} is not there")


def test_missing_lifecycle_rule_fails_the_glacier_sensor(deployment: Deployment) -> None:
    run = deployment.run(month="2026-10", settings=deployment.settings(bucket=NO_RULE_BUCKET),
                         log_name="no-rule")
    assert run.record.states("backup.archive") == ["success"]
    assert_failure_reported(run, "backup.glacier", owner=deployment.owner,
                            reason=f"bucket {NO_RULE_BUCKET} has no lifecycle configuration")


def test_lifecycle_rule_for_another_prefix_fails_the_glacier_sensor(
        deployment: Deployment) -> None:
    run = deployment.run(month="2026-10",
                         settings=deployment.settings(bucket=OTHER_RULE_BUCKET),
                         log_name="other-rule")
    assert_failure_reported(run, "backup.glacier", owner=deployment.owner,
                            reason="prefix 'other/' does not match the key")


# -- months: backfill, rerun, runs without a logical date -----------------------------------------


def test_backfill_three_months_then_rerun_replaces(deployment: Deployment) -> None:
    months = ["2026-06", "2026-07", "2026-08"]
    s3 = deployment.aws.client("s3")
    for month in months:
        run = deployment.run(month=month, log_name=f"backfill-{month}")
        assert run.state == "success", run.log[-3000:]
        assert run.record.interval_start.startswith(f"{month}-01 00:00:00")
        assert_backed_up(deployment, run, deployment.owner, month, "backup.local")
        previous = run.record.result("backup.glacier", 0)["previous"]
        assert previous["exists"] == (month != months[0])
    # the same months as the runs `airflow backfill create` queues for June..August: one
    # per month, whose logical date is the start of the month's data interval
    env = airflow_env(deployment.home, deployment.aws, deployment.settings())
    dry = airflow(env, "backfill", "create", "--dag-id", DAG_ID, "--from-date", "2026-06-01",
                  "--to-date", "2026-08-31", "--reprocess-behavior", "completed",
                  "--dry-run").stdout
    assert re.findall(r"\| (\S+ \S+) +\|", dry) == [f"{m}-01 00:00:00+00:00" for m in months]
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"github/{deployment.owner}/2026/0")
    keys = {o["Key"] for o in listed["Contents"] if o["Key"].endswith(".zip")}
    assert {key_of(deployment.owner, m) for m in months} <= keys

    first = s3.head_object(Bucket=BUCKET, Key=key_of(deployment.owner, "2026-07"))
    rerun = deployment.run(month="2026-07", log_name="rerun")
    assert rerun.state == "success"
    again = s3.head_object(Bucket=BUCKET, Key=key_of(deployment.owner, "2026-07"))
    assert again["LastModified"] >= first["LastModified"] and again["ETag"] != first["ETag"]
    _, manifest, _ = deployment.archive(key_of(deployment.owner, "2026-07"))
    assert manifest["archive"]["etag"].strip('"') == again["ETag"].strip('"')


def test_run_without_logical_date_backs_up_the_month_of_run_after(
        deployment: Deployment) -> None:
    run = deployment.run(run_after="2026-05-17T09:30:00+00:00", log_name="no-logical-date")
    assert run.state == "success", run.log[-3000:]
    assert run.record.logical_date is None
    assert_backed_up(deployment, run, deployment.owner, "2026-05", "backup.local")
    assert "for 2026-05 succeeded" in run.only_notification()["subject"]


def test_fargate_emulator_runs_what_ecs_would_and_refuses_what_it_would_not(
        deployment: Deployment, fargate: FargateEmulator) -> None:
    ecs, logs = deployment.aws.client("ecs"), deployment.aws.client("logs")
    network = {"awsvpcConfiguration": {"subnets": [deployment.subnet],
                                       "securityGroups": [deployment.security_group]}}
    broken = ecs.describe_task_definition(taskDefinition="ghvault")["taskDefinition"]
    container = {**broken["containerDefinitions"][0],
                 "secrets": [{"name": "GITHUB_TOKEN", "valueFrom": "/ghvault/no-such-token"}]}
    ecs.register_task_definition(family="ghvault-no-secret", networkMode="awsvpc",
                                 requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
                                 containerDefinitions=[container])

    def run(definition: str, command: list[str]) -> dict:
        arn = ecs.run_task(cluster=CLUSTER, taskDefinition=definition, launchType="FARGATE",
                           networkConfiguration=network, overrides={"containerOverrides": [
                               {"name": "ghvault", "command": command}]})["tasks"][0]["taskArn"]
        ecs.get_waiter("tasks_stopped").wait(cluster=CLUSTER, tasks=[arn],
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        return ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]

    ok = run("ghvault", ["run", "--help"])
    assert ok["stopCode"] == "EssentialContainerExited"
    assert ok["containers"][0]["lastStatus"] == "STOPPED"
    assert ok["containers"][0]["exitCode"] == 0
    stream = fargate.runs[-1].log_stream
    assert stream == f"ghvault/ghvault/{ok['taskArn'].rsplit('/', 1)[1]}"
    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream)["events"]
    assert any("exit codes" in e["message"] for e in events)
    assert run("ghvault", ["run", "--owner", "x"])["containers"][0]["exitCode"] == 2

    refused = run("ghvault-no-secret", ["run", "--help"])
    assert refused["stopCode"] == "TaskFailedToStart"
    assert "ParameterNotFound" in refused["stoppedReason"]
    assert "exitCode" not in refused["containers"][0]
