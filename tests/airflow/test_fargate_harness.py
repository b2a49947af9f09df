"""devtools.fargate, the Fargate harness over moto: what it runs (the engine image in the
container engine, or this virtualenv's ghvault), what it refuses as ECS would, StopTask as
SIGTERM then SIGKILL after `stopTimeout`, and the log lines in moto's CloudWatch Logs."""

from __future__ import annotations

import time
import uuid

import pytest

from devtools.fargate import FargateEmulator, ghvault_images
from tests.conftest import IMAGE, start_sim
from tests.github_sim.faults import Faults

pytestmark = pytest.mark.slow

CLUSTER = "harness"
LOG_GROUP = "/ghvault/harness"
TOKEN_PARAMETER = "/ghvault/harness-token"
IMAGE_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/harness/ghvault:0.1.0"


def container(**extra) -> dict:
    return {"name": "ghvault", "image": IMAGE_URI, "essential": True, "memory": 512,
            "secrets": [{"name": "GITHUB_TOKEN", "valueFrom": TOKEN_PARAMETER}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": LOG_GROUP, "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "ghvault"}}, **extra}


@pytest.fixture(scope="module")
def ecs(moto_server, sim):
    """A cluster, a log group, the token and task definitions: `ghvault` (as the stack's:
    read-only root, UID 10001, a task volume at the workdir, stopTimeout 5), `no-secret`
    (its secret does not exist), `other-image` (an image the map does not know),
    `deaf` (`sleep`, which as PID 1 ignores SIGTERM; stopTimeout 2)."""
    ecs, ec2 = moto_server.client("ecs"), moto_server.client("ec2")
    ecs.create_cluster(clusterName=CLUSTER)
    moto_server.client("logs").create_log_group(logGroupName=LOG_GROUP)
    moto_server.client("ssm").put_parameter(Name=TOKEN_PARAMETER, Value=sim.token,
                                            Type="SecureString", Overwrite=True)
    hardened = {"readonlyRootFilesystem": True, "user": "10001",
                "workingDirectory": "/tmp/ghvault", "stopTimeout": 5,
                "mountPoints": [{"sourceVolume": "work", "containerPath": "/tmp/ghvault"}]}
    families = {
        "harness-ghvault": (container(**hardened), [{"name": "work"}]),
        "harness-no-secret": (container(secrets=[{"name": "GITHUB_TOKEN",
                                                  "valueFrom": "/ghvault/no-such-token"}]), []),
        "harness-other-image": (container(image="public.ecr.aws/x/other:1"), []),
        "harness-deaf": (container(entryPoint=["sleep"], stopTimeout=2), []),
    }
    for family, (definition, volumes) in families.items():
        ecs.register_task_definition(family=family, networkMode="awsvpc",
                                     requiresCompatibilities=["FARGATE"], cpu="256",
                                     memory="512", containerDefinitions=[definition],
                                     volumes=volumes)
    subnet = ec2.describe_subnets()["Subnets"][0]
    group = ec2.create_security_group(GroupName="ghvault-harness", Description="harness",
                                      VpcId=subnet["VpcId"])["GroupId"]
    network = {"awsvpcConfiguration": {"subnets": [subnet["SubnetId"]],
                                       "securityGroups": [group]}}

    def start(family: str, command: list[str], env: dict | None = None) -> str:
        override = {"name": "ghvault", "command": command,
                    "environment": [{"name": k, "value": v} for k, v in (env or {}).items()]}
        return ecs.run_task(cluster=CLUSTER, taskDefinition=family, launchType="FARGATE",
                            networkConfiguration=network, overrides={
                                "containerOverrides": [override]})["tasks"][0]["taskArn"]

    def wait(arn: str, timeout: int = 120) -> dict:
        ecs.get_waiter("tasks_stopped").wait(cluster=CLUSTER, tasks=[arn], WaiterConfig={
            "Delay": 1, "MaxAttempts": timeout})
        return ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]

    return ecs, start, wait


@pytest.fixture(params=["container", "process"])
def fargate(request, moto_server, sim):
    kwargs = {}
    if request.param == "container":
        kwargs = {"docker": request.getfixturevalue("engine").client,
                  "image_map": ghvault_images(IMAGE), "mounts": {str(sim.ca): "/ca.pem"}}
    with FargateEmulator(moto_server.endpoint, runtime=request.param, **kwargs) as emulator:
        yield emulator


def log_lines(moto_server, stream: str) -> list[str]:
    events = moto_server.client("logs").get_log_events(logGroupName=LOG_GROUP,
                                                       logStreamName=stream)["events"]
    return [e["message"] for e in events]


def test_the_harness_runs_what_ecs_would_and_refuses_what_it_would_not(
        ecs, fargate, moto_server) -> None:
    _, start, wait = ecs
    ok = wait(start("harness-ghvault", ["run", "--help"]))
    assert ok["stopCode"] == "EssentialContainerExited"
    assert ok["containers"][0]["lastStatus"] == "STOPPED"
    assert ok["containers"][0]["exitCode"] == 0
    stream = fargate.runs[-1].log_stream
    assert stream == f"ghvault/ghvault/{ok['taskArn'].rsplit('/', 1)[1]}"  # awslogs' name
    assert any("exit codes" in line for line in log_lines(moto_server, stream))
    assert fargate.runs[-1].secret_names == ["GITHUB_TOKEN"]
    assert wait(start("harness-ghvault", ["run", "--owner", "x"]))["containers"][0][
        "exitCode"] == 2

    refused = wait(start("harness-no-secret", ["run", "--help"]))
    assert refused["stopCode"] == "TaskFailedToStart"
    assert "ParameterNotFound" in refused["stoppedReason"]
    assert "exitCode" not in refused["containers"][0]


def test_an_image_the_map_does_not_know_cannot_be_pulled(ecs, engine, moto_server) -> None:
    _, start, wait = ecs
    with FargateEmulator(moto_server.endpoint, runtime="container", docker=engine.client,
                         image_map=ghvault_images(IMAGE)):
        other = wait(start("harness-other-image", ["run", "--help"]))
    assert other["stopCode"] == "TaskFailedToStart"
    assert "CannotPullContainerError" in other["stoppedReason"]
    assert "image_map names no local image for public.ecr.aws/x/other:1" in other[
        "stoppedReason"]
    assert "exitCode" not in other["containers"][0]


def test_a_task_definition_entrypoint_runs_in_the_hardened_container(ecs, engine,
                                                                     moto_server, sim):
    ecs_client, start, wait = ecs
    definition = ecs_client.describe_task_definition(taskDefinition="harness-ghvault")[
        "taskDefinition"]
    shell = {**definition["containerDefinitions"][0], "entryPoint": ["sh", "-c"]}
    ecs_client.register_task_definition(family="harness-shell", networkMode="awsvpc",
                                        requiresCompatibilities=["FARGATE"], cpu="256",
                                        memory="512", containerDefinitions=[shell],
                                        volumes=definition["volumes"])
    script = ("id -u; pwd; touch /opt/ghvault/probe 2>/dev/null || echo read-only root; "
              "touch ./probe && echo workdir writable; test -r /ca.pem && echo ca mounted; "
              'test -n "$GITHUB_TOKEN" && echo token injected; echo "$AWS_ENDPOINT_URL"')
    with FargateEmulator(moto_server.endpoint, runtime="container", docker=engine.client,
                         image_map=ghvault_images(IMAGE),
                         mounts={str(sim.ca): "/ca.pem"}) as fargate:
        task = wait(start("harness-shell", [script]))
    assert task["containers"][0]["exitCode"] == 0, fargate.runs[-1].output
    lines = log_lines(moto_server, fargate.runs[-1].log_stream)
    assert lines == ["10001", "/tmp/ghvault", "read-only root", "workdir writable",
                     "ca mounted", "token injected", moto_server.endpoint]
    assert sim.token not in "\n".join(lines)


@pytest.fixture(scope="module")
def slow_sim():
    """The tiny world answering 100 ms late, and git at 64 KiB/s: a backup takes minutes."""
    running, stop = start_sim(faults=Faults.parse("", 100), git_kbps=64)
    yield running
    stop()


def stop_and_wait(ecs_client, wait, arn: str) -> tuple[dict, float]:
    sent = time.monotonic()
    stopping = ecs_client.stop_task(cluster=CLUSTER, task=arn, reason="stopped by the test")
    # as ECS: StopTask asks; the task stays up until its container has exited
    assert stopping["task"]["desiredStatus"] == "STOPPED"
    assert stopping["task"]["lastStatus"] == "RUNNING"
    task = wait(arn)
    return task, time.monotonic() - sent


def test_stop_task_sends_sigterm_and_the_engine_ends_within_stop_timeout(
        ecs, engine, moto_server, slow_sim) -> None:
    ecs_client, start, wait = ecs
    s3 = moto_server.client("s3")
    bucket = f"ghvault-harness-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    owner = slow_sim.sim.world.owners["user"]
    with FargateEmulator(moto_server.endpoint, runtime="container", docker=engine.client,
                         image_map=ghvault_images(IMAGE),
                         mounts={str(slow_sim.ca): "/ca.pem"}) as fargate:
        arn = start("harness-ghvault", [
            "run", "--api-url", slow_sim.api, "--owner", owner, "--month", "2026-10",
            "--dest", f"s3://{bucket}/github/{owner}/2026/10/{owner}-2026-10.zip"],
            env={"SSL_CERT_FILE": "/ca.pem", "GIT_SSL_CAINFO": "/ca.pem",
                 "REQUESTS_CA_BUNDLE": "/ca.pem"})
        deadline = time.monotonic() + 90
        while not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"):
            assert not (fargate.runs and fargate.runs[-1].finished.is_set()), \
                fargate.runs[-1].output[-20:]
            assert time.monotonic() < deadline, "no multipart upload within 90 s"
            time.sleep(0.2)
        task, took = stop_and_wait(ecs_client, wait, arn)
    print(f"StopTask ended the engine's backup in {took:.1f} s (stopTimeout 5 s)")
    detail = f"after {took:.1f} s: {fargate.runs[-1].output[-20:]}"
    assert task["containers"][0]["exitCode"] == 143, detail
    assert task["stopCode"] == "UserInitiated" and task["stoppedReason"] == "stopped by the test"
    assert took < 5 + 3, detail  # within stopTimeout (plus the waiter's one-second polls)
    lines = log_lines(moto_server, fargate.runs[-1].log_stream)
    assert any("SIGTERM received: stopping" in line for line in lines), detail
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), "upload left open"


def test_stop_task_kills_a_container_that_ignores_sigterm_after_stop_timeout(
        ecs, engine, moto_server) -> None:
    ecs_client, start, wait = ecs
    with FargateEmulator(moto_server.endpoint, runtime="container", docker=engine.client,
                         image_map=ghvault_images(IMAGE)) as fargate:
        arn = start("harness-deaf", ["120"])
        deadline = time.monotonic() + 60
        while not (fargate.runs and fargate.runs[-1].log_stream
                   and ecs_client.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0][
                       "lastStatus"] == "RUNNING"):
            assert time.monotonic() < deadline, "the task did not start"
            time.sleep(0.2)
        time.sleep(1)  # the container is up
        task, took = stop_and_wait(ecs_client, wait, arn)
    print(f"StopTask killed the deaf container in {took:.1f} s (stopTimeout 2 s)")
    assert task["containers"][0]["exitCode"] == 137  # SIGKILL
    assert 2 <= took < 2 + 5, f"{took:.1f} s"
    assert task["stopCode"] == "UserInitiated"


def test_image_map_takes_any_ghvault_repository_and_nothing_else() -> None:
    local = ghvault_images("ghvault:dev")
    for image in ("ghvault", "ghvault:latest", IMAGE_URI, "registry:5000/ns/ghvault@sha256:ab",
                  "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ghvault:1"):
        assert local(image) == "ghvault:dev", image
    for image in ("ghvault-e2e:1", "x/ghvault-watchdog", "registry:5000/other:ghvault", "bash"):
        assert local(image) is None, image
