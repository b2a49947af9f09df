"""The github_backup DAG with runner docker, end to end: `airflow dags test` (real Airflow,
SQLite) whose backup task starts the engine image (`make image`'s ghvault:dev) on this
machine's container engine (podman's Docker API here), with moto as AWS and the simulator
as GitHub; the sensors then check the archive and the lifecycle rule, and the summary goes
out through SNS.
"""

from __future__ import annotations

import json

import pytest

from devtools.embedded import (
    Aws,
    RunRecord,
    airflow,
    airflow_env,
    logical_date_for,
    migrate,
    provision,
    read_notifications,
)
from tests.conftest import IMAGE, ca_env
from tests.container.test_docker_runner import engine_api, ours  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

BUCKET = "ghvault-docker-dag"


def test_the_dag_runs_to_success_with_the_docker_runner(tmp_path, moto_server, sim, engine,
                                                        engine_api, container_ca):  # noqa: F811
    aws = Aws(moto_server.endpoint)
    resources = provision(aws, BUCKET, sim.token, name="ghvault-docker-dag")
    owner = sim.sim.world.owners["user"]
    settings = {
        "bucket": BUCKET, "runner": "docker", "region": "us-east-1", "owners": [owner],
        "token_parameter": resources["token_parameter"], "github_api_url": sim.api,
        "sns_topic_arn": resources["topic_arn"], "engine_env": ca_env(container_ca),
        "docker_image": IMAGE, "docker_url": engine_api, "docker_network": "host",
        "docker_mounts": {str(container_ca): str(container_ca)}, "verify": True,
    }
    home = tmp_path / "airflow"
    env = airflow_env(home, aws, settings)
    migrate(home, env)
    log = home / "run.log"
    result = airflow(env, "dags", "test", "github_backup", logical_date_for("2026-10"), log=log,
                     check=False, timeout=600)
    text = log.read_text(errors="replace")
    record = RunRecord(home)
    assert record.state == "success", f"exit {result.returncode}\n{text[-4000:]}"
    assert record.states("backup.backup") == ["success"]
    assert record.states("backup.archive") == ["success"]
    assert record.states("backup.verify") == ["success"]  # `ghvault verify` in a container too
    backup = record.result("backup.backup", 0)
    key = f"github/{owner}/2026/10/{owner}-2026-10.zip"
    assert backup["key"] == key and backup["summary"]["counts"]["repos"] > 0
    assert record.result("backup.verify", 0)["verified"] is True
    assert record.result("plan", key="plan")["runner"] == "docker"
    assert text.count(f"of {IMAGE} on ") == 2, "the backup and the verification ran as containers"
    (note,) = [n for n in read_notifications(aws, resources["queue_url"])
               if not n["message"].startswith('{"Records"')]
    assert note["subject"] == "ghvault: 1 of 1 owner succeeded for 2026-10"
    # the token is read from SSM by the task and goes nowhere else
    assert sim.token not in text
    assert sim.token not in json.dumps(list(record.xcom.values()))
    assert ours(engine) == []
