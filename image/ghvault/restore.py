"""`ghvault restore ARCHIVE --to DIR`: bare mirrors, LFS objects and readable metadata.

Layout of DIR:

    MANIFEST.json                    the archive's manifest
    account/...                      profile, followers, ... (JSON)
    repos/<name>.git                 bare mirror, every ref of the backup (refs/pull/* too)
    repos/<name>.git/lfs/objects/aa/bb/<oid>   its LFS objects, where git-lfs looks
    repos/<name>.wiki.git            the wiki's bare mirror
    repos/<name>/...                 repo.json, issues.jsonl, pulls.jsonl, releases/<tag>/...
    gists/<id>.git, gists/<id>/gist.json

Entries are read in the order they are stored, each checked against the manifest's size
and SHA-256 as it is written (a damaged entry is reported and left out). Bundles go to a
scratch file beside DIR and are fetched into a fresh bare repository (`git fetch` runs
index-pack, which checks every object).

With --push-to URL_TEMPLATE, every restored repository (not wikis or gists) is pushed to
the URL with `{repo}` (and `{owner}`) filled in: LFS objects first (`git lfs push`), then
`refs/heads/*` and `refs/tags/*` (never refs/pull/*, which GitHub refuses). The token comes
from GITHUB_TOKEN only and reaches git through its environment, as in backups (see git.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .archive import MANIFEST_NAME, check_entry_name
from .errors import ArchiveInvalid, ConfigError, DestinationError
from .git import Git, GitError, _cause
from .source import ArchiveSource, local_git

log = logging.getLogger("ghvault")
CHUNK = 1 << 20
REPO_ENTRY = re.compile(r"^repos/(?P<repo>[^/]+)/(?P<rest>.+)$")
GIST_BUNDLE = re.compile(r"^gists/(?P<gist>[^/]+)/git\.bundle$")
LFS_ENTRY = re.compile(r"^lfs/(?P<oid>[0-9a-f]{64})$")


@dataclass
class RestoreOptions:
    to: Path
    repos: str | None = None
    push_to: str | None = None
    git_timeout: float = 3600.0


@dataclass
class Outcome:
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # the archive's
    push_failures: list[str] = field(default_factory=list)

    def add(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1


def check_template(template: str) -> str:
    if "{repo}" not in template:
        raise ConfigError(f"--push-to {template!r} has no {{repo}}: use a template such as "
                          "https://github.com/NEWORG/{repo}.git")
    parts = urlsplit(template.replace("{repo}", "r").replace("{owner}", "o"))
    if parts.scheme not in ("https", "http") or not parts.hostname or "@" in parts.netloc:
        shown = re.sub(r"//[^/@]*@", "//", template)  # never echo credentials
        raise ConfigError(f"--push-to {shown!r} must be an http(s) URL without "
                          "credentials: the token comes from GITHUB_TOKEN")
    return template


class Restore:
    def __init__(self, source: ArchiveSource, opts: RestoreOptions) -> None:
        self.source, self.opts = source, opts
        self.keep = re.compile(opts.repos) if opts.repos else None
        self.to = opts.to.absolute()
        self.outcome = Outcome()
        self.mirrors: dict[str, Path] = {}  # repository name -> restored mirror
        self.started = time.monotonic()
        if opts.push_to:
            check_template(opts.push_to)

    # the run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        if self.to.exists() and (not self.to.is_dir() or any(self.to.iterdir())):
            raise ConfigError(f"--to {self.to} is not an empty directory: choose a new one")
        zf, raw = self.source.open_zip()
        try:
            manifest = self.read_manifest(zf)
            self.owner = str(manifest.get("owner") or "")
            listed = {e["path"]: e for e in manifest["entries"]}
            if self.keep is not None and not any(map(self.wanted, listed)):
                raise ConfigError(f"--repos {self.opts.repos!r} matches no repository in "
                                  f"{self.source.url}: check the regex against the names "
                                  "under repos/ in the archive")
            self.to.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=".ghvault-restore-", dir=self.to))
            try:
                (self.to / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1,
                                                                sort_keys=True) + "\n")
                infos = sorted(zf.infolist(), key=lambda i: i.header_offset)
                for info in infos:
                    if info.filename in listed and self.wanted(info.filename):
                        self.entry(zf, info, listed[info.filename], scratch)
                for name in sorted(set(listed) - {i.filename for i in infos}):
                    if self.wanted(name):
                        self.outcome.problems.append(f"{name}: missing from the archive")
                self.finish_mirrors()
                if self.opts.push_to:
                    self.push_all(scratch)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        finally:
            zf.close()
            raw.close()
        return self.summary()

    def read_manifest(self, zf: zipfile.ZipFile) -> dict[str, Any]:
        try:
            manifest = json.loads(zf.read(MANIFEST_NAME))
        except (KeyError, ValueError, zipfile.BadZipFile, zlib.error) as e:
            raise ArchiveInvalid(f"{self.source.url} has no readable {MANIFEST_NAME} ({e}): "
                                 f"run `ghvault verify {self.source.url}`") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("entries"), list):
            raise ArchiveInvalid(f"{MANIFEST_NAME} in {self.source.url} lists no entries: it "
                                 "is not a ghvault archive")
        return manifest

    def wanted(self, name: str) -> bool:
        """Everything without --repos; with it, only the matching repositories' entries."""
        if self.keep is None:
            return True
        m = REPO_ENTRY.match(name)
        return bool(m and self.keep.search(m["repo"]))

    # entries ---------------------------------------------------------------------------

    def entry(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, expected: dict[str, Any],
              scratch: Path) -> None:
        name = info.filename
        try:
            check_entry_name(name)
        except ValueError as e:
            self.outcome.problems.append(f"{name}: unsafe name ({e})")
            return
        repo = REPO_ENTRY.match(name)
        gist = GIST_BUNDLE.match(name)
        target = None
        if repo and repo["rest"] in ("git.bundle", "wiki.bundle"):
            wiki = ".wiki" if repo["rest"] == "wiki.bundle" else ""
            target = self.to / "repos" / f"{repo['repo']}{wiki}.git"
        elif gist:
            target = self.to / "gists" / f"{gist['gist']}.git"
        if target is not None:
            bundle = scratch / "entry.bundle"
            if self.extract(zf, info, expected, bundle):
                self.mirror_from_bundle(name, bundle, target)
                if repo and repo["rest"] == "git.bundle":
                    self.mirrors[repo["repo"]] = target
            bundle.unlink(missing_ok=True)
            return
        if repo and (lfs := LFS_ENTRY.match(repo["rest"])):
            oid = lfs["oid"]
            store = self.to / "repos" / f"{repo['repo']}.git" / "lfs" / "objects"
            if self.extract(zf, info, expected, store / oid[:2] / oid[2:4] / oid, oid=oid):
                self.outcome.add("lfs_objects")
            return
        if repo and repo["rest"] == "git.empty.json":
            self.init_bare(self.to / "repos" / f"{repo['repo']}.git")
            self.outcome.add("empty_repos")
        if self.extract(zf, info, expected, self.to / name):
            self.outcome.add("files")

    def extract(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, expected: dict[str, Any],
                target: Path, oid: str | None = None) -> bool:
        """Copy an entry to `target`, checking its size and SHA-256 (and LFS oid); a
        damaged entry is reported and not kept."""
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        try:
            with zf.open(info) as src, open(target, "wb") as out:
                while data := src.read(CHUNK):
                    digest.update(data)
                    size += len(data)
                    out.write(data)
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            problem = f"cannot be read ({e})"
        except OSError as e:
            raise DestinationError(f"cannot write {target} ({e.strerror or e}): free space "
                                   "or choose another --to") from None
        else:
            problem = ""
            if size != expected.get("size") or digest.hexdigest() != expected.get("sha256"):
                problem = "does not match its size and SHA-256 in the manifest (corrupted)"
            elif oid and digest.hexdigest() != oid:
                problem = "the LFS object's content does not hash to its oid"
        if problem:
            target.unlink(missing_ok=True)
            self.outcome.problems.append(f"{info.filename}: {problem}; left out")
            return False
        return True

    # mirrors ---------------------------------------------------------------------------

    def init_bare(self, target: Path) -> None:
        result = local_git(["init", "--bare", "--quiet", str(target)], self.to)
        if result.returncode:
            raise DestinationError(f"cannot create the repository {target} "
                                   f"({_cause(result.stderr)}): check --to")

    def mirror_from_bundle(self, name: str, bundle: Path, target: Path) -> None:
        self.init_bare(target)
        fetch = local_git(["fetch", "--quiet", "--no-write-fetch-head", str(bundle),
                           "+refs/*:refs/*"], target)
        if fetch.returncode:
            self.outcome.problems.append(f"{name}: `git fetch` from the bundle failed "
                                         f"({_cause(fetch.stderr)}); mirror left incomplete")
            return
        heads = local_git(["bundle", "list-heads", str(bundle)], target)
        refs = {ref: sha for sha, _, ref in (line.partition(" ")
                                             for line in heads.stdout.splitlines())}
        head = pick_head(refs)
        if head:
            local_git(["symbolic-ref", "HEAD", head], target)
        kind = ("wikis" if target.name.endswith(".wiki.git") else
                "gists" if target.parent.name == "gists" else "mirrors")
        self.outcome.add(kind)
        log.info("restored %s (%d refs)", target.relative_to(self.to),
                 sum(r != "HEAD" for r in refs))

    def finish_mirrors(self) -> None:
        """Default branch from repo.json, where the bundle left it ambiguous."""
        for repo, mirror in self.mirrors.items():
            meta = self.to / "repos" / repo / "repo.json"
            try:
                branch = json.loads(meta.read_text()).get("default_branch")
            except (OSError, ValueError, AttributeError):
                continue
            if branch and local_git(["rev-parse", "--verify", "--quiet",
                                     f"refs/heads/{branch}"], mirror).returncode == 0:
                local_git(["symbolic-ref", "HEAD", f"refs/heads/{branch}"], mirror)

    # push ------------------------------------------------------------------------------

    def push_all(self, scratch: Path) -> None:
        template = self.opts.push_to or ""
        token = os.environ.get("GITHUB_TOKEN") or None
        for repo, mirror in sorted(self.mirrors.items()):
            url = template.replace("{repo}", repo).replace("{owner}", self.owner)
            parts = urlsplit(url)
            git = Git(f"{parts.scheme}://{parts.netloc}", token, scratch,
                      self.opts.git_timeout)
            try:
                self.push(git, mirror, url)
            except GitError as e:
                self.outcome.push_failures.append(f"push of {repo} to {url} failed: {e}")
                continue
            self.outcome.add("pushed")
            log.info("pushed %s to %s", repo, url)

    def push(self, git: Git, mirror: Path, url: str) -> None:
        listed = local_git(["for-each-ref", "--format=%(refname)", "refs/heads", "refs/tags"],
                           mirror)
        refs = listed.stdout.split()
        if not refs:
            return
        if (mirror / "lfs" / "objects").is_dir():
            for start in range(0, len(refs), 200):
                result = git.run(["lfs", "push", url, *refs[start:start + 200]], mirror,
                                 lfs=True)
                if result.code:
                    raise GitError(f"`git lfs push` failed: {_cause(result.stderr)}")
        result = git.run(["push", "--quiet", url, "refs/heads/*:refs/heads/*",
                          "refs/tags/*:refs/tags/*"], mirror)
        if result.code:
            raise GitError(f"`git push` failed: {_cause(result.stderr)}")

    def summary(self) -> dict[str, Any]:
        out = self.outcome
        return {"archive": self.source.url, "to": str(self.to),
                "counts": dict(sorted(out.counts.items())), "problems": out.problems,
                "push_failures": out.push_failures,
                "duration_s": round(time.monotonic() - self.started, 1)}


def pick_head(refs: dict[str, str]) -> str | None:
    """The branch HEAD names in a bundle (which records only HEAD's object): the branch
    with that object, preferring main and master; else main, master or the first branch."""
    branches = sorted(r for r in refs if r.startswith("refs/heads/"))
    if not branches:
        return None
    preferred = ["refs/heads/main", "refs/heads/master"]
    target = refs.get("HEAD")
    same = [b for b in branches if refs[b] == target]
    for pool in (same, branches):
        for ref in preferred + pool:
            if ref in pool:
                return ref
    return branches[0]


__all__ = ["Restore", "RestoreOptions", "check_template", "pick_head"]
