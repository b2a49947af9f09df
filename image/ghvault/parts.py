"""The parts of a sharded month (`ghvault run --shard K/N`), as the readers see them.

A month is complete when its unsharded archive is there, or every part 1..N of one count N
(a month re-run with another N may hold parts of both: one complete set is enough). `list`
flags the others ("missing part 2 of 4"), the watchdog calls them incomplete, and `restore`
puts the parts of one month into one directory, one after the other (docs/archive-format.md
"Parts of a month").
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .contract import Shard, part_suffix
from .errors import ConfigError
from .layout import MANIFEST_NAME


def missing_parts(parts: Iterable[Shard]) -> tuple[int, list[int]] | None:
    """None when the parts hold a complete set 1..N for some N; else (N, the indices
    missing) for the count closest to complete (the larger N on a tie)."""
    present: dict[int, set[int]] = {}
    for p in parts:
        present.setdefault(p.count, set()).add(p.index)
    if not present or any(len(ix) == n for n, ix in present.items()):
        return None
    count = max(present, key=lambda n: (len(present[n]) / n, n))
    return count, sorted(set(range(1, count + 1)) - present[count])


def missing_text(count: int, missing: list[int]) -> str:
    """`missing part 2 of 4` / `missing parts 2, 3 of 4`."""
    which = ", ".join(map(str, missing))
    return f"missing part{'s' if len(missing) > 1 else ''} {which} of {count}"


def shard_of_manifest(doc: dict[str, Any]) -> Shard | None:
    """The part a manifest records (`shard: {index, count}`); None for an unsharded one."""
    shard = doc.get("shard")
    if not isinstance(shard, dict):
        return None
    index, count = shard.get("index"), shard.get("count")
    if isinstance(index, int) and isinstance(count, int) and 1 <= index <= count:
        return Shard(index, count)
    return None


def restored_manifest_name(doc: dict[str, Any]) -> str:
    """Where restore writes the manifest: MANIFEST.json, or MANIFEST.part-K-of-N.json for a
    part, so the parts of a month restored into one directory keep theirs side by side."""
    suffix = part_suffix(shard_of_manifest(doc))
    return MANIFEST_NAME if not suffix else MANIFEST_NAME.replace(".json", f"{suffix}.json")


def check_restore_target(to: Path, doc: dict[str, Any]) -> None:
    """--to must be empty (or new); for a part it may also hold what restores of the other
    parts of the same owner and month wrote (their entries never overlap: each repository
    is in one part, the account in part 1). ConfigError saying which, otherwise."""
    if not to.exists() or (to.is_dir() and not any(to.iterdir())):
        return
    shard = shard_of_manifest(doc)
    if shard is None or not to.is_dir():
        raise ConfigError(f"--to {to} is not an empty directory: choose a new one")
    others = sorted(to.glob("MANIFEST.part-*.json"))
    for path in others:
        try:
            other = json.loads(path.read_text())
        except (OSError, ValueError):
            other = {}
        theirs = shard_of_manifest(other) if isinstance(other, dict) else None
        same = isinstance(other, dict) and theirs is not None and \
            (other.get("owner"), other.get("month"), theirs.count) == \
            (doc.get("owner"), doc.get("month"), shard.count)
        if not same:
            raise ConfigError(f"--to {to} holds {path.name}, not a part of {doc.get('owner')} "
                              f"{doc.get('month')} in {shard.count} parts: choose a new "
                              "directory")
        if theirs == shard:
            raise ConfigError(f"--to {to} already holds part {shard.index} of {shard.count}: "
                              "restore the other parts there, or this one into a new one")
    if not others:
        raise ConfigError(f"--to {to} is not empty and holds no other part of "
                          f"{doc.get('owner')} {doc.get('month')}: choose a new directory")
