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
and SHA-256 as it is written (a damaged entry is reported and left out). An entry whose name
the archive layout does not allow (see layout.py), that is stored as a symbolic link, or
that the manifest does not list (or lists in a malformed record), is reported and never
written. The archive is hostile until proven otherwise:

- every path written is built from a name `classify` accepts and checked to lie under DIR
  with symbolic links resolved; nothing from the archive is written inside a mirror's git
  directory except LFS objects, at `lfs/objects/aa/bb/<oid>` with content hashing to <oid>;
- each entry goes to a temporary name beside its target (O_EXCL, O_NOFOLLOW), reading at
  most the manifest's size + 1 bytes, and is renamed only once its size and SHA-256 match;
  a damaged entry, a full disk or an interruption leaves no file behind;
- mirrors are made by git from bundles only: a scratch copy of the bundle under DIR is
  fetched into a fresh bare repository made without templates (`git fetch` runs
  index-pack, which checks every object); those git children ignore system, global and
  HOME config and may use only the `file` protocol (source.local_git);
- a file/directory clash or a symbolic-link entry is one problem line (exit 8); a full
  disk, an over-long path or an unwritable DIR one sentence naming the path (exit 5).

With --push-to URL_TEMPLATE, every restored repository (not wikis or gists) is pushed to
the URL with `{repo}` (and `{owner}`) filled in: LFS objects first (`git lfs push`), then
`refs/heads/*` and `refs/tags/*` (never refs/pull/*, which GitHub refuses). The token comes
from GITHUB_TOKEN only and reaches git through its environment, as in backups (see git.py).
Nothing from the archive chooses where the push goes or what it sends: the template's host
is literal, `{repo}` is a name the layout allows and `{owner}` must be a GitHub login; the
push's git children have no system, global or HOME config, may use only the template's
protocol, and have the LFS endpoint pinned to the push URL's (a `.lfsconfig` committed in
the repository cannot move it).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .contract import check_owner
from .errors import ArchiveInvalid, ConfigError, DestinationError
from .git import Git, GitError, _cause
from .layout import (
    MANIFEST_NAME,
    Entry,
    Expected,
    LayoutError,
    ManifestError,
    classify,
    shown,
    stream_entry,
)
from .parts import check_restore_target, restored_manifest_name
from .source import ArchiveSource, local_git
from .storage.failures import file_error
from .verify import is_symlink, manifest_doc, open_archive, sound_entries

log = logging.getLogger("ghvault")


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
    shown = re.sub(r"//[^/@]*@", "//", template)  # never echo credentials
    if parts.scheme not in ("https", "http") or not parts.hostname or "@" in parts.netloc:
        raise ConfigError(f"--push-to {shown!r} must be an http(s) URL without "
                          "credentials: the token comes from GITHUB_TOKEN")
    if "{" in urlsplit(template).netloc:
        raise ConfigError(f"--push-to {shown!r} puts {{repo}} or {{owner}} in the host: "
                          "name the host literally (the archive must not choose where the "
                          "push goes)")
    return template


def push_url(template: str, repo: str, owner: str) -> str:
    """The template filled in for one repository. `repo` is a name the layout allows and
    `owner` a GitHub login (checked by the caller), so neither can add a path component,
    a query or another host: the URL's origin is the template's."""
    url = template.replace("{repo}", repo).replace("{owner}", owner)
    here, there = urlsplit(url), urlsplit(template)
    if (here.scheme, here.netloc) != (there.scheme, there.netloc) or here.query or \
            here.fragment or "/../" in f"{here.path}/" or "/./" in f"{here.path}/":
        raise GitError(f"the URL for {repo!r} would leave {there.scheme}://{there.netloc}")
    return url


class PushGit(Git):
    """Git for `restore --push-to`: as for backups (no system, global or HOME config, the
    token only as a header for the push origin), plus only the push URL's protocol
    (GIT_ALLOW_PROTOCOL) and the LFS endpoint pinned to the push URL's, so that a
    `.lfsconfig` committed in a restored repository cannot send objects elsewhere."""

    def __init__(self, url: str, token: str | None, workdir: Path, timeout: float) -> None:
        parts = urlsplit(url)
        super().__init__(f"{parts.scheme}://{parts.netloc}", token, workdir, timeout)
        self.scheme = parts.scheme
        self.lfs_url = (url if url.endswith(".git") else f"{url}.git") + "/info/lfs"

    def env(self, lfs: bool = False) -> dict[str, str]:
        env = super().env(lfs)
        env["GIT_ALLOW_PROTOCOL"] = self.scheme
        extra = [("lfs.url", self.lfs_url), ("lfs.pushurl", self.lfs_url)]
        count = int(env.get("GIT_CONFIG_COUNT", "0"))
        for i, (key, value) in enumerate(extra, count):
            env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
        env["GIT_CONFIG_COUNT"] = str(count + len(extra))
        return env


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
        if self.to.exists() and not self.to.is_dir():
            raise ConfigError(f"--to {self.to} is not an empty directory: choose a new one")
        zf, raw = open_archive(self.source)
        try:
            try:
                manifest, malformed = sound_entries(manifest_doc(zf))
            except ManifestError as e:
                raise ArchiveInvalid(f"{MANIFEST_NAME} of {self.source.url} {e}: run "
                                     f"`ghvault verify {self.source.url}`") from None
            for name, text in malformed:  # their entries are then not in the manifest
                self.outcome.problems.append(f"{shown(name)}: {text}" if name else text)
            check_restore_target(self.to, manifest.doc)  # empty, or other parts of the month
            owner = manifest.doc.get("owner")
            self.owner = owner if isinstance(owner, str) else ""
            listed = manifest.entries
            if self.keep is not None and not any(map(self.wanted, listed)):
                raise ConfigError(f"--repos {self.opts.repos!r} matches no repository in "
                                  f"{self.source.url}: check the regex against the names "
                                  "under repos/ in the archive")
            try:
                self.to.mkdir(parents=True, exist_ok=True)
                scratch = Path(tempfile.mkdtemp(prefix=".ghvault-restore-", dir=self.to))
            except OSError as e:
                raise file_error(e, self.to, action="restoring", option="--to") from None
            try:
                kept = self.to / restored_manifest_name(manifest.doc)
                try:
                    kept.write_text(json.dumps(manifest.doc, indent=1,
                                                                    sort_keys=True) + "\n")
                except OSError as e:
                    raise file_error(e, kept, action="restoring",
                                     option="--to") from None
                infos = sorted(zf.infolist(), key=lambda i: i.header_offset)
                seen: set[str] = set()
                for info in infos:
                    entry = self.allowed(info, listed, seen)
                    if entry is not None and self.wanted(entry.name):
                        self.entry(zf, info, entry, listed[entry.name], scratch)
                for name in sorted(set(listed) - {i.filename for i in infos}):
                    if self.wanted(name):
                        self.problem(name, "missing from the archive")
                self.finish_mirrors()
                if self.opts.push_to:
                    self.push_all(scratch)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        finally:
            zf.close()
            raw.close()
        return self.summary()

    def problem(self, name: str, text: str) -> None:
        self.outcome.problems.append(f"{shown(name)}: {text}")

    def allowed(self, info: zipfile.ZipInfo, listed: dict[str, Expected],
                seen: set[str]) -> Entry | None:
        """The entry, when the layout allows its name and mode and the manifest lists it
        once; None (reported, unless it is the manifest itself) otherwise."""
        name = info.filename
        try:
            entry = classify(name)
        except LayoutError as e:
            self.problem(name, f"not allowed by the archive layout ({e}); left out")
            return None
        if name in seen:
            self.problem(name, "appears twice in the archive; left out")
            return None
        seen.add(name)
        if entry.role == "manifest":
            return None  # written above, from what was read
        if is_symlink(info):
            self.problem(name, "is stored as a symbolic link, which the archive layout does "
                               "not allow; left out")
            return None
        if name not in listed:
            self.problem(name, "is in the archive but not in the manifest; left out")
            return None
        return entry

    def wanted(self, name: str) -> bool:
        """Everything without --repos; with it, only the matching repositories' entries."""
        if self.keep is None:
            return True
        try:
            repo = classify(name).repo
        except LayoutError:
            return False
        return repo is not None and bool(self.keep.search(repo))

    # entries ---------------------------------------------------------------------------

    def entry(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, entry: Entry,
              expected: Expected, scratch: Path) -> None:
        repos, role = self.to / "repos", entry.role
        if role in ("git_bundle", "wiki_bundle", "gist_bundle"):
            target = (self.to / "gists" / f"{entry.gist}.git" if role == "gist_bundle" else
                      repos / f"{entry.repo}{'.wiki' if role == 'wiki_bundle' else ''}.git")
            bundle = scratch / "entry.bundle"
            if self.extract(zf, info, entry, expected, bundle):
                self.mirror_from_bundle(entry.name, bundle, target)
                if role == "git_bundle":
                    self.mirrors[str(entry.repo)] = target
            bundle.unlink(missing_ok=True)
            return
        if role == "lfs_object":
            oid = str(entry.oid)
            store = repos / f"{entry.repo}.git" / "lfs" / "objects"
            if self.extract(zf, info, entry, expected, store / oid[:2] / oid[2:4] / oid):
                self.outcome.add("lfs_objects")
            return
        if role == "empty_repo":
            self.init_bare(repos / f"{entry.repo}.git")
            self.outcome.add("empty_repos")
        if self.extract(zf, info, entry, expected, self.to / entry.name):
            self.outcome.add("files")

    def extract(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, entry: Entry,
                expected: Expected, target: Path) -> bool:
        """Copy an entry to `target` through a temporary name beside it, checking its size
        (reading at most the manifest's size + 1 bytes) and SHA-256 (and LFS oid), then
        rename it; a damaged entry is reported and nothing of it is kept. The target and
        its directory must lie under --to once symbolic links are resolved."""
        if not self.inside(target):
            self.problem(entry.name, f"would be written outside {self.to}; left out")
            return False
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            return self.write_failed(entry, target, e)
        if not self.inside(target):
            self.problem(entry.name, f"would be written outside {self.to}; left out")
            return False
        if os.path.lexists(target):
            self.problem(entry.name, f"clashes with {target}, already in {self.to}; left out")
            return False
        tmp = target.parent / f".ghvault-{uuid.uuid4().hex[:16]}.part"
        try:  # the temporary file goes whatever happens: renamed, or removed
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as out:
                streamed = stream_entry(zf, info, expected, out.write, oid=entry.oid)
            if not streamed.problems:
                os.rename(tmp, target)
        except OSError as e:
            return self.write_failed(entry, target, e)
        finally:
            tmp.unlink(missing_ok=True)
        if streamed.problems:
            self.problem(entry.name, f"{streamed.problems[0]}; left out")
            return False
        return True

    def inside(self, target: Path) -> bool:
        """Whether `target` lies under --to, symbolic links resolved."""
        return target.resolve().is_relative_to(self.to.resolve())

    def write_failed(self, entry: Entry, target: Path, e: OSError) -> bool:
        """A write that failed: a file/directory clash is the archive's problem (reported,
        False); a full disk, a name too long or a read-only --to end the restore."""
        if e.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            self.problem(entry.name, f"clashes with a file or directory already in "
                                     f"{self.to} ({e.strerror}); left out")
            return False
        raise file_error(e, target, action="restoring", option="--to") from None

    # mirrors ---------------------------------------------------------------------------

    def init_bare(self, target: Path) -> None:
        if not self.inside(target):
            raise ArchiveInvalid(f"the repository {target} would lie outside {self.to}: "
                                 "restore into a directory without symbolic links")
        result = local_git(["init", "--bare", "--quiet", "--template=", str(target)], self.to)
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
            if not isinstance(branch, str) or "\0" in branch or branch.startswith("-"):
                continue  # not a branch name git could hold
            if branch and local_git(["rev-parse", "--verify", "--quiet",
                                     f"refs/heads/{branch}"], mirror).returncode == 0:
                local_git(["symbolic-ref", "HEAD", f"refs/heads/{branch}"], mirror)

    # push ------------------------------------------------------------------------------

    def push_all(self, scratch: Path) -> None:
        template = self.opts.push_to or ""
        token = os.environ.get("GITHUB_TOKEN") or None
        if "{owner}" in template:
            try:
                check_owner(self.owner)
            except ValueError:
                self.problem(MANIFEST_NAME, f"the owner {self.owner!r} is not a GitHub login, "
                                            "so --push-to's {owner} cannot be filled in; "
                                            "nothing was pushed")
                return
        for repo, mirror in sorted(self.mirrors.items()):
            url = template.replace("{repo}", repo).replace("{owner}", self.owner)
            try:
                url = push_url(template, repo, self.owner)
                self.push(PushGit(url, token, scratch, self.opts.git_timeout), mirror, url)
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
