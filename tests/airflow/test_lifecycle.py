"""`lifecycle_verdict`: S3 lifecycle rules evaluated as S3 applies them, on every rule shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ghvault_airflow.lifecycle import (
    DEFAULT_MIN_TRANSITION_SIZE,
    lifecycle_verdict,
    rules_filter_on_tags,
)

KEY = "github/hubber/2026/10/hubber-2026-10.zip"
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
