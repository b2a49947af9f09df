"""Wrong AWS credentials are named as such, for every purpose of a store.

S3 answers a request signed with an unknown key, a wrong secret or an expired session
token with an error code of its own (InvalidAccessKeyId, SignatureDoesNotMatch,
ExpiredToken, ...), and a HEAD request with a bare 403 or 400 (no body, so no code). The
user must read "refresh them or fix the AWS_* environment", never only "access denied,
grant permissions". The translation is tested with botocore's own ClientError shapes for
each code and purpose, and end to end against a moto server that checks credentials
(INITIAL_NO_AUTH_ACTION_COUNT=0: every request must be signed by a key moto knows).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError
from ghvault.contract import Exit
from ghvault.errors import ArchiveUnreadable, ConfigError, DestinationError
from ghvault.storage.failures import s3_error, state_error
from ghvault.storage.store import Purpose

from tests.conftest import TOKEN

GHVAULT = str(Path(sys.executable).with_name("ghvault"))
WHERE = "s3://vault/github/hubber/2026/10/hubber-2026-10.zip"
REFRESH = "refresh them or fix the AWS_* environment"
CODES = {
    "InvalidAccessKeyId": "The AWS Access Key Id you provided does not exist in our records.",
    "SignatureDoesNotMatch": "The request signature we calculated does not match the "
                             "signature you provided. Check your key and signing method.",
    "ExpiredToken": "The provided token has expired.",
    "InvalidToken": "The provided token is malformed or otherwise invalid.",
}
STATUS = {"InvalidAccessKeyId": 403, "SignatureDoesNotMatch": 403, "ExpiredToken": 400,
          "InvalidToken": 400}


def client_error(code: str, message: str, status: int, operation: str) -> ClientError:
    """What botocore raises for S3's XML error answer."""
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status,
                                             "HTTPHeaders": {"content-type": "application/xml"}}},
                       operation)


def translate(exc: BaseException, purpose: Purpose, writing: bool, action: str):
    if purpose is Purpose.STATE:
        return state_error(exc, "s3://vault/state/hubber.db", writing)
    return s3_error(exc, WHERE, purpose, writing=writing, action=action, bucket="vault")


PURPOSES = [(Purpose.WRITE, True, "put_object", DestinationError, Exit.DESTINATION),
            (Purpose.READ, False, "get_object", ArchiveUnreadable, Exit.UNREADABLE),
            (Purpose.STATE, False, "get_object", ConfigError, Exit.CONFIG),
            (Purpose.STATE, True, "put_object", DestinationError, Exit.DESTINATION)]
IDS = ["write", "read", "state-read", "state-save"]


@pytest.mark.parametrize("code", sorted(CODES))
@pytest.mark.parametrize(("purpose", "writing", "action", "kind", "exit_code"), PURPOSES,
                         ids=IDS)
def test_rejected_credentials_are_named_for_every_purpose(code, purpose, writing, action, kind,
                                                          exit_code):
    error = translate(client_error(code, CODES[code], STATUS[code], action), purpose, writing,
                      action)
    assert isinstance(error, kind) and error.exit_code == exit_code
    text = str(error)
    assert f"S3 rejected the AWS credentials ({code})" in text and REFRESH in text, text
    assert "grant" not in text and "denied" not in text, text


@pytest.mark.parametrize("exc", [NoCredentialsError(),
                                 PartialCredentialsError(provider="env", cred_var="secret")],
                         ids=["none", "partial"])
@pytest.mark.parametrize(("purpose", "writing", "action", "kind", "exit_code"), PURPOSES,
                         ids=IDS)
def test_missing_credentials_are_named_for_every_purpose(exc, purpose, writing, action, kind,
                                                         exit_code):
    error = translate(exc, purpose, writing, action)
    assert isinstance(error, kind) and error.exit_code == exit_code
    assert "No AWS credentials were found" in str(error), str(error)
    assert "AWS_ACCESS_KEY_ID" in str(error)


@pytest.mark.parametrize(("purpose", "writing", "action", "kind", "exit_code"),
                         [(Purpose.WRITE, True, "head_bucket", DestinationError,
                           Exit.DESTINATION),
                          (Purpose.READ, False, "head_object", ArchiveUnreadable,
                           Exit.UNREADABLE),
                          (Purpose.STATE, False, "head_object", ConfigError, Exit.CONFIG)],
                         ids=["write", "read", "state-read"])
def test_a_bare_head_403_names_both_credentials_and_permissions(purpose, writing, action,
                                                                 kind, exit_code):
    """A HEAD answer has no body: S3 cannot say which, so the message names both."""
    error = translate(client_error("403", "Forbidden", 403, action), purpose, writing, action)
    assert isinstance(error, kind) and error.exit_code == exit_code
    text = str(error)
    assert "AWS credentials are wrong or expired" in text and REFRESH in text, text
    assert "grant s3:" in text, text


def test_a_bare_head_400_points_at_expired_session_credentials():
    error = translate(client_error("400", "Bad Request", 400, "head_bucket"), Purpose.WRITE,
                      True, "head_bucket")
    assert isinstance(error, DestinationError)
    assert "expired session credentials" in str(error) and REFRESH in str(error)


@pytest.mark.parametrize(("purpose", "writing", "action"),
                         [(Purpose.WRITE, True, "put_object"),
                          (Purpose.READ, False, "get_object")], ids=["write", "read"])
def test_access_denied_still_asks_for_permissions(purpose, writing, action):
    error = translate(client_error("AccessDenied", "Access Denied", 403, action), purpose,
                      writing, action)
    assert "grant s3:" in str(error) and "credentials (" not in str(error)


# end to end: a moto server that checks credentials --------------------------------------------

@pytest.fixture(scope="module")
def strict_moto():
    """moto's server in a process of its own, refusing every request not signed by a key
    it knows (it knows none)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{endpoint}/moto-api/", timeout=2)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto's server did not start") from None
            time.sleep(0.2)
    yield endpoint
    proc.terminate()
    proc.wait(timeout=10)


def ghvault(*args: str, endpoint: str, extra_env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "GITHUB_", "GH_"))}
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG1",
                "AWS_SECRET_ACCESS_KEY": "wrong-secret", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_MAX_ATTEMPTS": "1", **(extra_env or {})})
    return subprocess.run([GHVAULT, *args], env=env, capture_output=True, text=True,
                          timeout=120)


def last_line(proc: subprocess.CompletedProcess) -> str:
    return [line for line in proc.stderr.splitlines() if line.strip()][-1]


def test_list_with_wrong_credentials_says_they_were_rejected(strict_moto):
    proc = ghvault("list", "s3://vault/github/", endpoint=strict_moto)
    assert proc.returncode == Exit.UNREADABLE, proc.stderr
    line = last_line(proc)
    assert "S3 rejected the AWS credentials (InvalidAccessKeyId)" in line and REFRESH in line
    assert "Traceback" not in proc.stderr


def test_verify_with_wrong_credentials_names_them(strict_moto):
    proc = ghvault("verify", "s3://vault/github/hubber/2026/10/hubber-2026-10.zip",
                   endpoint=strict_moto)
    assert proc.returncode == Exit.UNREADABLE, proc.stderr
    line = last_line(proc)
    assert "AWS credentials" in line and REFRESH in line, line


def test_run_with_wrong_credentials_names_them_before_any_github_work(strict_moto, sim):
    sim.reset()
    proc = ghvault("run", "--api-url", sim.api, "--owner", "hubber", "--month", "2026-10",
                   "--dest", "s3://vault/github/hubber/2026/10/hubber-2026-10.zip",
                   endpoint=strict_moto, extra_env={**sim.client_env(), "GITHUB_TOKEN": TOKEN})
    assert proc.returncode == Exit.DESTINATION, proc.stderr
    line = last_line(proc)
    assert "AWS credentials are wrong or expired" in line and REFRESH in line, line
    assert sim.stats()["requests_total"] == 0


def test_run_with_wrong_credentials_for_the_state_names_them(strict_moto, sim, tmp_path):
    sim.reset()
    proc = ghvault("run", "--api-url", sim.api, "--owner", "hubber", "--month", "2026-10",
                   "--dest", str(tmp_path / "hubber-2026-10.zip"),
                   "--state", "s3://vault/state/", endpoint=strict_moto,
                   extra_env={**sim.client_env(), "GITHUB_TOKEN": TOKEN})
    assert proc.returncode == Exit.CONFIG, proc.stderr
    line = last_line(proc)
    # the state is looked at with a HEAD first: no code comes back, both causes are named
    assert "the state at s3://vault/state/" in line, line
    assert "AWS credentials are wrong or expired" in line and REFRESH in line, line
    assert not (tmp_path / "hubber-2026-10.zip").exists()
