"""SNS notifications: the messages themselves, and their delivery through the provider's
SnsHook to a moto topic, read back from an SQS subscription."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from airflow.sdk import DAG
from ghvault_airflow.notifications.sns import (
    MESSAGE_LIMIT,
    SUBJECT_LIMIT,
    BackupFailureNotifier,
    BackupSuccessNotifier,
    clean_subject,
    failure_message,
    notify_failure,
    notify_success,
    success_message,
)

MONTH = "2026-10"
NOTSET = object()


def result(owner: str, repos: int = 3, skipped: list | None = None, **summary_changes) -> dict:
    """A backup task's return value, as the backup operators push it."""
    key = f"github/{owner}/2026/10/{owner}-{MONTH}.zip"
    summary = {"owner": owner, "month": MONTH, "dest": f"s3://vault/{key}",
               "counts": {"repos": repos, "issues": 40, "pulls": 12, "releases": 2},
               "skipped": skipped or [], "bytes": 5 * 1024 * 1024 + 1, "sha256": "ab" * 32,
               "api_requests": 345, "not_modified": 12, "rate_limit_remaining": 4655,
               "duration_s": 12.3, **summary_changes}
    return {"owner": owner, "month": MONTH, "bucket": "vault", "key": key,
            "manifest_key": key + ".manifest.json", "summary": summary}


# -- messages -----------------------------------------------------------------------------------


class XComTI:
    """What the notify task pulls: XCom values per (task_id, key), all map indexes."""

    def __init__(self, values: dict) -> None:
        self.values = values

    def xcom_pull(self, task_ids: str, key: str = "return_value", **_):
        return self.values.get((task_ids, key))


def test_run_summary_lists_every_owner_succeeded_or_failed():
    from ghvault_airflow.notifications.summary import gather, run_message

    glacier = {"key": result("hubber")["key"], "rule_id": "to-glacier",
               "storage_class": "GLACIER", "transition_days": 1, "expiration_days": 365}
    ti = XComTI({
        ("backup.backup", "return_value"): [result("hubber")],
        ("backup.backup", "failure"): [{"owner": "ghost", "task_id": "backup.backup",
                                        "reason": "OwnerNotFound: 'ghost' does not exist"}],
        ("backup.backup", "replaces"): [{"owner": "hubber", "key": result("hubber")["key"],
                                         "kept": True, "version_id": "v1",
                                         "last_modified": "2026-11-01 00:10:00+00:00"}],
        ("backup.glacier", "return_value"): [glacier],
    })
    # slow-org's steps left neither a result nor a failure (a killed task)
    outcomes = gather(ti, ["hubber", "ghost", "slow-org"], verify=False)
    assert [o["ok"] for o in outcomes] == [True, False, False]
    plan = {"month": MONTH, "taken_at": "2026-12-01", "run_type": "backfill"}
    subject, message = run_message(plan, outcomes, dag_id="github_backup", run_id="r")
    assert subject == "ghvault: 1 of 3 owners succeeded for 2026-10"
    succeeded, failed = message.split("\nSucceeded\n")[1].split("\nFailed\n")
    assert "s3://vault/github/hubber/2026/10/hubber-2026-10.zip" in succeeded
    assert "stays in the bucket as version v1" in succeeded
    assert "ghost\n  failed at backup.backup: OwnerNotFound" in failed
    assert "slow-org\n  failed at ?: did not finish" in failed
    assert "Content as of 2026-12-01" in message and "2026-10 ended before this run" in message
    # verification asked for but absent: not a success
    assert not gather(ti, ["hubber"], verify=True)[0]["ok"]


def test_success_message_summarises_every_owner():
    skipped = [{"item": "hubworks/app hooks", "reason": "403: needs admin:repo_hook"}]
    subject, message = success_message(MONTH, [result("hubber"), result("hubworks", 5, skipped)])
    assert subject == "ghvault: backup of 2 owners for 2026-10 succeeded"
    head = message.splitlines()[0]
    assert head == ("ghvault backed up 2 owners for 2026-10: 8 repositories, 10.0 MiB, "
                    "690 GitHub API requests, 1 skipped item.")
    for owner in ("hubber", "hubworks"):
        assert f"\n{owner}\n  archive   s3://vault/github/{owner}/2026/10/{owner}-2026-10.zip" \
            in message
        assert f"manifest  s3://vault/github/{owner}/2026/10/{owner}-2026-10.zip.manifest.json" \
            in message
    assert "size      5.0 MiB (5242881 bytes), sha256 abab" in message
    assert "content   repos 5, issues 40, pulls 12, releases 2" in message
    assert ("requests  345 GitHub API requests (12 not modified), rate limit remaining 4655"
            in message)
    assert "duration  12.3 s" in message
    assert "skipped   nothing" in message
    assert "skipped   1\n    - hubworks/app hooks: 403: needs admin:repo_hook" in message


def test_success_message_for_one_owner_and_missing_summary():
    subject, message = success_message(MONTH, [{**result("hubber"), "summary": None}, None])
    assert subject == "ghvault: backup of hubber for 2026-10 succeeded"
    assert "summary   not available" in message
    assert message.startswith("ghvault backed up 1 owner for 2026-10: 0 repositories")


def test_success_message_lists_twenty_skipped_items_then_counts_the_rest():
    skipped = [{"item": f"repo{i}", "reason": "403"} for i in range(25)]
    _, message = success_message(MONTH, [result("hubber", skipped=skipped)])
    assert "    - repo19: 403" in message and "repo20" not in message
    assert "    ... and 5 more (see the manifest)" in message


def test_huge_summaries_are_cut_to_fit_sns():
    skipped = [{"item": f"repö{i}\n" * 20, "reason": "403"} for i in range(20)]
    results = [result(f"owner{i}", skipped=skipped) for i in range(200)]
    _, message = success_message(MONTH, results)
    assert len(json.dumps({"default": message}).encode()) <= MESSAGE_LIMIT
    assert message.endswith("[truncated: the full summary is in the tasks' XCom]\n")
    assert message.startswith("ghvault backed up 200 owners for 2026-10")


def test_success_message_reports_the_glacier_check():
    glacier = {"key": "github/hubber/2026/10/hubber-2026-10.zip", "rule_id": "ghvault",
               "storage_class": "GLACIER", "transition_days": 1, "expiration_days": 365,
               "previous": {"key": "github/hubber/2026/09/hubber-2026-09.zip", "exists": True,
                            "storage_class": "GLACIER", "cold": True}}
    _, message = success_message(MONTH, [result("hubber")], glacier=[glacier])
    assert ("rule 'ghvault' moves github/hubber/2026/10/hubber-2026-10.zip to GLACIER within 1 "
            "days, expires it after 365 days; previous archive "
            "github/hubber/2026/09/hubber-2026-09.zip is GLACIER (cold)") in message


def test_subjects_stay_readable_and_under_the_sns_limit():
    long_owner = "a-very-long-organisation-name-" * 4
    subject, _ = success_message(MONTH, [result(long_owner)])
    assert len(subject) <= SUBJECT_LIMIT and subject.endswith("...")
    subject, _ = failure_message("github_backup", MONTH, long_owner, "backup", "boom")
    assert len(subject) <= SUBJECT_LIMIT
    assert clean_subject("line one\nline two\tü") == "line one line two ?"


def test_failure_message_names_owner_step_and_reason():
    subject, message = failure_message(
        "github_backup", MONTH, "hubber", "backup",
        "EngineAuthError: GitHub rejected the token (401): check the SSM parameter",
        details={"map index": 0, "try": 2, "log": None})
    assert subject == "ghvault: backup of hubber for 2026-10 FAILED at backup"
    assert message.startswith("The ghvault backup of hubber for 2026-10 failed.\n")
    assert "DAG          github_backup\n" in message
    assert "owner        hubber\n" in message
    assert "failed step  backup\n" in message
    assert "map index    0\n" in message and "try          2\n" in message
    assert "log " not in message
    assert message.endswith("Reason:\nEngineAuthError: GitHub rejected the token (401): check "
                            "the SSM parameter\n")
    subject, message = failure_message("github_backup", None, None, "check_glacier", "")
    assert subject == "ghvault: github_backup run for unknown month FAILED at check_glacier"
    assert "owner        not owner-specific" in message and "(no reason given)" in message


# -- delivery through SNS -> SQS (moto) ---------------------------------------------------------


class TaskInstance:
    """The parts of Airflow's RuntimeTaskInstance the callbacks read (xcom_pull with the
    same single-value/list behaviour)."""

    def __init__(self, task_id: str, map_index: int = -1, xcoms: dict | None = None,
                 try_number: int = 1) -> None:
        self.task_id, self.map_index, self.try_number = task_id, map_index, try_number
        self.dag_id = "github_backup"
        self.xcoms = xcoms or {}

    def xcom_pull(self, task_ids=None, map_indexes=NOTSET, key="return_value"):
        values = self.xcoms.get(task_ids, [])
        if map_indexes is NOTSET:  # every map index
            return values[0] if len(values) == 1 else values
        return values[map_indexes] if map_indexes < len(values) else None


@pytest.fixture
def topic(aws, monkeypatch):
    """An SNS topic with an SQS subscription, and aws_default pointing at moto."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT",
                       "aws://testing:testing@/?region_name=us-east-1&endpoint_url="
                       + quote(aws.endpoint, safe=""))
    sns, sqs = aws.client("sns"), aws.client("sqs")
    name = f"ghvault-{uuid.uuid4().hex[:12]}"
    arn = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])

    def received() -> list[dict]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=1).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    return arn, received


def context(ti: TaskInstance, **extra) -> dict:
    dag = DAG("github_backup", schedule=None)
    return {"dag": dag, "ti": ti, "run_id": "scheduled__2026-10-01T00:00:00+00:00",
            "data_interval_start": datetime(2026, 10, 1, tzinfo=UTC),
            "data_interval_end": datetime(2026, 11, 1, tzinfo=UTC), **extra}


def attributes(envelope: dict) -> dict:
    return {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}


def test_success_is_published_once_for_all_owners(topic):
    arn, received = topic
    ti = TaskInstance("notify", xcoms={"backup": [result("hubber"), result("hubworks")]})
    message_id = notify_success(context(ti), target_arn=arn)
    (envelope,) = received()
    assert envelope["MessageId"] == message_id
    assert envelope["Subject"] == "ghvault: backup of 2 owners for 2026-10 succeeded"
    assert "hubber-2026-10.zip" in envelope["Message"]
    assert "hubworks-2026-10.zip" in envelope["Message"]
    assert "DAG github_backup, run scheduled__2026-10-01T00:00:00+00:00." in envelope["Message"]
    assert attributes(envelope) == {"status": "success", "month": MONTH,
                                    "dag_id": "github_backup"}


def test_success_with_one_mapped_owner(topic):
    arn, received = topic
    ti = TaskInstance("notify", xcoms={"backup": [result("hubber")]})  # a single value
    notify_success(context(ti), target_arn=arn)
    assert received()[0]["Subject"] == "ghvault: backup of hubber for 2026-10 succeeded"


def test_failure_names_the_owner_of_the_map_index(topic):
    arn, received = topic
    ti = TaskInstance("verify_archive", map_index=1, try_number=2,
                      xcoms={"backup": [result("hubber"), result("hubworks")]})
    error = RuntimeError("The archive s3://vault/x.zip is not there yet after 7200 s")
    notify_failure(context(ti, exception=error), target_arn=arn)
    (envelope,) = received()
    assert envelope["Subject"] == "ghvault: backup of hubworks for 2026-10 FAILED at verify_archive"
    assert "map index    1\n" in envelope["Message"]
    assert envelope["Message"].endswith(f"Reason:\nRuntimeError: {error}\n")
    assert attributes(envelope) == {"status": "failure", "month": MONTH,
                                    "dag_id": "github_backup", "owner": "hubworks",
                                    "task_id": "verify_archive"}


def test_failure_of_the_backup_task_names_its_github_owner(topic):
    from ghvault_airflow.operators.backup import LocalBackupOperator

    arn, received = topic
    task = LocalBackupOperator(task_id="backup", github_owner="hubworks", settings={})
    error = RuntimeError("GitHub owner 'hubworks' does not exist (exit 4)")
    notify_failure(context(TaskInstance("backup", map_index=3), task=task, exception=error),
                   target_arn=arn)
    (envelope,) = received()
    assert envelope["Subject"] == "ghvault: backup of hubworks for 2026-10 FAILED at backup"
    assert attributes(envelope)["owner"] == "hubworks"


def test_failure_of_a_step_for_all_owners_uses_the_dag_reason(topic):
    arn, received = topic
    notify_failure(context(TaskInstance("check_glacier"), reason="task_failure"), target_arn=arn)
    (envelope,) = received()
    assert envelope["Subject"] == "ghvault: github_backup run for 2026-10 FAILED at check_glacier"
    assert "owner" not in attributes(envelope)


def test_notifiers_resolve_the_topic_from_templated_settings(topic, monkeypatch):
    arn, received = topic
    for name in ("GHVAULT_SNS_TOPIC_ARN", "GHVAULT_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    settings = json.dumps({"bucket": "vault", "sns_topic_arn": arn})
    ti = TaskInstance("backup", map_index=0, xcoms={"backup": [result("hubber")]})
    BackupFailureNotifier(settings="{{ params.settings }}")(
        context(ti, params={"settings": settings}, exception=ValueError("bad")))
    BackupSuccessNotifier(settings=settings)(context(ti))
    subjects = sorted(e["Subject"] for e in received())
    assert subjects == ["ghvault: backup of hubber for 2026-10 FAILED at backup",
                        "ghvault: backup of hubber for 2026-10 succeeded"]


def test_without_a_topic_nothing_is_sent(topic, caplog, monkeypatch):
    _, received = topic
    monkeypatch.delenv("GHVAULT_SNS_TOPIC_ARN", raising=False)
    ti = TaskInstance("notify", xcoms={"backup": [result("hubber")]})
    assert notify_success(context(ti), settings={"bucket": "vault"}) is None
    assert "No SNS topic configured (setting sns_topic_arn): not sent" in caplog.text
    assert received() == []


def test_failure_is_sent_even_when_the_settings_are_what_failed(topic, monkeypatch):
    arn, received = topic
    monkeypatch.delenv("GHVAULT_BUCKET", raising=False)
    settings = json.dumps({"sns_topic_arn": arn, "transition_days": "soon"})  # no bucket
    ti = TaskInstance("backup", map_index=0)
    notify_failure(context(ti, exception=ValueError("settings: bucket is missing")),
                   settings=settings)
    assert received()[0]["Subject"].endswith("FAILED at backup")
