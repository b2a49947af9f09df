"""GitHub credentials in the deployment: the settings keys (a token or a GitHub App, in SSM or
Secrets Manager, the git origin), what the runners pass to the engine, and the local runner
reading the credential from moto's SSM and Secrets Manager into the child's environment
only. The DAG end to end with App credentials: test_dag_app_auth.py."""

from __future__ import annotations

import json
import logging
import uuid
from types import SimpleNamespace
from urllib.parse import quote

import pendulum
import pytest
from ghvault_airflow.operators.backup import (
    EngineAuthError,
    EngineConfigError,
    GithubBackupOperator,
    LocalBackupOperator,
    engine_arguments,
    engine_error,
)
from ghvault_airflow.operators.local import secret_fragments
from ghvault_airflow.settings import SettingsError, load_settings

from tests.conftest import TOKEN

REGION = "us-east-1"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ghvault/app-key-AbC123"
APP = {"github_app_id": "12345", "github_app_private_key_secret": "/ghvault/github-app-key"}


def settings(**keys):
    return load_settings({"bucket": "backups", **keys}, env={})


# -- settings -----------------------------------------------------------------------------------


def test_a_token_in_ssm_is_the_default():
    s = settings()
    assert (s.credential_store, s.token_parameter, s.uses_app) == (
        "ssm", "/ghvault/github-token", False)
    assert s.credential_source == "the SSM parameter /ghvault/github-token"
    assert s.github_git_url is None


def test_app_credentials_from_either_store_and_the_environment():
    s = settings(**APP)
    assert s.uses_app and s.token_parameter is None and s.github_app_installation_id is None
    assert s.credential_source == "the SSM parameter /ghvault/github-app-key"
    # ids are numbers in JSON, text in the environment
    s = settings(github_app_id=12345, github_app_installation_id=678,
                 github_app_private_key_secret=SECRET_ARN, credential_store="secretsmanager")
    assert (s.github_app_id, s.github_app_installation_id) == ("12345", "678")
    assert s.credential_source == f"the Secrets Manager secret {SECRET_ARN}"
    s = load_settings({"bucket": "b"}, env={"GHVAULT_GITHUB_APP_ID": "99",
                                            "GHVAULT_GITHUB_APP_PRIVATE_KEY_SECRET": "app-key",
                                            "GHVAULT_CREDENTIAL_STORE": "secretsmanager",
                                            "GHVAULT_GITHUB_GIT_URL": "https://octo.ghe.com/"})
    assert (s.github_app_id, s.credential_name, s.github_git_url) == (
        "99", "app-key", "https://octo.ghe.com")
    # the stack's output for a token deployment carries the App keys empty: unset
    s = settings(token_parameter="/t", github_app_id="", github_app_installation_id="",
                 github_app_private_key_secret="", github_git_url="")
    assert not s.uses_app and s.token_parameter == "/t"


@pytest.mark.parametrize("keys, message", [
    ({"credential_store": "vault"}, "'credential_store' is 'vault': use 'ssm'"),
    ({"token_parameter": "/t", **APP}, "'token_parameter' is set together with github_app_id: "
                                       "use either a token"),
    ({"github_app_private_key_secret": "/k"}, "'github_app_id' is missing while "
                                              "github_app_private_key_secret is set"),
    ({"github_app_installation_id": "7"}, "'github_app_id' is missing while "
                                          "github_app_installation_id is set"),
    ({"github_app_id": "ghvault-app", "github_app_private_key_secret": "/k"},
     "'github_app_id' is 'ghvault-app': use the App's numeric id"),
    ({**APP, "github_app_installation_id": "octo"},
     "'github_app_installation_id' is 'octo': use the installation's numeric id"),
    ({"github_app_id": "1"}, "'github_app_private_key_secret' is missing for GitHub App 1: "
                             "name the SSM parameter"),
    ({"github_app_id": "1", "credential_store": "secretsmanager"},
     "'github_app_private_key_secret' is missing for GitHub App 1: name the secret"),
    ({"token_parameter": SECRET_ARN}, "'token_parameter' is a Secrets Manager ARN while "
                                      "credential_store is 'ssm'"),
    ({**APP, "credential_store": "secretsmanager",
      "github_app_private_key_secret": "arn:aws:ssm:us-east-1:123456789012:parameter/k"},
     "'github_app_private_key_secret' is an SSM parameter ARN while credential_store is "
     "'secretsmanager'"),
    ({"github_git_url": "ssh://git@octo.ghe.com"}, "'github_git_url' is 'ssh://git@octo.ghe.com':"
                                                   " use the git origin's https:// URL"),
    ({"engine_env": {"GITHUB_APP_PRIVATE_KEY": "x"}}, "'engine_env' sets GITHUB_APP_PRIVATE_KEY"),
    ({"engine_env": {"GITHUB_APP_ID": "1"}}, "'engine_env' sets GITHUB_APP_ID: use the settings "
                                             "key github_app_id"),
])
def test_each_bad_combination_is_one_sentence_naming_the_key(keys, message):
    with pytest.raises(SettingsError) as info:
        settings(**keys)
    text = str(info.value)
    assert message in text, text
    assert text.count(". ") == 0 and text.endswith(".")  # one sentence


# -- what the runners pass ---------------------------------------------------------------------


def test_the_git_origin_reaches_the_engine_only_when_set():
    base = dict(owner="octo", month="2026-10", key="k.zip")
    assert "--git-url" not in engine_arguments(settings(), **base)
    args = engine_arguments(settings(github_api_url="https://api.octo.ghe.com",
                                     github_git_url="https://octo.ghe.com"), **base)
    assert args[args.index("--git-url") + 1] == "https://octo.ghe.com"
    assert args[args.index("--api-url") + 1] == "https://api.octo.ghe.com"


def test_the_ecs_overrides_carry_the_git_origin_and_no_credential():
    op = GithubBackupOperator(task_id="b", github_owner="octo", settings={
        "bucket": "b", "cluster": "c", "task_definition": "t", "subnets": ["s"], **APP,
        "github_app_installation_id": "7", "github_git_url": "https://git.example"})
    op.prepare({"data_interval_start": pendulum.datetime(2026, 10, 1, tz="UTC")})
    (container,) = op.overrides["containerOverrides"]
    assert container["command"][-2:] == ["--git-url", "https://git.example"]
    assert container["environment"] == []  # the ids are the task definition's environment
    assert op._token_source == "the SSM parameter /ghvault/github-app-key"


def test_auth_failures_name_the_credential_that_failed():
    common = dict(owner="octo", month="2026-10", key="k.zip", where="the task role")
    app = settings(**APP, credential_store="ssm")
    error = engine_error(3, settings=app, token_source=app.credential_source, **common)
    assert isinstance(error, EngineAuthError)
    assert "GitHub rejected the GitHub App credentials" in str(error)
    assert "github_app_id 12345, the private key in the SSM parameter /ghvault/github-app-key" \
        in str(error)
    token = settings(credential_store="secretsmanager", token_parameter="gh-token")
    error = engine_error(3, settings=token, token_source=token.credential_source, **common)
    assert "update the Secrets Manager secret gh-token with a token" in str(error)
    error = engine_error(4, settings=app, token_source=app.credential_source, **common)
    assert "not visible to the GitHub App" in str(error)


def test_every_line_of_a_private_key_is_hidden_but_not_its_frame():
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(
        ("ABCDEFGH" * 8)[i:] + str(i) for i in range(3)) + "\n-----END RSA PRIVATE KEY-----"
    fragments = secret_fragments({"GITHUB_APP_ID": "12345", "GITHUB_APP_PRIVATE_KEY": pem})
    assert fragments[0] == pem and "12345" not in fragments
    assert all(line in fragments for line in pem.splitlines()[1:-1])
    assert not any(f.startswith("-----") for f in fragments[1:])


# -- the local runner reads the credential -------------------------------------------------------


@pytest.fixture
def store(aws, monkeypatch):
    """moto's SSM and Secrets Manager, reached only through the Airflow connection."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", "aws://testing:testing@/?region_name="
                       f"{REGION}&endpoint_url={quote(aws.endpoint, safe='')}")
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    prefix = f"ghvault-{uuid.uuid4().hex[:8]}"
    return SimpleNamespace(aws=aws, prefix=prefix, ssm=aws.client("ssm"),
                           sm=aws.client("secretsmanager"))


def read(keys: dict) -> dict[str, str]:
    op = LocalBackupOperator(task_id="b", github_owner="octo", settings={})
    return op.read_credentials(load_settings({"bucket": "b", "region": REGION, **keys}, env={}))


def test_local_runner_reads_a_token_from_either_store(store):
    store.ssm.put_parameter(Name=f"/{store.prefix}/t", Type="SecureString", Value=TOKEN + "\n")
    assert read({"token_parameter": f"/{store.prefix}/t"}) == {"GITHUB_TOKEN": TOKEN}
    arn = store.sm.create_secret(Name=f"{store.prefix}/t", SecretString=TOKEN)["ARN"]
    for name in (arn, f"{store.prefix}/t"):  # a secret's ARN or its name
        assert read({"credential_store": "secretsmanager", "token_parameter": name}) == {
            "GITHUB_TOKEN": TOKEN}


def private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_local_runner_reads_an_app_key_from_either_store(store):
    pem = private_key_pem()
    store.ssm.put_parameter(Name=f"/{store.prefix}/key", Type="SecureString", Value=pem)
    got = read({"github_app_id": 42, "github_app_private_key_secret": f"/{store.prefix}/key"})
    assert got == {"GITHUB_APP_ID": "42", "GITHUB_APP_PRIVATE_KEY": pem.strip()}
    arn = store.sm.create_secret(Name=f"{store.prefix}/key", SecretString=pem)["ARN"]
    got = read({"github_app_id": 42, "github_app_installation_id": 7,
                "credential_store": "secretsmanager", "github_app_private_key_secret": arn})
    assert got == {"GITHUB_APP_ID": "42", "GITHUB_APP_PRIVATE_KEY": pem.strip(),
                   "GITHUB_APP_INSTALLATION_ID": "7"}


def test_local_runner_says_which_secret_is_missing_unreadable_or_wrong(store, caplog):
    store.sm.create_secret(Name=f"{store.prefix}/bin", SecretBinary=b"\x00\x01")
    store.ssm.put_parameter(Name=f"/{store.prefix}/tok", Type="SecureString", Value=TOKEN)
    caplog.set_level(logging.DEBUG)  # botocore's wire logging is kept off while reading
    with pytest.raises(EngineConfigError, match=(
            f"The Secrets Manager secret {store.prefix}/none does not exist: store the GitHub "
            "App's private key there")):
        read({"github_app_id": 1, "credential_store": "secretsmanager",
              "github_app_private_key_secret": f"{store.prefix}/none"})
    with pytest.raises(EngineConfigError, match=(
            f"The SSM parameter /{store.prefix}/none does not exist: store the GitHub token")):
        read({"token_parameter": f"/{store.prefix}/none"})
    with pytest.raises(EngineConfigError, match="holds binary data: store the GitHub token as "
                                                "its SecretString"):
        read({"credential_store": "secretsmanager", "token_parameter": f"{store.prefix}/bin"})
    with pytest.raises(EngineAuthError, match=(
            f"the SSM parameter /{store.prefix}/tok does not hold a PEM private key")):
        read({"github_app_id": 1, "github_app_private_key_secret": f"/{store.prefix}/tok"})
    assert TOKEN not in caplog.text


def test_the_workers_own_credentials_never_reach_the_engine(store, monkeypatch, tmp_path):
    """A stray GITHUB_TOKEN on the worker would win over the App in the engine."""
    store.ssm.put_parameter(Name=f"/{store.prefix}/key", Type="SecureString",
                            Value="-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_worker_token_that_must_not_leak")
    monkeypatch.setenv("GITHUB_APP_INSTALLATION_ID", "999")
    dump = tmp_path / "env.json"
    op = LocalBackupOperator(
        task_id="b", github_owner="octo", engine_command=[
            "python", "-c", f"import json, os; json.dump(dict(os.environ), open({str(dump)!r}, "
            "'w'))"],
        settings={"bucket": "b", "region": REGION, "github_app_id": "5", "runner": "local",
                  "github_app_private_key_secret": f"/{store.prefix}/key"})
    op.execute({"data_interval_start": pendulum.datetime(2026, 10, 1, tz="UTC")})
    env = json.loads(dump.read_text())
    assert "GITHUB_TOKEN" not in env and "GITHUB_APP_INSTALLATION_ID" not in env
    assert env["GITHUB_APP_ID"] == "5" and env["GITHUB_APP_PRIVATE_KEY"].startswith("-----BEGIN")


def test_ecs_refuses_a_task_definition_with_the_app_key_as_plain_environment(store):
    ecs = store.aws.client("ecs")
    family = f"{store.prefix}-plain-key"
    ecs.register_task_definition(family=family, containerDefinitions=[{
        "name": "ghvault", "image": "ghvault", "memory": 512, "environment": [
            {"name": "GITHUB_APP_ID", "value": "1"},
            {"name": "GITHUB_APP_PRIVATE_KEY", "value": "-----BEGIN PRIVATE KEY-----"}]}])
    op = GithubBackupOperator(task_id="b", github_owner="octo", task_definition=family,
                              settings={"bucket": "b", "region": REGION, **APP})
    op.aws_conn_id, op.region_name, op.container_name = "aws_default", REGION, "ghvault"
    with pytest.raises(EngineConfigError, match="carries GITHUB_APP_PRIVATE_KEY as plain "
                                                "environment: move it to the container's"):
        op.check_task_definition()
