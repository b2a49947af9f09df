"""Reading an archive back: its size, its sidecar manifest and a `zipfile.ZipFile` over it.

`open_source("s3://bucket/key.zip")` (or a path, or file:///...) gives an ArchiveSource on
top of the storage layer: `open_zip()` is a `zipfile.ZipFile` over a reader that fetches
only what zipfile asks for (storage.reader.RangeReader). On S3 one open-ended GET is kept
while reads stay sequential, so walking the entries in offset order costs a handful of
requests and about one buffer of memory; with `hashing=True` the same pass computes the
SHA-256 of the whole object.

Glacier: `ensure_readable()` looks at the object's storage class and restore state (head),
starts a restore when one is needed, and either waits for it or raises ArchiveNotReady with
the command to run again.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .contract import SIDECAR_SUFFIX
from .errors import ArchiveNotReady, ArchiveUnreadable, ConfigError
from .storage import ObjectInfo, Purpose, RangeReader, Store, open_store, parse_location
from .storage.reader import BUFFER

log = logging.getLogger("ghvault")

RESTORE_TIME = {
    ("GLACIER", "Expedited"): "1-5 minutes", ("GLACIER", "Standard"): "3-5 hours",
    ("GLACIER", "Bulk"): "5-12 hours", ("DEEP_ARCHIVE", "Standard"): "up to 12 hours",
    ("DEEP_ARCHIVE", "Bulk"): "up to 48 hours",
}


@dataclass
class ArchiveSource:
    """One archive and its sidecar manifest, wherever they are: `key` in `store`."""

    url: str  # as the user named it
    store: Store
    key: str
    info: ObjectInfo

    @property
    def size(self) -> int:
        return self.info.size

    def reader(self, hashing: bool = False) -> RangeReader:
        return self.store.open_read(self.key, self.size, hashing=hashing)

    def sidecar_bytes(self) -> bytes | None:
        """The sidecar manifest's bytes, None when there is none."""
        return self.store.get(self.key + SIDECAR_SUFFIX)

    def sidecar(self) -> dict[str, Any] | None:
        data = self.sidecar_bytes()
        if data is None:
            return None
        try:
            value = json.loads(data)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ArchiveUnreadable(f"{self.url}{SIDECAR_SUFFIX} is not a JSON object: fetch "
                                    "it again or remove it")
        return value

    def open_zip(self, hashing: bool = False) -> tuple[zipfile.ZipFile, RangeReader]:
        raw = self.reader(hashing)
        try:
            return zipfile.ZipFile(io.BufferedReader(raw, BUFFER)), raw
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raw.close()
            raise ArchiveUnreadable(f"{self.url} is not a readable zip archive ({e}): it is "
                                    "truncated or not a ghvault archive") from None

    def ensure_readable(self, *, tier: str = "Bulk", days: int = 7, wait: bool = False,
                        poll: float = 60.0, timeout: float = 72 * 3600.0,
                        command: str = "") -> None:
        """Raise ArchiveNotReady while the archive cannot be read yet (Glacier), after
        starting its restore (and its sidecar's); with `wait`, wait for them instead."""
        keys = [self.key]
        if self.store.head(self.key + SIDECAR_SUFFIX) is not None:
            keys.append(self.key + SIDECAR_SUFFIX)
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
            pending = [(k, c) for k, c in pending if self._restore_state(k) != "restored"]
        self.info = archive_info(self.store, self.key, self.url)
        log.info("%s is restored: reading it", self.url)

    def _restore_state(self, key: str) -> str:
        info = self.store.head(key)
        return (info.restore or "available") if info else "available"

    def _start_restores(self, keys: list[str], tier: str, days: int) -> list[tuple[str, str]]:
        pending = []
        for key in keys:
            info = self.store.head(key)
            if info is None:
                continue
            state = info.restore
            if state == "archived":
                if info.storage_class == "DEEP_ARCHIVE" and tier == "Expedited":
                    raise ConfigError("--tier Expedited is not available for DEEP_ARCHIVE: use "
                                      "--tier Standard or Bulk")
                self.store.request_restore(key, tier=tier, days=days)
                log.info("started restoring %s from %s (tier %s, %d days)",
                         self.store.where(key), info.storage_class, tier, days)
                state = self._restore_state(key)
            if state in ("archived", "restoring"):
                pending.append((key, info.storage_class))
        return pending


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def local_git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """git on local files only (bundles, bare repositories), for verify and restore: no
    system, global or HOME config (HOME and XDG_CONFIG_HOME point at no directory), only
    the `file` protocol (a bundle is fetched as a local file; nothing reaches the network),
    no credentials, no prompts, no pager."""
    env = {k: os.environ[k] for k in ("PATH", "TMPDIR") if k in os.environ}
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
                "HOME": os.devnull, "XDG_CONFIG_HOME": os.devnull,
                "GIT_ALLOW_PROTOCOL": "file", "GIT_TERMINAL_PROMPT": "0",
                "GIT_ASKPASS": shutil.which("false") or "/bin/false", "GIT_PAGER": "cat",
                "LC_ALL": "C"})
    if shutil.which("git") is None:
        raise ConfigError("git is not on PATH: install git (2.39 or later)")
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def open_source(text: str) -> ArchiveSource:
    """The archive `text` (ARCHIVE) names: s3://bucket/key.zip, file:///path/x.zip or a path."""
    location = parse_location(text, "ARCHIVE", kind="object")
    store = open_store(location, Purpose.READ)
    return ArchiveSource(location.shown, store, location.name,
                         archive_info(store, location.name, location.shown))


def archive_info(store: Store, key: str, url: str) -> ObjectInfo:
    """What the store says about the archive; ArchiveUnreadable when it is not there."""
    info = store.head(key)
    if info is None:
        raise ArchiveUnreadable(f"{url} does not exist: check the location (`ghvault list "
                                f"{store.where('')}` shows what is there)")
    return info


__all__ = ["ArchiveSource", "archive_info", "local_git", "open_source"]
