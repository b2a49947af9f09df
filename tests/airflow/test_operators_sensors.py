"""Archive and Glacier sensors: the lifecycle verdict on every rule shape, and both sensors
against moto's S3 (through the provider's S3Hook and an Airflow connection)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout
from ghvault.storage.s3 import S3Destination
from ghvault_airflow.sensors.archive import (
    DEFAULT_MIN_TRANSITION_SIZE,
    ArchiveCheckFailed,
    ArchiveMismatch,
    ArchiveMissing,
    BackupArchiveSensor,
    GlacierRuleMismatch,
    GlacierRuleMissing,
    GlacierTransitionSensor,
    PreviousArchiveNotCold,
    lifecycle_verdict,
    rules_filter_on_tags,
)

KEY = "github/hubber/2026/10/hubber-2026-10.zip"
PREVIOUS = "github/hubber/2026/09/hubber-2026-09.zip"
BIG = 10 * 1024 * 1024
SMALL = 4 * 1024
NOW = datetime(2026, 11, 2, tzinfo=UTC)


def rule(**changes):
    base = {"ID": "ghvault", "Status": "Enabled", "Filter": {"Prefix": "github/"},
            "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}],
            "Expiration": {"Days": 365}}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def verdict(rules, size=BIG, storage_class="GLACIER", transition_days=1, retention_days=365,
            **kwargs):
    return lifecycle_verdict(rules, KEY, size, storage_class, transition_days, retention_days,
                             now=NOW, **kwargs)


def reasons(v) -> str:
    assert not v.ok, v
    return " | ".join(v.reasons)


# -- lifecycle_verdict ------------------------------------------------------------------------


def test_prefix_filter_rule_covers_the_archive():
    v = verdict([rule()])
    assert (v.ok, v.rule_id, v.reasons, v.expiration_days) == (True, "ghvault", [], 365)


def test_legacy_top_level_prefix():
    assert verdict([rule(Filter=None, Prefix="github/")]).ok
    text = reasons(verdict([rule(Filter=None, Prefix="logs/")]))
    assert "prefix 'logs/' does not match the key" in text


@pytest.mark.parametrize("flt", [{}, {"Prefix": ""}, {"Prefix": "github/hubber/"}])
def test_filters_matching_everything_or_the_owner(flt):
    assert verdict([rule(Filter=flt)]).ok


def test_and_filter_with_prefix_tags_and_size():
    flt = {"And": {"Prefix": "github/", "Tags": [{"Key": "ghvault", "Value": "archive"}],
                   "ObjectSizeGreaterThan": 1024}}
    tags = {"ghvault": "archive", "owner": "hubber"}
    assert verdict([rule(Filter=flt)], tags=tags).ok
    assert "needs the tag ghvault=archive and the archive has no tags" in reasons(
        verdict([rule(Filter=flt)]))
    assert "has owner=hubber" in reasons(verdict([rule(Filter=flt)], tags={"owner": "hubber"}))
    too_big = {"And": {**flt["And"], "ObjectSizeGreaterThan": 2 * BIG}}
    assert f"not larger than its ObjectSizeGreaterThan ({2 * BIG} bytes)" in reasons(
        verdict([rule(Filter=too_big)], tags=tags))
    wrong_prefix = {"And": {**flt["And"], "Prefix": "backups/"}}
    assert "prefix 'backups/'" in reasons(verdict([rule(Filter=wrong_prefix)], tags=tags))


def test_tag_filter():
    flt = {"Tag": {"Key": "ghvault", "Value": "archive"}}
    assert verdict([rule(Filter=flt)], tags={"ghvault": "archive"}).ok
    assert "needs the tag ghvault=archive and the archive has ghvault=other" in reasons(
        verdict([rule(Filter=flt)], tags={"ghvault": "other"}))


def test_size_filters():
    assert verdict([rule(Filter={"ObjectSizeGreaterThan": 0})], size=SMALL).ok
    assert "not larger than" in reasons(verdict([rule(Filter={"ObjectSizeGreaterThan": BIG})]))
    assert verdict([rule(Filter={"ObjectSizeLessThan": 2 * BIG})]).ok
    assert f"not smaller than its ObjectSizeLessThan ({BIG} bytes)" in reasons(
        verdict([rule(Filter={"ObjectSizeLessThan": BIG})]))
    between = {"And": {"Prefix": "github/", "ObjectSizeGreaterThan": 1, "ObjectSizeLessThan": 10}}
    assert "not smaller than" in reasons(verdict([rule(Filter=between)]))


def test_s3_default_minimum_transition_size_of_128_kib():
    small = reasons(verdict([rule()], size=SMALL))
    assert "default minimum of 131072 bytes (128 KiB)" in small
    assert "add ObjectSizeGreaterThan=0" in small
    assert verdict([rule()], size=DEFAULT_MIN_TRANSITION_SIZE).ok
    # a size filter lowers the minimum, for that rule only
    assert verdict([rule(Filter={"And": {"Prefix": "github/", "ObjectSizeGreaterThan": 0}})],
                   size=SMALL).ok
    # the bucket-wide "varies_by_storage_class" lets small objects go to GLACIER/DEEP_ARCHIVE
    varies = {"default_minimum_size": "varies_by_storage_class"}
    assert verdict([rule()], size=SMALL, **varies).ok
    ir = [rule(Transitions=[{"Days": 0, "StorageClass": "GLACIER_IR"}])]
    assert "128 KiB" in reasons(verdict(ir, size=SMALL, storage_class="GLACIER_IR", **varies))
    assert verdict(ir, storage_class="GLACIER_IR").ok


def test_disabled_rule():
    text = reasons(verdict([rule(Status="Disabled")]))
    assert "rule 'ghvault' is Disabled: enable it" in text
    text = reasons(verdict([rule(Status="Disabled", Filter={"Prefix": "logs/"})]))
    assert "is Disabled and its prefix 'logs/' does not match" in text


def test_several_rules_where_only_one_matches():
    rules = [rule(ID="logs", Filter={"Prefix": "logs/"}),
             rule(ID="old", Status="Disabled"),
             rule(ID="ia", Transitions=[{"Days": 0, "StorageClass": "STANDARD_IA"}],
                  Expiration=None),
             rule(ID="ghvault")]
    v = verdict(rules)
    assert (v.ok, v.rule_id, v.reasons) == (True, "ghvault", [])


def test_several_rules_none_of_which_does_the_job_each_say_why():
    rules = [rule(ID="logs", Filter={"Prefix": "logs/"}), rule(ID="old", Status="Disabled"),
             rule(ID="late", Transitions=[{"Days": 30, "StorageClass": "GLACIER"}])]
    v = verdict(rules)
    assert not v.ok and v.rule_id is None
    assert v.reasons[0] == f"no enabled rule moves {KEY!r} to GLACIER within 1 days"
    assert any(r.startswith("rule 'logs' does not apply") for r in v.reasons)
    assert any(r.startswith("rule 'old' is Disabled") for r in v.reasons)
    assert any(r.startswith("rule 'late' transitions to GLACIER too late") for r in v.reasons)


def test_rule_without_id_is_named_by_position():
    r = rule(Filter={"Prefix": "logs/"})
    del r["ID"]
    assert "rule '#1' does not apply" in reasons(verdict([r]))


def test_noncurrent_version_only_rule():
    nv = rule(Transitions=None,
              NoncurrentVersionTransitions=[{"NoncurrentDays": 1, "StorageClass": "GLACIER"}])
    assert "only transitions noncurrent versions" in reasons(verdict([nv]))


def test_transition_in_days_and_by_date():
    assert verdict([rule(Transitions=[{"Days": 0, "StorageClass": "GLACIER"}])]).ok
    assert verdict([rule(Transitions=[{"Days": 7, "StorageClass": "GLACIER"}])],
                   transition_days=7).ok
    past = [rule(Transitions=[{"Date": datetime(2024, 1, 1, tzinfo=UTC),
                               "StorageClass": "GLACIER"}])]
    assert verdict(past).ok  # a date in the past applies to every new object at once
    soon = [rule(Transitions=[{"Date": "2026-11-03T00:00:00Z", "StorageClass": "GLACIER"}])]
    assert verdict(soon).ok
    later = [rule(Transitions=[{"Date": "2027-01-01T00:00:00Z", "StorageClass": "GLACIER"}])]
    assert "too late (on 2027-01-01, 60 days from now" in reasons(verdict(later))


def test_transition_too_late():
    late = [rule(Transitions=[{"Days": 30, "StorageClass": "GLACIER"}])]
    assert ("transitions to GLACIER too late (after 30 days; the deployment expects at most 1)"
            in reasons(verdict(late)))


def test_wrong_storage_class():
    ia = [rule(Transitions=[{"Days": 0, "StorageClass": "STANDARD_IA"}])]
    assert "transitions to STANDARD_IA, not GLACIER" in reasons(verdict(ia))
    deep = [rule(Transitions=[{"Days": 1, "StorageClass": "DEEP_ARCHIVE"}])]
    assert "transitions to DEEP_ARCHIVE, not GLACIER" in reasons(verdict(deep))
    assert verdict(deep, storage_class="DEEP_ARCHIVE").ok
    chain = [rule(Transitions=[{"Days": 0, "StorageClass": "STANDARD_IA"},
                               {"Days": 1, "StorageClass": "GLACIER"}])]
    assert verdict(chain).ok


def test_legacy_singular_transition():
    legacy = rule(Transitions=None, Transition={"Days": 1, "StorageClass": "GLACIER"})
    assert verdict([legacy]).ok


def test_expiration_missing_too_short_or_by_date():
    text = reasons(verdict([rule(Expiration=None)]))
    assert f"no enabled rule matching {KEY!r} expires it: add Expiration Days=365" in text
    short = verdict([rule(Expiration={"Days": 30})])
    assert not short.ok and short.rule_id == "ghvault"
    assert ("rule 'ghvault' expires the archive after 30 days, before the retention of 365 days"
            in reasons(short))
    dated = reasons(verdict([rule(Expiration={"Date": "2027-06-01T00:00:00Z"})]))
    assert "expires every matching object on 2027-06-01" in dated
    assert "no enabled rule matching" not in dated
    markers = reasons(verdict([rule(Expiration={"ExpiredObjectDeleteMarker": True})]))
    assert "expires it" in markers


def test_expiration_in_another_matching_rule_counts_and_the_shortest_wins():
    split = [rule(ID="cold", Expiration=None),
             rule(ID="keep", Transitions=None, Expiration={"Days": 365})]
    v = verdict(split)
    assert (v.ok, v.rule_id, v.expiration_days) == (True, "cold", 365)
    broad = [rule(), rule(ID="tmp-cleanup", Filter={}, Transitions=None,
                          Expiration={"Days": 7})]
    assert "rule 'tmp-cleanup' expires the archive after 7 days" in reasons(verdict(broad))
    # a disabled or non-matching short expiration does not count
    assert verdict([rule(), rule(ID="x", Status="Disabled", Expiration={"Days": 7})]).ok


def test_notes_do_not_fail_the_check():
    longer = verdict([rule(Expiration={"Days": 400})])
    assert longer.ok and "keeps the archive 400 days, longer than the retention" in longer.notes[0]
    early = verdict([rule(Expiration={"Days": 30})], retention_days=30)
    assert early.ok and "early-deletion fee" in early.notes[0]


def test_no_rules():
    assert reasons(verdict([])) == "the lifecycle configuration has no rules"


def test_rules_filter_on_tags():
    assert not rules_filter_on_tags([rule(), rule(Filter=None, Prefix="x"), rule(Filter={})])
    assert rules_filter_on_tags([rule(Filter={"Tag": {"Key": "a", "Value": "b"}})])
    assert rules_filter_on_tags([rule(Filter={"And": {"Tags": [{"Key": "a", "Value": "b"}]}})])


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
    assert {"bucket", "key", "aws_conn_id"} <= set(sensor.template_fields)


def test_archive_and_manifest_agree(s3):
    client, bucket = s3
    data = b"PK" + bytes(range(256)) * 40
    archive = put_archive(client, bucket, KEY, data)
    result = archive_sensor(bucket).poke({})
    assert result.is_done
    assert result.xcom_value == {
        "bucket": bucket, "key": KEY, "size": len(data), "storage_class": "STANDARD",
        "checksum": archive["checksum_sha256"], "etag": archive["etag"],
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
    with pytest.raises(ArchiveCheckFailed, match="The bucket ghv-no-such-bucket does not exist"):
        archive_sensor("ghv-no-such-bucket").poke({})


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
    with pytest.raises(ArchiveMismatch, match="is not a ghvault manifest"):
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
    with pytest.raises(GlacierRuleMissing) as caught:
        glacier_sensor(bucket).poke({})
    assert str(caught.value).startswith(
        f"bucket {bucket} has no lifecycle configuration: deploy infra/ghvault.yaml or add a "
        "rule transitioning github/ to GLACIER")
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
