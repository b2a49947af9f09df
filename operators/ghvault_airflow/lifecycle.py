"""Does a bucket's lifecycle configuration keep one archive as the deployment expects?

`lifecycle_verdict` evaluates S3 lifecycle rules the way S3 applies them (filters on prefix,
tags and object size; transitions by days or date; the 128 KiB default minimum object size;
the shortest matching expiration) and says, rule by rule, why none does the job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

COLD_STORAGE_CLASSES = ("GLACIER", "DEEP_ARCHIVE", "GLACIER_IR")
DEFAULT_MIN_TRANSITION_SIZE = 128 * 1024
"""Since September 2024 S3 does not transition objects smaller than 128 KiB unless the rule
has an object size filter (or the bucket chose `varies_by_storage_class`)."""
TRANSITION_GRACE_DAYS = 2
"""S3 runs lifecycle transitions asynchronously; an eligible object moves within ~48 hours."""
GLACIER_MINIMUM_DAYS = {"GLACIER": 90, "DEEP_ARCHIVE": 180, "GLACIER_IR": 90}


@dataclass(frozen=True)
class Verdict:
    """Whether a lifecycle configuration covers one object. `reasons` says why not (empty
    when ok); `notes` are remarks that do not fail the check."""

    ok: bool
    rule_id: str | None
    reasons: list[str]
    notes: list[str] = field(default_factory=list)
    expiration_days: int | None = None


@dataclass(frozen=True)
class _Filter:
    prefix: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    greater_than: int | None = None
    less_than: int | None = None


def _rule_filter(rule: Mapping[str, Any]) -> _Filter:
    """The filter of a rule in any of S3's shapes: legacy top-level `Prefix`, `Filter` with
    one of `Prefix`, `Tag`, `ObjectSizeGreaterThan`, `ObjectSizeLessThan`, or `And`."""
    if "Filter" not in rule:
        return _Filter(prefix=rule.get("Prefix") or "")
    flt = rule.get("Filter") or {}
    node = flt.get("And") or flt
    tags = list(node.get("Tags") or [])
    if flt.get("Tag"):
        tags.append(flt["Tag"])

    def size(name: str) -> int | None:
        return int(node[name]) if node.get(name) is not None else None

    return _Filter(prefix=node.get("Prefix") or "",
                   tags=tuple((t["Key"], t.get("Value", "")) for t in tags),
                   greater_than=size("ObjectSizeGreaterThan"),
                   less_than=size("ObjectSizeLessThan"))


def rules_filter_on_tags(rules: Sequence[Mapping[str, Any]]) -> bool:
    """True when some rule's filter needs the object's tags (then read them once)."""
    return any(_rule_filter(rule).tags for rule in rules)


def _filter_mismatch(flt: _Filter, key: str, size: int, tags: Mapping[str, str]) -> str | None:
    if not key.startswith(flt.prefix):
        return f"its prefix {flt.prefix!r} does not match the key {key!r}"
    for tag_key, tag_value in flt.tags:
        if tags.get(tag_key) != tag_value:
            have = ", ".join(f"{k}={v}" for k, v in sorted(tags.items())) or "no tags"
            return f"it needs the tag {tag_key}={tag_value} and the archive has {have}"
    if flt.greater_than is not None and not size > flt.greater_than:
        return (f"the archive ({size} bytes) is not larger than its ObjectSizeGreaterThan "
                f"({flt.greater_than} bytes)")
    if flt.less_than is not None and not size < flt.less_than:
        return (f"the archive ({size} bytes) is not smaller than its ObjectSizeLessThan "
                f"({flt.less_than} bytes)")
    return None


def as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _transitions(rule: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if rule.get("Transitions"):
        return list(rule["Transitions"])
    return [rule["Transition"]] if rule.get("Transition") else []  # legacy GetBucketLifecycle


def lifecycle_verdict(rules: Sequence[Mapping[str, Any]], key: str, size: int,
                      storage_class: str, transition_days: int, retention_days: int, *,
                      tags: Mapping[str, str] | None = None, now: datetime | None = None,
                      default_minimum_size: str | None = None) -> Verdict:
    """Will S3 move `key` (of `size` bytes, with `tags`) to `storage_class` within
    `transition_days` and keep it `retention_days`, under these lifecycle `rules`?

    Every enabled rule whose filter matches counts, as in S3: one must transition the
    current version to `storage_class` in time (objects under 128 KiB only with a size
    filter, unless `default_minimum_size` is "varies_by_storage_class" and the class is
    GLACIER or DEEP_ARCHIVE); the shortest matching expiration must be `retention_days` or
    longer, given in Days (a date expiration keeps deleting new objects after its date).
    """
    now = now or datetime.now(UTC)
    tags = tags or {}
    per_rule: list[str] = []  # why each rule does not do the job
    problems: list[str] = []  # matching rules that would harm the archive
    notes: list[str] = []
    candidates: list[tuple[str, Mapping[str, Any]]] = []
    expirations: list[tuple[str, int]] = []
    dated_expiry = False
    if not rules:
        return Verdict(False, None, ["the lifecycle configuration has no rules"])
    for index, rule in enumerate(rules, 1):
        rule_id = rule.get("ID") or f"#{index}"
        name = f"rule {rule_id!r}"
        flt = _rule_filter(rule)
        mismatch = _filter_mismatch(flt, key, size, tags)
        if rule.get("Status") != "Enabled":
            per_rule.append(f"{name} is {rule.get('Status') or 'not Enabled'}"
                            + (f" and {mismatch}" if mismatch else ": enable it"))
            continue
        if mismatch:
            per_rule.append(f"{name} does not apply: {mismatch}")
            continue
        expiration = rule.get("Expiration") or {}
        if expiration.get("Days") is not None:
            expirations.append((rule_id, int(expiration["Days"])))
        elif expiration.get("Date") is not None:
            dated_expiry = True
            day = as_datetime(expiration["Date"])
            problems.append(f"{name} expires every matching object on {day:%Y-%m-%d} (and keeps "
                            "expiring new ones after that date): use Expiration Days="
                            f"{retention_days}")
        transitions = _transitions(rule)
        if not transitions:
            if rule.get("NoncurrentVersionTransitions") or rule.get("NoncurrentVersionTransition"):
                per_rule.append(f"{name} only transitions noncurrent versions, not the archive "
                                "itself: add a Transition")
            elif expiration.get("Days") is None:
                per_rule.append(f"{name} has no transition")
            continue
        wanted = [t for t in transitions if t.get("StorageClass") == storage_class]
        if not wanted:
            classes = ", ".join(sorted({str(t.get("StorageClass")) for t in transitions}))
            per_rule.append(f"{name} transitions to {classes}, not {storage_class}")
            continue
        transition = wanted[0]
        if transition.get("Date") is not None:
            when = as_datetime(transition["Date"])
            days = max(0, math.ceil((when - now).total_seconds() / 86400))
            late, fix = f"on {when:%Y-%m-%d}, {days} days from now", "use Days, not a Date"
        else:
            days = int(transition.get("Days") or 0)
            late, fix = f"after {days} days", f"set its Days to {transition_days} or less"
        if days > transition_days:
            per_rule.append(f"{name} transitions to {storage_class} too late ({late}; the "
                            f"deployment expects at most {transition_days}): {fix}")
            continue
        sized = flt.greater_than is not None or flt.less_than is not None
        small_ok = (default_minimum_size == "varies_by_storage_class"
                    and storage_class in ("GLACIER", "DEEP_ARCHIVE"))
        if not sized and not small_ok and size < DEFAULT_MIN_TRANSITION_SIZE:
            per_rule.append(
                f"{name} will not transition the archive: it is {size} bytes, under S3's "
                f"default minimum of {DEFAULT_MIN_TRANSITION_SIZE} bytes (128 KiB) for rules "
                "without a size filter: add ObjectSizeGreaterThan=0 to the rule's filter")
            continue
        candidates.append((rule_id, rule))
    if expirations:
        shortest_id, shortest = min(expirations, key=lambda e: e[1])
        if shortest < retention_days:
            problems.append(f"rule {shortest_id!r} expires the archive after {shortest} days, "
                            f"before the retention of {retention_days} days: set its Expiration "
                            f"Days to {retention_days}")
        elif shortest > retention_days:
            notes.append(f"rule {shortest_id!r} keeps the archive {shortest} days, longer than "
                         f"the retention of {retention_days} days")
    elif not dated_expiry:
        problems.append(f"no enabled rule matching {key!r} expires it: add Expiration Days="
                        f"{retention_days} to the rule that transitions it")
    expiration_days = min((e[1] for e in expirations), default=None)
    minimum = GLACIER_MINIMUM_DAYS.get(storage_class)
    if minimum and expiration_days is not None and candidates:
        if expiration_days - transition_days < minimum:
            notes.append(f"{storage_class} bills at least {minimum} days: deleting after "
                         f"{expiration_days} days costs an early-deletion fee")
    if candidates and not problems:
        # prefer the rule that both transitions and expires the archive
        with_expiry = [c for c in candidates if (c[1].get("Expiration") or {}).get("Days")]
        rule_id = (with_expiry or candidates)[0][0]
        return Verdict(True, rule_id, [], notes, expiration_days)
    if not candidates:
        problems = [f"no enabled rule moves {key!r} to {storage_class} within "
                    f"{transition_days} days", *per_rule, *problems]
    rule_id = candidates[0][0] if candidates else None
    return Verdict(False, rule_id, problems, notes, expiration_days)
