"""devtools.fargate's `max_running`: the harness runs at most that many tasks at once, the
others wait PROVISIONING in the order moto received them, and each run's `wall_s` is its own
container's time, not the wait (how bench/scale_shards.py measures shards as Fargate runs
them, each with its own vCPUs). The default runs every task at once."""

from __future__ import annotations

import time

import pytest

from devtools.fargate import FargateEmulator

CLUSTER = "queue"
FAMILY = "queue-sleep"
SLEEP_S = 1.0


@pytest.fixture(scope="module")
def ecs(moto_server):
    """A task definition whose container sleeps `SLEEP_S` seconds (`sh -c`); start(n)."""
    ecs, ec2 = moto_server.client("ecs"), moto_server.client("ec2")
    ecs.create_cluster(clusterName=CLUSTER)
    ecs.register_task_definition(
        family=FAMILY, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=[{"name": "ghvault", "image": "ghvault:latest",
                                             "essential": True, "memory": 512,
                                             "entryPoint": ["sh", "-c"]}])
    subnet = ec2.describe_subnets()["Subnets"][0]
    group = ec2.create_security_group(GroupName="ghvault-queue", Description="queue",
                                      VpcId=subnet["VpcId"])["GroupId"]
    network = {"awsvpcConfiguration": {"subnets": [subnet["SubnetId"]],
                                       "securityGroups": [group]}}

    def start(command: str) -> str:
        return ecs.run_task(cluster=CLUSTER, taskDefinition=FAMILY, launchType="FARGATE",
                            networkConfiguration=network, overrides={"containerOverrides": [
                                {"name": "ghvault", "command": [command]}]})["tasks"][0][
            "taskArn"]

    return ecs, start


def run_three(moto_server, start, **kwargs) -> list:
    with FargateEmulator(moto_server.endpoint, runtime="process", **kwargs) as fargate:
        arns = [start(f"sleep {SLEEP_S}; echo task {k}") for k in range(3)]
        deadline = time.monotonic() + 60
        while len(fargate.runs) < 3 or not all(r.finished.is_set() for r in fargate.runs):
            assert time.monotonic() < deadline, [r.output for r in fargate.runs]
            time.sleep(0.05)
        runs = {r.task_arn: r for r in fargate.runs}
    return [runs[a] for a in arns]


def overlapping(runs: list) -> int:
    """The most runs whose containers were up at one moment."""
    marks = sorted([(r.started_s, 1) for r in runs] + [(r.ended_s, -1) for r in runs])
    most = now = 0
    for _, step in marks:
        now += step
        most = max(most, now)
    return most


def test_max_running_one_runs_the_tasks_one_after_another_in_order(ecs, moto_server):
    ecs_client, start = ecs
    runs = run_three(moto_server, start, max_running=1)
    assert [r.exit_code for r in runs] == [0, 0, 0]
    assert [r.output for r in runs] == [["task 0"], ["task 1"], ["task 2"]]
    assert overlapping(runs) == 1
    assert [r.started_s for r in runs] == sorted(r.started_s for r in runs)  # moto's order
    # each wall time is the container's own second, not the queue before it
    assert all(SLEEP_S <= r.wall_s < SLEEP_S + 2 for r in runs), [r.wall_s for r in runs]
    assert runs[2].ended_s - runs[0].started_s >= 3 * SLEEP_S


def test_by_default_every_task_runs_at_once(ecs, moto_server):
    _, start = ecs
    runs = run_three(moto_server, start)
    assert [r.exit_code for r in runs] == [0, 0, 0]
    assert overlapping(runs) == 3


def test_stop_task_on_a_waiting_task_stops_it_without_running_it(ecs, moto_server):
    ecs_client, start = ecs
    with FargateEmulator(moto_server.endpoint, runtime="process", max_running=1) as fargate:
        first = start("sleep 3")
        waiting = start("echo never")
        deadline = time.monotonic() + 30
        while ecs_client.describe_tasks(cluster=CLUSTER, tasks=[waiting])["tasks"][0][
                "lastStatus"] != "PROVISIONING":
            assert time.monotonic() < deadline, "the second task was not held back"
            time.sleep(0.05)
        ecs_client.stop_task(cluster=CLUSTER, task=waiting, reason="not needed")
        ecs_client.get_waiter("tasks_stopped").wait(cluster=CLUSTER, tasks=[first, waiting],
                                                    WaiterConfig={"Delay": 1,
                                                                  "MaxAttempts": 30})
        stopped = ecs_client.describe_tasks(cluster=CLUSTER, tasks=[waiting])["tasks"][0]
        runs = {r.task_arn: r for r in fargate.runs}
    assert stopped["stopCode"] == "UserInitiated"
    assert stopped["stoppedReason"] == "not needed"
    assert "exitCode" not in stopped["containers"][0]
    assert runs[waiting].started_s is None and runs[waiting].output == []
    assert runs[first].exit_code == 0


def test_max_running_below_one_is_refused(moto_server):
    with pytest.raises(ValueError, match="max_running must be at least 1"):
        FargateEmulator(moto_server.endpoint, runtime="process", max_running=0)
