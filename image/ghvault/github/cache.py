"""HTTP validators and bodies kept between months, so unchanged lists cost a free 304.

During a run the cache is an SQLite file in the work directory (bodies zlib-compressed),
so memory does not grow with the account: only the entry in hand is ever in memory. It
travels between months as one gzip'd JSON Lines object per owner, streamed in at the
start of a run and out at the end, entry by entry:
`{state}/{owner}/http-cache.jsonl.gz` in a local directory or an S3 prefix (kept in S3
Standard, outside the Glacier-transitioned archive prefix). Its first line is
`{"format": 2}`, then one `{"key": ..., "entry": {...}}` per line (an HTTP entry is
`{"etag", "link", "body"}`; collectors keep their own memos the same way). Only what this
run used is written back, so entries of deleted repositories age out by themselves.

State written by earlier versions (format 1: one JSON document,
`{state}/{owner}/http-cache.json.gz`) is read when no format-2 state exists yet: that
one document is loaded whole, as the earlier version did, and the next save writes
format 2 beside it (the old object is left alone and no longer read). Anything
unreadable, or of an unknown format, is logged and ignored: the run then makes plain
requests, as a first month does.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from ..collect import is_disk_full, workdir_full
from ..errors import GhvaultError
from ..storage import Purpose, TruncatedRead, open_store, parse_location
from ..storage.failures import state_error

log = logging.getLogger("ghvault.state")
FORMAT = 2
STATE_NAME = "http-cache{part}.jsonl.gz"  # part: contract.part_suffix of the run's shard
OLD_STATE_NAME = "http-cache.json.gz"  # format 1
BATCH = 200  # entries per SQLite transaction while loading
COPY_CHUNK = 1 << 20
SHA_SUFFIX = ".sha256"  # beside an asset's copy: the SHA-256 it had when kept
_SHA256 = re.compile(r"[0-9a-f]{64}")


class HttpCache:
    """JSON entries by key (a URL's path and query), in an SQLite file at `path`, each
    stored as zlib-compressed JSON: for a response its ETag, Link header and body.

    Thread-safe. `get` and `put` mark an entry as used; `used()` yields only those.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.lock = threading.Lock()
        self.closed = False
        with self._space("creating"):
            self.db = sqlite3.connect(str(self.path), check_same_thread=False,
                                      isolation_level=None)
            # A scratch file, rebuilt from the state each run: no journal, no fsync.
            self.db.execute("PRAGMA journal_mode=OFF")
            self.db.execute("PRAGMA synchronous=OFF")
            self.db.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, "
                            "data BLOB NOT NULL, used INTEGER NOT NULL)")

    @staticmethod
    def key(url: str) -> str:
        parts = urlsplit(url)  # host and port may change between runs; the path does not
        return parts.path + ("?" + parts.query if parts.query else "")

    def get(self, url: str) -> dict[str, Any] | None:
        """The entry, or None; a damaged one (the state's lines are only parsed here, when
        used) is dropped and is None too: the run then makes a plain request."""
        k = self.key(url)
        with self.lock, self._space("reading"):
            row = self.db.execute("SELECT data FROM entries WHERE key = ?", (k,)).fetchone()
            if row is None:
                return None
        try:
            entry = json.loads(zlib.decompress(row[0]))
        except (ValueError, zlib.error):
            entry = None
        with self.lock, self._space("reading"):
            if isinstance(entry, dict):
                self.db.execute("UPDATE entries SET used = 1 WHERE key = ?", (k,))
                return entry
            log.warning("the state's entry for %s is damaged: requesting it afresh", k)
            self.db.execute("DELETE FROM entries WHERE key = ?", (k,))
        return None

    def put(self, url: str, entry: dict[str, Any]) -> None:
        row = (self.key(url), _pack(entry))
        with self.lock, self._space("writing"):
            self.db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, 1)", row)

    def drop(self, urls: Iterable[str]) -> None:
        """Remove entries (kept out of the next state even when this run read them)."""
        keys = [(self.key(u),) for u in urls]
        with self.lock, self._space("writing"):
            if self.closed:  # a stopped run's list, abandoned late: its scratch file is gone
                return
            self.db.executemany("DELETE FROM entries WHERE key = ?", keys)

    @contextlib.contextmanager
    def _space(self, doing: str) -> Iterator[None]:
        """A full disk under the cache file as the engine's error naming it (exit 5)."""
        try:
            yield
        except (sqlite3.Error, OSError) as e:
            # A write cut short by a full disk can also leave SQLite's file "malformed" for
            # the next statement: on a full disk that is the full disk, not a bug.
            if is_disk_full(e) or (isinstance(e, sqlite3.DatabaseError)
                                   and _nearly_full(self.path.parent)):
                raise workdir_full(self.path, f"{doing} the HTTP cache") from None
            raise

    def __len__(self) -> int:
        with self.lock, self._space("reading"):
            return self.db.execute("SELECT count(*) FROM entries").fetchone()[0]

    # between months -----------------------------------------------------------------------

    def load_entries(self, entries: Iterable[tuple[str, dict[str, Any] | bytes]]) -> int:
        """Add earlier entries (not yet used by this run), each a dict or its JSON text
        (checked when used: see get); returns how many."""
        n, batch = 0, []
        for key, e in entries:
            if not isinstance(key, str) or not isinstance(e, (dict, bytes)):
                continue
            batch.append((key, _pack(e)))
            if len(batch) >= BATCH:
                n += self._insert_old(batch)
                batch = []
        return n + self._insert_old(batch)

    def _insert_old(self, rows: list[tuple]) -> int:
        if not rows:
            return 0
        with self.lock, self._space("loading the state into"):
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, 0)", rows)
            self.db.execute("COMMIT")
        return len(rows)

    def read_jsonl(self, source: IO[bytes]) -> int:
        """Entries from a format-2 state (gzip'd JSON Lines), streamed from `source`."""
        lines = io.BufferedReader(gzip.GzipFile(fileobj=source, mode="rb"))  # type: ignore
        head = json.loads(lines.readline() or b"{}")
        if head.get("format") != FORMAT:
            log.warning("state has format %r where %d was expected; starting without it",
                        head.get("format"), FORMAT)
            return 0

        def entries() -> Iterator[tuple[str, dict[str, Any] | bytes]]:
            for line in lines:
                if (split := _split_line(line)) is not None:
                    yield split
                    continue
                e = json.loads(line)
                yield e.get("key"), e.get("entry")
        return self.load_entries(entries())

    def read_format_1(self, data: bytes) -> int:
        """Entries from a state of the earlier format (one gzip'd JSON document)."""
        doc = json.loads(gzip.decompress(data))
        if doc.get("format") != 1:
            return 0
        return self.load_entries((doc.get("entries") or {}).items())

    def used(self) -> Iterator[tuple[str, bytes]]:
        """(key, the entry's JSON) of every entry this run used, in key order."""
        with self.lock:
            keys = [k for (k,) in self.db.execute(
                "SELECT key FROM entries WHERE used = 1 ORDER BY key")]
        for k in keys:
            with self.lock:
                row = self.db.execute("SELECT data FROM entries WHERE key = ?",
                                      (k,)).fetchone()
            if row is not None:
                yield k, zlib.decompress(row[0])

    def write_jsonl(self, out: IO[bytes]) -> int:
        """This run's entries as a format-2 state (gzip'd JSON Lines) into `out`."""
        n = 0
        # Level 1: a third of level 6's CPU at the end of every run, for a state object
        # about 1.5 times the size (kept in S3 Standard, read once a month).
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as z:
            z.write(json.dumps({"format": FORMAT}).encode() + b"\n")
            for key, data in self.used():
                z.write(b'{"key": ' + json.dumps(key).encode() + b', "entry": ' + data +
                        b"}\n")
                n += 1
        return n

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.db.close()


def _nearly_full(directory: Path, margin: int = 1 << 20) -> bool:
    """Less than `margin` bytes free under `directory` (False when that cannot be told)."""
    try:
        return shutil.disk_usage(directory).free < margin
    except OSError:
        return False


_KEY, _ENTRY = b'{"key": ', b', "entry": '


def _split_line(line: bytes) -> tuple[str, bytes] | None:
    """(key, the entry's JSON text) of a state line as write_jsonl writes it, without
    parsing the entry (most are never used again, and parsing them all took seconds);
    None for any other line (then it is parsed whole). A key's JSON string cannot hold
    `, "entry": ` (its quotes are escaped), so the first one ends the key."""
    cut = line.find(_ENTRY)
    entry = line[cut + len(_ENTRY):].rstrip()
    if not line.startswith(_KEY) or cut < 0 or entry[:1] != b"{" or entry[-2:] != b"}}":
        return None
    try:
        key = json.loads(line[len(_KEY):cut])
    except ValueError:
        return None
    return (key, entry[:-1]) if isinstance(key, str) else None


def _pack(entry: dict[str, Any] | bytes) -> bytes:
    # Level 1: a scratch file read back once; level 6 took three times the CPU for a
    # state's worth of entries, to save a little disk.
    if not isinstance(entry, bytes):
        entry = json.dumps(entry, separators=(",", ":")).encode()
    return zlib.compress(entry, 1)


class StateStore:
    """Where the cache lives between runs: `{state}/{owner}/` in a local directory or an S3
    prefix, through the storage layer (reading it fails as a configuration error, saving
    it as a destination error)."""

    def __init__(self, url: str, owner: str, part: str = ""):
        self.url = url
        self.owner = owner
        self.store = open_store(parse_location(url, "--state", kind="prefix"), Purpose.STATE)
        # Each part of a sharded owner keeps its own cache: parts run at once and would
        # otherwise overwrite each other's (release asset copies are shared: keyed by id).
        self.key = f"{owner}/{STATE_NAME.format(part=part)}"
        self.old_key = f"{owner}/{OLD_STATE_NAME}"

    def load(self, workdir: str | os.PathLike[str]) -> HttpCache:
        """The cache for this run, in an SQLite file under `workdir`, filled from the state."""
        cache = HttpCache(Path(workdir) / "http-cache.sqlite")
        try:
            n = self._read_into(cache)
            log.info("state at %s: %d cached responses", self.url, n)
        except (OSError, ValueError, EOFError, zlib.error, sqlite3.Error, TruncatedRead) as e:
            log.warning("state at %s is unreadable (%s); starting without it", self.url, e)
            with cache.lock:
                cache.db.execute("DELETE FROM entries")
        except GhvaultError:  # the store could not read it at all: bucket, permissions
            cache.close()
            raise
        return cache

    def _read_into(self, cache: HttpCache) -> int:
        info = self.store.head(self.key)
        if info is not None:
            with self.store.open_read(self.key, info.size) as raw:
                return cache.read_jsonl(io.BufferedReader(raw, COPY_CHUNK))
        old = self.store.get(self.old_key)
        return cache.read_format_1(old) if old is not None else 0

    def assets(self) -> AssetCopies:
        return AssetCopies(self)

    def save(self, cache: HttpCache) -> None:
        """Stream this run's entries to the state (through a temporary file beside the
        cache, so memory holds one entry at a time), replacing the previous state."""
        tmp_name: str | None = None
        try:
            try:
                fd, tmp_name = tempfile.mkstemp(prefix="state-", suffix=".jsonl.gz",
                                                dir=cache.path.parent)
                with os.fdopen(fd, "wb") as out:
                    cache.write_jsonl(out)
            except (OSError, sqlite3.Error, zlib.error) as e:
                if is_disk_full(e):
                    raise workdir_full(tmp_name or cache.path.parent,
                                       "writing the state before saving it") from None
                raise state_error(e, self.store.where(self.key), writing=True) from None
            try:
                self.store.put_file(self.key, tmp_name, content_type="application/gzip")
            except (OSError, sqlite3.Error, zlib.error) as e:  # the store names its own
                raise state_error(e, self.store.where(self.key), writing=True) from None
        finally:
            if tmp_name is not None:
                Path(tmp_name).unlink(missing_ok=True)


class AssetCopies:
    """Copies of release assets kept with the state, `{state}/{owner}/assets/{id}-{size}`,
    each with the SHA-256 it had when kept beside it (`{id}-{size}.sha256`).

    A release asset's bytes never change under its id (GitHub replaces an asset by
    deleting it and uploading a new one), and every download costs a request from the
    rate limit. With --state the archive's copy comes from here after the first month,
    once it hashes to the recorded SHA-256 (and to the asset's own `digest`, when GitHub
    gives one); any other copy is logged, dropped and downloaded again, and the download
    replaces it. The archive is still complete and self-contained.
    """

    def __init__(self, state: StateStore):
        self.store = state.store
        self.owner = state.owner

    def _key(self, asset: dict[str, Any]) -> str:
        return f"{self.owner}/assets/{int(asset['id'])}-{int(asset.get('size') or 0)}"

    def fetch(self, asset: dict[str, Any], dest: str) -> bool:
        """Write the kept copy to `dest`; False when there is none, or it does not hash to
        the SHA-256 recorded when it was kept (then `dest` is left empty)."""
        key, want = self._key(asset), int(asset.get("size") or 0)
        try:
            recorded = self.store.get(key + SHA_SUFFIX)
            if recorded is None:
                return False  # never kept (or by a version that did not record it)
            expected = recorded.decode("ascii", "replace").strip()
            digest = str(asset.get("digest") or "")
            if not _SHA256.fullmatch(expected):
                return self._drop(asset, key, dest, "its recorded SHA-256 is unreadable")
            if digest.startswith("sha256:") and digest[7:] != expected:
                return self._drop(asset, key, dest, "GitHub's digest of the asset differs "
                                  "from the SHA-256 recorded with the copy")
            info = self.store.head(key)
            if info is None or info.size != want:
                return self._drop(asset, key, dest, "it is missing" if info is None else
                                  f"it has {info.size} bytes where the asset has {want}")
            h = hashlib.sha256()
            with self.store.open_read(key, want) as src, open(dest, "wb") as out:
                while data := src.read(COPY_CHUNK):
                    h.update(data)
                    out.write(data)
            if h.hexdigest() != expected:
                return self._drop(asset, key, dest, "its SHA-256 differs from the one "
                                  "recorded when it was kept (damaged)")
            return True
        except Exception as e:  # noqa: BLE001 - an unreadable copy means: download it
            return self._drop(asset, key, dest, f"it cannot be read ({e})")

    def _drop(self, asset: dict[str, Any], key: str, dest: str, why: str) -> bool:
        log.warning("not using the copy of asset %s (%s) at %s: %s; downloading it again",
                    asset.get("id"), asset.get("name"), self.store.where(key), why)
        with contextlib.suppress(OSError):
            open(dest, "wb").close()
        return False

    def keep(self, asset: dict[str, Any], path: str) -> None:
        """Keep the downloaded file at `path` as the asset's copy, then its SHA-256."""
        try:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while data := f.read(COPY_CHUNK):
                    h.update(data)
            self.store.put_file(self._key(asset), path)
            self.store.put(self._key(asset) + SHA_SUFFIX, h.hexdigest().encode() + b"\n",
                           content_type="text/plain")
        except Exception as e:  # noqa: BLE001 - the backup itself does not depend on it
            log.warning("could not keep a copy of asset %s in the state (%s)", asset.get("id"), e)
