"""Streaming zip writer: one archive per owner and month, with a manifest as its last entry.

The archive goes straight to a write-only sink (an S3 multipart stream), so nothing here
seeks. The standard library's zipfile handles unseekable output by writing each entry's
CRC and sizes in a data descriptor after the data, and switches to Zip64 records for large
entries and for more than 65,535 entries, so it is used as is.

Entries are written one at a time under a lock: collector threads may call the `add_*`
methods concurrently. JSONL entries are produced into a spooled temporary file (a few MiB
in memory, then disk) and added when their `with` block ends, so a slow producer never
holds the lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import IO, Any, Literal, Protocol

from .layout import MANIFEST_NAME, check_entry_name

CHUNK = 1 << 20  # read and write files 1 MiB at a time
JSONL_SPOOL = 1 << 20  # a JSONL entry stays in memory up to this size, then spills to disk
SAMPLE = 256 << 10  # how much of an unknown binary is test-compressed to pick a method

Kind = Literal["stored", "deflated"]

# Content that deflate cannot shrink further: stored as is.
COMPRESSED_SUFFIXES = frozenset({
    ".bundle", ".pack", ".zip", ".gz", ".tgz", ".bz2", ".tbz", ".tbz2", ".xz", ".txz",
    ".zst", ".7z", ".rar", ".lz", ".lz4", ".lzma", ".br", ".jar", ".war", ".whl", ".apk",
    ".aab", ".ipa", ".nupkg", ".crate", ".deb", ".rpm", ".dmg", ".jpg", ".jpeg", ".png",
    ".gif", ".webp", ".avif", ".heic", ".mp3", ".mp4", ".m4a", ".m4v", ".mov", ".mkv",
    ".webm", ".ogg", ".opus", ".flac", ".pdf", ".woff", ".woff2", ".docx", ".xlsx", ".pptx",
    ".odt", ".ods", ".epub",
})
# Text: always deflated, whatever its size.
TEXT_SUFFIXES = frozenset({
    ".json", ".jsonl", ".ndjson", ".txt", ".md", ".markdown", ".rst", ".csv", ".tsv",
    ".xml", ".html", ".htm", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".log", ".patch",
    ".diff", ".svg", ".js", ".css", ".py", ".sh", ".c", ".h", ".go", ".rs", ".java",
})


class WritableSink(Protocol):
    def write(self, data: bytes, /) -> Any: ...


def is_precompressed(name: str) -> bool:
    """True for content that is already compressed, by suffix, or LFS objects under lfs/."""
    path = PurePosixPath(name)
    if "lfs" in path.parts[:-1]:
        return True
    return path.suffix.lower() in COMPRESSED_SUFFIXES


def choose_kind(name: str, sample: bytes | None = None) -> Kind:
    """Stored for already-compressed content, deflated for text. For other names, a sample
    of the content decides: stored when a fast deflate saves less than 5%."""
    if is_precompressed(name):
        return "stored"
    if PurePosixPath(name).suffix.lower() in TEXT_SUFFIXES or not sample:
        return "deflated"
    squeezed = len(zlib.compress(sample[:SAMPLE], 1))
    return "stored" if squeezed > 0.95 * len(sample[:SAMPLE]) else "deflated"


class _CountingStream:
    """What zipfile writes to: forwards to the sink, counting and hashing every byte.

    It has `tell` (zipfile needs offsets) but no `seek`, so zipfile streams with data
    descriptors instead of going back to patch local headers. Once the sink has failed or
    the writer was abandoned, writes are dropped, so zipfile's own clean-up (at the end of
    the failed entry, or at garbage collection) cannot reach the sink.
    """

    def __init__(self, sink: WritableSink) -> None:
        self.sink = sink
        self.size = 0
        self.digest = hashlib.sha256()
        self.error: BaseException | None = None
        self.detached = False

    def write(self, data: bytes) -> int:
        if self.detached:
            return len(data)
        try:
            self.sink.write(data)
        except BaseException as exc:
            # The sink's own error propagates (a DestinationError, say); zipfile's clean-up
            # writes after it go nowhere, and the writer refuses further entries.
            self.error = exc
            self.detached = True
            raise
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        flush = getattr(self.sink, "flush", None)
        if flush is not None and not self.detached:
            flush()


class JsonlWriter:
    """Collects one JSON document per line for a JSONL entry (see ArchiveWriter.jsonl)."""

    def __init__(self, spool: IO[bytes]) -> None:
        self._spool = spool
        self.count = 0

    @staticmethod
    def line(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    def write(self, obj: Any) -> None:
        self.write_line(self.line(obj))

    def write_line(self, line: str) -> None:
        """A document already made by `line` (so a scan of its text serializes it once)."""
        self._spool.write(line.encode("utf-8") + b"\n")
        self.count += 1


class ArchiveWriter:
    """Writes a zip to `sink` entry by entry; `close(manifest)` adds MANIFEST.json last.

    Thread-safe. Every entry's path, uncompressed size, sha256 and whether it was
    compressed are recorded for the manifest. After `close`, `archive_size` and
    `archive_sha256` describe the exact bytes given to the sink.
    """

    def __init__(self, sink: WritableSink, *, compresslevel: int = 6) -> None:
        self._stream = _CountingStream(sink)
        self._zip = zipfile.ZipFile(self._stream, mode="w", compression=zipfile.ZIP_DEFLATED,
                                    allowZip64=True, compresslevel=compresslevel)
        self._lock = threading.Lock()
        self._names: set[str] = set()  # written or reserved by an open jsonl()
        self._entries: list[dict[str, Any]] = []
        self._closed = False
        self.archive_size: int | None = None
        self.archive_sha256: str | None = None

    # -- public API ------------------------------------------------------------------------

    @property
    def bytes_written(self) -> int:
        """Bytes given to the sink so far (for progress reports)."""
        return self._stream.size

    @property
    def entry_count(self) -> int:
        return len(self._entries)

    def add_bytes(self, name: str, data: bytes, *, kind: Kind | None = None) -> None:
        """One entry from memory. `kind` forces stored/deflated; by default the name (and
        for unknown suffixes a sample of the data) decides."""
        kind = kind or choose_kind(name, data[:SAMPLE])
        with self._entry(name, kind, len(data)) as out:
            out.write(data)

    def add_json(self, name: str, obj: Any) -> None:
        """A JSON document: indented, sorted keys, UTF-8, deflated."""
        text = json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=2) + "\n"
        self.add_bytes(name, text.encode("utf-8"), kind="deflated")

    def add_file(self, name: str, path: str | os.PathLike[str], *,
                 kind: Kind | None = None) -> None:
        """A file from disk, streamed in chunks (never read whole)."""
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if kind is None:
                kind = choose_kind(name, f.read(SAMPLE))
                f.seek(0)
            self.add_stream(name, f, size=size, kind=kind)

    def add_stream(self, name: str, source: IO[bytes], *, size: int | None = None,
                   kind: Kind | None = None) -> None:
        """An entry read from a binary file object until EOF (a pipe, say). With `size`
        unknown the entry is written with Zip64 sizes, so it may exceed 4 GiB."""
        kind = kind or choose_kind(name)
        with self._entry(name, kind, size) as out:
            while chunk := source.read(CHUNK):
                out.write(chunk)

    @contextmanager
    def jsonl(self, name: str) -> Iterator[JsonlWriter]:
        """`with archive.jsonl(name) as out: out.write(obj)`: one JSON document per line.

        Lines go to a spooled temporary file (memory up to 1 MiB, then disk) and become
        one deflated entry when the block ends; the lock is held only for that copy. If
        the block raises, nothing is added and the name is free again.
        """
        self._reserve(check_entry_name(name))
        added = False
        try:
            with tempfile.SpooledTemporaryFile(max_size=JSONL_SPOOL) as spool:
                yield JsonlWriter(spool)
                size = spool.tell()
                spool.seek(0)
                with self._entry(name, "deflated", size, reserved=True) as out:
                    added = True
                    shutil.copyfileobj(spool, out, CHUNK)
        finally:
            if not added:
                with self._lock:
                    self._names.discard(name)

    def close(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Write MANIFEST.json (`manifest` plus every entry, sorted by path) as the last
        entry, finish the zip and return the manifest as written."""
        with self._lock:
            self._check_open()
            final = {**manifest, "entries": sorted(self._entries, key=lambda e: e["path"])}
            text = json.dumps(final, ensure_ascii=False, sort_keys=True, indent=1) + "\n"
            data = text.encode("utf-8")
            self._closed = True
            try:
                info = self._info(MANIFEST_NAME, "deflated", len(data))
                with self._zip.open(info, mode="w") as dest:
                    dest.write(data)
                self._zip.close()  # the central directory and end records
                self._stream.flush()
            except BaseException:
                self._stream.detached = True
                raise
            self.archive_size = self._stream.size
            self.archive_sha256 = self._stream.digest.hexdigest()
        return final

    def abort(self) -> None:
        """Give up: no more entries, and nothing more reaches the sink (abort the sink
        separately). Safe to call more than once, and after close."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._stream.detached = True

    # -- internals -------------------------------------------------------------------------

    def __del__(self) -> None:
        # An archive dropped without close() must not have zipfile's finaliser write a
        # central directory into the sink.
        stream = getattr(self, "_stream", None)
        if stream is not None and not getattr(self, "_closed", True):
            stream.detached = True

    def _reserve(self, name: str) -> None:
        with self._lock:
            self._check_open()
            if name == MANIFEST_NAME:
                raise ValueError(f"{MANIFEST_NAME} is written by close(); choose another name")
            if name in self._names:
                raise ValueError(f"archive entry {name!r} was already added")
            self._names.add(name)

    def _check_open(self) -> None:
        if self._stream.error is not None:
            raise RuntimeError("the archive's destination failed: no more entries can be "
                               "added") from self._stream.error
        if self._closed:
            raise RuntimeError("the archive is closed: no more entries can be added")

    @contextmanager
    def _entry(self, name: str, kind: Kind, size: int | None, *,
               reserved: bool = False) -> Iterator[_EntryOut]:
        """Holds the lock for one entry and yields something to write its data to.

        If the data's source fails, the entry is left out of the central directory (its
        bytes stay in the stream as dead space), its name is free again and the error
        propagates. If the sink fails, the archive is unusable: later calls raise.
        """
        if not reserved:
            self._reserve(check_entry_name(name))
        with self._lock:
            info: zipfile.ZipInfo | None = None
            recorded = False
            try:
                self._check_open()
                info = self._info(name, kind, size)
                digest = hashlib.sha256()
                # Zip64 sizes when the size is unknown; zipfile picks Zip64 itself for a
                # known size near or above 4 GiB.
                with self._zip.open(info, mode="w", force_zip64=size is None) as dest:
                    yield _EntryOut(dest, digest)
                self._record(info, digest)
                recorded = True
            finally:
                if not recorded:
                    self._names.discard(name)
                    self._forget(info)

    def _forget(self, info: zipfile.ZipInfo | None) -> None:
        """Drop a failed entry from zipfile's central-directory list (caller holds lock)."""
        if self._stream.error is not None:
            self._closed = True
            self._stream.detached = True
            return
        if info is not None and info in self._zip.filelist:
            self._zip.filelist.remove(info)
            # NameToInfo is zipfile's name index; it must agree with filelist.
            self._zip.NameToInfo.pop(info.filename, None)

    def _info(self, name: str, kind: Kind, size: int | None) -> zipfile.ZipInfo:
        if kind not in ("stored", "deflated"):
            raise ValueError(f"kind must be 'stored' or 'deflated', not {kind!r}")
        info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
        info.compress_type = zipfile.ZIP_STORED if kind == "stored" else zipfile.ZIP_DEFLATED
        info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
        if size is not None:
            info.file_size = size
        return info

    def _record(self, info: zipfile.ZipInfo, digest: Any) -> None:
        self._entries.append({
            "path": info.filename, "size": info.file_size, "sha256": digest.hexdigest(),
            "compressed": info.compress_type != zipfile.ZIP_STORED,
        })


class _EntryOut:
    """The writable end of one entry: zipfile's entry stream plus the entry's sha256."""

    def __init__(self, dest: IO[bytes], digest: Any) -> None:
        self._dest = dest
        self._digest = digest

    def write(self, data: bytes) -> int:
        self._dest.write(data)
        self._digest.update(data)
        return len(data)

