"""`ghvault verify ARCHIVE`: is this archive intact and complete?

Checks, in one pass over the archive (entries in the order they are stored):
- every manifest entry is there, with the recorded size and SHA-256, and nothing else is;
- every bundle is a bundle whose pack's trailing SHA-1 matches its content, and which
  `git bundle verify` accepts inside a scratch repository;
- every JSON and JSONL entry parses; LFS objects hash to their own oid;
- the counts in the manifest match what the files hold;
- the archive's own size and SHA-256 match the sidecar manifest (`<archive>.manifest.json`).

Memory stays at about one buffer: entries are streamed, bundles go through a scratch file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .archive import MANIFEST_NAME
from .bundles import BundleParser
from .source import SIDECAR, ArchiveSource, local_git

log = logging.getLogger("ghvault")
CHUNK = 1 << 20

# entry name (below repos/<name>/ or account/) -> the manifest count it feeds
JSONL_COUNTS = {"pulls.jsonl": "pulls", "issue_comments.jsonl": "comments",
                "issue_events.jsonl": "events", "reviews.jsonl": "reviews",
                "review_comments.jsonl": "review_comments",
                "commit_comments.jsonl": "commit_comments"}
JSON_COUNTS = {"labels.json": "labels", "milestones.json": "milestones", "hooks.json": "hooks",
               "security_advisories.json": "advisories", "releases.json": "releases"}
ACCOUNT_COUNTS = {"account/followers.json": "followers", "account/following.json": "following",
                  "account/starred.json": "starred", "account/subscriptions.json": "watching",
                  "account/members.json": "members", "account/teams.json": "teams"}
REPO_FILE = re.compile(r"^repos/[^/]+/(?P<rest>.+)$")


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
        line = f"{entry}: {text}" if entry else text
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


def manifest_counts(path: str, counts: Counter) -> EntryCheck:
    """The check for an entry, counting into `counts` what the manifest counts."""
    def add(kind: str) -> Callable[[Any], None]:
        return lambda doc: counts.update({kind: len(doc) if isinstance(doc, list) else 0})

    m = REPO_FILE.match(path)
    rest = m["rest"] if m else ""
    if rest == "issues.jsonl":
        return JsonlCheck(lambda doc: counts.update(
            {"issues": int(isinstance(doc, dict) and "pull_request" not in doc)}))
    if rest in JSONL_COUNTS:
        return JsonlCheck(lambda doc: counts.update({JSONL_COUNTS[rest]: 1}))
    if rest in JSON_COUNTS:
        return JsonCheck(add(JSON_COUNTS[rest]))
    if path in ACCOUNT_COUNTS:
        return JsonCheck(add(ACCOUNT_COUNTS[path]))
    for suffix, kind in (("repo.json", "repos"), ("git.empty.json", "empty_repos"),
                         ("git.bundle", "git_bundles"), ("wiki.bundle", "wikis")):
        if rest == suffix:
            counts[kind] += 1
    if rest.startswith("releases/"):
        counts["release_assets"] += 1
    elif rest.startswith("lfs/"):
        counts["lfs_objects"] += 1
    elif re.match(r"^gists/[^/]+/git\.bundle$", path):
        counts["gists"] += 1
    if path.endswith(".jsonl"):
        return JsonlCheck(lambda doc: None)
    if path.endswith(".json"):
        return JsonCheck(lambda doc: None)
    return EntryCheck()


def read_manifest(zf: zipfile.ZipFile, report: Report) -> dict[str, Any] | None:
    try:
        manifest = json.loads(zf.read(MANIFEST_NAME))
    except KeyError:
        report.problem(MANIFEST_NAME, "missing from the archive")
        return None
    except (ValueError, zipfile.BadZipFile, zlib.error, OSError) as e:
        report.problem(MANIFEST_NAME, f"cannot be read ({e})")
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("entries"), list):
        report.problem(MANIFEST_NAME, "has no list of entries")
        return None
    return manifest


def check_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, expected: dict[str, Any] | None,
                check: EntryCheck, report: Report) -> None:
    name = info.filename
    digest, size = hashlib.sha256(), 0
    try:
        with zf.open(info) as f:
            while data := f.read(CHUNK):
                digest.update(data)
                size += len(data)
                check.feed(data)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        report.problem(name, f"cannot be read ({e})")
        check.finish()
        return
    report.bytes += size
    problem = check.finish()
    if expected is not None:
        if size != expected.get("size"):
            report.problem(name, f"has {size} bytes where the manifest says "
                                 f"{expected.get('size')}")
        elif digest.hexdigest() != expected.get("sha256"):
            report.problem(name, "SHA-256 does not match the manifest (corrupted)")
    if problem:
        report.problem(name, problem)
    lfs = re.match(r"^repos/[^/]+/lfs/([0-9a-f]{64})$", name)
    if lfs and lfs[1] != digest.hexdigest():
        report.problem(name, "the LFS object's content does not hash to its oid")


def compare_counts(manifest: dict[str, Any], found: Counter, report: Report) -> None:
    recorded = manifest.get("counts") or {}
    skipped = " ".join(s.get("item", "") for s in manifest.get("skipped") or [])
    for kind in sorted(set(found) | {k for k in recorded if k in KNOWN_COUNTS}):
        if kind == "repos" and "repo " in skipped:
            continue  # a repository that vanished mid-run is counted but has partial files
        if kind not in KNOWN_COUNTS:
            continue
        if int(recorded.get(kind, 0)) != found.get(kind, 0):
            report.problem(None, f"count {kind!r}: the manifest says {recorded.get(kind, 0)}, "
                                 f"the files hold {found.get(kind, 0)}")


KNOWN_COUNTS = frozenset({"issues", "repos", "empty_repos", "git_bundles", "wikis",
                          "release_assets", "lfs_objects", "gists", *JSONL_COUNTS.values(),
                          *JSON_COUNTS.values(), *ACCOUNT_COUNTS.values()})


def verify(source: ArchiveSource) -> Report:
    report = Report(source.url)
    sidecar = source.sidecar()
    zf, raw = source.open_zip(hashing=True)
    scratch = Path(tempfile.mkdtemp(prefix="ghvault-verify-"))
    try:
        local_git(["init", "--bare", "-q", str(scratch / "repo.git")], scratch)
        manifest = read_manifest(zf, report)
        if manifest is None and sidecar is not None:
            manifest = sidecar  # still check every entry against what was published
        listed = {e["path"]: e for e in (manifest or {}).get("entries", [])
                  if isinstance(e, dict) and "path" in e}
        if sidecar is not None and manifest is not None and manifest is not sidecar and \
                sidecar.get("entries") != manifest.get("entries"):
            report.problem(None, f"the sidecar {source.url}{SIDECAR} lists other entries than "
                                 f"{MANIFEST_NAME}")
        seen: set[str] = set()
        for info in sorted(zf.infolist(), key=lambda i: i.header_offset):
            name = info.filename
            if name == MANIFEST_NAME or name.endswith("/"):
                continue
            if name in seen:
                report.problem(name, "appears twice in the archive")
            seen.add(name)
            report.entries += 1
            expected = listed.get(name)
            if expected is None:
                report.problem(name, "is in the archive but not in the manifest")
            check = (BundleCheck(scratch) if name.endswith(".bundle")
                     else manifest_counts(name, report.counts))
            if isinstance(check, BundleCheck):
                report.bundles += 1
                manifest_counts(name, report.counts)
            check_entry(zf, info, expected, check, report)
            log.debug("checked %s", name)
        for name in sorted(set(listed) - seen):
            report.problem(name, "is in the manifest but missing from the archive")
        if manifest is not None:
            compare_counts(manifest, report.counts, report)
        check_archive_digest(source, sidecar, raw.finish_sha256(), raw.size, report)
        report.fetched, report.requests = raw.bytes_read, getattr(raw, "requests", 0)
    finally:
        zf.close()
        raw.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return report


def check_archive_digest(source: ArchiveSource, sidecar: dict[str, Any] | None, sha256: str,
                         size: int, report: Report) -> None:
    if sidecar is None:
        report.problem(None, f"the sidecar manifest {source.url}{SIDECAR} is missing, so the "
                             "archive's own checksum cannot be checked: fetch it beside the "
                             "archive")
        return
    recorded = sidecar.get("archive") or {}
    if recorded.get("size") != size:
        report.problem(None, f"the archive has {size} bytes where the sidecar manifest says "
                             f"{recorded.get('size')}")
    elif recorded.get("sha256") != sha256:
        report.problem(None, "the archive's SHA-256 does not match the sidecar manifest")


__all__ = ["Report", "verify"]
