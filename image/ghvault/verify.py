"""`ghvault verify ARCHIVE`: is this archive intact and complete?

Checks, in one pass over the archive (entries in the order they are stored):
- every entry's name is one the archive layout allows (see layout.py): anything else (a
  path escaping the directory, an unknown file, `repos/x.git/config`) is a problem even
  when the manifest lists it;
- no entry is stored as a symbolic link;
- every manifest record is a path with a size and a SHA-256, and no path is listed twice
  (each malformed record is one problem; the sound ones are still checked);
- every manifest entry is there, with the recorded size and SHA-256, and nothing else is
  (an entry the manifest does not list is named and not read: nothing bounds it); reading
  stops at the manifest's size + 1 bytes, whatever the zip headers claim;
- every bundle is a bundle whose pack's trailing SHA-1 matches its content, and which
  `git bundle verify` accepts inside a scratch repository;
- every JSON and JSONL entry parses; LFS objects hash to their own oid;
- the counts in the manifest match what the files hold;
- the archive's own size and SHA-256 match the sidecar manifest (`<archive>.manifest.json`);
- the sidecar belongs to the archive at all: everything in it but its `archive` record is
  the archive's own MANIFEST.json. A sidecar of another run (the run that wrote the archive
  stopped before writing its sidecar) is one problem line, naming the version of the key it
  does describe when bucket versioning kept one (see docs/architecture.md, "Write order and
  crash safety").

Memory stays at about one buffer: entries are streamed, bundles go through a scratch file.
"""

from __future__ import annotations

import json
import logging
import shutil
import struct
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .bundles import BundleParser
from .catalog import matching_version, version_text
from .contract import SIDECAR_SUFFIX
from .errors import ArchiveUnreadable
from .layout import (
    COUNTS,
    ENTRY_READ_ERRORS,
    MANIFEST_NAME,
    Entry,
    Expected,
    LayoutError,
    Manifest,
    ManifestError,
    classify,
    parse_manifest,
    read_manifest,
    shown,
    stream_entry,
)
from .source import ArchiveSource, local_git

log = logging.getLogger("ghvault")


@dataclass
class Report:
    archive: str
    problems: list[str] = field(default_factory=list)
    entries: int = 0
    bytes: int = 0
    bundles: int = 0
    fetched: int = 0  # bytes read from the archive's storage
    requests: int = 0  # GET requests (S3)
    counts: Counter = field(default_factory=Counter)

    def problem(self, entry: str | None, text: str) -> None:
        line = f"{shown(entry)}: {text}" if entry else text
        self.problems.append(line)
        log.debug("problem: %s", line)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        what = (f"{self.entries} entries, {self.bundles} bundles, "
                f"{self.bytes / (1 << 20):.1f} MiB checked")
        if self.ok:
            return f"{self.archive}: OK ({what})"
        return f"{self.archive}: {len(self.problems)} problem(s) ({what})"

    def as_dict(self) -> dict[str, Any]:
        """The one-line JSON summary `ghvault verify` prints last (like `run` and `restore`)."""
        return {"archive": self.archive, "ok": self.ok, "problems": len(self.problems),
                "entries": self.entries, "bundles": self.bundles, "bytes": self.bytes,
                "counts": dict(sorted(self.counts.items()))}


class EntryCheck:
    """What one entry must satisfy beyond its size and SHA-256: fed chunk by chunk."""

    def feed(self, data: bytes) -> None:
        pass

    def finish(self) -> str | None:
        """None when all is well, else the problem in a few words."""
        return None


class JsonlCheck(EntryCheck):
    def __init__(self, count: Callable[[Any], None]) -> None:
        self.count, self.partial, self.line, self.error = count, b"", 0, None

    def feed(self, data: bytes) -> None:
        *lines, self.partial = (self.partial + data).split(b"\n")
        for raw in lines:
            self._line(raw)

    def _line(self, raw: bytes) -> None:
        self.line += 1
        if self.error:
            return
        try:
            self.count(json.loads(raw))
        except ValueError as e:
            self.error = f"line {self.line} is not valid JSON ({e})"

    def finish(self) -> str | None:
        if self.partial:
            self._line(self.partial)
            if not self.error:
                self.error = f"line {self.line} does not end with a newline (truncated)"
        return self.error


class JsonCheck(EntryCheck):
    def __init__(self, count: Callable[[Any], None]) -> None:
        self.count, self.data = count, bytearray()

    def feed(self, data: bytes) -> None:
        self.data += data

    def finish(self) -> str | None:
        try:
            self.count(json.loads(self.data))
        except ValueError as e:
            return f"is not valid JSON ({e})"
        return None


class BundleCheck(EntryCheck):
    """Spools the bundle to a scratch file, checks the pack's SHA-1 trailer on the way,
    then runs `git bundle verify` in a scratch repository."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.file: IO[bytes] = tempfile.NamedTemporaryFile(dir=scratch, suffix=".bundle",
                                                            delete=False)
        self.bundle = BundleParser()

    def feed(self, data: bytes) -> None:
        self.file.write(data)
        self.bundle.feed(data)

    def finish(self) -> str | None:
        self.file.close()
        path = Path(self.file.name)
        try:
            if not self.bundle.has_header():
                return "is not a git bundle (no bundle header)"
            if not self.bundle.pack_ok():
                return "the bundle's pack does not match its SHA-1 checksum (corrupted)"
            result = local_git(["bundle", "verify", "--quiet", str(path)],
                               self.scratch / "repo.git")
            if result.returncode:
                cause = result.stderr.strip().splitlines()[-1:] or ["no output"]
                return f"`git bundle verify` failed ({cause[0]})"
            return None
        finally:
            path.unlink(missing_ok=True)


def entry_check(entry: Entry, counts: Counter, scratch: Path) -> EntryCheck:
    """The check for an entry's content, counting into `counts` what the manifest counts."""
    kind, per = entry.spec.count, entry.spec.per

    def count(doc: Any) -> None:
        """One JSON document of the entry: the whole entry, or a JSONL line."""
        if kind is None or per == "entry":
            return
        if per == "item":
            counts.update({kind: len(doc) if isinstance(doc, list) else 0})
        elif per == "issue":  # issues.jsonl holds pull requests too
            counts.update({kind: int(isinstance(doc, dict) and "pull_request" not in doc)})
        else:
            counts.update({kind: 1})

    if kind is not None and per == "entry":
        counts[kind] += 1
    checks: dict[str, Callable[[], EntryCheck]] = {
        "bundle": lambda: BundleCheck(scratch), "json": lambda: JsonCheck(count),
        "jsonl": lambda: JsonlCheck(count), "blob": EntryCheck}
    return checks[entry.spec.format]()


def check_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, entry: Entry,
                expected: Expected | None, check: EntryCheck, report: Report) -> None:
    streamed = stream_entry(zf, info, expected, check.feed, oid=entry.oid)
    problem = check.finish()
    for text in streamed.problems:
        report.problem(entry.name, text)
    if streamed.readable:
        report.bytes += streamed.size
        if problem:
            report.problem(entry.name, problem)


def compare_counts(manifest: dict[str, Any], found: Counter, report: Report) -> None:
    recorded = manifest.get("counts", {})
    if not isinstance(recorded, dict):
        report.problem(None, "the manifest's counts are not an object "
                             f"({shown(repr(recorded))[:80]})")
        return
    skipped_items = manifest.get("skipped") or []
    skipped = " ".join(str(s.get("item", "")) for s in skipped_items if isinstance(s, dict)) \
        if isinstance(skipped_items, list) else ""
    for kind in sorted(set(found) | {k for k in recorded if k in COUNTS}):
        if kind == "repos" and "repo " in skipped:
            continue  # a repository that vanished mid-run is counted but has partial files
        if kind not in COUNTS:
            continue
        says = recorded.get(kind, 0)
        if not isinstance(says, int) or isinstance(says, bool):
            report.problem(None, f"count {kind!r}: the manifest says {shown(repr(says))[:80]}, "
                                 "which is not a number")
        elif says != found.get(kind, 0):
            report.problem(None, f"count {kind!r}: the manifest says {says}, "
                                 f"the files hold {found.get(kind, 0)}")


def sound_entries(doc: Any) -> tuple[Manifest, list[tuple[str | None, str]]]:
    """The manifest `doc` with the entries whose records are sound, and a problem (entry
    name or None, text) for each malformed record and each path listed twice; ManifestError
    when `doc` has no list of entries at all."""
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise ManifestError("has no list of entries")
    entries: dict[str, Expected] = {}
    problems: list[tuple[str | None, str]] = []
    for n, item in enumerate(doc["entries"]):
        try:
            one = parse_manifest({"entries": [item]}).entries
        except ManifestError:
            problems.append((None, f"entry {n} of the manifest is not a path with a size and "
                                   f"a SHA-256 ({shown(json.dumps(item)[:80])})"))
            continue
        (path, expected), = one.items()
        if path in entries:
            problems.append((path, "is listed twice in the manifest"))
            continue
        entries[path] = expected
    return Manifest(doc, entries), problems


def is_symlink(info: zipfile.ZipInfo) -> bool:
    """Whether the entry is stored with a symbolic link's mode (never written by ghvault)."""
    return (info.external_attr >> 16) & 0o170000 == 0o120000


def open_archive(source: ArchiveSource, hashing: bool = False) -> tuple[zipfile.ZipFile, Any]:
    """source.open_zip(), with whatever zipfile raises on a mangled central directory
    (names that do not decode, impossible fields) as ArchiveUnreadable."""
    try:
        return source.open_zip(hashing=hashing)
    except (ValueError, RuntimeError, NotImplementedError, LookupError, struct.error) as e:
        raise ArchiveUnreadable(f"{source.url} is not a readable zip archive ({e}): it is "
                                "truncated or not a ghvault archive") from None


# Far more than any manifest (about 150 bytes an entry): what a larger one claims to unpack
# to is not read into memory.
MAX_MANIFEST_BYTES = 256 << 20


def manifest_doc(zf: zipfile.ZipFile) -> Any:
    """MANIFEST.json's document, unvalidated; ManifestError when it cannot be read as JSON."""
    try:
        size = zf.getinfo(MANIFEST_NAME).file_size
    except KeyError:
        size = 0  # read_manifest says it is missing
    if size > MAX_MANIFEST_BYTES:
        raise ManifestError(f"claims {size} bytes, more than the {MAX_MANIFEST_BYTES} any "
                            "ghvault manifest needs: it is not one")
    try:
        return read_manifest(zf).doc
    except ENTRY_READ_ERRORS as e:  # encrypted, or an unknown compression method
        raise ManifestError(f"cannot be read ({e})") from None
    except ManifestError as e:
        try:  # readable JSON whose entries are not all sound: judged entry by entry
            return json.loads(zf.read(MANIFEST_NAME))
        except (KeyError, ValueError, *ENTRY_READ_ERRORS):
            raise e from None


def the_manifest(zf: zipfile.ZipFile, sidecar: dict[str, Any] | None, url: str,
                 report: Report) -> Manifest | None:
    """MANIFEST.json; the sidecar's list when it is unusable (every entry is still checked
    against what was published); None when neither can be used. Each malformed entry
    record, and each path listed twice, is a problem of its own."""
    try:
        manifest, problems = sound_entries(manifest_doc(zf))
    except ManifestError as e:
        report.problem(MANIFEST_NAME, str(e))
    else:
        for name, text in problems:
            report.problem(name, text)
        if sidecar is not None and sidecar.get("entries") != manifest.doc["entries"]:
            report.problem(None, f"the sidecar {url}{SIDECAR_SUFFIX} lists other entries "
                                 f"than {MANIFEST_NAME}")
        return manifest
    if sidecar is None:
        return None
    try:
        manifest, problems = sound_entries(sidecar)
    except ManifestError as e:
        report.problem(None, f"the sidecar {url}{SIDECAR_SUFFIX} {e}")
        return None
    for name, text in problems:
        report.problem(name, f"{text} (the sidecar {url}{SIDECAR_SUFFIX})")
    return manifest


def sidecar_of_another_run(source: ArchiveSource, sidecar: dict[str, Any],
                           zf: zipfile.ZipFile) -> str | None:
    """None when the sidecar belongs to the archive at the key (or MANIFEST.json cannot
    tell); else the one problem line: it was written for another archive of the key."""
    try:
        doc = manifest_doc(zf)  # bounded, and any unreadable MANIFEST.json is a ManifestError
    except ManifestError:
        return None  # the_manifest reports it; the sidecar is all there is to go by
    if {k: v for k, v in sidecar.items() if k != "archive"} == doc:
        return None
    recorded = sidecar.get("archive") if isinstance(sidecar.get("archive"), dict) else {}
    kept = version_text(matching_version(source.store, source.key, recorded, source.info))
    return (f"the sidecar {source.url}{SIDECAR_SUFFIX} was written for another archive "
            f"({recorded.get('size')} bytes, SHA-256 {str(recorded.get('sha256'))[:12]}...) "
            f"than the one at the key ({source.size} bytes): the run that wrote this archive "
            f"stopped before its sidecar; {kept}; run the backup again to rewrite both")


def verify(source: ArchiveSource) -> Report:
    report = Report(source.url)
    sidecar = source.sidecar()
    zf, raw = open_archive(source, hashing=True)
    scratch = Path(tempfile.mkdtemp(prefix="ghvault-verify-"))
    try:
        local_git(["init", "--bare", "-q", str(scratch / "repo.git")], scratch)
        stale = sidecar_of_another_run(source, sidecar, zf) if sidecar is not None else None
        if stale is not None:
            report.problem(None, stale)
            sidecar = None  # it says nothing about this archive
        manifest = the_manifest(zf, sidecar, source.url, report)
        listed = manifest.entries if manifest else {}
        seen: set[str] = set()
        for info in sorted(zf.infolist(), key=lambda i: i.header_offset):
            name = info.filename
            if name in seen:
                report.problem(name, "appears twice in the archive")
            seen.add(name)
            try:
                entry = classify(name)
            except LayoutError as e:
                report.entries += 1
                report.problem(name, f"is not allowed by the archive layout: {e}")
                continue
            if entry.role == "manifest":
                continue
            report.entries += 1
            if is_symlink(info):
                report.problem(name, "is stored as a symbolic link, which the archive layout "
                                     "does not allow")
                continue
            expected = listed.get(name)
            if expected is None:  # not read: nothing bounds what it would unpack to
                report.problem(name, "is in the archive but not in the manifest")
                continue
            check = entry_check(entry, report.counts, scratch)
            if entry.spec.format == "bundle":
                report.bundles += 1
            check_entry(zf, info, entry, expected, check, report)
            log.debug("checked %s", name)
        for name in sorted(set(listed) - seen):
            report.problem(name, "is in the manifest but missing from the archive")
        if manifest is not None:
            compare_counts(manifest.doc, report.counts, report)
        archive_sha256 = raw.finish_sha256()
        if stale is None:
            check_archive_digest(source, sidecar, archive_sha256, raw.size, report)
        report.fetched, report.requests = raw.bytes_read, getattr(raw, "requests", 0)
    finally:
        zf.close()
        raw.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return report


def check_archive_digest(source: ArchiveSource, sidecar: dict[str, Any] | None, sha256: str,
                         size: int, report: Report) -> None:
    if sidecar is None:
        report.problem(None, f"the sidecar manifest {source.url}{SIDECAR_SUFFIX} is missing, so "
                             "the archive's own checksum cannot be checked: fetch it beside "
                             "the archive")
        return
    recorded = sidecar.get("archive")
    if not isinstance(recorded, dict):
        report.problem(None, f"the sidecar manifest {source.url}{SIDECAR_SUFFIX} does not "
                             "record the archive's size and SHA-256: fetch it again")
        return
    if recorded.get("size") != size:
        report.problem(None, f"the archive has {size} bytes where the sidecar manifest says "
                             f"{recorded.get('size')}")
    elif recorded.get("sha256") != sha256:
        report.problem(None, "the archive's SHA-256 does not match the sidecar manifest")


__all__ = ["Report", "is_symlink", "open_archive", "sound_entries", "verify"]
