"""`ghvault run --shard K/N`: which part of an owner a run backs up.

Repositories go to parts by `contract.shard_of` (a hash of GitHub's numeric repository id:
stable across renames, retries and months); the account-level data (the account's lists,
members and teams, gists) goes in part 1 only. Every part lists the owner's repositories
itself, so N parts cost the unsharded run's requests plus N - 1 discoveries and listings
(docs/operations.md, "Shards").
"""

from __future__ import annotations

from typing import Any

from .contract import Shard, parse_archive_key, parse_archive_part, part_suffix, shard_of
from .errors import ConfigError

# Kinds that belong to the account, not to a repository: part 1 keeps them.
ACCOUNT_KINDS = frozenset({"account", "gists"})


def effective(shard: Shard | None) -> Shard | None:
    """None for no shard and for 1/1 (today's single archive)."""
    return shard if shard is not None and shard.count > 1 else None


def check_dest(dest: str, shard: Shard | None) -> None:
    """ConfigError when --dest is laid out as an archive key (contract.archive_key) for
    another part than --shard gives: two parts must never write the same key."""
    if parse_archive_key(dest) is None:
        return  # a key of the caller's own choosing
    named, wanted = parse_archive_part(dest), effective(shard)
    if named != wanted:
        want = f"a name ending in {part_suffix(wanted)}.zip" if wanted else \
            "the unsharded name (no .part-K-of-N)"
        have = f"--shard {wanted.index}/{wanted.count}" if wanted else "no --shard"
        raise ConfigError(f"--dest {dest!r} names another part than {have}: give {want} "
                          "(contract.archive_key builds it)")


def kinds_of(kinds: frozenset[str], shard: Shard | None) -> frozenset[str]:
    """The kinds a part keeps: all in part 1 (or unsharded), the repository kinds only in
    the others."""
    shard = effective(shard)
    return kinds if shard is None or shard.index == 1 else kinds - ACCOUNT_KINDS


def select(repos: list[dict[str, Any]], shard: Shard | None) -> list[dict[str, Any]]:
    """The repositories of the part (all when unsharded)."""
    shard = effective(shard)
    if shard is None:
        return repos
    return [r for r in repos if shard_of(int(r["id"]), shard.count) == shard.index]


def manifest_field(shard: Shard | None, repos: list[dict[str, Any]],
                   listed: int) -> dict[str, Any]:
    """`shard` in the manifest of a part: which part, the repositories it holds and how many
    the owner had in all (so the parts of a month can be checked together)."""
    shard = effective(shard)
    if shard is None:
        return {}
    return {"shard": {"index": shard.index, "count": shard.count, "owner_repos": listed,
                      "repos": sorted(r["name"] for r in repos)}}
