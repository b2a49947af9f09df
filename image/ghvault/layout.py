"""The archive's layout, written once: every entry name an archive may hold and what it holds.

`SPECS` lists every kind of entry: its path pattern (under `MANIFEST.json`, `account/`,
`repos/<repo>/` or `gists/<gist>/`), what it holds, its format, how it is compressed and
the manifest count it feeds. The writer builds names only with the functions below
(`repo_entry`, `lfs_entry`, ...), and `classify` turns a name back into what it is, or
raises LayoutError saying why the layout does not allow it: `verify` reports such entries
and `restore` refuses them. Names are matched exactly: `<repo>` is a GitHub repository name
(so never `x.git` or `x.wiki`, which restore uses for mirrors and wikis), `<gist>` a gist
id, `<oid>` 64 hex digits, and `<team>`, `<tag>` and `<asset>` single path segments without
control characters.

The manifest (MANIFEST.json, and the sidecar beside the archive) is read and validated by
`read_manifest`/`parse_manifest`, and `stream_entry` checks an entry's size and SHA-256
(and an LFS object's oid) as it streams, for verify and restore alike. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

MANIFEST_NAME = "MANIFEST.json"
CHUNK = 1 << 20  # entries are read 1 MiB at a time

Format = Literal["json", "jsonl", "bundle", "blob"]
# How an entry feeds its manifest count: once, per JSONL line, per JSONL line that is an
# issue (not a pull request), or per item of its JSON list.
Per = Literal["entry", "line", "issue", "item"]


class LayoutError(ValueError):
    """A name the archive layout does not allow; the message says why."""


@dataclass(frozen=True)
class Spec:
    """One kind of entry: where it lives, what it holds, how it is stored and counted."""

    role: str  # what restore and verify dispatch on ("git_bundle", "lfs_object", ...)
    pattern: str  # the path as documented, placeholders in <>
    holds: str
    format: Format
    compression: Literal["deflated", "stored", "by content"]
    count: str | None = None  # the manifest count the entry feeds
    per: Per = "entry"


def _json(role: str, pattern: str, holds: str, count: str | None = None,
          per: Per = "item") -> Spec:
    return Spec(role, pattern, holds, "json", "deflated", count, per if count else "entry")


def _jsonl(pattern: str, holds: str, count: str, per: Per = "line") -> Spec:
    return Spec("repo_file", pattern, holds, "jsonl", "deflated", count, per)


def _bundle(role: str, pattern: str, holds: str, count: str) -> Spec:
    return Spec(role, pattern, holds, "bundle", "stored", count)


def _by_file(*specs: Spec) -> dict[str, Spec]:
    """Specs keyed by their last path segment (the file name)."""
    return {spec.pattern.rsplit("/", 1)[1]: spec for spec in specs}


MANIFEST = _json("manifest", MANIFEST_NAME, "the run (owner, month, kinds, counts, skipped "
                 "items, API use) and every other entry's path, size and SHA-256")
ACCOUNT_FILES = _by_file(
    _json("account", "account/profile.json", "the owner's profile (user or organisation)"),
    _json("account", "account/followers.json", "a user's followers", "followers"),
    _json("account", "account/following.json", "the users a user follows", "following"),
    _json("account", "account/starred.json", "the repositories a user starred", "starred"),
    _json("account", "account/subscriptions.json", "the repositories a user watches",
          "watching"),
    _json("account", "account/members.json", "an organisation's members", "members"),
    _json("account", "account/teams.json", "an organisation's teams", "teams"),
    Spec("account", "account/projects.jsonl", "projects (v2) with their fields and views, one "
         "per line", "jsonl", "deflated", "projects", "line"),
    Spec("account", "account/project_items.jsonl", "the items of every project (v2) with "
         "their field values, one per line", "jsonl", "deflated", "project_items", "line"),
)
TEAM_FILES = _by_file(
    _json("team", "account/teams/<team>/members.json", "a team's members"),
    _json("team", "account/teams/<team>/repos.json", "a team's repositories"),
)
REPO_FILES = _by_file(
    _json("repo_file", "repos/<repo>/repo.json", "the repository, as the REST list of "
          "repositories gives it", "repos", "entry"),
    _bundle("git_bundle", "repos/<repo>/git.bundle", "every ref of the repository "
            "(refs/pull/* too), as `git bundle create --all`", "git_bundles"),
    _json("empty_repo", "repos/<repo>/git.empty.json", "marks a repository without commits "
          "(no bundle)", "empty_repos", "entry"),
    _bundle("wiki_bundle", "repos/<repo>/wiki.bundle", "the wiki's repository", "wikis"),
    _jsonl("repos/<repo>/issues.jsonl", "issues and pull requests, one per line (only "
           "issues are counted)", "issues", "issue"),
    _jsonl("repos/<repo>/issue_comments.jsonl", "issue and pull request comments",
           "comments"),
    _jsonl("repos/<repo>/issue_events.jsonl", "issue events", "events"),
    _jsonl("repos/<repo>/pulls.jsonl", "pull requests", "pulls"),
    _jsonl("repos/<repo>/reviews.jsonl", "pull request reviews", "reviews"),
    _jsonl("repos/<repo>/review_comments.jsonl", "review comments", "review_comments"),
    _jsonl("repos/<repo>/commit_comments.jsonl", "commit comments", "commit_comments"),
    _json("repo_file", "repos/<repo>/labels.json", "labels", "labels"),
    _json("repo_file", "repos/<repo>/milestones.json", "milestones", "milestones"),
    _json("repo_file", "repos/<repo>/hooks.json", "webhooks (when the token may read "
          "them)", "hooks"),
    _json("repo_file", "repos/<repo>/security_advisories.json", "security advisories "
          "(public repositories)", "advisories"),
    _json("repo_file", "repos/<repo>/releases.json", "releases, with their assets' "
          "metadata", "releases"),
    _jsonl("repos/<repo>/discussions.jsonl", "discussions with their category, answer and "
           "reactions", "discussions"),
    _jsonl("repos/<repo>/discussion_comments.jsonl", "discussion comments and their replies "
           "(a reply names its comment in `reply_to`)", "discussion_comments"),
    _json("repo_file", "repos/<repo>/discussion_categories.json", "discussion categories"),
)
LFS_OBJECT = Spec("lfs_object", "repos/<repo>/lfs/<oid>", "an LFS object; its content hashes "
                  "to <oid>", "blob", "stored", "lfs_objects")
RELEASE_ASSET = Spec("release_asset", "repos/<repo>/releases/<tag>/<asset>", "a release "
                     "asset as uploaded", "blob", "by content", "release_assets")
GIST_FILES = _by_file(
    _json("gist_meta", "gists/<gist>/gist.json", "the gist (REST)"),
    _bundle("gist_bundle", "gists/<gist>/git.bundle", "the gist's repository", "gists"),
)
ATTACHMENT_INDEX = _json("attachment_index", "attachments/index.json", "every file attached "
                         "to a body: its URL, SHA-256, size, type and where it was found",
                         "attachments")
ATTACHMENT = Spec("attachment", "attachments/<sha256>", "an attached file, stored once by its "
                  "content's SHA-256", "blob", "by content")
SPECS: tuple[Spec, ...] = (MANIFEST, *ACCOUNT_FILES.values(), *TEAM_FILES.values(),
                           *REPO_FILES.values(), LFS_OBJECT, RELEASE_ASSET,
                           *GIST_FILES.values(), ATTACHMENT_INDEX, ATTACHMENT)
COUNTS = frozenset(spec.count for spec in SPECS if spec.count)

# GitHub's rules: ASCII letters, digits, '.', '-', '_', at most 100; '.git' is stripped and
# '.wiki' refused (restore puts mirrors at repos/<repo>.git, wikis at repos/<repo>.wiki.git).
REPO_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
RESERVED_REPO_SUFFIXES = (".git", ".wiki")
GIST_ID = re.compile(r"[0-9A-Za-z]{1,100}")  # hex, or digits for the oldest gists
LFS_OID = re.compile(r"[0-9a-f]{64}")  # SHA-256


@dataclass(frozen=True)
class Entry:
    """What an entry name is: its spec and the names it carries."""

    name: str
    spec: Spec
    repo: str | None = None
    gist: str | None = None
    oid: str | None = None

    @property
    def role(self) -> str:
        return self.spec.role


# -- names ----------------------------------------------------------------------------------


def _control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"


def check_entry_name(name: str) -> str:
    """The name as stored, or LayoutError when it could escape or confuse an extraction:
    empty, absolute, a drive letter, a backslash, a control character, or an empty, `.`
    or `..` segment. (The zip writer applies this to every name it is given.)"""
    if not isinstance(name, str) or not name:
        raise LayoutError("archive entry name must be a non-empty string")
    if "\\" in name or any(map(_control, name)):
        raise LayoutError(f"archive entry name {name!r} must use '/' and no NUL or other "
                          "control characters")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise LayoutError(f"archive entry name {name!r} must be relative, not absolute")
    if any(p in ("", ".", "..") for p in name.split("/")):
        raise LayoutError(f"archive entry name {name!r} must not contain '..', '.' or empty "
                          "components (or end with '/')")
    return name


def segment(text: str) -> str:
    """Free text (a tag, an asset's or a team's name) as one path segment: separators become
    `__`, control characters `_`, and an empty, `.` or `..` name `_`."""
    cleaned = text.replace("/", "__").replace("\\", "__")
    cleaned = "".join("_" if _control(c) else c for c in cleaned)
    return fit_segment("_" if cleaned in ("", ".", "..") else cleaned)


# -- over-long names ------------------------------------------------------------------------
# Filesystems allow 255 bytes per path component (ext4, XFS, APFS, NTFS in UTF-16 units).
# Free text (a tag, an asset's or a team's name) can be longer: the writer shortens such a
# segment to a prefix, `~`, 16 hex digits of the SHA-256 of the whole segment and its
# extension, so that restore can always write it (the original name stays in the JSON);
# `classify` refuses any longer component, so verify reports it and restore leaves it out.
MAX_SEGMENT_BYTES = 255
_HASH_HEX = 16


def fit_segment(text: str) -> str:
    """`text` when it fits in MAX_SEGMENT_BYTES (UTF-8), else its shortened form:
    `<prefix>~<16 hex of its SHA-256><extension>` in at most MAX_SEGMENT_BYTES."""
    if len(text.encode()) <= MAX_SEGMENT_BYTES:
        return text
    stem, dot, ext = text.rpartition(".")
    ext = f".{ext}" if dot and stem and 0 < len(ext.encode()) <= 16 else ""
    tag = f"~{hashlib.sha256(text.encode()).hexdigest()[:_HASH_HEX]}{ext}"
    room = MAX_SEGMENT_BYTES - len(tag.encode())
    prefix = text[:len(text) - len(ext)] if ext else text
    return prefix.encode()[:room].decode("utf-8", "ignore") + tag


def _long_component(name: str) -> str | None:
    """The first component of `name` longer than MAX_SEGMENT_BYTES, if any."""
    return next((p for p in name.split("/") if len(p.encode()) > MAX_SEGMENT_BYTES), None)


def repo_name_problem(name: str) -> str | None:
    """None for a repository name the layout holds, else why not."""
    if not isinstance(name, str) or not REPO_NAME.fullmatch(name) or name in (".", ".."):
        return (f"{name!r} is not a GitHub repository name (ASCII letters, digits, '.', '-' "
                "and '_', at most 100)")
    if name.lower().endswith(RESERVED_REPO_SUFFIXES):
        return f"{name!r} is not a GitHub repository name (it ends in .git or .wiki)"
    return None


def gist_id_problem(gist: str) -> str | None:
    """None for a gist id the layout holds, else why not."""
    if isinstance(gist, str) and GIST_ID.fullmatch(gist):
        return None
    return f"{gist!r} is not a gist id (letters and digits)"


def _check(name: str) -> str:
    """A name built below, once `classify` accepts it (so the writer makes no other)."""
    return classify(name).name


def repo_entry(repo: str, file: str) -> str:
    """`repos/<repo>/<file>` for a file of REPO_FILES (repo.json, git.bundle, ...)."""
    if file not in REPO_FILES:
        raise LayoutError(f"{file!r} is not a repository file of the layout")
    return _check(f"repos/{repo}/{file}")


def lfs_entry(repo: str, oid: str) -> str:
    return _check(f"repos/{repo}/lfs/{oid}")


def release_asset_entry(repo: str, tag: str, asset: str) -> str:
    return _check(f"repos/{repo}/releases/{segment(tag)}/{segment(asset)}")


def release_asset_entries(repo: str, releases: list[dict[str, Any]]) -> list[list[str]]:
    """The entry of every asset of a repository's releases (as the REST list gives them),
    release by release and asset by asset: `repos/<repo>/releases/<tag>/<asset>`, unique
    by construction. Where two releases' tags would make the same directory (two drafts
    with one tag; `release/1.0` beside `release__1.0`), each of them becomes
    `<tag>@<release id>`; where two assets of a release would make the same file (`.` and
    `..`; `a<NUL>b` and `a_b`), each becomes `<asset id>-<asset>`. Names are compared
    case-insensitively, so a restore onto a case-insensitive disk keeps them apart too.
    """
    def tag_of(release: dict[str, Any]) -> str:
        return str(release.get("tag_name") or release.get("id"))

    dirs = _unique([(tag_of(r), str(r.get("id"))) for r in releases],
                   lambda text, ident: f"{text}@{ident}")
    out = []
    for release, folder in zip(releases, dirs, strict=True):
        assets = release.get("assets") or []
        files = _unique([(str(a.get("name") or ""), str(a.get("id"))) for a in assets],
                        lambda text, ident: f"{ident}-{text}")
        out.append([_check(f"repos/{repo}/releases/{folder}/{file}") for file in files])
    return out


def team_dirs(teams: list[dict[str, Any]]) -> list[str]:
    """The `<team>` segment of every team (as the REST list gives them), unique by
    construction: a slug that would give another team's segment becomes `<slug>@<team id>`."""
    return _unique([(str(t.get("slug") or t.get("id")), str(t.get("id"))) for t in teams],
                   lambda text, ident: f"{text}@{ident}")


def _unique(names: list[tuple[str, str]], qualify: Callable[[str, str], str]) -> list[str]:
    """One segment per (text, id): `segment(text)` where no other text gives the same one,
    else `segment(qualify(text, id))`, qualified again while still taken (only crafted
    names, or repeated ids, get that far)."""
    plain = [segment(text) for text, _ in names]
    clashes = Counter(p.casefold() for p in plain)
    taken: set[str] = set()
    out = []
    for (text, ident), seg in zip(names, plain, strict=True):
        if clashes[seg.casefold()] > 1:
            seg = segment(text := qualify(text, ident))
        while seg.casefold() in taken:
            seg = segment(text := qualify(text, ident))
        taken.add(seg.casefold())
        out.append(seg)
    return out


def gist_entry(gist: str, file: str) -> str:
    """`gists/<gist>/<file>` for gist.json or git.bundle."""
    return _check(f"gists/{gist}/{file}")


def account_entry(file: str) -> str:
    """`account/<file>` for a file of ACCOUNT_FILES (profile.json, followers.json, ...)."""
    return _check(f"account/{file}")


def team_entry(team: str, file: str) -> str:
    """`account/teams/<team>/<file>` for members.json or repos.json."""
    return _check(f"account/teams/{segment(team)}/{file}")


def attachment_entry(sha256: str) -> str:
    """`attachments/<sha256>`, or `attachments/index.json` for "index"."""
    return _check(f"attachments/{'index.json' if sha256 == 'index' else sha256}")


def classify(name: str) -> Entry:
    """What the entry `name` is; LayoutError (saying why) for any name the layout does not
    allow."""
    check_entry_name(name)
    if (long := _long_component(name)) is not None:
        raise LayoutError(f"component {shown(long[:40])}... has {len(long.encode())} bytes, "
                          f"more than the {MAX_SEGMENT_BYTES} a file name may have (the "
                          "writer shortens longer names)")
    top, *rest = name.split("/")
    if name == MANIFEST_NAME:
        return Entry(name, MANIFEST)
    if top == "account":
        return _account(name, rest)
    if top == "repos" and len(rest) >= 2:
        return _repo(name, rest)
    if top == "attachments" and len(rest) == 1:
        if rest[0] == "index.json":
            return Entry(name, ATTACHMENT_INDEX)
        if not LFS_OID.fullmatch(rest[0]):  # the same form: a SHA-256 in hex
            raise LayoutError(f"attachment {rest[0]!r} is not named by its SHA-256")
        return Entry(name, ATTACHMENT, oid=rest[0])
    if top == "gists" and len(rest) == 2:
        if problem := gist_id_problem(rest[0]):
            raise LayoutError(problem)
        return _known(name, GIST_FILES, rest[1], "a gist", gist=rest[0])
    raise LayoutError("not a path of the layout (MANIFEST.json, account/..., "
                      "repos/<repo>/..., gists/<gist>/..., attachments/...)")


def _known(name: str, files: dict[str, Spec], file: str, what: str, **names: str) -> Entry:
    spec = files.get(file)
    if spec is None:
        raise LayoutError(f"{file!r} is not a file of {what} (one of {', '.join(files)})")
    return Entry(name, spec, **names)


def _account(name: str, rest: list[str]) -> Entry:
    if len(rest) == 1:
        return _known(name, ACCOUNT_FILES, rest[0], "an account")
    if len(rest) == 3 and rest[0] == "teams":
        return _known(name, TEAM_FILES, rest[2], "a team")
    raise LayoutError("not a file of account/ (account/<file>.json or "
                      "account/teams/<team>/<file>.json)")


def _repo(name: str, rest: list[str]) -> Entry:
    repo, *inside = rest
    if problem := repo_name_problem(repo):
        raise LayoutError(problem)
    if len(inside) == 1:
        return _known(name, REPO_FILES, inside[0], "a repository", repo=repo)
    if len(inside) == 2 and inside[0] == "lfs":
        if not LFS_OID.fullmatch(inside[1]):
            raise LayoutError(f"LFS object {inside[1]!r} is not named by its SHA-256 oid")
        return Entry(name, LFS_OBJECT, repo=repo, oid=inside[1])
    if len(inside) == 3 and inside[0] == "releases":
        return Entry(name, RELEASE_ASSET, repo=repo)
    raise LayoutError(f"{'/'.join(inside)!r} is not a file of a repository (<file>, "
                      "lfs/<oid> or releases/<tag>/<asset>)")


def shown(name: str) -> str:
    """The name for a one-line message: control and other unprintable characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


# -- the manifest ---------------------------------------------------------------------------


class ManifestError(ValueError):
    """The manifest cannot be used; the message says why (after the manifest's name)."""


@dataclass(frozen=True)
class Expected:
    """An entry as the manifest records it."""

    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    doc: dict[str, Any]  # the whole manifest, as written
    entries: dict[str, Expected]  # path -> what the entry must be


READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)
_SHA256 = re.compile(r"[0-9a-f]{64}")


def read_manifest(zf: zipfile.ZipFile) -> Manifest:
    """MANIFEST.json of the archive, validated; ManifestError when missing or unusable."""
    try:
        data = zf.read(MANIFEST_NAME)
    except KeyError:
        raise ManifestError("missing from the archive") from None
    except READ_ERRORS as e:
        raise ManifestError(f"cannot be read ({e})") from None
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ManifestError(f"cannot be read ({e})") from None
    return parse_manifest(doc)


def parse_manifest(doc: Any) -> Manifest:
    """A manifest document (MANIFEST.json or the sidecar) with its entries validated: each
    has a path, a size and a SHA-256, and no path is listed twice."""
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise ManifestError("has no list of entries")
    entries: dict[str, Expected] = {}
    for n, item in enumerate(doc["entries"]):
        path = item.get("path") if isinstance(item, dict) else None
        size = item.get("size") if isinstance(item, dict) else None
        digest = item.get("sha256") if isinstance(item, dict) else None
        if not isinstance(path, str) or not isinstance(size, int) or isinstance(size, bool) \
                or size < 0 or not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ManifestError(f"entry {n} is not a path with a size and a SHA-256")
        if path in entries:
            raise ManifestError(f"lists {shown(path)} twice")
        entries[path] = Expected(size, digest)
    return Manifest(doc, entries)


# -- entries as they stream ------------------------------------------------------------------


@dataclass
class Streamed:
    """What reading one entry found: its size and, when damaged, the problems."""

    size: int = 0
    readable: bool = True
    problems: list[str] = field(default_factory=list)


# What opening or reading one entry can raise besides READ_ERRORS: an encrypted entry
# (RuntimeError), an unknown compression method (NotImplementedError).
ENTRY_READ_ERRORS = (*READ_ERRORS, RuntimeError, NotImplementedError)


def stream_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, expected: Expected | None,
                 feed: Callable[[bytes], object], oid: str | None = None) -> Streamed:
    """Reads an entry chunk by chunk, handing each chunk to `feed`, and checks its size and
    SHA-256 against `expected` (when given) and, for an LFS object, that it hashes to `oid`.
    With `expected`, reading stops at its size + 1 bytes, whatever the zip headers claim
    (a zip bomb that the manifest calls 100 bytes feeds at most 101). Errors raised by
    `feed` propagate; read errors become a problem."""
    digest, out = hashlib.sha256(), Streamed()
    limit = expected.size + 1 if expected is not None else None
    try:
        src = zf.open(info)
    except ENTRY_READ_ERRORS as e:
        return Streamed(readable=False, problems=[f"cannot be read ({e})"])
    with src:
        while limit is None or out.size < limit:
            want = CHUNK if limit is None else min(CHUNK, limit - out.size)
            try:  # only the reading: a failing `feed` (a full disk, say) is the caller's
                data = src.read(want)
            except ENTRY_READ_ERRORS as e:
                return Streamed(out.size, readable=False, problems=[f"cannot be read ({e})"])
            if not data:
                break
            digest.update(data)
            out.size += len(data)
            feed(data)
    if expected is not None:
        if out.size > expected.size:
            out.problems.append(f"has more than {expected.size} bytes where the manifest says "
                                f"{expected.size} (reading stopped there)")
        elif out.size != expected.size:
            out.problems.append(f"has {out.size} bytes where the manifest says {expected.size}")
        elif digest.hexdigest() != expected.sha256:
            out.problems.append("SHA-256 does not match the manifest (corrupted)")
    if oid is not None and digest.hexdigest() != oid:
        out.problems.append("the content does not hash to the SHA-256 in its name"
                            if info.filename.startswith("attachments/") else
                            "the LFS object's content does not hash to its oid")
    return out


__all__ = [
    "ACCOUNT_FILES", "ATTACHMENT", "ATTACHMENT_INDEX", "COUNTS", "ENTRY_READ_ERRORS",
    "GIST_FILES", "LFS_OBJECT", "MANIFEST", "MANIFEST_NAME", "MAX_SEGMENT_BYTES",
    "RELEASE_ASSET", "REPO_FILES", "SPECS", "TEAM_FILES", "Entry", "Expected", "LayoutError",
    "Manifest", "ManifestError", "Spec", "Streamed", "account_entry", "attachment_entry",
    "check_entry_name",
    "classify", "fit_segment", "gist_entry", "gist_id_problem", "lfs_entry", "parse_manifest",
    "read_manifest", "release_asset_entries", "release_asset_entry", "repo_entry",
    "repo_name_problem", "segment", "shown", "stream_entry", "team_dirs", "team_entry",
]
