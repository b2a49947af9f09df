"""A repository's issues by number, kept on disk for the length of its collection.

With --state the issue events of last month are refreshed with this run's copy of their
issue (repo_meta.events_to_jsonl), so every issue read must stay at hand until the events
are written. Held in memory, that is a whole repository's issues per collector thread:
memory would grow with the largest repository. An SQLite file in the work directory keeps
only the issue being looked up in memory.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from . import is_disk_full, workdir_full

BATCH = 500  # rows per transaction while the issue list is read


class IssueTexts:
    """number -> compact JSON text, in a scratch SQLite file removed by `close()`."""

    def __init__(self, workdir: Path):
        fd, self.path = tempfile.mkstemp(prefix="issues-", suffix=".sqlite", dir=workdir)
        os.close(fd)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")  # scratch: no journal, no fsync
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE issues (number INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        self.pending = 0

    def __setitem__(self, number: int, text: str) -> None:
        try:
            if self.pending == 0:
                self.db.execute("BEGIN")
            self.db.execute("INSERT OR REPLACE INTO issues VALUES (?, ?)", (number, text))
            self.pending += 1
            if self.pending >= BATCH:
                self.flush()
        except sqlite3.Error as e:
            if is_disk_full(e):
                raise workdir_full(self.path, "keeping a repository's issues") from None
            raise

    def flush(self) -> None:
        if self.pending:
            self.db.execute("COMMIT")
            self.pending = 0

    def get(self, number: int) -> str | None:
        self.flush()
        row = self.db.execute("SELECT text FROM issues WHERE number = ?", (number,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self.db.close()
        Path(self.path).unlink(missing_ok=True)
