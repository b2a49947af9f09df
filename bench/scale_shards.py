"""One owner backed up in N shards, each shard a Fargate task (issue 17, the cost curve).

The tasks go through the Fargate harness (devtools/fargate.py) over moto's ECS, in this
process, with the process runtime: `run_task` once per shard, as the DAG maps them. On
Fargate each task has its own vCPUs; here all would share this machine's two cores, so the
harness runs them one at a time (`max_running=TASKS_AT_ONCE`) and each shard's wall time is
its own task's, start to exit: what it would take on its own Fargate task, with the
simulator serving one part at a time. N = 1 is the unsharded command, measured the same way.

Every part's manifest names its repositories (`shard.repos`): the parts of one run must
hold each repository of the owner exactly once, or the run is marked failed.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

from bench.coverage import ghvault_counts
from bench.scale import ShardResult
from bench.scenarios import MONTH_ONE, say
from bench.shard_parts import miscounts, part_problems, part_repos
from bench.sim import Sim

CLUSTER = "scale-bench"
FAMILY = "ghvault-scale"
LOG_GROUP = "/ghvault/scale-bench"
TOKEN_PARAMETER = "/ghvault/scale-bench-token"
REGION = "us-east-1"
TASKS_AT_ONCE = 1  # the harness's max_running: each shard with the CPUs it has on Fargate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ecs(endpoint: str, sim: Sim):
    """A cluster, a log group, the token in SSM and the task definition; run_task for one
    shard's command."""
    import boto3

    def client(service: str):
        return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    ecs, ec2 = client("ecs"), client("ec2")
    ecs.create_cluster(clusterName=CLUSTER)
    client("logs").create_log_group(logGroupName=LOG_GROUP)
    client("ssm").put_parameter(Name=TOKEN_PARAMETER, Value=sim.token, Type="SecureString",
                                Overwrite=True)
    trust = [{"name": k, "value": sim.ca}
             for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO")]
    ecs.register_task_definition(
        family=FAMILY, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="1024",
        memory="2048", containerDefinitions=[{
            "name": "ghvault", "image": "ghvault:latest", "essential": True, "memory": 2048,
            "environment": trust + [{"name": "GIT_TERMINAL_PROMPT", "value": "0"}],
            "secrets": [{"name": "GITHUB_TOKEN", "valueFrom": TOKEN_PARAMETER}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": LOG_GROUP, "awslogs-region": REGION,
                "awslogs-stream-prefix": "ghvault"}}}])
    subnet = ec2.describe_subnets()["Subnets"][0]
    group = ec2.create_security_group(GroupName="ghvault-scale", Description="scale bench",
                                      VpcId=subnet["VpcId"])["GroupId"]
    network = {"awsvpcConfiguration": {"subnets": [subnet["SubnetId"]],
                                       "securityGroups": [group]}}

    def start(command: list[str]) -> str:
        return ecs.run_task(cluster=CLUSTER, taskDefinition=FAMILY, launchType="FARGATE",
                            networkConfiguration=network, overrides={"containerOverrides": [
                                {"name": "ghvault", "command": command}]})["tasks"][0]["taskArn"]
    return start


def shard_command(sim: Sim, owner: str, archive: Path, workdir: Path, k: int, n: int
                  ) -> list[str]:
    command = ["run", "--owner", owner, "--month", MONTH_ONE, "--api-url", sim.api,
               "--dest", archive.as_uri(), "--workdir", str(workdir)]
    return command + (["--shard", f"{k}/{n}"] if n > 1 else [])


def archive_name(owner: str, k: int, n: int) -> str:
    return f"{owner}-{MONTH_ONE}.zip" if n == 1 else f"{owner}-{MONTH_ONE}.part-{k}-of-{n}.zip"


def sharded_runs(sim: Sim, owner: str, expected: dict[str, int], work: Path,
                 counts: list[int], timeout: float, results: list[ShardResult],
                 publish: Callable[[], None]) -> None:
    """Each shard count in turn, appended to `results`, `publish` after each."""
    from moto.server import ThreadedMotoServer

    from devtools.fargate import FargateEmulator

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log: noise here
    port = _free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        start = _ecs(endpoint, sim)
        with FargateEmulator(endpoint, runtime="process", region=REGION, timeout=timeout,
                             max_running=TASKS_AT_ONCE) as fargate:
            # The baseline (fewest shards) first, then the most: the ratio the target
            # needs is in the report before the counts between, if a run is cut short.
            order = sorted(counts)[:1] + sorted(counts)[1:][::-1]
            for n in order:
                results.append(_run_shards(sim, fargate, start, owner, expected,
                                           work / f"{n}-shards", n, timeout))
                r = results[-1]
                say(f"{n} shard(s): slowest {max(r.walls):.1f} s "
                    f"({', '.join(f'{w:.1f}' for w in r.walls)}), {r.requests} requests"
                    + (f"; {'; '.join(r.problems)}" if r.problems else ""))
                publish()
    finally:
        moto.stop()


def _run_shards(sim: Sim, fargate, start, owner: str, expected: dict[str, int], work: Path,
                n: int, timeout: float) -> ShardResult:
    archives = [work / archive_name(owner, k, n) for k in range(1, n + 1)]
    sim.reset()
    seen = len(fargate.runs)
    began = time.perf_counter()
    arns = []
    for k, archive in enumerate(archives, 1):
        workdir = work / f"workdir-{k}"
        workdir.mkdir(parents=True, exist_ok=True)
        arns.append(start(shard_command(sim, owner, archive, workdir, k, n)))
    walls: dict[str, float] = {}
    deadline = began + n * (timeout + 60)  # the tasks may run one after another
    while len(walls) < n and time.perf_counter() < deadline:
        for run in fargate.runs[seen:]:
            if run.task_arn not in walls and run.finished.is_set():
                # the task's own time (start to exit), not its wait for a turn
                walls[run.task_arn] = run.wall_s if run.wall_s is not None else float("nan")
        time.sleep(0.1)
    stats = sim.stats()
    runs = {r.task_arn: r for r in fargate.runs[seen:]}
    codes = [runs[a].exit_code if a in runs else None for a in arns]
    problems = [f"shard {k}/{n} exited {code}: "
                + next((ln for ln in reversed(runs[a].output) if ln.strip()), "")[:200]
                for k, (a, code) in enumerate(zip(arns, codes, strict=True), 1)
                if code != 0 and a in runs]
    problems += [f"shard {k}/{n} did not finish" for k, a in enumerate(arns, 1)
                 if a not in walls]
    held = {k: part_repos(a) for k, a in enumerate(archives, 1) if a.exists()}
    problems += part_problems(held, n)
    each = []
    for archive in archives:
        if archive.exists():
            each.append(ghvault_counts(archive))
        elif not problems:
            problems.append(f"no archive {archive.name}")
    if not problems:
        problems += miscounts(expected, each)
    sizes = [a.stat().st_size if a.exists() else 0 for a in archives]
    if not problems:  # a failed run's parts stay in the work directory (--work keeps it)
        for a in archives:
            a.unlink(missing_ok=True)
    return ShardResult(n, [walls.get(a, float("nan")) for a in arns], codes,
                       stats["requests_total"], sum(sizes), problems, sizes)
