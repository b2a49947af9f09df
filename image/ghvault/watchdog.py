"""`ghvault list LOCATION --expect MONTH`: is every owner's archive for a month in place?

The watchdog the stack schedules (EventBridge Scheduler, a few days after the 1st, without
Airflow) runs this over the bucket with `--expect previous`. For each owner it looks at the
key `contract.archive_key` gives for the month, without listing the owner's history:

- ok: the archive is there, its sidecar manifest too, and the size the sidecar records is
  the archive's size;
- missing: no archive at the key;
- incomplete: an archive without its sidecar, a sidecar that is not a ghvault manifest, or
  one that records another size (it was written for an earlier archive at the key). A
  sidecar already in a Glacier class cannot be read without a restore: then it must at
  least have been written after the archive (as `ghvault list` tells "older" sidecars).

One line per owner, then the JSON summary line. When some month is missing or incomplete
the SNS topic (`--notify-topic`) gets one message, with the attributes the DAG's
notifications carry (`status`, `month`, `owner`), and the command ends with exit code 10.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from .catalog import human
from .contract import (
    Shard,
    archive_key,
    check_owner,
    parse_archive_key,
    parse_archive_part,
    sidecar_key,
)
from .errors import ConfigError, MonthIncomplete
from .parts import missing_parts, missing_text
from .storage import ObjectInfo, Purpose, Store, open_store, parse_location

TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:(?P<region>[a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}")
SUBJECT_LIMIT = 99  # SNS: "must be less than 100 characters", ASCII, one line


@dataclass
class Finding:
    owner: str
    month: str
    state: str  # "ok", "missing" or "incomplete"
    location: str
    detail: str
    size: int | None = None


def parse_owners(text: str | None) -> list[str]:
    """The owners of a comma-separated list (empty: none), each a GitHub login."""
    owners = [o.strip() for o in (text or "").split(",") if o.strip()]
    try:
        return list(dict.fromkeys(check_owner(o) for o in owners))
    except ValueError as e:
        raise ConfigError(f"--owners: {e}") from None


def check_topic(topic: str | None) -> str | None:
    if topic and not TOPIC_ARN.fullmatch(topic):
        raise ConfigError(f"--notify-topic {topic!r} is not an SNS topic ARN (arn:aws:sns:"
                          "REGION:ACCOUNT:NAME): give the stack's SnsTopicArn output")
    return topic or None


def recorded_size(store: Store, key: str, side: ObjectInfo) -> tuple[int | None, str]:
    """(the archive size the sidecar at `key` records, "") when it can be read; (None, why)
    when it cannot be read now (Glacier) or is not a manifest (why says which)."""
    if side.restore not in ("available", "restored"):
        return None, "cold"
    data = store.get(key)
    try:
        size = json.loads(data or b"")["archive"]["size"]
    except (ValueError, KeyError, TypeError):
        return None, "not a manifest"
    return (size, "") if isinstance(size, int) else (None, "not a manifest")


def check_month_of(store: Store, owner: str, month: str) -> Finding:
    key = archive_key(None, owner, month)  # relative to the store's root, the prefix
    # One listing of the month's folder: the archive and its sidecar, and a missing bucket
    # fails here (a HEAD answers a bare 404 for a missing bucket as for a missing key).
    objects = {info.key: info for info in store.list(key.rsplit("/", 1)[0] + "/")}
    if key not in objects:
        parts = [found for k in objects if (found := parse_archive_part(k)) is not None
                 and parse_archive_key(k) == (owner, month)]
        if parts:
            return check_parts(store, objects, owner, month, parts)
    return check_archive(store, objects, key, owner, month)


def check_parts(store: Store, objects: dict[str, ObjectInfo], owner: str, month: str,
                parts: list[Shard]) -> Finding:
    """A sharded month: ok when every part 1..N of one count N is ok (parts.py)."""
    where = store.where(archive_key(None, owner, month).rsplit("/", 1)[0]) + "/"
    gap = missing_parts(parts)
    counts = {p.count for p in parts}
    count = gap[0] if gap else max(n for n in counts if sum(p.count == n for p in parts) == n)
    present = [k for k in range(1, count + 1) if not gap or k not in gap[1]]
    found = [check_archive(store, objects, archive_key(None, owner, month, Shard(k, count)),
                           owner, month) for k in present]
    size = sum(f.size or 0 for f in found)
    bad = [f.detail for f in found if f.state != "ok"]
    if gap or bad:
        what = "; ".join(([missing_text(*gap)] if gap else []) + bad)
        return Finding(owner, month, "incomplete", where, f"{where} in {count} parts: {what}",
                       size)
    return Finding(owner, month, "ok", where, f"{where} in {count} parts ({human(size)}; "
                   "every sidecar agrees)", size)


def check_archive(store: Store, objects: dict[str, ObjectInfo], key: str, owner: str,
                  month: str) -> Finding:
    """One archive at `key` (listed in `objects`, its folder's listing) and its sidecar."""
    where = store.where(key)
    archive = objects.get(key)
    if archive is None:
        return Finding(owner, month, "missing", where, f"no archive at {where}")
    side = objects.get(sidecar_key(key))
    if side is not None and side.restore is None:  # a listing cannot tell if it is restored
        side = store.head(sidecar_key(key)) or side
    size = archive.size
    if side is None:
        return Finding(owner, month, "incomplete", where, f"{where} ({human(size)}) has no "
                       "sidecar manifest: the run stopped before writing it", size)
    recorded, why = recorded_size(store, sidecar_key(key), side)
    if why == "not a manifest":
        return Finding(owner, month, "incomplete", where, f"the sidecar of {where} is not a "
                       "ghvault manifest (no archive size in it)", size)
    if why == "cold":
        # to the second: a HEAD's time has no fraction, a listing's may
        if side.last_modified.replace(microsecond=0) < \
                archive.last_modified.replace(microsecond=0):
            return Finding(owner, month, "incomplete", where, f"the sidecar of {where} is "
                           "older than the archive: it belongs to an earlier run", size)
        return Finding(owner, month, "ok", where, f"{where} ({human(size)}; sidecar in "
                       f"{side.storage_class}, written after the archive)", size)
    if recorded != size:
        return Finding(owner, month, "incomplete", where, f"the sidecar of {where} records "
                       f"{recorded} bytes but the archive has {size}: it belongs to another "
                       "run", size)
    return Finding(owner, month, "ok", where, f"{where} ({human(size)}; sidecar agrees)", size)


def owners_in(store: Store) -> list[str]:
    """Owners with any object under the root: the default when no owners are given."""
    found = {parse_archive_key(store.where(info.key)) for info in store.list()}
    return sorted({f.owner for f in found if f is not None}, key=str.lower)


def expect(location: str, month: str, owners: list[str]) -> list[Finding]:
    where = parse_location(location, "LOCATION", kind="prefix")
    store = open_store(where, Purpose.READ)
    try:
        owners = owners or owners_in(store)
        if not owners:
            raise ConfigError(f"no owners to expect under {where.shown} (none given and no "
                              "archive there): give --owners (the stack sets them)")
        return [check_month_of(store, owner, month) for owner in owners]
    except NotADirectoryError:
        raise ConfigError(f"{where.shown} is not a directory: give s3://bucket/prefix/ or the "
                          "directory the archives were written under") from None


def report_line(f: Finding) -> str:
    return f"{f.owner}  {f.month}  {f.state.upper() if f.state != 'ok' else 'ok'}  {f.detail}"


def summary(location: str, month: str, findings: list[Finding],
            notified: str | None) -> dict[str, Any]:
    def of(state: str) -> list[str]:
        return [f.owner for f in findings if f.state == state]

    return {"location": location, "month": month, "owners": len(findings), "ok": of("ok"),
            "missing": of("missing"), "incomplete": of("incomplete"), "notified": notified,
            "findings": [asdict(f) for f in findings]}


def message(location: str, month: str, findings: list[Finding]) -> tuple[str, str]:
    """Subject and body of the watchdog's SNS message (only sent when something is amiss)."""
    bad = [f for f in findings if f.state != "ok"]
    who = bad[0].owner if len(bad) == 1 else f"{len(bad)} of {len(findings)} owners"
    subject = f"ghvault watchdog: {who} without a complete archive for {month}"
    subject = "".join(c if 32 <= ord(c) < 127 else "?" for c in subject)
    if len(subject) > SUBJECT_LIMIT:
        subject = subject[:SUBJECT_LIMIT - 3] + "..."
    lines = [f"The ghvault watchdog found {len(bad)} of {len(findings)} owners without a "
             f"complete archive for {month} under {location}.", ""]
    lines += [report_line(f) for f in findings]
    lines += ["", "Back the month up again (Airflow: `airflow dags trigger github_backup -l "
              "<the 1st of the month after>`, or `airflow backfill create`), then check with "
              f"`ghvault list {location} --expect {month}`."]
    return subject, "\n".join(lines) + "\n"


def publish(topic: str, subject: str, body: str, attributes: dict[str, str]) -> str:
    """Publish with boto3's SNS client in the topic's region; the MessageId."""
    import boto3

    from .storage.failures import notify_error

    region = TOPIC_ARN.fullmatch(topic)["region"]  # type: ignore[index]
    try:
        response = boto3.client("sns", region_name=region).publish(
            TopicArn=topic, Subject=subject, Message=body, MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
                if v})
    except Exception as exc:
        raise notify_error(exc, topic) from None
    return str(response["MessageId"])


def watchdog(location: str, month: str, owners: list[str], topic: str | None,
             out: Any) -> tuple[dict[str, Any], MonthIncomplete | None]:
    """Check, print one line per owner, notify when something is amiss: (the summary, the
    error to end with, exit 10, when some owner's month is not ok)."""
    findings = expect(location, month, owners)
    for finding in findings:
        print(report_line(finding), file=out)
    bad = [f for f in findings if f.state != "ok"]
    notified = None
    if bad and topic:
        subject, body = message(location, month, findings)
        notified = publish(topic, subject, body, {
            "status": "failure", "month": month, "source": "watchdog",
            "owner": ",".join(f.owner for f in bad)})
    result = summary(location, month, findings, notified)
    verdict = (f"{len(findings) - len(bad)} of {len(findings)} owner(s) have a complete "
               f"archive for {month}")
    if bad:
        told = f"; SNS message {notified} sent to {topic}" if notified else (
            "; no --notify-topic: nobody was told")
        print(f"{verdict}{told}", file=out, flush=True)
        return result, MonthIncomplete(
            f"{len(bad)} owner(s) have no complete archive for {month} under {location} "
            f"({', '.join(f'{f.owner}: {f.state}' for f in bad)}): back the month up again")
    print(verdict, file=out, flush=True)
    return result, None


def expect_command(args: Any) -> int:
    """`ghvault list LOCATION --expect MONTH [--owners A,B] [--notify-topic ARN]`."""
    import sys

    from .contract import expected_month, summary_line

    try:
        month = expected_month(args.expect)
    except ValueError as e:
        raise ConfigError(f"--expect: {e}") from None
    if args.owner and args.owners:
        raise ConfigError("give --owner or --owners with --expect, not both")
    owners = parse_owners(args.owner or args.owners)
    result, error = watchdog(args.location, month, owners, check_topic(args.notify_topic),
                             sys.stdout)
    print(summary_line(result), flush=True)
    if error is not None:
        raise error
    return 0


__all__ = ["Finding", "check_month_of", "check_topic", "expect", "expect_command", "message",
           "parse_owners", "publish", "watchdog"]
