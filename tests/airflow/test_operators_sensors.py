"""Archive and Glacier sensors against moto's S3, through the ghvault hook (the provider's
S3Hook) and an Airflow connection. The lifecycle verdict itself: test_lifecycle.py."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout
from ghvault.storage.s3 import S3Destination
from ghvault_airflow.sensors.archive import (
    ArchiveMismatch,
    ArchiveMissing,
    BackupArchiveSensor,
    BucketNotFound,
    GlacierRuleMismatch,
    GlacierTransitionSensor,
    LifecycleConfigurationMissing,
    ManifestUnreadable,
    PreviousArchiveNotCold,
)

from tests.airflow.test_lifecycle import BIG, KEY, SMALL, rule

PREVIOUS = "github/hubber/2026/09/hubber-2026-09.zip"


# -- against moto ------------------------------------------------------------------------------


@pytest.fixture
def s3(aws, monkeypatch):
    """A fresh bucket in moto, and Airflow's aws_default connection pointing at moto."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT",
                       "aws://testing:testing@/?region_name=us-east-1&endpoint_url="
                       + quote(aws.endpoint, safe=""))
    client = aws.client("s3")
    bucket = f"ghv-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


def put_archive(client, bucket: str, object_key: str, data: bytes, **manifest_changes) -> dict:
    """Upload like the engine does (its own S3 destination) and write its sidecar manifest."""
    dest = S3Destination(bucket, object_key, client=client)
    sink = dest.open()
    sink.write(data)
    stored = sink.complete()
    archive = {"key": dest.url, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
               **stored, **manifest_changes}
    dest.put_sidecar(".manifest.json", json.dumps({"archive": archive, "owner": "hubber",
                                                   "month": "2026-10"}).encode())
    return archive


def archive_sensor(bucket, key=KEY, **kwargs):
    return BackupArchiveSensor(task_id="verify_archive", bucket=bucket, key=key, **kwargs)


def test_archive_sensor_defaults():
    sensor = archive_sensor("b")
    assert (sensor.mode, sensor.poke_interval, sensor.timeout) == ("reschedule", 60, 7200)
    assert {"bucket", "key", "aws_conn_id", "region_name", "verify"} <= set(
        sensor.template_fields)


def test_archive_and_manifest_agree(s3):
    client, bucket = s3
    data = b"PK" + bytes(range(256)) * 40
    archive = put_archive(client, bucket, KEY, data)
    result = archive_sensor(bucket).poke({})
    assert result.is_done
    assert result.xcom_value == {
        "bucket": bucket, "key": KEY, "size": len(data), "storage_class": "STANDARD",
        "checksum": archive["checksum_sha256"], "etag": archive["etag"], "version_id": None,
        "sha256": hashlib.sha256(data).hexdigest(), "manifest_key": KEY + ".manifest.json"}


def test_multipart_checksum_suffix_in_the_manifest_is_accepted(s3):
    client, bucket = s3
    data = b"x" * 1000
    plain = put_archive(client, bucket, KEY, data)["checksum_sha256"]
    put_archive(client, bucket, KEY, data, checksum_sha256=plain + "-3")
    assert archive_sensor(bucket).poke({}).is_done


def test_etag_is_compared_when_the_manifest_has_no_checksum(s3):
    client, bucket = s3
    put_archive(client, bucket, KEY, b"y" * 1000, checksum_sha256=None)
    assert archive_sensor(bucket).poke({}).is_done
    put_archive(client, bucket, KEY, b"y" * 1000, checksum_sha256=None, etag='"0123"')
    with pytest.raises(ArchiveMismatch, match=r"The ETag of .* is not the one its manifest"):
        archive_sensor(bucket).poke({})


def test_manifest_missing_is_waited_for_and_named_on_timeout(s3):
    client, bucket = s3
    client.put_object(Bucket=bucket, Key=KEY, Body=b"z" * 100)
    sensor = archive_sensor(bucket, mode="poke", poke_interval=0.05, timeout=0.2)
    assert not sensor.poke({}).is_done
    with pytest.raises(ArchiveMissing) as caught:
        sensor.execute({})
    message = str(caught.value)
    assert f"its manifest s3://{bucket}/{KEY}.manifest.json is not" in message
    assert "after 0 s: the backup task did not finish its upload" in message
    assert isinstance(caught.value, AirflowSensorTimeout)


def test_archive_missing_is_waited_for(s3):
    _, bucket = s3
    sensor = archive_sensor(bucket, mode="poke", poke_interval=0.05, timeout=0.1)
    with pytest.raises(ArchiveMissing, match=rf"The archive s3://{bucket}/{KEY} is not there"):
        sensor.execute({})


def test_missing_bucket_fails_at_once(s3):
    with pytest.raises(BucketNotFound, match="The bucket ghv-no-such-bucket does not exist"):
        archive_sensor("ghv-no-such-bucket").poke({})
    with pytest.raises(BucketNotFound, match="The bucket ghv-no-such-bucket does not exist"):
        glacier_sensor("ghv-no-such-bucket").poke({})


def test_size_mismatch_fails(s3):
    client, bucket = s3
    put_archive(client, bucket, KEY, b"a" * 500, size=499)
    with pytest.raises(ArchiveMismatch, match="is 500 bytes but its manifest records 499 bytes"):
        archive_sensor(bucket).poke({})


def test_checksum_mismatch_fails(s3):
    client, bucket = s3
    put_archive(client, bucket, KEY, b"a" * 500)
    # the archive is replaced by other bytes of the same length; the manifest stays
    client.put_object(Bucket=bucket, Key=KEY, Body=b"b" * 500, ChecksumAlgorithm="SHA256")
    with pytest.raises(ArchiveMismatch, match="The SHA-256 checksum of .* is not the one") as e:
        archive_sensor(bucket).poke({})
    assert isinstance(e.value, AirflowFailException)


def test_manifest_for_another_key_or_unreadable_fails(s3):
    client, bucket = s3
    put_archive(client, bucket, KEY, b"a" * 10, key=f"s3://{bucket}/{PREVIOUS}")
    with pytest.raises(ArchiveMismatch, match=f"describes s3://{bucket}/{PREVIOUS}, not"):
        archive_sensor(bucket).poke({})
    client.put_object(Bucket=bucket, Key=KEY + ".manifest.json", Body=b"{not json")
    with pytest.raises(ManifestUnreadable, match="is not a ghvault manifest"):
        archive_sensor(bucket).poke({})


def test_archive_in_glacier_is_reported(s3):
    client, bucket = s3
    data = b"g" * 300
    put_archive(client, bucket, KEY, data)
    # a copy into GLACIER: S3 reports a full-object checksum, held against the manifest's sha256
    client.copy_object(Bucket=bucket, Key=KEY, CopySource={"Bucket": bucket, "Key": KEY},
                       StorageClass="GLACIER", ChecksumAlgorithm="SHA256")
    result = archive_sensor(bucket).poke({})
    assert result.xcom_value["storage_class"] == "GLACIER"
    assert result.xcom_value["checksum"] == base64.b64encode(hashlib.sha256(data).digest()).decode()


# -- GlacierTransitionSensor against moto -------------------------------------------------------


def glacier_sensor(bucket, **kwargs):
    kwargs.setdefault("size", BIG)
    return GlacierTransitionSensor(task_id="check_glacier", bucket=bucket, key=KEY, **kwargs)


def put_rules(client, bucket, *rules):
    client.put_bucket_lifecycle_configuration(Bucket=bucket,
                                              LifecycleConfiguration={"Rules": list(rules)})


def test_glacier_sensor_defaults():
    sensor = glacier_sensor("b")
    assert (sensor.mode, sensor.poke_interval) == ("reschedule", 60)
    assert {"size", "storage_class", "transition_days", "retention_days",
            "previous_key"} <= set(sensor.template_fields)


def test_rule_round_trip_passes(s3):
    client, bucket = s3
    put_rules(client, bucket, rule(ID="other", Filter={"Prefix": "state/"}), rule())
    result = glacier_sensor(bucket, transition_days="1", retention_days="365").poke({})
    assert result.is_done
    assert result.xcom_value == {
        "bucket": bucket, "key": KEY, "size": BIG, "rule_id": "ghvault",
        "storage_class": "GLACIER", "transition_days": 1, "expiration_days": 365,
        "notes": [], "previous": None}


def test_no_lifecycle_configuration_names_the_fix(s3):
    _, bucket = s3
    with pytest.raises(LifecycleConfigurationMissing) as caught:
        glacier_sensor(bucket).poke({})
    assert str(caught.value) == (
        f"bucket {bucket} has no lifecycle configuration: deploy infra/ghvault.yaml or add a "
        "rule that moves the archives to the cold storage class and expires them: the rule "
        "must transition github/ to GLACIER after 1 days and expire it after 365 days.")
    assert isinstance(caught.value, AirflowFailException)


@pytest.mark.parametrize("bad, expected", [
    (rule(Filter={"Prefix": "backups/"}), "prefix 'backups/' does not match the key"),
    (rule(Status="Disabled"), "rule 'ghvault' is Disabled: enable it"),
    (rule(Transitions=[{"Days": 90, "StorageClass": "GLACIER"}]), "too late (after 90 days"),
    (rule(Transitions=[{"Days": 1, "StorageClass": "DEEP_ARCHIVE"}]), "not GLACIER"),
    (rule(Expiration={"Days": 30}), "expires the archive after 30 days"),
    (rule(Expiration=None), "expires it: add Expiration Days=365"),
])
def test_rule_round_trip_failures_are_precise(s3, bad, expected):
    client, bucket = s3
    put_rules(client, bucket, bad)
    with pytest.raises(GlacierRuleMismatch, match=r"does not keep s3://") as caught:
        glacier_sensor(bucket).poke({})
    assert expected in str(caught.value)


def test_default_minimum_size_round_trip(s3):
    client, bucket = s3
    put_rules(client, bucket, rule())
    with pytest.raises(GlacierRuleMismatch, match="128 KiB"):
        glacier_sensor(bucket, size=SMALL).poke({})


def count_calls(sensor, operation: str) -> list:
    calls: list = []
    sensor.hook.get_conn().meta.events.register(f"before-call.s3.{operation}",
                                                lambda **kw: calls.append(kw))
    return calls


def test_tag_filter_reads_the_archive_tags_only_when_needed(s3):
    client, bucket = s3
    client.put_object(Bucket=bucket, Key=KEY, Body=b"t" * 100, Tagging="ghvault=archive")
    put_rules(client, bucket, rule())
    sensor = glacier_sensor(bucket)
    calls = count_calls(sensor, "GetObjectTagging")
    assert sensor.poke({}).is_done and calls == []
    tagged = {"And": {"Prefix": "github/", "Tags": [{"Key": "ghvault", "Value": "archive"}]}}
    put_rules(client, bucket, rule(Filter=tagged))
    sensor = glacier_sensor(bucket)
    calls = count_calls(sensor, "GetObjectTagging")
    assert sensor.poke({}).is_done and len(calls) == 1
    client.put_object_tagging(Bucket=bucket, Key=KEY,
                              Tagging={"TagSet": [{"Key": "ghvault", "Value": "old"}]})
    with pytest.raises(GlacierRuleMismatch, match="needs the tag ghvault=archive"):
        glacier_sensor(bucket).poke({})


def test_size_is_read_from_the_archive_and_waited_for(s3):
    client, bucket = s3
    put_rules(client, bucket, rule(Filter={"Prefix": "github/"}))
    sensor = glacier_sensor(bucket, size=None)
    assert not sensor.poke({}).is_done
    client.put_object(Bucket=bucket, Key=KEY, Body=b"s" * 200_000)
    assert glacier_sensor(bucket, size="").poke({}).xcom_value["size"] == 200_000


def test_previous_archive_in_glacier_is_reported(s3):
    client, bucket = s3
    put_rules(client, bucket, rule())
    client.put_object(Bucket=bucket, Key=PREVIOUS, Body=b"p" * 1000, StorageClass="GLACIER")
    previous = glacier_sensor(bucket, previous_key=PREVIOUS).poke({}).xcom_value["previous"]
    assert previous == {"key": PREVIOUS, "exists": True, "storage_class": "GLACIER",
                        "cold": True, "age_days": 0.0}


def test_previous_archive_absent_or_not_yet_cold_is_reported(s3):
    client, bucket = s3
    put_rules(client, bucket, rule())
    previous = glacier_sensor(bucket, previous_key=PREVIOUS).poke({}).xcom_value["previous"]
    assert previous == {"key": PREVIOUS, "exists": False}
    client.put_object(Bucket=bucket, Key=PREVIOUS, Body=b"p" * 1000)
    previous = glacier_sensor(bucket, previous_key=PREVIOUS).poke({}).xcom_value["previous"]
    assert previous["storage_class"] == "STANDARD" and previous["cold"] is False
    assert previous["note"].startswith("not cold yet: written 0.0 days ago")


def backdate(bucket: str, key: str, days: int) -> None:
    """Make moto report the object as written `days` ago (as S3 would a month later)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    stored = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[bucket].keys[key]
    stored.last_modified = stored.last_modified - timedelta(days=days)


def test_previous_archive_still_standard_long_after_the_transition_fails(s3):
    client, bucket = s3
    put_rules(client, bucket, rule())
    client.put_object(Bucket=bucket, Key=PREVIOUS, Body=b"p" * 1000)  # < 128 KiB
    backdate(bucket, PREVIOUS, 31)
    with pytest.raises(PreviousArchiveNotCold) as caught:
        glacier_sensor(bucket, previous_key=PREVIOUS).poke({})
    message = str(caught.value)
    assert f"s3://{bucket}/{PREVIOUS} is still STANDARD 31 days after" in message
    assert "under S3's default minimum of 131072 bytes" in message
    backdate(bucket, PREVIOUS, -28)  # 3 days old: past 1 + 2 days
    with pytest.raises(PreviousArchiveNotCold, match="still STANDARD 3 days"):
        glacier_sensor(bucket, previous_key=PREVIOUS).poke({})


def test_unknown_storage_class_is_a_configuration_error():
    with pytest.raises(AirflowFailException, match="'STANDARD_IA' is not a cold storage class"):
        glacier_sensor("b", storage_class="STANDARD_IA").poke({})
