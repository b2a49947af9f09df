"""The local store: files under a directory, each written beside its final name and renamed
into place, so a file appears complete or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from ghvault.errors import DestinationError
from ghvault.storage.destination import Destination
from ghvault.storage.failures import file_error
from ghvault.storage.reader import RangeReader
from ghvault.storage.store import ObjectInfo, Purpose, Sink, Store

COPY_CHUNK = 1 << 20


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (best effort where directories can't be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


PARTIAL_MARK = ".partial-"


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{PARTIAL_MARK}{os.getpid()}")


def remove_stale_partials(path: Path) -> None:
    """Remove the partial files of `path` that a killed writer left (`.<name>.partial-<pid>`
    whose process is gone): a SIGKILL gives no chance to clean up, the next write does."""
    prefix = f".{path.name}{PARTIAL_MARK}"
    try:
        names = [n for n in os.listdir(path.parent) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        pid = name[len(prefix):]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # its writer may still be at work
        except ProcessLookupError:
            pass
        except OSError:
            continue  # another user's process: alive
        with contextlib.suppress(OSError):
            (path.parent / name).unlink()


def write_atomically(path: Path, fill: Callable[[BinaryIO], object], purpose: Purpose) -> None:
    """`fill(file)` writes a partial file beside `path`; it is fsynced and renamed to
    `path`, the directories above created first."""
    tmp = partial_path(path)
    remove_stale_partials(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # the partial file may never have been made
            tmp.unlink()
        raise file_error(exc, path, purpose, "write") from exc
    fsync_directory(path.parent)


class LocalStore(Store):
    """Files under the directory `root` (a local or mounted filesystem). Writes create the
    directories a key needs; `check_writable` insists they exist (a typo in --dest should
    not make a new tree)."""

    def __init__(self, root: str | os.PathLike[str], *, purpose: Purpose = Purpose.READ) -> None:
        self.root = Path(os.path.abspath(root))
        self.purpose = purpose

    def path(self, key: str) -> Path:
        return self.root / key if key else self.root

    def where(self, key: str) -> str:
        return str(self.path(key))

    def check_writable(self, key: str) -> None:
        path = self.path(key)
        parent = path.parent
        if not parent.is_dir():
            raise DestinationError(f"Directory '{parent}' does not exist: create it or fix "
                                   "--dest")
        if path.is_dir():
            raise DestinationError(f"'{path}' is a directory: --dest must name the zip "
                                   "file to write")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise DestinationError(f"Directory '{parent}' is not writable: fix its "
                                   "permissions or choose another --dest")

    def open_write(self, key: str, *, content_type: str = "application/octet-stream") -> LocalSink:
        path = self.path(key)
        try:  # keys have no directories to create first, as on S3
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise file_error(exc, path, self.purpose, "create") from exc
        return LocalSink(path, self.purpose)

    def put(self, key: str, data: bytes, *,
            content_type: str = "application/octet-stream") -> dict[str, Any]:
        path = self.path(key)
        write_atomically(path, lambda f: f.write(data), self.purpose)
        return {"path": str(path), "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    def put_file(self, key: str, path: str | os.PathLike[str], *,
                 content_type: str = "application/octet-stream") -> None:
        def copy(out: BinaryIO) -> None:
            with open(path, "rb") as f:
                shutil.copyfileobj(f, out, COPY_CHUNK)
        write_atomically(self.path(key), copy, self.purpose)

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        return path.read_bytes() if path.is_file() else None

    def head(self, key: str) -> ObjectInfo | None:
        path = self.path(key)
        return info_of(key, path.stat()) if path.is_file() else None

    def open_read(self, key: str, size: int, *, hashing: bool = False) -> LocalReader:
        return LocalReader(self.path(key), size, hashing)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Files under the root whose relative path starts with `prefix`, but for writes
        still under way (partial files, as S3 lists no incomplete upload). A root that is
        not a directory raises NotADirectoryError (S3 has no such thing to miss)."""
        if not self.root.is_dir():
            raise NotADirectoryError(f"{self.root} is not a directory")
        top = self.path(prefix.rpartition("/")[0])
        for directory, _, files in os.walk(top):
            for name in files:
                if name.startswith(".") and PARTIAL_MARK in name:
                    continue
                path = Path(directory) / name
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix) and path.is_file():
                    yield info_of(key, path.stat())


def info_of(key: str, stat: os.stat_result) -> ObjectInfo:
    return ObjectInfo(key, stat.st_size, "LOCAL", "available",
                      datetime.fromtimestamp(stat.st_mtime, UTC))


class LocalSink(Sink):
    """Writes `.<name>.partial-<pid>` beside the target; complete() fsyncs and renames it.
    `abort()` may come from another thread than the writer's (a run stopping on a
    signal): it waits for a write under way, and every write after it fails."""

    def __init__(self, path: Path, purpose: Purpose = Purpose.WRITE) -> None:
        remove_stale_partials(path)
        self.path = path
        self.purpose = purpose
        self.partial = partial_path(path)
        self.where = f"'{path}'"
        self.size = 0
        self.state = "open"  # -> completed | aborted
        self._digest = hashlib.sha256()
        self._result: dict[str, Any] | None = None
        self._lock = threading.RLock()
        try:
            self._file = open(self.partial, "wb")  # closed by complete() or abort()
        except OSError as exc:
            self.state = "aborted"
            raise file_error(exc, self.path, purpose, "create") from exc

    def _write(self, data: bytes) -> int:
        try:
            self._file.write(data)
        except OSError as exc:
            self.abort()
            raise file_error(exc, self.path, self.purpose, "write") from exc
        self._digest.update(data)
        self.size += len(data)
        return len(data)

    def _complete(self) -> dict[str, Any]:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.partial, self.path)
        except OSError as exc:
            self.abort()
            raise file_error(exc, self.path, self.purpose, "complete") from exc
        self.state = "completed"
        fsync_directory(self.path.parent)
        self._result = {"size": self.size, "sha256": self._digest.hexdigest()}
        return self._result

    def _discard(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
        self.partial.unlink(missing_ok=True)


class LocalReader(RangeReader):
    """Ranged reads of one file (pread: no shared file position)."""

    def __init__(self, path: Path, size: int, hashing: bool = False) -> None:
        super().__init__(size, hashing)
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)

    def _read_at(self, pos: int, n: int) -> bytes:
        parts = []
        while n > 0:
            chunk = os.pread(self.fd, n, pos)
            if not chunk:
                break
            parts.append(chunk)
            pos += len(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()

    def __str__(self) -> str:
        return str(self.path)


class LocalDestination(Destination):
    """An archive written as a file on a local (or mounted) filesystem."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(os.path.abspath(path))
        super().__init__(LocalStore(self.path.parent, purpose=Purpose.WRITE), self.path.name,
                         self.path.as_uri())


__all__ = ["LocalDestination", "LocalReader", "LocalSink", "LocalStore"]
