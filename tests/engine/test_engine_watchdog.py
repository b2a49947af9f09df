"""`ghvault list --expect`: the watchdog's check of one month for every owner, on a local
directory and on moto's S3, and its SNS message (read back through an SQS subscription)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ghvault.contract import Exit, archive_key, expected_month, parse_summary, sidecar_key

from devtools.embedded import read_notifications
from tests.engine.helpers import GHVAULT

MONTH = "2026-10"


def ghvault(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("GITHUB_TOKEN", "AWS_CA_BUNDLE", "GHVAULT_OWNERS",
                         "GHVAULT_NOTIFY_TOPIC")}
    return subprocess.run([GHVAULT, *args], env={**base, **(env or {})}, capture_output=True,
                          text=True, timeout=120)


def sidecar(size: int) -> bytes:
    """The part of a manifest sidecar the watchdog reads: the archive record's size."""
    return json.dumps({"archive": {"key": "k.zip", "size": size, "sha256": "0" * 64},
                       "month": MONTH}).encode()


def put_local(root: Path, owner: str, data: bytes | None, side: bytes | None,
              month: str = MONTH) -> None:
    key = archive_key(None, owner, month)
    if data is not None:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    if side is not None:
        (root / sidecar_key(key)).parent.mkdir(parents=True, exist_ok=True)
        (root / sidecar_key(key)).write_bytes(side)


def lines_of(proc) -> dict[str, str]:
    """owner -> its report line."""
    return {line.split()[0]: line for line in proc.stdout.splitlines()
            if line and not line.startswith("{") and f"  {MONTH}  " in line}


def test_expect_previous_is_the_month_before_this_one_in_utc() -> None:
    assert expected_month("previous", datetime(2026, 1, 4, 6, tzinfo=UTC)) == "2025-12"
    assert expected_month("previous", datetime(2026, 12, 4, 6, tzinfo=UTC)) == "2026-11"
    assert expected_month("2026-03", datetime(2026, 12, 4, tzinfo=UTC)) == "2026-03"
    with pytest.raises(ValueError, match="--expect previous"):
        expected_month("last", datetime(2026, 12, 4, tzinfo=UTC))


def test_every_owner_complete_exits_0_with_one_line_each(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    for owner, size in (("octocat", 1234), ("octo-org", 99)):
        put_local(root, owner, b"z" * size, sidecar(size))
    put_local(root, "octocat", b"old", sidecar(3), month="2026-09")  # other months: unread
    proc = ghvault("list", str(root), "--expect", MONTH, "--owners", "octocat,octo-org")
    assert proc.returncode == 0, proc.stderr
    lines = lines_of(proc)
    assert set(lines) == {"octocat", "octo-org"}
    assert lines["octocat"].startswith(f"octocat  {MONTH}  ok  ")
    assert "octocat-2026-10.zip (1.2 KiB; sidecar agrees)" in lines["octocat"]
    summary = parse_summary(proc.stdout.splitlines())
    assert summary["ok"] == ["octocat", "octo-org"] and summary["missing"] == []
    assert summary["incomplete"] == [] and summary["notified"] is None
    assert f"2 of 2 owner(s) have a complete archive for {MONTH}" in proc.stdout


def test_missing_and_incomplete_months_exit_10_naming_each_owner(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    put_local(root, "whole", b"x" * 10, sidecar(10))
    put_local(root, "nosidecar", b"x" * 10, None)
    put_local(root, "othersize", b"x" * 10, sidecar(11))  # an earlier run's sidecar
    put_local(root, "garbled", b"x" * 10, b"{not json")
    put_local(root, "gone", None, None, )
    put_local(root, "gone", b"y", sidecar(1), month="2026-09")  # last month does not count
    owners = "whole,nosidecar,othersize,garbled,gone"
    proc = ghvault("list", str(root), "--expect", MONTH, "--owners", owners)
    assert proc.returncode == Exit.INCOMPLETE_MONTH == 10, proc.stderr
    lines = lines_of(proc)
    assert lines["whole"].split()[2] == "ok"
    assert lines["gone"].split()[2] == "MISSING" and "no archive at" in lines["gone"]
    assert "has no sidecar manifest" in lines["nosidecar"]
    assert "records 11 bytes but the archive has 10" in lines["othersize"]
    assert "is not a ghvault manifest" in lines["garbled"]
    assert all(lines[o].split()[2] == "INCOMPLETE" for o in ("nosidecar", "othersize",
                                                              "garbled"))
    summary = parse_summary(proc.stdout.splitlines())
    assert summary["missing"] == ["gone"]
    assert summary["incomplete"] == ["nosidecar", "othersize", "garbled"]
    assert "no --notify-topic: nobody was told" in proc.stdout
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("ghvault: error: 4 owner(s) have no complete archive for 2026-10")
    assert "gone: missing" in error and error.endswith("back the month up again")


def test_owners_default_to_those_in_the_bucket_and_env(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    put_local(root, "a", b"x", sidecar(1), month="2026-09")
    put_local(root, "b", b"x", sidecar(1))
    proc = ghvault("list", str(root), "--expect", MONTH)
    assert proc.returncode == 10 and set(lines_of(proc)) == {"a", "b"}
    proc = ghvault("list", str(root), "--expect", MONTH, env={"GHVAULT_OWNERS": "b"})
    assert proc.returncode == 0 and set(lines_of(proc)) == {"b"}, proc.stdout


@pytest.mark.parametrize(("args", "says"), [
    (["--expect", "2026-13"], "--expect: month '2026-13' is not YYYY-MM"),
    (["--expect", MONTH, "--owners", "a/b"], "--owners: owner 'a/b' is not a GitHub"),
    (["--expect", MONTH, "--owners", "a", "--notify-topic", "arn:aws:s3:::x"],
     "is not an SNS topic ARN"),
    (["--expect", MONTH], "no owners to expect under"),
])
def test_bad_watchdog_arguments_exit_2_with_the_fix(tmp_path: Path, args, says) -> None:
    (tmp_path / "empty").mkdir()
    proc = ghvault("list", str(tmp_path / "empty"), *args)
    assert proc.returncode == Exit.CONFIG, proc.stderr
    assert says in proc.stderr, proc.stderr


# -- moto: S3, SNS --------------------------------------------------------------------------


@pytest.fixture
def vault(moto_server):
    s3 = moto_server.client("s3")
    bucket = f"watchdog-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    return s3, bucket


@pytest.fixture
def topic(moto_server):
    """A topic with an SQS queue subscribed (SNS's JSON envelope, attributes included)."""
    sns, sqs = moto_server.client("sns"), moto_server.client("sqs")
    name = f"watchdog-{uuid.uuid4().hex[:8]}"
    arn = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    return arn, queue


def put_s3(s3, bucket: str, owner: str, size: int | None, side: int | None,
           side_class: str = "STANDARD") -> None:
    key = archive_key("github", owner, MONTH)
    if size is not None:
        s3.put_object(Bucket=bucket, Key=key, Body=b"z" * size, StorageClass="GLACIER")
    if side is not None:
        s3.put_object(Bucket=bucket, Key=sidecar_key(key), Body=sidecar(side),
                      StorageClass=side_class)


def test_s3_complete_month_sends_nothing(moto_server, vault, topic) -> None:
    s3, bucket = vault
    put_s3(s3, bucket, "octocat", 500, 500)
    put_s3(s3, bucket, "octo-org", 70, 70, side_class="GLACIER")  # sidecar moved too
    proc = ghvault("list", f"s3://{bucket}/github/", "--expect", MONTH, "--owners",
                   "octocat,octo-org", "--notify-topic", topic[0], env=moto_server.env())
    assert proc.returncode == 0, proc.stderr
    lines = lines_of(proc)
    assert lines["octocat"] == (f"octocat  {MONTH}  ok  s3://{bucket}/github/octocat/2026/10/"
                                "octocat-2026-10.zip (500 B; sidecar agrees)")
    assert "sidecar in GLACIER, written after the archive" in lines["octo-org"]
    assert read_notifications(moto_server, topic[1]) == []


def test_s3_missing_month_publishes_one_message_and_exits_10(moto_server, vault,
                                                             topic) -> None:
    s3, bucket = vault
    put_s3(s3, bucket, "octocat", 500, 500)
    put_s3(s3, bucket, "half", 500, None)
    env = {**moto_server.env(), "GHVAULT_NOTIFY_TOPIC": topic[0],
           "GHVAULT_OWNERS": "octocat,half,octo-org"}
    proc = ghvault("list", f"s3://{bucket}/github/", "--expect", MONTH, env=env)
    assert proc.returncode == 10, proc.stderr
    summary = parse_summary(proc.stdout.splitlines())
    assert summary["missing"] == ["octo-org"] and summary["incomplete"] == ["half"]
    (message,) = read_notifications(moto_server, topic[1])
    assert summary["notified"] and f"sent to {topic[0]}" in proc.stdout
    assert message["subject"] == (f"ghvault watchdog: 2 of 3 owners without a complete "
                                  f"archive for {MONTH}")
    assert message["attributes"] == {"status": "failure", "month": MONTH,
                                     "source": "watchdog", "owner": "half,octo-org"}
    body = message["message"]
    assert f"under s3://{bucket}/github/" in body and "octo-org  2026-10  MISSING" in body
    assert "half  2026-10  INCOMPLETE" in body and "octocat  2026-10  ok" in body
    assert f"ghvault list s3://{bucket}/github/ --expect {MONTH}" in body


def test_s3_topic_that_does_not_exist_exits_5_after_the_report(moto_server, vault) -> None:
    s3, bucket = vault
    missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    proc = ghvault("list", f"s3://{bucket}/github/", "--expect", MONTH, "--owners", "x",
                   "--notify-topic", missing, env=moto_server.env())
    assert proc.returncode == Exit.DESTINATION, proc.stderr
    assert f"x  {MONTH}  MISSING" in proc.stdout
    assert f"SNS topic {missing} does not exist: create it or fix --notify-topic" in \
        proc.stderr


def test_s3_bucket_that_does_not_exist_exits_9(moto_server) -> None:
    proc = ghvault("list", "s3://watchdog-no-such-bucket/github/", "--expect", MONTH,
                   "--owners", "x", env=moto_server.env())
    assert proc.returncode == Exit.UNREADABLE, proc.stderr
    assert "does not exist" in proc.stderr, proc.stderr


@pytest.mark.parametrize(("code", "status", "says"), [
    ("AuthorizationError", 403, "is denied (AuthorizationError: no): grant sns:Publish on it"),
    ("KMSAccessDenied", 400, "grant sns:Publish on it (and kms:GenerateDataKey"),
    ("InvalidClientTokenId", 403, "rejected the AWS credentials (InvalidClientTokenId)"),
    ("NotFound", 404, "does not exist: create it or fix --notify-topic"),
    ("Throttled", 400, "SNS refused to publish to"),
])
def test_sns_failures_are_one_sentence_exit_5(code: str, status: int, says: str) -> None:
    from botocore.exceptions import ClientError
    from ghvault.errors import DestinationError
    from ghvault.storage.failures import notify_error

    topic = "arn:aws:sns:us-east-1:123456789012:t"
    exc = ClientError({"Error": {"Code": code, "Message": "no"},
                       "ResponseMetadata": {"HTTPStatusCode": status}}, "Publish")
    error = notify_error(exc, topic)
    assert isinstance(error, DestinationError) and error.exit_code == Exit.DESTINATION
    assert says in str(error), str(error)
