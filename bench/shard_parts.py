"""What the parts of one sharded run hold, read back from their manifests (`shard.repos`,
`shard.owner_repos`: image/ghvault/shards.py), so the scale bench can tell a repository
kept twice, or by no part, from a miscount."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from bench.coverage import KINDS, shortfalls


def part_repos(archive: Path) -> tuple[set[str], int | None]:
    """(the repositories the part's manifest names, how many the owner had in all)."""
    with zipfile.ZipFile(archive) as z:
        shard = json.loads(z.read("MANIFEST.json")).get("shard") or {}
    return set(shard.get("repos") or ()), shard.get("owner_repos")


def part_problems(held: dict[int, tuple[set[str], int | None]], n: int) -> list[str]:
    """Each repository in more than one part, and a union short of the owner's count; []
    for an unsharded run (n == 1: its manifest has no `shard`)."""
    if n == 1:
        return []
    where: dict[str, list[int]] = {}
    for k, (repos, _) in sorted(held.items()):
        for name in repos:
            where.setdefault(name, []).append(k)
    problems = [f"repository {name} in parts {', '.join(map(str, ks))} of {n}"
                for name, ks in sorted(where.items()) if len(ks) > 1]
    owners = {total for _, total in held.values() if total is not None}
    if len(owners) > 1:
        problems.append(f"the parts saw different repository counts: {sorted(owners)}")
    elif owners and len(held) == n and len(where) != (total := owners.pop()):
        problems.append(f"the parts hold {len(where)} repositories of the owner's {total}")
    return problems


def miscounts(expected: dict[str, int], parts: list[dict[str, int]]) -> list[str]:
    """The kinds whose sum over the parts differs from the ground truth, each with every
    part's count ("releases 420/417 (by part: 123, 102, 75, 120)"), so a miscount names its
    part; for one part, as `shortfalls` says it."""
    total = {kind: sum(p.get(kind, 0) for p in parts) for kind in KINDS}
    out = shortfalls(expected, total)
    if len(parts) < 2:
        return out
    return [f"{text} (by part: {', '.join(str(p.get(text.split()[0], 0)) for p in parts)})"
            for text in out]
