"""`ghvault list s3://bucket/prefix/` (or a directory): the archives by owner and month.

Archive keys follow `{prefix}/{owner}/{YYYY}/{MM}/{owner}-{YYYY-MM}.zip`. For each one the
catalogue gives its size, storage class, whether it must be restored from Glacier before it
can be read (and whether that restore is done), and whether its sidecar manifest is there.
Months missing between an owner's first and last archive are listed as gaps: what a
backfill must fill.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import ConfigError
from .source import SIDECAR, restore_state, s3_error

KEY = re.compile(r"(?:^|/)(?P<owner>[^/]+)/(?P<year>\d{4})/(?P<month>0[1-9]|1[0-2])/"
                 r"(?P=owner)-(?P=year)-(?P=month)\.zip$")
RESTORE_LABEL = {"available": "-", "archived": "no", "restoring": "in progress",
                 "restored": "yes"}


@dataclass
class Entry:
    owner: str
    month: str
    location: str
    size: int
    storage_class: str
    restore: str  # available (no restore needed), archived, restoring, restored
    manifest: bool
    last_modified: str


def match_key(key: str) -> tuple[str, str] | None:
    m = KEY.search(key)
    return (m["owner"], f"{m['year']}-{m['month']}") if m else None


def list_s3(url: str, owner: str | None, client: Any) -> list[Entry]:
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not bucket:
        raise ConfigError(f"{url!r} names no bucket: use s3://bucket/prefix/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if owner:
        prefix += f"{owner}/"
    objects: dict[str, dict[str, Any]] = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                      Prefix=prefix):
            for obj in page.get("Contents", []):
                objects[obj["Key"]] = obj
    except Exception as e:  # noqa: BLE001 - ClientError and transport errors alike
        raise s3_error(e, f"s3://{bucket}/{prefix}") from None
    entries = []
    for key, obj in objects.items():
        found = match_key(key)
        if found is None or (owner and found[0] != owner):
            continue
        cls = obj.get("StorageClass") or "STANDARD"
        head = {"StorageClass": cls}
        if restore_state(head) != "available":  # only archived objects need a HEAD
            head = client.head_object(Bucket=bucket, Key=key)
            head.setdefault("StorageClass", cls)
        entries.append(Entry(found[0], found[1], f"s3://{bucket}/{key}", int(obj["Size"]),
                             cls, restore_state(head), key + SIDECAR in objects,
                             obj["LastModified"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))
    return sorted(entries, key=lambda e: (e.owner.lower(), e.month))


def list_local(directory: Path, owner: str | None) -> list[Entry]:
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory: give s3://bucket/prefix/ or the "
                          "directory the archives were written under")
    entries = []
    for root, _, files in os.walk(directory):
        for name in files:
            path = Path(root) / name
            found = match_key(path.relative_to(directory).as_posix())
            if found is None or (owner and found[0] != owner):
                continue
            stat = path.stat()
            entries.append(Entry(found[0], found[1], str(path), stat.st_size, "LOCAL",
                                 "available", (path.parent / (name + SIDECAR)).is_file(),
                                 datetime.fromtimestamp(stat.st_mtime, UTC).strftime(
                                     "%Y-%m-%dT%H:%M:%SZ")))
    return sorted(entries, key=lambda e: (e.owner.lower(), e.month))


def months_between(first: str, last: str) -> list[str]:
    year, month = map(int, first.split("-"))
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def gaps(entries: list[Entry]) -> list[dict[str, str]]:
    """Months with no archive between each owner's first and last month."""
    by_owner: dict[str, set[str]] = {}
    for e in entries:
        by_owner.setdefault(e.owner, set()).add(e.month)
    return [{"owner": owner, "month": month}
            for owner, months in sorted(by_owner.items(), key=lambda kv: kv[0].lower())
            for month in months_between(min(months), max(months)) if month not in months]


def catalog(location: str, owner: str | None = None) -> dict[str, Any]:
    if location.startswith("s3://"):
        from .storage.s3 import s3_client

        entries = list_s3(location, owner, s3_client())
    elif "://" in location and not location.startswith("file://"):
        raise ConfigError(f"{location!r} is not s3://bucket/prefix/ or a directory")
    else:
        path = unquote(urlsplit(location).path) if location.startswith("file://") else location
        entries = list_local(Path(os.path.expanduser(path)), owner)
    return {"location": location, "archives": [asdict(e) for e in entries],
            "gaps": gaps(entries)}


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def render(result: dict[str, Any]) -> str:
    """A table by owner and month, gaps in place, and a summary line."""
    rows = [("OWNER", "MONTH", "SIZE", "STORAGE", "RESTORED", "MANIFEST")]
    missing = {(g["owner"], g["month"]) for g in result["gaps"]}
    items = [(a["owner"], a["month"], a) for a in result["archives"]]
    items += [(o, m, None) for o, m in missing]
    for owner, month, a in sorted(items, key=lambda t: (t[0].lower(), t[1])):
        if a is None:
            rows.append((owner, month, "-", "MISSING", "-", "-"))
        else:
            rows.append((owner, month, human(a["size"]), a["storage_class"],
                         RESTORE_LABEL[a["restore"]], "yes" if a["manifest"] else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    owners = len({a["owner"] for a in result["archives"]})
    gap_text = ", ".join(f"{g['owner']} {g['month']}" for g in result["gaps"]) or "none"
    lines.append(f"{len(result['archives'])} archive(s) of {owners} owner(s) under "
                 f"{result['location']}; months missing: {gap_text}")
    return "\n".join(lines)


__all__ = ["catalog", "gaps", "match_key", "months_between", "render"]
