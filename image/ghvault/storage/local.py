"""Local destination: the archive written beside its final name, renamed into place."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import Any

from ghvault.errors import DestinationError
from ghvault.storage import Destination, Sink, check_suffix


def file_error(exc: OSError, path: Path, action: str) -> DestinationError:
    """One sentence for a failed file operation: the cause and the fix."""
    if exc.errno == errno.ENOSPC:
        return DestinationError(f"No space left on the device of '{path}' ({action}): free "
                                "space or choose another --dest")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DestinationError(f"Permission denied writing '{path}' ({action}): fix the "
                                "directory's permissions or choose another --dest")
    if exc.errno == errno.ENOENT:
        return DestinationError(f"Directory '{path.parent}' does not exist: create it or fix "
                                "--dest")
    return DestinationError(f"Cannot write '{path}' ({action}: {exc.strerror or exc}): check "
                            "the path or choose another --dest")


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


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a partial file, fsync it and rename it to `path`."""
    tmp = partial_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise file_error(exc, path, "write") from exc
    fsync_directory(path.parent)


class LocalDestination(Destination):
    """A zip file on a local (or mounted) filesystem."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(os.path.abspath(path))
        self.url = self.path.as_uri()

    def check(self) -> None:
        parent = self.path.parent
        if not parent.is_dir():
            raise DestinationError(f"Directory '{parent}' does not exist: create it or fix "
                                   "--dest")
        if self.path.is_dir():
            raise DestinationError(f"'{self.path}' is a directory: --dest must name the zip "
                                   "file to write")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise DestinationError(f"Directory '{parent}' is not writable: fix its "
                                   "permissions or choose another --dest")

    def open(self) -> LocalSink:
        return LocalSink(self.path)

    def put_sidecar(self, name_suffix: str, data: bytes) -> dict[str, Any]:
        target = self.path.with_name(self.path.name + check_suffix(name_suffix))
        write_atomically(target, data)
        return {"path": str(target), "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest()}


class LocalSink(Sink):
    """Writes `.<name>.partial-<pid>` beside the target; complete() fsyncs and renames it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = partial_path(path)
        self.size = 0
        self.state = "open"  # -> completed | aborted
        self._digest = hashlib.sha256()
        self._result: dict[str, Any] | None = None
        try:
            self._file = open(self.partial, "wb")  # closed by complete() or abort()
        except OSError as exc:
            self.state = "aborted"
            raise file_error(exc, self.path, "create") from exc

    def write(self, data: bytes, /) -> int:
        if self.state != "open":
            raise DestinationError(f"The write to '{self.path}' is {self.state}: start a new "
                                   "one")
        try:
            self._file.write(data)
        except OSError as exc:
            self.abort()
            raise file_error(exc, self.path, "write") from exc
        self._digest.update(data)
        self.size += len(data)
        return len(data)

    def complete(self) -> dict[str, Any]:
        if self.state == "completed" and self._result is not None:
            return self._result
        if self.state != "open":
            raise DestinationError(f"The write to '{self.path}' was aborted: start a new one")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.partial, self.path)
        except OSError as exc:
            self.abort()
            raise file_error(exc, self.path, "complete") from exc
        self.state = "completed"
        fsync_directory(self.path.parent)
        self._result = {"size": self.size, "sha256": self._digest.hexdigest()}
        return self._result

    def abort(self) -> None:
        if self.state != "open":
            return
        self.state = "aborted"
        try:
            self._file.close()
        except OSError:
            pass
        self.partial.unlink(missing_ok=True)
