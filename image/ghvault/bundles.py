"""Bundles streamed from git straight into the archive: never a file on disk.

`stream_bundle(git, mirror, consume)` runs `git bundle create - --all` in a mirror and
hands its stdout to `consume` (the archive copies it into an entry as it comes). The
stream checks the bundle on the way: git's exit status, the header's refs against the
mirror's, and the pack's trailing SHA-1 against the pack's bytes; a failed check raises
GitError from the final read, so the archive drops the entry instead of keeping it short.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from typing import IO

from .git import Git, GitError, Mirror, _cause

BUNDLE_CHUNK = 1 << 20
PACK_TRAILER = 20  # a pack ends with the SHA-1 of everything before it
MAX_HEADER = 64 << 20


class BundleParser:
    """A git bundle's bytes, fed in chunks: keeps its header (the lines before the blank
    line) and hashes its pack on the way, so that `pack_ok()` says whether the pack ends
    with the SHA-1 of its content. Used while streaming a bundle into the archive and by
    `ghvault verify`."""

    def __init__(self) -> None:
        self.header = bytearray()
        self.in_pack = False
        self.header_too_long = False
        self._sha = hashlib.sha1(usedforsecurity=False)
        self._start = b""
        self._tail = b""

    def feed(self, data: bytes) -> None:
        if not self.in_pack:
            if self.header_too_long:
                return
            self.header += data
            end = self.header.find(b"\n\n")
            if end < 0:
                self.header_too_long = len(self.header) > MAX_HEADER
                return
            data = bytes(self.header[end + 2:])
            del self.header[end + 2:]
            self.in_pack = True
        if len(self._start) < 4:
            self._start += data[:4 - len(self._start)]
        joined = self._tail + data
        cut = max(0, len(joined) - PACK_TRAILER)
        self._sha.update(joined[:cut])
        self._tail = joined[cut:]

    def has_header(self) -> bool:
        return bool(re.match(rb"^# v[23] git bundle\n", bytes(self.header[:20])))

    def pack_ok(self) -> bool:
        return self._start == b"PACK" and self._tail == self._sha.digest()


def stream_bundle(git: Git, mirror: Mirror, consume: Callable[[IO[bytes]], object]) -> bool:
    """`git bundle create - --all` in the mirror, handed to `consume` as a stream that it
    reads until EOF. False (and `consume` not called) for an empty repository; GitError
    when the bundle is not sound or was not read to its end."""
    if mirror.empty:
        return False
    stream = _BundleStream(git, mirror)
    try:
        consume(stream)
        if not stream.done:
            raise GitError(f"the bundle of {stream.what} was not read to its end")
    finally:
        stream.close()
    return True


class _BundleStream:
    """The stdout of `git bundle create - --all`, read through and checked on the way."""

    def __init__(self, git: Git, mirror: Mirror):
        self.git, self.mirror = git, mirror
        self.what = mirror.url or str(mirror.path)
        self.stderr = tempfile.TemporaryFile()  # never a pipe: git cannot block on it
        try:
            self.proc = subprocess.Popen(
                ["git", "bundle", "create", "-", "--all"], cwd=mirror.path, env=git.env(),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr,
                start_new_session=True)
        except FileNotFoundError:
            self.stderr.close()
            raise GitError("git is not on PATH: install git (2.39 or later)") from None
        self.timer = threading.Timer(git.timeout, self._kill)
        self.timer.daemon = True
        self.timer.start()
        self.timed_out = False
        self.bundle = BundleParser()
        self.done = False
        # Read the first chunk now: git counts and orders objects before it writes the
        # pack, and the consumer (which may hold the archive's lock) need not wait for it.
        self.pending = bytearray(self._read_raw())

    def _kill(self) -> None:
        self.timed_out = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _read_raw(self) -> bytes:
        data = self.proc.stdout.read(BUNDLE_CHUNK)  # type: ignore[union-attr]
        if data:
            self._feed(data)
        return data

    def _feed(self, data: bytes) -> None:
        self.bundle.feed(data)
        if self.bundle.header_too_long:
            raise self._error("the bundle's header never ends")

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all that is left for a negative size); b"" at the end, once
        the bundle has passed its checks (GitError otherwise)."""
        while not self.done and (size < 0 or len(self.pending) < max(size, 1)):
            data = self._read_raw()
            if not data:
                self._finish()
                break
            self.pending += data
            if size >= 0:
                break  # hand over what we have rather than wait for more
        if size < 0 or size >= len(self.pending):
            data, self.pending = bytes(self.pending), bytearray()
        else:
            data = bytes(self.pending[:size])
            del self.pending[:size]
        return data

    def _finish(self) -> None:
        self.done = True
        code = self.proc.wait()
        self.timer.cancel()
        if self.timed_out:
            raise GitError(f"`git bundle create` of {self.what} did not finish within "
                           f"{self.git.timeout:.0f} s: raise the git timeout")
        if code:
            self.stderr.seek(0)
            cause = _cause(self.git.scrub(self.stderr.read().decode("utf-8", "replace")))
            raise self._error(f"`git bundle create` failed: {cause}")
        if not self.bundle.has_header():
            raise self._error("no bundle header")
        lines = bytes(self.bundle.header).decode("utf-8", "replace").splitlines()
        heads = {}
        for line in lines[1:]:
            if line and line[0] not in "-@":
                sha, _, ref = line.partition(" ")
                heads[ref] = sha
        heads.pop("HEAD", None)
        if heads != self.git.refs(self.mirror.path):
            raise self._error(f"the bundle lists {len(heads)} refs where the mirror has "
                              f"{len(self.mirror.refs)}")
        if not self.bundle.pack_ok():
            raise self._error("its pack's checksum does not match its content")

    def _error(self, problem: str) -> GitError:
        return GitError(f"bundle of {self.what} is not sound ({problem}): check the disk "
                        "and run the backup again")

    def close(self) -> None:
        self.timer.cancel()
        if self.proc.poll() is None:
            self._kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr.close()
