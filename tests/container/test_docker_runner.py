"""The docker runner: GithubBackupOperator with runner docker starts the engine image
(`make image`'s ghvault:dev) through the `docker` SDK on this machine's engine (podman's
Docker API here), against the simulator and moto's S3 and SSM.

The token is read from SSM when the task runs and reaches the container's environment only:
not the rendered template fields, the XCom, the task log or the exceptions. A failing engine
exit becomes the engine's exception; on_kill stops the container (SIGTERM) and removes it;
an engine that cannot be reached fails in one sentence naming the fix.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from types import SimpleNamespace

import pendulum
import pytest
from ghvault_airflow.container_engine import NoContainerEngine, engine_url
from ghvault_airflow.operators.backup import (
    BackupFailed,
    EngineAuthError,
    EngineConfigError,
    GithubBackupOperator,
    OwnerNotFound,
)
from ghvault_airflow.operators.docker_runner import LABEL
from ghvault_airflow.settings import SettingsError, load_settings

from tests.airflow.test_operators_backup import REGION, context_for, runner_aws
from tests.conftest import IMAGE, OTHER_TOKEN, TOKEN, ca_env, start_sim
from tests.github_sim.faults import Faults

pytestmark = pytest.mark.slow

MONTH = pendulum.datetime(2026, 10, 1, tz="UTC")


@pytest.fixture(scope="module")
def engine_api(engine):
    """The engine's API URL for the settings' docker_url: podman's service on a socket of
    its own here (None where Docker runs: the runner finds it as users' workers do)."""
    if engine.cli == "docker":
        yield None
        return
    from devtools.containers import podman_service

    with podman_service() as url:
        yield url


@pytest.fixture
def docker_run(aws, sim, container_ca, engine_api, monkeypatch):
    """Settings for the docker runner. AWS reaches the container only through the connection."""
    bucket, good, bad = runner_aws(aws, monkeypatch, "ghvault-dk")
    settings = {"bucket": bucket, "runner": "docker", "region": REGION, "token_parameter": good,
                "github_api_url": sim.api, "engine_env": ca_env(container_ca),
                "docker_image": IMAGE, "docker_url": engine_api, "docker_network": "host",
                "docker_mounts": {str(container_ca): str(container_ca)}}
    return SimpleNamespace(aws=aws, sim=sim, bucket=bucket, settings=settings, bad=bad)


def ours(engine) -> list:
    """The docker runner's containers still on the engine (running or not)."""
    return engine.client.containers.list(all=True, filters={"label": LABEL})


def test_docker_runner_backs_up_and_keeps_the_token_out(docker_run, engine, caplog, capfd):
    owner = docker_run.sim.sim.world.owners["org"]
    op = GithubBackupOperator(task_id="backup", github_owner=owner, runner="docker",
                              settings=json.dumps(docker_run.settings), kinds="git,issues")
    context = context_for(MONTH)
    op.render_template_fields(context)
    caplog.set_level(logging.DEBUG)
    result = op.execute(context)
    key = f"github/{owner}/2026/10/{owner}-2026-10.zip"
    assert (result["key"], result["bucket"]) == (key, docker_run.bucket)
    summary = result["summary"]
    assert summary["owner"] == owner and summary["counts"]["repos"] > 0
    s3 = docker_run.aws.client("s3")
    manifest = json.loads(s3.get_object(Bucket=docker_run.bucket,
                                        Key=key + ".manifest.json")["Body"].read())
    assert manifest["archive"]["size"] == s3.head_object(Bucket=docker_run.bucket,
                                                         Key=key)["ContentLength"]
    logged = caplog.text + "".join(capfd.readouterr())
    # the engine's stderr lines streamed into the task log, through the container
    assert f"container ghvault-{owner}-backup-" in logged
    assert f"backing up {owner}" in logged and "repositories into s3://" in logged
    assert TOKEN not in logged
    assert TOKEN not in json.dumps(result) + json.dumps(context["ti"].xcoms, default=str)
    assert all(TOKEN not in str(getattr(op, field)) for field in op.template_fields)
    assert ours(engine) == [], "the container (and its workdir volume) was not removed"


def test_failing_engine_exits_become_the_engines_exceptions(docker_run, engine, caplog, capfd):
    bad = {**docker_run.settings, "token_parameter": docker_run.bad}
    op = GithubBackupOperator(task_id="b", github_owner="hubber", runner="docker", settings=bad)
    with pytest.raises(EngineAuthError, match=f"update the SSM parameter {docker_run.bad}") as err:
        op.execute(context_for(MONTH))
    assert err.value.exit_code == 3 and OTHER_TOKEN not in str(err.value)
    assert OTHER_TOKEN not in caplog.text + "".join(capfd.readouterr())

    op = GithubBackupOperator(task_id="b", github_owner="nobody-at-all", runner="docker",
                              settings=docker_run.settings)
    with pytest.raises(OwnerNotFound, match="'nobody-at-all' does not exist") as err:
        op.execute(context_for(MONTH))
    assert err.value.exit_code == 4 and "Last log lines" in str(err.value)
    assert ours(engine) == []


@pytest.fixture
def slow_sim():
    """The tiny world answering 100 ms late, and git at 64 KiB/s: a run takes minutes."""
    running, stop = start_sim(faults=Faults.parse("", 100), git_kbps=64)
    yield running
    stop()


def test_on_kill_stops_the_container_and_removes_it(docker_run, engine, slow_sim):
    settings = {**docker_run.settings, "github_api_url": slow_sim.api}
    owner = slow_sim.sim.world.owners["user"]
    op = GithubBackupOperator(task_id="backup", github_owner=owner, runner="docker",
                              settings=settings)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = op.execute(context_for(MONTH))
        except BaseException as exc:  # noqa: BLE001  (the test reads it)
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 90
    while not any(b"backing up " in c.logs() for c in ours(engine) if c.status == "running"):
        assert thread.is_alive(), outcome
        assert time.monotonic() < deadline, "the backup did not start within 90 s"
        time.sleep(0.2)
    time.sleep(1)  # the backup is under way
    killed = time.monotonic()
    op.on_kill()
    thread.join(timeout=60)
    took = time.monotonic() - killed
    assert not thread.is_alive()
    error = outcome.get("error")
    assert isinstance(error, BackupFailed) and error.exit_code == 143, outcome
    assert "terminated with SIGTERM" in str(error)
    assert took < 20, f"on_kill took {took:.1f} s"  # the engine's own bound is 10 s
    assert ours(engine) == []


def test_an_engine_that_cannot_be_reached_fails_in_one_sentence(docker_run, tmp_path,
                                                                monkeypatch):
    gone = {**docker_run.settings, "docker_url": f"unix://{tmp_path}/docker.sock"}
    op = GithubBackupOperator(task_id="b", github_owner="hubber", runner="docker", settings=gone)
    with pytest.raises(BackupFailed, match=(
            rf"the container engine at unix://{tmp_path}/docker.sock does not answer \(.*\): "
            "start Docker or podman's API service on the worker, or fix 'docker_url' in the "
            r"settings\.$")):
        op.execute(context_for(MONTH))

    import ghvault_airflow.container_engine as ce

    monkeypatch.setattr(ce, "DOCKER_SOCKET", str(tmp_path / "none.sock"))
    monkeypatch.setattr(ce, "PODMAN_SOCKET", str(tmp_path / "no-podman.sock"))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with pytest.raises(NoContainerEngine, match="set 'docker_url' in the settings"):
        engine_url(None)
    unset = {**docker_run.settings, "docker_url": None}
    op = GithubBackupOperator(task_id="b", github_owner="hubber", runner="docker", settings=unset)
    with pytest.raises(EngineConfigError, match="no container engine on this worker"):
        op.execute(context_for(MONTH))


def test_a_missing_image_names_the_fix(docker_run):
    missing = {**docker_run.settings, "docker_image": "localhost:1/ghvault:missing"}
    op = GithubBackupOperator(task_id="b", github_owner="hubber", runner="docker",
                              settings=missing)
    with pytest.raises(EngineConfigError, match="cannot be pulled .*build it \\(make image\\)"):
        op.execute(context_for(MONTH))


@pytest.mark.parametrize(("key", "value", "message"), [
    ("docker_url", "/var/run/docker.sock", "key 'docker_url' is '/var/run/docker.sock': use"),
    ("docker_network", "", "key 'docker_network' is '': use a network name"),
    ("docker_image", " ", "key 'docker_image' is empty"),
    ("docker_mounts", {"ca.pem": "/ca.pem"}, "key 'docker_mounts' entry 'ca.pem'"),
    ("runner", "kubernetes", "key 'runner' is 'kubernetes': use one of ecs, local, docker"),
])
def test_docker_settings_are_checked_in_one_sentence(key, value, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings({"bucket": "b", key: value}, env={})


def test_no_aws_credentials_for_the_container_is_one_sentence(monkeypatch, tmp_path):
    """The container inherits nothing from the worker: with no identity the connection's
    hook can resolve, the runner says so before starting anything."""
    from ghvault_airflow.operators.docker_runner import DockerRunner

    monkeypatch.setenv("AIRFLOW_CONN_AWS_BARE", f"aws://?region_name={REGION}")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = load_settings({"bucket": "b", "runner": "docker", "aws_conn_id": "aws_bare"},
                             env={})
    with pytest.raises(EngineConfigError, match=(
            "no AWS credentials for the engine: give the Airflow connection 'aws_bare' keys "
            "or a role_arn, or the worker an IAM role")):
        DockerRunner.aws_environment(settings, always_credentials=True)
