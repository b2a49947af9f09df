"""How many parts (`ghvault run --shard K/N`, one ECS task each) each owner's month takes.

The settings' `shards` (default 1: one archive, today's key) applies to every owner,
`owner_shards` ({"big-org": 8}) overrides it per owner, and a run's param `shards` overrides
both for that run. The plan maps one backup group per (owner, part): a failed or reclaimed
part is retried alone, its sensors check its own archive, and the run's summary counts an
owner as backed up only when all of its parts are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ghvault.contract import (
    SHARD_MAX,
    Shard,
    archive_key,
    check_owner,
    parse_archive_part,
    previous_month,
)


def check_count(value: Any, what: str) -> int:
    """`value` as a number of parts (1..SHARD_MAX), else ValueError naming `what`."""
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if isinstance(value, bool) or not 1 <= count <= SHARD_MAX or str(count) != \
            str(value).strip():
        raise ValueError(f"{what} is {value!r}: use a whole number of parts from 1 (one "
                         f"archive) to {SHARD_MAX}")
    return count


def check_settings(shards: int, owner_shards: Mapping[str, Any]) -> None:
    """ValueError for a `shards` or an `owner_shards` entry no run could use."""
    check_count(shards, "'shards'")
    for owner, count in owner_shards.items():
        check_owner(owner)
        check_count(count, f"'owner_shards' entry {owner!r}")


def counts_for(owners: Sequence[str], default: int, per_owner: Mapping[str, Any],
               param: Any = None) -> dict[str, int]:
    """Each owner's number of parts: the run's param, else the owner's entry, else the
    default; owners with one part are left out (the plan's `shards` lists the others)."""
    if param not in (None, "", 0):
        run_wide = check_count(param, "the param 'shards'")
        counts = dict.fromkeys(owners, run_wide)
    else:
        lower = {k.lower(): v for k, v in per_owner.items()}
        counts = {o: check_count(lower.get(o.lower(), default), f"the parts of {o}")
                  for o in owners}
    return {o: n for o, n in counts.items() if n > 1}


def units(prefix: str, owners: Sequence[str], month: str,
          counts: Mapping[str, int]) -> list[dict[str, str]]:
    """One dict per (owner, part) for ``expand_kwargs`` over the backup task group: the
    archive key of the part, last month's key of the same part (the Glacier check) and
    `shard` ("K/N", or "" for an owner with one archive)."""
    out = []
    for owner in owners:
        n = int(counts.get(owner, 1))
        for k in range(1, n + 1):
            shard = Shard(k, n) if n > 1 else None
            out.append({"owner": owner, "key": archive_key(prefix, owner, month, shard),
                        "previous_key": archive_key(prefix, owner, previous_month(month),
                                                    shard),
                        "shard": f"{k}/{n}" if shard else ""})
    return out


def part_of(value: Mapping[str, Any]) -> str:
    """"K/N" of an XCom value or failure record (its `shard`, else its key), "" unsharded."""
    if value.get("shard"):
        return str(value["shard"])
    part = parse_archive_part(str(value.get("key") or ""))
    return f"{part.index}/{part.count}" if part else ""
