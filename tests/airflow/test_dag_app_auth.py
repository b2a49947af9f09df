"""The github_backup DAG end to end with GitHub App credentials: real Airflow, moto as AWS,
a simulator with a GitHub App installed on both owners whose installation tokens expire
(`app_token_ttl`), the App's private key in SSM (SecureString) or Secrets Manager.

- the local runner reads the key at run time and hands it to the engine in its environment;
- the ECS runner runs the task definition of infra/ghvault.yaml deployed with
  `GithubAuth=app` and each `CredentialStore`, played by devtools.fargate, which injects the
  key from the `valueFrom` of the task definition's secret as ECS does.

And `github_git_url` through the DAG to the engine's `--git-url`, against a simulator that
serves git on another origin than the API (as GHE.com with data residency does).

Every private repository of the owner must be in the archive (an installation token
cannot list `/user/repos`), and no line of the key and no installation token may appear in
the task log, the task log files, XCom, rendered template fields or the ECS overrides.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from devtools.embedded import Aws, airflow_env, migrate, provision
from devtools.fargate import FargateEmulator
from devtools.stack import deploy
from tests.airflow.test_dag_e2e import Deployment, Run, key_of
from tests.conftest import start_sim

pytestmark = pytest.mark.slow

BUCKET = "ghvault-app-e2e"
KEY_PARAMETER = "/ghvault/github-app-private-key"
KEY_SECRET = "ghvault/github-app-private-key"
# Installation tokens live this long (GitHub: an hour): the engine renews them during a run.
TOKEN_TTL = 60
INSTALLATION_TOKEN = re.compile(r"ghs_[A-Za-z0-9]{20,}")
MONTH = "2026-10"


@pytest.fixture(scope="module")
def app_sim():
    running, stop = start_sim(app_token_ttl=TOKEN_TTL)
    yield running
    stop()


class AppDeployment(Deployment):
    """Deployment (test_dag_e2e) with the App's key stored in both stores."""

    def __init__(self, *args, app: dict, pem: str, secret_arn: str) -> None:
        super().__init__(*args)
        self.app, self.pem, self.secret_arn = app, pem, secret_arn

    def app_settings(self, **overrides) -> dict:
        return self.settings(**{"bucket": BUCKET, "token_parameter": None,
                                "github_app_id": str(self.app["id"]),
                                "github_app_private_key_secret": KEY_PARAMETER, **overrides})

    def run(self, **kwargs) -> Run:
        # a failure fails the run at once: no retries, no two-hour wait for a missing archive
        tweaks = {"backup.archive": {"timeout": 120, "poke_interval": 2},
                  "backup.backup": {"retries": 0},
                  **kwargs.pop("tweaks", {})}
        return super().run(tweaks=tweaks, **kwargs)

    def secrets(self) -> list[str]:
        """The key's lines (its BEGIN/END frame is not secret)."""
        return [line for line in self.pem.splitlines() if line and not line.startswith("-----")]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, moto_server, app_sim) -> AppDeployment:
    aws = Aws(moto_server.endpoint)
    resources = provision(aws, BUCKET, app_sim.token, name="ghvault-app-e2e")
    app = app_sim.sim.app.ready()
    pem = Path(app["private_key"]).read_text()
    aws.client("ssm").put_parameter(Name=KEY_PARAMETER, Value=pem, Type="SecureString",
                                    Overwrite=True)
    secret_arn = aws.client("secretsmanager").create_secret(Name=KEY_SECRET,
                                                            SecretString=pem)["ARN"]
    ec2 = aws.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]
    home = tmp_path_factory.mktemp("airflow-app")
    deployment = AppDeployment(home, aws, app_sim, resources, (subnet["SubnetId"], ""), app_sim.ca,
                               app=app, pem=pem, secret_arn=secret_arn)
    migrate(home, airflow_env(home, aws, deployment.app_settings()))
    return deployment


def assert_every_repository_archived(deployment: AppDeployment, owner: str,
                                     bucket: str = BUCKET) -> None:
    _, manifest, archive = deployment.archive(key_of(owner, MONTH), bucket=bucket)
    names = set(archive.namelist())
    archived = {n.split("/")[1] for n in names if n.startswith("repos/")
                and n.endswith("/repo.json")}
    repos = deployment.sim.sim.world.repos_of(owner)
    assert archived == {r.name for r in repos}, manifest.get("skipped")
    private = [r.name for r in repos if r.private]
    assert private, f"the simulator gives {owner} no private repository to check"
    for name in private:
        assert {f"repos/{name}/git.bundle", f"repos/{name}/git.empty.json"} & names, name


def assert_no_secret_anywhere(deployment: AppDeployment, run: Run,
                              more: list[str] = ()) -> None:
    """Not in the task log, the log files, XCom or the rendered template fields."""
    with sqlite3.connect(deployment.home / "airflow.db") as db:
        rendered = [r[0] for r in db.execute(
            "SELECT rendered_fields FROM rendered_task_instance_fields WHERE run_id = ?",
            (run.record.run_id,))]
    assert rendered, "no rendered template fields were recorded"
    log_files = "".join(p.read_text(errors="replace")
                        for p in (deployment.home / "logs").rglob("*") if p.is_file())
    places = {"task log": run.log, "log files": log_files,
              "XCom": json.dumps(list(run.record.xcom.values())),
              "rendered fields": json.dumps(rendered), **{f"extra {i}": t
                                                          for i, t in enumerate(more)}}
    for place, text in places.items():
        for line in deployment.secrets():
            assert line not in text, f"a line of the App's private key is in the {place}"
        assert not INSTALLATION_TOKEN.search(text), f"an installation token is in the {place}"


# -- the local runner --------------------------------------------------------------------------


def test_local_runner_with_the_app_key_from_ssm_backs_up_user_and_org(
        deployment: AppDeployment) -> None:
    owners = [deployment.owner, deployment.org]
    run = deployment.run(month=MONTH, settings=deployment.app_settings(owners=owners),
                         log_name="app-ssm-local")
    assert run.state == "success", run.log[-3000:]
    assert run.record.states("backup.backup") == ["success", "success"]
    for owner in owners:
        assert_every_repository_archived(deployment, owner)
    assert_no_secret_anywhere(deployment, run)
    assert run.only_notification()["subject"] == "ghvault: 2 of 2 owners succeeded for 2026-10"


def test_local_runner_with_the_app_key_from_secrets_manager_and_an_installation_id(
        deployment: AppDeployment) -> None:
    settings = deployment.app_settings(
        owners=[deployment.org], credential_store="secretsmanager",
        github_app_private_key_secret=deployment.secret_arn,
        github_app_installation_id=str(deployment.app["installations"]["org"]))
    run = deployment.run(month=MONTH, settings=settings, log_name="app-sm-local")
    assert run.state == "success", run.log[-3000:]
    assert_every_repository_archived(deployment, deployment.org)
    assert_no_secret_anywhere(deployment, run)


# -- the ECS runner on the stack's task definition ------------------------------------------------


@pytest.mark.parametrize("store", ["secretsmanager", "ssm"])
def test_fargate_with_the_app_key_injected_by_the_stacks_task_definition(
        deployment: AppDeployment, moto_server, store: str) -> None:
    aws, sim, app = deployment.aws, deployment.sim, deployment.app
    owner = deployment.owner if store == "secretsmanager" else deployment.org
    parameters = {"Owners": owner, "GithubApiUrl": sim.api, "GithubAuth": "app",
                  "GithubAppId": str(app["id"]), "CredentialStore": store,
                  "RepositoryName": f"ghvault-app-{store}"}
    if store == "secretsmanager":
        parameters["GithubCredentialSecretArn"] = deployment.secret_arn
    else:
        parameters["GithubAppPrivateKeyParameterName"] = KEY_PARAMETER
        parameters["GithubAppInstallationId"] = str(app["installations"]["org"])
    stack = deploy(aws, f"ghvault-app-{store}", parameters)
    settings = stack.settings(engine_env=sim.client_env(),
                              sns_topic_arn=deployment.resources["topic_arn"])
    assert settings["github_app_id"] == str(app["id"]) and settings["token_parameter"] == ""
    assert settings["credential_store"] == store

    # the engine as a process: the image itself runs in the ECS tests of test_dag_e2e
    with FargateEmulator(moto_server.endpoint, runtime="process") as fargate:
        run = deployment.run(month=MONTH, settings=settings, log_name=f"app-{store}-ecs",
                             tweaks={"backup.backup": {"waiter_delay": 1, "retries": 0}})
    assert run.state == "success", run.log[-3000:]
    assert run.record.states("backup.backup") == ["success"]
    container = fargate.runs[0]
    assert container.exit_code == 0 and container.secret_names == ["GITHUB_APP_PRIVATE_KEY"]
    assert container.environment["GITHUB_APP_ID"] == str(app["id"])
    assert container.environment.get("GITHUB_APP_INSTALLATION_ID") == (
        None if store == "secretsmanager" else str(app["installations"]["org"]))
    assert "GITHUB_TOKEN" not in container.environment
    assert_every_repository_archived(deployment, owner, bucket=settings["bucket"])
    task = fargate.backend.tasks[settings["cluster"]][container.task_arn]
    assert_no_secret_anywhere(deployment, run, more=[json.dumps(task.overrides),
                                                     "\n".join(container.output)])


# -- a git origin apart from the API's (GHE.com with data residency serves them apart) ----------


def test_the_git_origin_setting_reaches_git_through_the_dag(deployment: AppDeployment) -> None:
    split, stop = start_sim(split_git_host=True)
    try:
        assert split.git_root and split.git_root != split.root
        settings = deployment.settings(
            bucket=BUCKET, github_api_url=split.api, github_git_url=split.git_root,
            engine_env=split.client_env(), owners=[deployment.owner])
        run = deployment.run(month="2026-09", settings=settings, log_name="split-git-host")
        # without the setting the engine derives the API's origin for git: the clone URLs
        # are elsewhere and get no credential, so the private repositories are not archived
        without = deployment.run(month="2026-08", log_name="split-git-host-derived",
                                 settings={**settings, "github_git_url": None})
    finally:
        stop()
    assert run.state == "success", run.log[-3000:]
    assert f"--git-url {split.git_root}" in run.log  # the engine's command line, logged
    _, manifest, archive = deployment.archive(key_of(deployment.owner, "2026-09"),
                                              bucket=BUCKET)
    private = [r.name for r in split.sim.world.repos_of(deployment.owner) if r.private]
    names = set(archive.namelist())
    assert private and all({f"repos/{n}/git.bundle", f"repos/{n}/git.empty.json"} & names
                           for n in private), manifest.get("skipped")
    assert deployment.sim.token not in run.log + without.log
    if without.state == "success":
        _, _, derived = deployment.archive(key_of(deployment.owner, "2026-08"), bucket=BUCKET)
        assert not any(f"repos/{n}/git.bundle" in derived.namelist() for n in private)
