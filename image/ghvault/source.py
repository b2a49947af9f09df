"""Reading an archive back: from S3 (ranged GETs) or a local file, as a seekable stream.

`open_source("s3://bucket/key.zip")` (or a path, or file:///...) gives an ArchiveSource:
its size, its sidecar manifest, and `open_zip()`, a `zipfile.ZipFile` over a reader that
fetches only what zipfile asks for. S3 is read through one open-ended GET that is kept while
reads stay sequential (a seek elsewhere starts another), so walking the entries in offset
order costs a handful of requests and about one buffer of memory.

With `hashing=True` the reader also computes the SHA-256 of the whole object in the same
pass: bytes are hashed as they are first read in order, small gaps (zip data descriptors)
are filled as reads move past them, and `finish_sha256()` reads whatever was never read
(the central directory, mostly). The archive is read once, never held in memory.

Glacier: `ensure_readable()` looks at the object's storage class and `Restore` header
(head_object), starts a restore when one is needed, and either waits for it or raises
ArchiveNotReady with the command to run again.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import time
import zipfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import ArchiveNotReady, ArchiveUnreadable, ConfigError

log = logging.getLogger("ghvault")

BUFFER = 1 << 20  # bytes zipfile's reads are buffered by
GAP_FILL = 1 << 20  # a forward jump up to this size is read through (and hashed)
SIDECAR = ".manifest.json"
NEEDS_RESTORE = ("GLACIER", "DEEP_ARCHIVE")
TIERS = ("Bulk", "Standard", "Expedited")
RESTORE_TIME = {
    ("GLACIER", "Expedited"): "1-5 minutes", ("GLACIER", "Standard"): "3-5 hours",
    ("GLACIER", "Bulk"): "5-12 hours", ("DEEP_ARCHIVE", "Standard"): "up to 12 hours",
    ("DEEP_ARCHIVE", "Bulk"): "up to 48 hours",
}
ARCHIVE_HELP = "ARCHIVE must be s3://bucket/key.zip, file:///path/x.zip or a path"


class RangeReader(io.RawIOBase):
    """A seekable, read-only raw stream over `_read_at(pos, n)`, optionally hashing the
    whole object in one pass (see the module docstring)."""

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
            raise ArchiveUnreadable(f"{self} ended after {pos + len(data)} of {self.size} "
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


class LocalReader(RangeReader):
    def __init__(self, path: Path, size: int, hashing: bool) -> None:
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


class S3Reader(RangeReader):
    """Reads through one open-ended ranged GET while reads are sequential."""

    def __init__(self, client: Any, bucket: str, key: str, size: int, hashing: bool,
                 version_id: str | None = None) -> None:
        super().__init__(size, hashing)
        self.client, self.bucket, self.key, self.version_id = client, bucket, key, version_id
        self.body: Any = None
        self.body_pos = 0
        self.requests = 0

    def _open(self, pos: int) -> None:
        self._drop()
        args = {"Bucket": self.bucket, "Key": self.key, "Range": f"bytes={pos}-"}
        if self.version_id:
            args["VersionId"] = self.version_id
        self.requests += 1
        self.body = self.client.get_object(**args)["Body"]
        self.body_pos = pos

    def _drop(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None

    def _read_at(self, pos: int, n: int) -> bytes:
        if self.body is None or not 0 <= pos - self.body_pos <= GAP_FILL:
            self._open(pos)
        if pos > self.body_pos:  # skip forward on the open stream
            self.body.read(pos - self.body_pos)
            self.body_pos = pos
        out = bytearray()
        for attempt in range(3):
            while len(out) < n:
                chunk = self.body.read(n - len(out))
                if not chunk:
                    break
                out += chunk
                self.body_pos += len(chunk)
            if len(out) == n or self.body_pos >= self.size or attempt == 2:
                break
            self._open(self.body_pos)  # the connection ended early: carry on from here
        return bytes(out)

    def close(self) -> None:
        self._drop()
        super().close()

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass
class ArchiveSource(ABC):
    """One archive and its sidecar manifest, wherever they are."""

    url: str

    @property
    @abstractmethod
    def size(self) -> int: ...

    @abstractmethod
    def reader(self, hashing: bool = False) -> RangeReader: ...

    @abstractmethod
    def sidecar_bytes(self) -> bytes | None:
        """The sidecar manifest's bytes, None when there is none."""

    def ensure_readable(self, **_: Any) -> None:  # noqa: B027 - only S3 objects wait
        """Raise ArchiveNotReady while the archive cannot be read yet (Glacier)."""

    def sidecar(self) -> dict[str, Any] | None:
        data = self.sidecar_bytes()
        if data is None:
            return None
        try:
            value = json.loads(data)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ArchiveUnreadable(f"{self.url}{SIDECAR} is not a JSON object: fetch it "
                                    "again or remove it")
        return value

    def open_zip(self, hashing: bool = False) -> tuple[zipfile.ZipFile, RangeReader]:
        raw = self.reader(hashing)
        try:
            return zipfile.ZipFile(io.BufferedReader(raw, BUFFER)), raw
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raw.close()
            raise ArchiveUnreadable(f"{self.url} is not a readable zip archive ({e}): it is "
                                    "truncated or not a ghvault archive") from None


@dataclass
class LocalSource(ArchiveSource):
    path: Path = Path()

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def reader(self, hashing: bool = False) -> RangeReader:
        return LocalReader(self.path, self.size, hashing)

    def sidecar_bytes(self) -> bytes | None:
        side = self.path.with_name(self.path.name + SIDECAR)
        return side.read_bytes() if side.is_file() else None


@dataclass
class S3Source(ArchiveSource):
    bucket: str = ""
    key: str = ""
    client: Any = None
    head: dict[str, Any] | None = None

    def head_object(self, key: str | None = None) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=key or self.key)
        except ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                return None
            raise s3_error(e, self.url) from None

    def check(self) -> None:
        self.head = self.head_object()
        if self.head is None:
            prefix = self.key.rsplit("/", 1)[0] + "/" if "/" in self.key else ""
            raise ArchiveUnreadable(f"{self.url} does not exist: check the key (`ghvault list "
                                    f"s3://{self.bucket}/{prefix}` shows what is there)")

    @property
    def size(self) -> int:
        assert self.head is not None
        return int(self.head["ContentLength"])

    def reader(self, hashing: bool = False) -> RangeReader:
        return S3Reader(self.client, self.bucket, self.key, self.size, hashing)

    def sidecar_bytes(self) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket,
                                          Key=self.key + SIDECAR)["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise s3_error(e, self.url + SIDECAR) from None

    def ensure_readable(self, *, tier: str = "Bulk", days: int = 7, wait: bool = False,
                        poll: float = 60.0, timeout: float = 72 * 3600.0,
                        command: str = "") -> None:
        keys = [self.key]
        if self.head_object(self.key + SIDECAR) is not None:
            keys.append(self.key + SIDECAR)
        started = time.monotonic()
        pending = self._start_restores(keys, tier, days)
        if not pending:
            return
        cls = pending[0][1]
        eta = RESTORE_TIME.get((cls, tier), "hours")
        if not wait:
            raise ArchiveNotReady(
                f"{self.url} is in {cls} storage and is not restored yet; a {tier} restore "
                f"for {days} days is under way (typically {eta}): run `{command}` again when "
                "it completes, or add --wait")
        while pending:
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                raise ArchiveNotReady(f"{self.url} was still being restored from {cls} after "
                                      f"{elapsed / 3600:.1f} h: run `{command}` again later")
            log.info("waiting for the %s restore of %s from %s (%s so far; typically %s)",
                     tier, self.url, cls, _duration(elapsed), eta)
            time.sleep(poll)
            pending = [(k, c) for k, c in pending
                       if restore_state(self.head_object(k) or {}) != "restored"]
        self.head = self.head_object()
        log.info("%s is restored: reading it", self.url)

    def _start_restores(self, keys: list[str], tier: str, days: int) -> list[tuple[str, str]]:
        from botocore.exceptions import ClientError

        pending = []
        for key in keys:
            head = self.head_object(key) or {}
            state = restore_state(head)
            cls = head.get("StorageClass", "STANDARD")
            if state == "archived":
                if cls == "DEEP_ARCHIVE" and tier == "Expedited":
                    raise ConfigError("--tier Expedited is not available for DEEP_ARCHIVE: use "
                                      "--tier Standard or Bulk")
                request: dict[str, Any] = {"Days": days,
                                           "GlacierJobParameters": {"Tier": tier}}
                try:
                    self.client.restore_object(Bucket=self.bucket, Key=key,
                                               RestoreRequest=request)
                    log.info("started restoring s3://%s/%s from %s (tier %s, %d days)",
                             self.bucket, key, cls, tier, days)
                except ClientError as e:
                    if e.response.get("Error", {}).get("Code") != "RestoreAlreadyInProgress":
                        raise s3_error(e, f"s3://{self.bucket}/{key}") from None
                state = restore_state(self.head_object(key) or {})
            if state in ("archived", "restoring"):
                pending.append((key, cls))
        return pending


def restore_state(head: dict[str, Any]) -> str:
    """"available" (no restore needed), "archived", "restoring" or "restored"."""
    if head.get("StorageClass") not in NEEDS_RESTORE:
        return "available"
    restore = head.get("Restore") or ""
    if 'ongoing-request="true"' in restore:
        return "restoring"
    if 'ongoing-request="false"' in restore:
        return "restored"
    return "archived"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def s3_error(exc: Exception, what: str) -> ArchiveUnreadable:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("AccessDenied", "403"):
            return ArchiveUnreadable(f"access to {what} is denied: grant s3:GetObject and "
                                     "s3:RestoreObject on it to these credentials")
        if code == "NoSuchBucket":
            return ArchiveUnreadable(f"the bucket of {what} does not exist: check the URL")
        return ArchiveUnreadable(f"S3 refused to read {what} ({code}): check the URL and "
                                 "the AWS configuration")
    return ArchiveUnreadable(f"cannot read {what} ({exc}): check the network and AWS "
                             "configuration")


def local_git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """git on local files only (bundles, bare repositories): no user or system config, no
    network credentials, no prompts."""
    env = {k: os.environ[k] for k in ("PATH", "TMPDIR") if k in os.environ}
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
                "HOME": str(cwd), "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    if shutil.which("git") is None:
        raise ConfigError("git is not on PATH: install git (2.39 or later)")
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def open_source(text: str) -> ArchiveSource:
    """The archive `text` names: s3://bucket/key.zip, file:///path/x.zip or a path."""
    if not text or not text.strip():
        raise ConfigError(f"{ARCHIVE_HELP} (it is empty)")
    text = text.strip()
    scheme = (re.match(r"([A-Za-z][A-Za-z0-9+.-]+)://", text) or [None, ""])[1].lower()
    if scheme == "s3":
        bucket, _, key = text[5:].partition("/")
        if not bucket or not key or key.endswith("/"):
            raise ConfigError(f"{ARCHIVE_HELP}: {text!r} names no object key")
        from .storage.s3 import s3_client

        source = S3Source(text, bucket=bucket, key=key, client=s3_client())
        source.check()  # transport and credential errors: see cli.s3_failures_named
        return source
    if scheme and scheme != "file":
        raise ConfigError(f"{ARCHIVE_HELP}, not {text!r}")
    path = Path(unquote(urlsplit(text).path) if scheme else os.path.expanduser(text))
    if not path.is_file():
        raise ArchiveUnreadable(f"archive {str(path)!r} does not exist or is not a file: "
                                "check the path")
    return LocalSource(str(path), path=path.absolute())
