"""Collectors: one module per kind of content, each writing archive entries and counts.

Every collector takes a `Job` (the client, the archive, the selection, the run's ledger)
and uses only list endpoints at 100 per page, the repository-wide streams, and GraphQL
where it saves requests.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract import KINDS as KINDS  # the kinds are part of the contract with Airflow
from ..errors import DestinationError, NotFound, OptionalDenied


def is_disk_full(exc: BaseException) -> bool:
    """A write failed for want of space: ENOSPC (or EDQUOT, a quota), or SQLite's
    SQLITE_FULL, or git saying so."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or \
            "database or disk is full" in str(exc)
    return "no space left on device" in str(exc).lower()


def workdir_full(where: str | Path, doing: str) -> DestinationError:
    """The error for a full work directory (exit 5, as every full disk), naming the path."""
    return DestinationError(f"No space left on the device of the work directory '{where}' "
                            f"({doing}): free space there or choose another --workdir")


@contextmanager
def scratch_file(workdir: str | Path, prefix: str, doing: str) -> Iterator[str]:
    """A temporary file under the work directory for one download, removed afterwards; a
    full disk while it is made or filled is the work directory's (exit 5), naming `doing`."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, dir=workdir)
    except OSError as e:
        if is_disk_full(e):
            raise workdir_full(workdir, doing) from None
        raise
    os.close(fd)
    try:
        yield tmp
    except OSError as e:
        if is_disk_full(e):
            raise workdir_full(tmp, doing) from None
        raise
    finally:
        os.unlink(tmp)


@dataclass
class Ledger:
    """What the run found: counts per kind and the items it skipped, with reasons."""

    counts: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, n: int = 1) -> None:
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def skip(self, item: str, reason: str) -> None:
        with self.lock:
            self.skipped.append({"item": item, "reason": reason})


@dataclass
class Job:
    client: Any  # ghvault.github.client.GitHubClient
    archive: Any  # ghvault.archive.ArchiveWriter
    kinds: frozenset[str]
    ledger: Ledger
    owner: str
    workdir: Path
    assets: Any = None  # ghvault.github.cache.AssetCopies with --state, else None
    viewer: str | None = None  # the token's own login (None for App installations)

    def wants(self, kind: str) -> bool:
        return kind in self.kinds


def keep(job: Job, entry: str, count: str | None, skip_as: str,
         read: Callable[[], Any]) -> None:
    """Keep what `read()` returns at the archive's `entry`, counting it as `count` (a list's
    items, a document as 1; None: not counted). A refusal (403 naming a missing
    permission) or a 404 goes to `skipped` as `skip_as` and the run goes on."""
    try:
        doc = read()
    except (OptionalDenied, NotFound) as e:
        job.ledger.skip(skip_as, str(e))
        return
    job.archive.add_json(entry, doc)
    if count:
        job.ledger.add(count, len(doc) if isinstance(doc, list) else 1)


def keep_lists(job: Job, base: str, lists: list[tuple[str, str, str, dict, str | None]],
               entry_of: Callable[[str], str], skip_prefix: str) -> None:
    """Each list of `lists` (kind, archive file, path under `base`, query, count name) the
    run wants, read whole (100 per page) and kept at `entry_of(file)`."""
    for kind, filename, path, params, count in lists:
        if job.wants(kind):
            keep(job, entry_of(filename), count,
                 f"{skip_prefix} {filename.removesuffix('.json')}",
                 lambda path=path, params=params: list(job.client.paginate(base + path,
                                                                           params)))
