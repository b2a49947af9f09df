"""`ghvault list s3://bucket/prefix/` (or a directory): the archives by owner and month.

Archive keys are laid out as `contract.archive_key` builds them. For each one the catalogue
gives its size, storage class, whether it must be restored from Glacier before it can be
read (and whether that restore is done), and whether its sidecar manifest is there and
was written after it: a sidecar older than its archive belongs to an earlier run (the run
that wrote the archive stopped before its sidecar; `ghvault verify` tells for sure), and
with bucket versioning the version of the archive it describes is named. Months missing
between an owner's first and last archive are listed as gaps: what a backfill must fill.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .contract import SIDECAR_SUFFIX, Shard, parse_archive_key, parse_archive_part
from .errors import ConfigError
from .parts import missing_parts, missing_text
from .storage import ObjectInfo, Purpose, Store, open_store, parse_location

RESTORE_LABEL = {"available": "-", "archived": "no", "restoring": "in progress",
                 "restored": "yes"}
MANIFEST_LABEL = {"ok": "yes", "missing": "no", "older": "older"}


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
    # "ok", "missing", or "older": written before the archive, so by an earlier run
    sidecar: str = "ok"
    previous_version: str | None = None  # with "older": the version the sidecar was written for
    part: str | None = None  # "K/N" for a part of a sharded month (parts.py)


def matching_version(store: Store, key: str, recorded: dict[str, Any],
                     current: ObjectInfo | None = None) -> ObjectInfo | None:
    """The stored version of `key`, other than `current`, that a sidecar's `archive`
    record describes: by version id when it names one, else by size (and ETag when both
    have one); None when the store keeps no such version (no versioning, or not
    listable)."""
    wanted = recorded.get("version_id")
    wanted = wanted if wanted and wanted != "null" else None
    for version in store.versions(key):
        if current is not None and current.version_id and \
                version.version_id == current.version_id:
            continue
        if wanted is not None:
            if version.version_id == wanted:
                return version
            continue
        if version.size == recorded.get("size") and (
                not recorded.get("etag") or not version.etag
                or version.etag == recorded["etag"]):
            return version
    return None


def version_text(version: ObjectInfo | None) -> str:
    if version is None:
        return ("no earlier version of the key is kept that matches it (bucket versioning "
                "off, or s3:ListBucketVersions not granted)")
    return (f"the archive it describes is kept as version {version.version_id} of the key "
            f"({version.size} bytes, {version.last_modified:%Y-%m-%dT%H:%M:%SZ})")


def previous_before(store: Store, key: str, moment: Any,
                    current: ObjectInfo) -> ObjectInfo | None:
    """The newest version of `key` last modified at or before `moment` (a sidecar's time),
    other than `current` (as a listing describes it: size and ETag)."""
    return next((v for v in store.versions(key) if v.last_modified <= moment
                 and not (v.size == current.size and v.etag == current.etag)), None)


def list_archives(store: Store, owner: str | None) -> list[Entry]:
    """The archives in `store` (of `owner` only, when given), by owner and month."""
    objects = {info.key: info for info in store.list(f"{owner}/" if owner else "")}
    entries = []
    for key, info in objects.items():
        # the whole key or path: archives are found below any prefix of their layout
        found = parse_archive_key(store.where(key))
        if found is None or (owner and found.owner != owner):
            continue
        if info.restore is None:  # archived: only a head tells whether it is restored
            info = store.head(key) or info
        side = objects.get(key + SIDECAR_SUFFIX)
        state, previous = "missing", None
        if side is not None:
            # A sidecar is written after its archive (an S3 multipart object's time is
            # when its upload started): one older than the archive is an earlier run's.
            state = "older" if side.last_modified < info.last_modified else "ok"
            if state == "older":
                version = previous_before(store, key, side.last_modified, info)
                previous = version.version_id if version is not None else None
        part = parse_archive_part(store.where(key))
        entries.append(Entry(found.owner, found.month, store.where(key), info.size,
                             info.storage_class, info.restore or "archived",
                             side is not None,
                             info.last_modified.strftime("%Y-%m-%dT%H:%M:%SZ"), state,
                             previous, f"{part.index}/{part.count}" if part else None))
    return sorted(entries, key=lambda e: (e.owner.lower(), e.month, part_order(e.part)))


def part_order(part: str | None) -> tuple[int, int]:
    """Unsharded first, then by count and index."""
    if part is None:
        return (0, 0)
    index, count = map(int, part.split("/"))
    return (count, index)


def incomplete_parts(entries: list[Entry]) -> list[dict[str, Any]]:
    """Sharded months without a complete set of parts (and no unsharded archive)."""
    months: dict[tuple[str, str], list[Shard] | None] = {}
    for e in entries:
        key = (e.owner, e.month)
        if e.part is None:
            months[key] = None  # the unsharded archive: complete as it is
        elif months.get(key, []) is not None:
            months.setdefault(key, []).append(Shard(*map(int, e.part.split("/"))))
    out = []
    for (owner, month), parts in months.items():
        if parts and (gap := missing_parts(parts)):
            out.append({"owner": owner, "month": month, "count": gap[0], "missing": gap[1]})
    return out


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
    where = parse_location(location, "LOCATION", kind="prefix")
    store = open_store(where, Purpose.READ)
    try:
        entries = list_archives(store, owner)
    except NotADirectoryError:
        raise ConfigError(f"{where.shown} is not a directory: give s3://bucket/prefix/ or the "
                          "directory the archives were written under") from None
    return {"location": location, "archives": [asdict(e) for e in entries],
            "gaps": gaps(entries), "incomplete_parts": incomplete_parts(entries)}


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def render(result: dict[str, Any]) -> str:
    """A table by owner and month, gaps in place, and a summary line."""
    sharded = any(a.get("part") for a in result["archives"])
    rows = [("OWNER", "MONTH", "SIZE", "STORAGE", "RESTORED", "MANIFEST")
            + (("PART",) if sharded else ())]
    missing = {(g["owner"], g["month"], None) for g in result["gaps"]}
    missing |= {(p["owner"], p["month"], f"{k}/{p['count']}")
                for p in result.get("incomplete_parts", []) for k in p["missing"]}
    items = [(a["owner"], a["month"], a.get("part"), a) for a in result["archives"]]
    items += [(o, m, part, None) for o, m, part in missing]
    for owner, month, part, a in sorted(items, key=lambda t: (t[0].lower(), t[1],
                                                              part_order(t[2]))):
        tail = (part or "-",) if sharded else ()
        if a is None:
            rows.append((owner, month, "-", "MISSING", "-", "-") + tail)
        else:
            rows.append((owner, month, human(a["size"]), a["storage_class"],
                         RESTORE_LABEL[a["restore"]], MANIFEST_LABEL[a["sidecar"]]) + tail)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    owners = len({a["owner"] for a in result["archives"]})
    gap_text = ", ".join(f"{g['owner']} {g['month']}" for g in result["gaps"]) or "none"
    lines.append(f"{len(result['archives'])} archive(s) of {owners} owner(s) under "
                 f"{result['location']}; months missing: {gap_text}")
    for p in result.get("incomplete_parts", []):
        lines.append(f"{p['owner']} {p['month']}: incomplete, "
                     f"{missing_text(p['count'], p['missing'])}: run those shards again")
    for a in result["archives"]:
        if a["sidecar"] == "older":
            kept = (f"the archive it describes is kept as version {a['previous_version']}"
                    if a["previous_version"] else "no earlier version of the archive is kept")
            lines.append(f"{a['location']}: its sidecar is older than the archive (the run "
                         f"that wrote the archive stopped before its sidecar?); {kept}: "
                         "`ghvault verify` tells, and a new run rewrites both")
    return "\n".join(lines)


__all__ = ["catalog", "gaps", "incomplete_parts", "list_archives", "matching_version",
           "months_between", "render", "version_text"]
