"""The contract between the Airflow side and the engine, written once.

The operators start `ghvault` (in a Fargate task, a container or a subprocess) and read back
only what this module defines: the exit codes and their meaning, the content kinds
`--include`/`--exclude` accept, where an owner's monthly archive and its sidecar manifest
live, and the one-line JSON summary every command prints last. The Airflow side imports this
module (the engine package is installed beside Airflow); the container image carries it too.

Standard library only: importing it must never pull in boto3, PyGithub or Airflow.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, NamedTuple


class Exit(IntEnum):
    """`ghvault`'s exit codes. Signals give 128 + N as usual (143 for SIGTERM)."""

    OK = 0
    INTERNAL = 1
    CONFIG = 2
    AUTH = 3
    OWNER_NOT_FOUND = 4
    DESTINATION = 5
    GITHUB_UNAVAILABLE = 6
    NOT_READY = 7
    INVALID = 8
    UNREADABLE = 9
    INCOMPLETE_MONTH = 10


EXIT_MEANINGS: dict[Exit, str] = {
    Exit.OK: "success: the archive and its manifest are in place",
    Exit.INTERNAL: "unexpected internal error (a bug: the traceback is in the log)",
    Exit.CONFIG: "bad arguments or configuration",
    Exit.AUTH: "authentication or permission failure (token missing, invalid or lacking "
               "scopes)",
    Exit.OWNER_NOT_FOUND: "the owner does not exist or is not visible to the token",
    Exit.DESTINATION: "the destination cannot be written (bucket, permissions, disk)",
    Exit.GITHUB_UNAVAILABLE: "GitHub unavailable after retries (5xx, rate limits, network)",
    Exit.NOT_READY: "verify/restore: the archive is in Glacier and not restored yet; a "
                    "restore was started: run the same command again once it completes (or "
                    "add --wait)",
    Exit.INVALID: "verify/restore: the archive is damaged or incomplete (the problems are "
                  "listed, one per line)",
    Exit.UNREADABLE: "verify/restore/list: the archive cannot be read (missing, access "
                     "denied, not a zip archive)",
    Exit.INCOMPLETE_MONTH: "list --expect: an owner's archive for the expected month is "
                           "missing or incomplete (one line per owner; --notify-topic is told)",
}

# Exit codes after which running the same command again may succeed without anyone
# changing anything (Airflow retries these; the others fail the task at once).
RETRYABLE_EXITS = frozenset({Exit.INTERNAL, Exit.DESTINATION, Exit.GITHUB_UNAVAILABLE})

# The kinds of content `ghvault run --include/--exclude` accept, in the order they are
# documented. The manifest's `kinds` lists the ones a run kept.
KINDS: tuple[str, ...] = (
    "git", "wiki", "lfs", "issues", "comments", "events", "pulls", "reviews",
    "review_comments", "commit_comments", "labels", "milestones", "releases", "assets",
    "hooks", "advisories", "gists", "account",
    "discussions", "projects", "attachments",
)

# -- where an archive lives ------------------------------------------------------------------

MONTH_PATTERN = r"(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])"
# A GitHub login as the tools accept it: letters, digits, '-', '_' and '.' (Enterprise
# Server allows '_' in logins), never a path separator.
OWNER_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"
SIDECAR_SUFFIX = ".manifest.json"  # the manifest beside the archive: `<key>.manifest.json`
ARCHIVE_SUFFIX = ".zip"

FIRST_MONTH = "2008-01"  # GitHub launched in 2008: no backup stands for an earlier month
LATEST_ZONE_AHEAD = timedelta(hours=14)  # UTC+14, the time zone furthest ahead

_MONTH = re.compile(MONTH_PATTERN)
_OWNER = re.compile(OWNER_PATTERN)
# A shard's archive: `{owner}-{YYYY-MM}.part-K-of-N.zip` beside the unsharded one's key.
SHARD_MAX = 256  # `--shard K/N` takes N up to this (a Fargate task each)
PART_PATTERN = r"\.part-(?P<k>[1-9]\d{0,2})-of-(?P<n>[1-9]\d{0,2})"
# {prefix}/{owner}/{YYYY}/{MM}/{owner}-{YYYY-MM}[.part-K-of-N].zip, the prefix optional.
_KEY = re.compile(rf"(?:^|/)(?P<owner>{OWNER_PATTERN})/(?P<y>\d{{4}})/(?P<m>0[1-9]|1[0-2])/"
                  rf"(?P=owner)-(?P=y)-(?P=m)(?:{PART_PATTERN})?{re.escape(ARCHIVE_SUFFIX)}$")


class ArchiveId(NamedTuple):
    """Which owner and month an archive key holds."""

    owner: str
    month: str  # YYYY-MM


def _month_grammar(month: str) -> str:
    """`month` if it is YYYY-MM (any year), else ValueError saying so."""
    if not isinstance(month, str) or not _MONTH.fullmatch(month):
        raise ValueError(f"month {month!r} is not YYYY-MM (for example 2026-10).")
    return month


def latest_month(now: datetime | None = None) -> str:
    """The latest month a backup may stand for: the current month in the time zone furthest
    ahead of UTC (UTC+14), so a schedule in any time zone, or a clock a little ahead, can
    name its own month."""
    ahead = (now or datetime.now(UTC)).astimezone(UTC) + LATEST_ZONE_AHEAD
    return f"{ahead.year:04d}-{ahead.month:02d}"


def check_month(month: str, now: datetime | None = None) -> str:
    """`month` if it is YYYY-MM between FIRST_MONTH (GitHub's launch) and the current month
    (see `latest_month`), else ValueError saying so. Keys (`archive_key`) take any YYYY-MM."""
    _month_grammar(month)
    latest = latest_month(now)
    if not FIRST_MONTH <= month <= latest:
        raise ValueError(f"month {month!r} is outside {FIRST_MONTH} (GitHub's launch) to "
                         f"{latest} (the current month): choose a month in that range.")
    return month


def check_owner(owner: str) -> str:
    """`owner` if it is a GitHub login, else ValueError saying so."""
    if not isinstance(owner, str) or not _OWNER.fullmatch(owner):
        raise ValueError(f"owner {owner!r} is not a GitHub user or organisation login "
                         "(letters, digits, hyphens): fix the owners list.")
    return owner


def previous_month(month: str) -> str:
    year, mm = (int(x) for x in _month_grammar(month).split("-"))
    return f"{year - 1}-12" if mm == 1 else f"{year}-{mm - 1:02d}"


# `ghvault list --expect previous`: the month before the one the command runs in (UTC). A
# schedule cannot template a month, so the stack's watchdog names it this way.
EXPECT_PREVIOUS = "previous"


def expected_month(text: str, now: datetime | None = None) -> str:
    """The month `--expect` names: YYYY-MM (checked as `check_month`), or EXPECT_PREVIOUS
    for the month before the current UTC month."""
    if text == EXPECT_PREVIOUS:
        today = (now or datetime.now(UTC)).astimezone(UTC)
        return previous_month(f"{today.year:04d}-{today.month:02d}")
    try:
        return check_month(text, now)
    except ValueError as e:
        raise ValueError(f"{e} (or give --expect {EXPECT_PREVIOUS} for the month before "
                         "this one)") from None


class Shard(NamedTuple):
    """Part `index` of `count` (1-based) of an owner's month."""

    index: int
    count: int


def check_shard(text: str) -> Shard:
    """`K/N` as a Shard when 1 <= K <= N <= SHARD_MAX, else ValueError saying so."""
    m = re.fullmatch(r"\s*(\d{1,4})\s*/\s*(\d{1,4})\s*", text or "")
    shard = Shard(int(m[1]), int(m[2])) if m else None
    if shard is None or not 1 <= shard.index <= shard.count <= SHARD_MAX:
        raise ValueError(f"--shard {text!r} is not K/N with 1 <= K <= N <= {SHARD_MAX} (for "
                         "example 2/4, the second of four parts): fix it.")
    return shard


def shard_of(repo_id: int, count: int) -> int:
    """The part (1..count) that holds the repository with GitHub's numeric id `repo_id`:
    the id survives renames and transfers, and a hash of it spreads the repositories
    evenly whatever order they were made in; the same on every retry and every month."""
    digest = hashlib.sha256(str(int(repo_id)).encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def part_suffix(shard: Shard | None) -> str:
    """`.part-K-of-N` for a shard of N > 1; "" for none or 1/1 (today's single archive)."""
    return "" if shard is None or shard.count == 1 else \
        f".part-{shard.index}-of-{shard.count}"


def archive_key(prefix: str | None, owner: str, month: str,
                shard: Shard | None = None) -> str:
    """`{prefix}/{owner}/{YYYY}/{MM}/{owner}-{YYYY-MM}.zip`; no leading slash without prefix.
    A shard of N > 1 parts: `...{owner}-{YYYY-MM}.part-K-of-N.zip` in the same folder."""
    year, mm = _month_grammar(month).split("-")
    name = f"{check_owner(owner)}/{year}/{mm}/{owner}-{month}{part_suffix(shard)}" \
        f"{ARCHIVE_SUFFIX}"
    prefix = (prefix or "").strip("/")
    return f"{prefix}/{name}" if prefix else name


def sidecar_key(key: str) -> str:
    """The manifest the engine writes beside the archive at `key`."""
    return key + SIDECAR_SUFFIX


def parse_archive_key(key: str) -> ArchiveId | None:
    """(owner, month) of an archive key or path laid out as `archive_key` builds it; None
    for anything else (sidecars, state, foreign objects)."""
    m = _KEY.search(key)
    return ArchiveId(m["owner"], f"{m['y']}-{m['m']}") if m and _part(m) != () else None


def _part(m: re.Match[str]) -> Shard | None | tuple[()]:
    """The part a key match names: None (unsharded), a Shard, or () when K > N or N < 2."""
    if m["k"] is None:
        return None
    shard = Shard(int(m["k"]), int(m["n"]))
    return shard if 1 <= shard.index <= shard.count <= SHARD_MAX and shard.count > 1 else ()


def parse_archive_part(key: str) -> Shard | None:
    """The part a sharded archive key names (`.part-K-of-N.zip`); None for an unsharded
    key and for anything `parse_archive_key` does not recognise."""
    m = _KEY.search(key)
    part = _part(m) if m else None
    return part if isinstance(part, Shard) else None


# -- the summary line ------------------------------------------------------------------------

# Every command ends its standard output with one line of JSON. These are the fields a
# reader may rely on, per command; more may appear.
SUMMARY_FIELDS: dict[str, tuple[str, ...]] = {
    "run": ("owner", "month", "dest", "counts", "skipped", "bytes", "sha256", "api_requests",
            "not_modified", "rate_limit_remaining", "duration_s"),
    "verify": ("archive", "ok", "problems", "entries", "bundles", "bytes", "counts"),
    "restore": ("archive", "to", "counts", "problems", "push_failures", "duration_s"),
    "list --expect": ("location", "month", "owners", "ok", "missing", "incomplete",
                      "notified"),
}


def summary_line(summary: dict[str, Any]) -> str:
    """The summary as the one compact JSON line a command prints last."""
    return json.dumps(summary, separators=(",", ":"), sort_keys=True)


def parse_summary(lines: Iterable[str]) -> dict[str, Any] | None:
    """The summary in a command's output: the last line that is a JSON object (normally the
    very last), None when there is none."""
    for line in reversed(list(lines)):
        text = line.strip()
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                return parsed
    return None


__all__ = [
    "ARCHIVE_SUFFIX", "EXIT_MEANINGS", "EXPECT_PREVIOUS", "FIRST_MONTH", "KINDS",
    "MONTH_PATTERN", "OWNER_PATTERN", "RETRYABLE_EXITS", "SIDECAR_SUFFIX", "SUMMARY_FIELDS",
    "ArchiveId", "Exit", "archive_key", "check_month", "check_owner", "expected_month",
    "latest_month", "parse_archive_key", "parse_summary", "previous_month", "sidecar_key",
    "summary_line",
    "PART_PATTERN", "SHARD_MAX", "Shard", "check_shard", "parse_archive_part", "part_suffix",
    "shard_of",
]
