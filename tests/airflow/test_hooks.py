"""ArchiveHook: what it reads from S3 and how each S3 error becomes one specific exception.

Against moto: the shared server for missing buckets, keys, lifecycle configurations and
objects in Glacier; a private moto server that checks credentials and IAM policies
(INITIAL_NO_AUTH_ACTION_COUNT) for AccessDenied, the bare 403 of a HEAD and rejected keys.
Codes moto never sends (throttling, a bucket in another region, expired session tokens) are
given in the shape botocore raises them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from types import SimpleNamespace
from urllib.parse import quote

import boto3
import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException
from botocore.exceptions import ClientError
from ghvault_airflow.hooks.archive import (
    ArchiveHook,
    BucketNotFound,
    LifecycleConfigurationMissing,
    ManifestUnreadable,
    ObjectInColdStorage,
    S3AccessDenied,
    S3ConfigurationError,
    S3CredentialsRejected,
    S3RequestFailed,
)
from ghvault_airflow.sensors.archive import BackupArchiveSensor

KEY = "github/hubber/2026/10/hubber-2026-10.zip"
REGION = "us-east-1"


def connection(endpoint: str, key_id: str = "testing", secret: str = "testing") -> str:
    return json.dumps({"conn_type": "aws", "login": key_id, "password": secret,
                       "extra": {"region_name": REGION, "endpoint_url": endpoint}})


@pytest.fixture
def s3(aws, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", "aws://testing:testing@/?region_name="
                       f"{REGION}&endpoint_url={quote(aws.endpoint, safe='')}")
    client = aws.client("s3")
    bucket = f"ghv-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    return SimpleNamespace(client=client, bucket=bucket, hook=ArchiveHook())


def test_head_reads_size_checksum_version_and_storage_class(s3):
    assert s3.hook.archive_head(s3.bucket, KEY) is None  # not there yet: waited for, no error
    s3.client.put_bucket_versioning(Bucket=s3.bucket,
                                    VersioningConfiguration={"Status": "Enabled"})
    put = s3.client.put_object(Bucket=s3.bucket, Key=KEY, Body=b"z" * 300,
                               ChecksumAlgorithm="SHA256", StorageClass="GLACIER")
    head = s3.hook.archive_head(s3.bucket, KEY)
    assert (head.size, head.storage_class, head.version_id, head.etag, head.checksum_sha256) == (
        300, "GLACIER", put["VersionId"], put["ETag"], put["ChecksumSHA256"])
    assert head.last_modified is not None


def test_a_missing_bucket_is_named_by_every_read(s3):
    for read in (lambda h: h.archive_head("ghv-no-such-bucket", KEY),
                 lambda h: h.archive_manifest("ghv-no-such-bucket", KEY),
                 lambda h: h.lifecycle_rules("ghv-no-such-bucket"),
                 lambda h: h.object_tags("ghv-no-such-bucket", KEY)):
        with pytest.raises(BucketNotFound) as caught:
            read(s3.hook)
        assert str(caught.value) == (
            "The bucket ghv-no-such-bucket does not exist: check the deployment setting "
            "'bucket' and the account and region of the AWS connection.")
        assert isinstance(caught.value, AirflowFailException) and caught.value.code == \
            "NoSuchBucket"


def test_no_lifecycle_configuration(s3):
    with pytest.raises(LifecycleConfigurationMissing,
                       match=f"^bucket {s3.bucket} has no lifecycle configuration: deploy "
                             "infra/ghvault.yaml"):
        s3.hook.lifecycle_rules(s3.bucket)


def test_manifest_absent_unreadable_or_cold(s3):
    assert s3.hook.archive_manifest(s3.bucket, KEY) is None
    for body, why in ((b"{not json", "JSONDecodeError"), (b"[1]", "TypeError"),
                      (b'{"owner": "hubber"}', "KeyError"), (b'{"archive": 3}', "TypeError")):
        s3.client.put_object(Bucket=s3.bucket, Key=KEY + ".manifest.json", Body=body)
        with pytest.raises(ManifestUnreadable, match=f"manifest .* is not a ghvault manifest "
                                                     f"\\({why}.*run the backup for this month"):
            s3.hook.archive_manifest(s3.bucket, KEY)
    record = {"key": f"s3://{s3.bucket}/{KEY}", "size": 3}
    s3.client.put_object(Bucket=s3.bucket, Key=KEY + ".manifest.json",
                         Body=json.dumps({"archive": record}).encode(), StorageClass="GLACIER")
    with pytest.raises(ObjectInColdStorage, match=r"\.manifest\.json is in a cold storage class "
                                                  r"and cannot be read: restore it"):
        s3.hook.archive_manifest(s3.bucket, KEY)
    s3.client.put_object(Bucket=s3.bucket, Key=KEY + ".manifest.json",
                         Body=json.dumps({"archive": record}).encode())
    assert s3.hook.archive_manifest(s3.bucket, KEY) == record


def test_botocore_config_and_verify_reach_the_hook_of_a_sensor(s3):
    sensor = BackupArchiveSensor(task_id="archive", bucket=s3.bucket, key=KEY, verify=False,
                                 botocore_config={"read_timeout": 7,
                                                  "retries": {"total_max_attempts": 1}})
    client = sensor.hook.get_conn()
    assert isinstance(sensor.hook, ArchiveHook)
    assert (client.meta.config.read_timeout, client.meta.config.retries["total_max_attempts"]) == \
        (7, 1)
    assert client._endpoint.http_session._verify is False


# -- S3 that checks credentials and policies ---------------------------------------------------

@pytest.fixture(scope="module")
def strict():
    """A private moto server enforcing IAM: an admin sets up, two users are restricted."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}  # the admin's creation
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

    def client(service, key):
        return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                            aws_access_key_id=key["AccessKeyId"],
                            aws_secret_access_key=key["SecretAccessKey"])

    def user(iam, name: str, actions: list[str]) -> dict:
        iam.create_user(UserName=name)
        if actions:
            iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
        return iam.create_access_key(UserName=name)["AccessKey"]

    try:
        iam = client("iam", {"AccessKeyId": "testing", "SecretAccessKey": "testing"})
        admin = user(iam, "admin", ["*"])
        iam = client("iam", admin)
        s3 = client("s3", admin)
        s3.create_bucket(Bucket="ghv-strict")
        s3.put_object(Bucket="ghv-strict", Key=KEY, Body=b"a" * 10)
        yield SimpleNamespace(endpoint=endpoint, bucket="ghv-strict",
                              list_only=user(iam, "list-only", ["s3:ListBucket"]),
                              nothing=user(iam, "nothing", []))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def strict_hook(strict, monkeypatch, key_id: str, secret: str) -> ArchiveHook:
    monkeypatch.setenv("AIRFLOW_CONN_S3_STRICT", connection(strict.endpoint, key_id, secret))
    return ArchiveHook(aws_conn_id="s3_strict")


def test_access_denied_names_the_permission_and_the_connection(strict, monkeypatch):
    key = strict.list_only
    hook = strict_hook(strict, monkeypatch, key["AccessKeyId"], key["SecretAccessKey"])
    # HeadObject answers a bare 403; ListBucket is allowed, so GetObject is what is missing
    with pytest.raises(S3AccessDenied) as caught:
        hook.archive_head(strict.bucket, KEY)
    assert str(caught.value) == (
        f"Not allowed to read s3://{strict.bucket}/{KEY} (403): grant s3:GetObject on "
        f"{strict.bucket} to the role of Airflow connection 's3_strict'.")
    with pytest.raises(S3AccessDenied, match=r"\.manifest\.json \(AccessDenied\): grant "
                                             "s3:GetObject on"):
        hook.archive_manifest(strict.bucket, KEY)
    with pytest.raises(S3AccessDenied, match="grant s3:GetLifecycleConfiguration on ghv-strict"):
        hook.lifecycle_rules(strict.bucket)
    with pytest.raises(S3AccessDenied, match="grant s3:GetObjectTagging on ghv-strict"):
        hook.object_tags(strict.bucket, KEY)

    key = strict.nothing  # without ListBucket a HEAD cannot even tell a missing key
    hook = strict_hook(strict, monkeypatch, key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(S3AccessDenied, match="grant s3:GetObject and s3:ListBucket on ghv-strict"):
        hook.archive_head(strict.bucket, "github/absent/2026/10/absent-2026-10.zip")


def test_rejected_credentials_are_named_not_mistaken_for_permissions(strict, monkeypatch):
    hook = strict_hook(strict, monkeypatch, "AKIAWRONGWRONGWRONG1", "wrong-secret")
    for read in (lambda: hook.archive_head(strict.bucket, KEY),
                 lambda: hook.lifecycle_rules(strict.bucket)):
        with pytest.raises(S3CredentialsRejected) as caught:
            read()
        assert "S3 rejected the credentials of the role of Airflow connection 's3_strict' " \
               "(InvalidAccessKeyId)" in str(caught.value)
        assert str(caught.value).endswith(": refresh them or fix the connection's keys.")


# -- codes moto does not send, in botocore's shape ---------------------------------------------

def client_error(code: str, status: int, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


@pytest.mark.parametrize("code, status, kind, words", [
    ("SlowDown", 503, S3RequestFailed, "S3 answered SlowDown to s3:GetObject on s3://b/k "
                                       "(Please reduce your request rate.): Airflow retries"),
    ("InternalError", 500, S3RequestFailed, "Airflow retries the task"),
    ("PermanentRedirect", 301, S3ConfigurationError, "bucket b is in another region than the "
                                                     "AWS connection's (PermanentRedirect)"),
    ("ExpiredToken", 400, S3CredentialsRejected, "(ExpiredToken) reading s3://b/k: refresh"),
    ("AllAccessDisabled", 403, S3AccessDenied, "grant s3:GetObject on b"),
])
def test_other_s3_codes(code, status, kind, words):
    error = ArchiveHook(aws_conn_id=None).s3_error(
        client_error(code, status, "Please reduce your request rate."), "s3:GetObject", "b", "k")
    assert type(error) is kind and words in str(error) and error.code == code
    assert isinstance(error, AirflowFailException) == (kind is not S3RequestFailed)
    assert str(error).count(": ") >= 1 and str(error).endswith(".")
