"""The store interface: objects under one root, an S3 key prefix or a local directory.

Keys are relative to the root and use "/" on every backend. A store is opened for one
purpose (`Purpose`), which decides how its failures reach the user: the same denied request
is a destination error while writing an archive (exit 5), an unreadable archive while
reading one (exit 9), and a configuration error while reading the state (exit 2).

Standard library only: the S3 store loads boto3 on first use.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from ghvault.errors import DestinationError
from ghvault.storage.reader import RangeReader


class Purpose(Enum):
    """What a store is used for, and so which engine error its failures become."""

    WRITE = "write"  # an archive and its sidecar (--dest): DestinationError, exit 5
    READ = "read"  # archives to verify, restore or list: ArchiveUnreadable, exit 9
    STATE = "state"  # the state between months (--state): ConfigError when it cannot be
    #                  read (exit 2), DestinationError when it cannot be saved (exit 5)


@dataclass(frozen=True)
class ObjectInfo:
    """What `head` and `list` say about one object."""

    key: str  # relative to the store's root
    size: int
    storage_class: str  # S3's (STANDARD, GLACIER, ...); LOCAL for a file
    # "available" (readable now), "archived" (Glacier, not restored), "restoring",
    # "restored"; None in a listing when only a head can tell (Glacier classes)
    restore: str | None
    last_modified: datetime  # UTC
    version_id: str | None = None
    etag: str | None = None  # S3's ETag, quotes included; None for a file


class Sink(ABC):
    """The write end of one object. Use `complete()` to publish or `abort()` to drop it;
    as a context manager it aborts when the block raises and was not completed.

    write, complete and abort run one at a time under the sink's lock: `abort()` may come
    from another thread than the writer's (a run stopping on a signal); it waits for a
    write under way, and every write after it fails. Backends implement `_write`,
    `_complete` and `_discard`, each called with the lock held."""

    where: str  # how messages name the object
    state: str  # "open", then "completed" or "aborted"
    _result: dict[str, Any] | None  # what complete() returned
    _lock: threading.RLock

    def write(self, data: bytes, /) -> int:
        """Append bytes; raises the store's error when the backend fails."""
        with self._lock:
            self._check_open()
            return self._write(data)

    def complete(self) -> dict[str, Any]:
        """Publish the object at its final key and describe what was stored."""
        with self._lock:
            if self.state == "completed" and self._result is not None:
                return self._result
            self._check_open()
            return self._complete()

    def abort(self) -> None:
        """Drop everything written; nothing appears at the final key. Idempotent, and a
        no-op after a successful complete()."""
        with self._lock:
            if self.state != "open":
                return
            self.state = "aborted"
            self._discard()

    def _check_open(self) -> None:
        if self.state != "open":
            raise DestinationError(f"The write to {self.where} is {self.state}: start a new "
                                   "one")

    @abstractmethod
    def _write(self, data: bytes) -> int:
        """Append bytes (the sink is open)."""

    @abstractmethod
    def _complete(self) -> dict[str, Any]:
        """Publish (the sink is open); set state and _result when done."""

    @abstractmethod
    def _discard(self) -> None:
        """Throw away what was written (the state is already aborted)."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()


class Store(ABC):
    """Objects under one root. Writes are atomic: an object appears at its key complete,
    or not at all."""

    purpose: Purpose

    @abstractmethod
    def where(self, key: str) -> str:
        """How messages name `key`: its s3:// URL or its local path."""

    @abstractmethod
    def check_writable(self, key: str) -> None:
        """Fail now, with the store's error, if `key` could not be written."""

    @abstractmethod
    def open_write(self, key: str, *, content_type: str = "application/octet-stream") -> Sink:
        """Start writing `key`; it appears when the sink completes."""

    @abstractmethod
    def put(self, key: str, data: bytes, *,
            content_type: str = "application/octet-stream") -> dict[str, Any]:
        """Write a small object in one atomic step; describe what was stored."""

    @abstractmethod
    def put_file(self, key: str, path: str | os.PathLike[str], *,
                 content_type: str = "application/octet-stream") -> None:
        """Write the file at `path` (any size) to `key` in one atomic step."""

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """A small object's bytes; None when there is no such object."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """The object's size, storage class, restore state, time and version; None when
        there is no such object."""

    @abstractmethod
    def open_read(self, key: str, size: int, *, hashing: bool = False) -> RangeReader:
        """A seekable reader over the `size` bytes of `key` (see RangeReader)."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in no particular order."""

    def versions(self, key: str) -> list[ObjectInfo]:
        """Every stored version of `key`, newest first, the current one included (S3 with
        bucket versioning); empty where the store keeps no versions or may not list them."""
        return []

    def request_restore(self, key: str, *, tier: str, days: int) -> None:
        """Ask for a readable copy of an archived (Glacier) object for `days` days. Only
        S3 objects can be archived; head() says so with restore == "archived"."""
        raise ValueError(f"{self.where(key)} is not in an archive storage class")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where('')!r}, {self.purpose.value})"


__all__ = ["ObjectInfo", "Purpose", "Sink", "Store"]
