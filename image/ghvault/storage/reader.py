"""A seekable, read-only stream over ranged reads, hashing the whole object in one pass.

zipfile asks for what it needs (the central directory, then each entry's bytes); a reader
fetches only that. With `hashing=True` it also computes the SHA-256 of the whole object in
the same pass: bytes are hashed as they are first read in order, small gaps (zip data
descriptors) are filled as reads move past them, and `finish_sha256()` reads whatever was
never read (the central directory, mostly). The object is read once, never held in memory.
"""

from __future__ import annotations

import hashlib
import io
from abc import abstractmethod
from typing import Any

from ghvault.errors import ArchiveUnreadable

BUFFER = 1 << 20  # bytes a reader's consumers buffer by, and finish_sha256 reads at once
GAP_FILL = 1 << 20  # a forward jump up to this size is read through (and hashed)


class TruncatedRead(ArchiveUnreadable):
    """The object ended before its size: it changed while being read, or the connection
    broke. An archive is then unreadable (exit 9), not damaged: reading it again may work.
    (Not an EOFError, which verify and restore take for a damaged entry.)"""


class RangeReader(io.RawIOBase):
    """A seekable raw stream over `_read_at(pos, n)`, optionally hashing the whole object."""

    def __init__(self, size: int, hashing: bool = False) -> None:
        super().__init__()
        self.size = size
        self.pos = 0
        self.digest = hashlib.sha256() if hashing else None
        self.hashed = 0  # bytes [0, hashed) went into the digest
        self.bytes_read = 0

    @abstractmethod
    def _read_at(self, pos: int, n: int) -> bytes:
        """Up to n bytes at pos (fewer only at the end of the object)."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise OSError(f"negative seek position {base + offset}")
        self.pos = base + offset
        return self.pos

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), max(0, self.size - self.pos))
        if n == 0:
            return 0
        if self.digest is not None and self.hashed < self.pos <= self.hashed + GAP_FILL:
            self._hash_from(self.hashed, self._fetch(self.hashed, self.pos - self.hashed))
        data = self._fetch(self.pos, n)
        if self.digest is not None and self.pos <= self.hashed < self.pos + len(data):
            self._hash_from(self.pos, data)
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def _fetch(self, pos: int, n: int) -> bytes:
        data = self._read_at(pos, n)
        if len(data) != n:
            raise TruncatedRead(f"{self} ended after {pos + len(data)} of {self.size} "
                                "bytes: the object changed or the connection broke, run "
                                "the command again")
        self.bytes_read += n
        return data

    def _hash_from(self, pos: int, data: bytes) -> None:
        assert self.digest is not None
        self.digest.update(memoryview(data)[self.hashed - pos:])
        self.hashed = pos + len(data)

    def finish_sha256(self) -> str:
        """The SHA-256 of the whole object, reading what was never read in order."""
        assert self.digest is not None, "the reader was opened without hashing"
        while self.hashed < self.size:
            self._hash_from(self.hashed, self._fetch(
                self.hashed, min(BUFFER, self.size - self.hashed)))
        return self.digest.hexdigest()


__all__ = ["BUFFER", "GAP_FILL", "RangeReader", "TruncatedRead"]
