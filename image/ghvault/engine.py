"""One backup run: an owner's whole account into one archive at the destination.

API work and git work run in two bounded pools (across repositories, and git beside API),
every entry streams into one zip on its way to S3 (bundles straight from `git bundle
create -`, never a file), each mirror is deleted as soon as its bundle and LFS objects
are in the archive, the mirrors on disk at once stay within about the largest repository
plus a small headroom, and the object appears at the final key only when complete.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import __version__
from .archive import ArchiveWriter
from .bundles import stream_bundle
from .collect import KINDS, Job, Ledger, is_disk_full, workdir_full
from .collect.account import collect_account
from .collect.attachments import Attachments, ScanningArchive
from .collect.discussions import collect_discussions
from .collect.owner import collect_owner
from .collect.projects import collect_projects
from .collect.repo_meta import collect_repo_metadata
from .collect.settings import collect_repo_settings
from .compact import Compact
from .contract import SIDECAR_SUFFIX, Shard, part_suffix
from .engine_gitstate import KeptGit
from .errors import AuthError, ConfigError, NotFound
from .git import Git, GitError, RepoNotFound, kill_children
from .github.auth import InstallationAuth, make_auth
from .github.cache import StateStore
from .github.client import GitHubClient
from .github.urls import default_git_url
from .gitstate import GitState
from .layout import gist_entry, gist_id_problem, lfs_entry, repo_entry
from .listing import discover, list_repos
from .memory import trim
from .shards import holds_account, kinds_of, manifest_field, select
from .stop import (
    STOP_GRACE,
    Halted,
    Interrupted,
    StoppableClient,
    StopRequest,
    signal_name,
)
from .storage import open_destination

log = logging.getLogger("ghvault")
DISK_HEADROOM = 16 << 20  # bytes of mirrors allowed beside the largest repository's
GIST_DISK = 1 << 20  # what a gist's mirror is assumed to take
REPO_API_PARTS = ("metadata", "discussions", "settings")  # one API job each (repo_api)
API_JOBS_PER_SLOT = 2  # API jobs running per request in flight (collect)


class DiskBudget:
    """Bounds the bytes of git mirrors on disk at once: a mirror starts only while the
    reserved bytes plus its own stay within the limit, or when it would be alone (so a
    repository larger than the limit still runs, by itself)."""

    def __init__(self, limit: int, stop: threading.Event | None = None):
        self.limit = limit
        self.used = 0
        self.cond = threading.Condition()
        self.stop = stop  # set: a job waiting for room gives up (Halted)

    @contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        with self.cond:
            while not (self.used == 0 or self.used + size <= self.limit):
                if self.stop is not None and self.stop.is_set():
                    raise Halted()
                self.cond.wait(0.5)
            self.used += size
        try:
            yield
        finally:
            with self.cond:
                self.used -= size
                self.cond.notify_all()


@dataclass
class Options:
    owner: str
    dest: str
    month: str
    api_url: str = "https://api.github.com"
    kinds: frozenset[str] = frozenset(KINDS)
    repos: str | None = None
    exclude_repos: str | None = None
    forks: bool = True
    archived: bool = True
    concurrency: int = 4
    git_concurrency: int = 2
    state: str | None = None
    workdir: str | None = None
    git_timeout: float = 3600.0
    retries: int = 8
    git_url: str | None = None  # the git origin; default: derived from api_url
    shard: Shard | None = None  # this part of the owner only (shards.py)
    git_state: bool = False  # keep bundles in the state; fetch only what changed


@dataclass
class Progress:
    total: int = 0
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class Backup(KeptGit):
    def __init__(self, opts: Options, stop: StopRequest | None = None):
        self.opts = opts
        self.stop = stop or StopRequest()
        self.ledger = Ledger()
        self.progress = Progress()
        self.started_at = datetime.now(UTC)
        self.disk = DiskBudget(DISK_HEADROOM, self.stop.event)
        self.shard_info: dict[str, Any] = {}
        self.kinds = frozenset(opts.kinds)
        self.gits: GitState | None = None  # --git-state (gitstate.py)
        self.gone: set[str] = set()  # repositories deleted during the run

    # discovery ---------------------------------------------------------------------------

    def discover(self, client: GitHubClient) -> tuple[dict[str, Any], str | None]:
        return discover(client, self.opts.owner)

    def list_repos(self, client: GitHubClient, profile: dict[str, Any],
                   viewer: str | None) -> list[dict[str, Any]]:
        return list_repos(client, profile, viewer, self.opts, self.ledger)

    # per repository ---------------------------------------------------------------------

    def repo_api(self, job: Job, repo: dict[str, Any], part: str) -> None:
        """One `part` of the repository's API data (REPO_API_PARTS): the parts are
        independent, and as separate jobs a large repository's pages (read one after
        another within a part) are not all one long chain."""
        try:
            if part == "metadata":
                collect_repo_metadata(job, repo)
            elif part == "discussions" and job.wants("discussions"):
                collect_discussions(job, repo)
            elif part == "settings":
                collect_repo_settings(job, repo)
        except NotFound as e:  # deleted while we were reading it
            with self.progress.lock:  # said once, whichever part found it
                if repo["full_name"] in self.gone:
                    return
                self.gone.add(repo["full_name"])
            self.ledger.skip(f"repo {repo['full_name']}", f"disappeared during the run ({e})")

    def repo_git(self, job: Job, git: Git, repo: dict[str, Any]) -> None:
        name = repo["name"]
        # GitHub's `size` (KiB) is roughly what the mirror will occupy on disk.
        with self.disk.reserve(int(repo.get("size") or 0) * 1024):
            scratch = Path(tempfile.mkdtemp(prefix="repo-", dir=job.workdir))
            try:
                if job.wants("git") and self.gits is not None:
                    if not self.repo_git_kept(job, git, repo, scratch):
                        return
                elif job.wants("git"):
                    try:
                        mirror = git.mirror(repo["clone_url"], scratch / "mirror.git")
                    except RepoNotFound as e:
                        self.ledger.skip(f"repo {repo['full_name']}", f"git: {e}")
                        return
                    if mirror.empty:
                        self.ledger.add("empty_repos")
                        job.archive.add_json(repo_entry(name, "git.empty.json"),
                                             {"full_name": repo["full_name"], "empty": True})
                    else:
                        self.add_bundle(job, git, mirror, repo_entry(name, "git.bundle"))
                        if job.wants("lfs"):
                            for obj in git.lfs_fetch(mirror):
                                job.archive.add_file(lfs_entry(name, obj.oid), obj.path)
                                self.ledger.add("lfs_objects")
                        shutil.rmtree(mirror.path)  # in the archive now: free the disk
                        self.ledger.add("git_bundles")
                if job.wants("wiki") and repo.get("has_wiki") and self.gits is not None:
                    wiki_url = re.sub(r"\.git$", ".wiki.git", repo["clone_url"])
                    self.wiki_git_kept(job, git, repo, wiki_url, scratch)
                elif job.wants("wiki") and repo.get("has_wiki"):
                    wiki_url = re.sub(r"\.git$", ".wiki.git", repo["clone_url"])
                    if git.exists(wiki_url):
                        wiki = git.mirror(wiki_url, scratch / "wiki.git")
                        if self.add_bundle(job, git, wiki, repo_entry(name, "wiki.bundle")):
                            self.ledger.add("wikis")
                        shutil.rmtree(wiki.path)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
                if not self.stop.event.is_set():  # a stopping run reports no progress
                    self.tick(repo["full_name"])

    @staticmethod
    def add_bundle(job: Job, git: Git, mirror: Any, name: str) -> bool:
        """The mirror's bundle, streamed from git into the archive entry `name` (never
        written to disk); False for an empty repository."""
        return stream_bundle(
            git, mirror, lambda source: job.archive.add_stream(name, source, kind="stored"))

    def gist(self, job: Job, git: Git, gist: dict[str, Any]) -> None:
        if problem := gist_id_problem(gist["id"]):  # the archive layout cannot hold it
            self.ledger.skip(f"gist {gist['id']}", problem)
            return
        job.archive.add_json(gist_entry(gist["id"], "gist.json"), gist)
        with self.disk.reserve(GIST_DISK):
            scratch = Path(tempfile.mkdtemp(prefix="gist-", dir=job.workdir))
            try:
                if self.gits is not None:
                    self.gits.backup(git, f"gist-{gist['id']}", gist["git_pull_url"], scratch,
                                     self.adder(job, gist_entry(gist["id"], "git.bundle")))
                else:
                    mirror = git.mirror(gist["git_pull_url"], scratch / "gist.git")
                    self.add_bundle(job, git, mirror, gist_entry(gist["id"], "git.bundle"))
                self.ledger.add("gists")
            except RepoNotFound as e:
                self.ledger.skip(f"gist {gist['id']}", f"git: {e}")
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

    def tick(self, name: str) -> None:
        p = self.progress
        with p.lock:
            p.done += 1
            done, total = p.done, p.total
        acct = self.client.acct.snapshot()
        log.info("repos %d/%d done (%s); %s written; %d API requests (%d not modified); "
                 "rate limit left %s", done, total, name, human(self.archive.bytes_written),
                 acct["requests"], acct["not_modified"], acct["rate_remaining"])
        trim()  # the repository's freed pages back to the system (memory.py)

    # the run ----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """The backup; on SIGTERM or SIGINT (in the main thread) it stops as described in
        StopRequest and raises Interrupted."""
        with self.stop.handling_signals():
            try:
                return self._run()
            except BaseException as e:
                if self.stop.signum is not None and not isinstance(e, Interrupted):
                    raise Interrupted(self.stop.signum) from e  # what the failure came from
                raise

    def _run(self) -> dict[str, Any]:
        opts = self.opts
        unknown = set(opts.kinds) - set(KINDS)
        if unknown:
            raise ConfigError(f"unknown kinds {sorted(unknown)}: choose from {', '.join(KINDS)}")
        auth = make_auth(opts.api_url, opts.owner)
        dest = open_destination(opts.dest)
        dest.check()
        part = part_suffix(opts.shard)
        store = StateStore(opts.state, opts.owner, part) if opts.state else None
        workdir: Path | None = None
        cache = client = None
        self.git: Git | None = None
        try:
            workdir = Path(tempfile.mkdtemp(prefix="ghvault-", dir=opts.workdir))
            cache = store.load(workdir) if store else None
            if store and opts.git_state:
                self.gits = GitState(store.store, opts.owner, part)
                self.gits.load()
            self.client = client = GitHubClient(opts.api_url, auth,
                                                concurrency=opts.concurrency, cache=cache,
                                                max_tries=opts.retries)
            profile, viewer = self.discover(client)
            listed = self.list_repos(client, profile, viewer)
            repos = select(listed, opts.shard)
            self.shard_info = manifest_field(opts.shard, repos, len(listed))
            self.kinds = kinds = kinds_of(frozenset(opts.kinds), opts.shard)
            log.info("backing up %s (%s): %d repositories into %s", profile["login"],
                     profile.get("type", "User"), len(repos), opts.dest)
            self.progress.total = len(repos)
            # Mirrors on disk at once: about the largest repository plus a small headroom.
            self.disk = DiskBudget(max((int(r.get("size") or 0) * 1024 for r in repos),
                                       default=0) + DISK_HEADROOM, self.stop.event)
            gists = []
            if {"gists", "gist_comments"} & kinds and profile.get("type") != "Organization":
                gists = list(client.paginate(f"/users/{profile['login']}/gists"))
            # Installation tokens expire: git asks for a current one (gitcred.py).
            tokens = auth if isinstance(auth, InstallationAuth) else None
            self.git = git = Git(opts.git_url or default_git_url(opts.api_url),
                                 None if tokens else getattr(auth, "token", None), workdir,
                                 opts.git_timeout, stop=self.stop.event, tokens=tokens)
            sink = None
            try:
                with self.stop.held("the upload starts"):
                    sink = dest.open()
                self.archive = archive = ArchiveWriter(sink)
                job = Job(StoppableClient(client, self.stop), archive, kinds,
                          self.ledger, profile["login"], workdir,
                          assets=store.assets() if store else None, viewer=viewer)
                if job.wants("attachments"):  # every JSON document is scanned for them
                    job.archive = ScanningArchive(archive, Attachments(job, git.auth_urls[0]))
                self.ledger.counts["repos"] = len(repos)
                repos = [Compact(r, api_work(r), git_work(r)) for r in repos]  # compact.py
                listed = None  # the parsed listing is not kept for the rest of the run
                self.collect(job, git, profile, repos, gists)
                # Publication, in the order docs/architecture.md gives ("Write order and
                # crash safety"); a signal from here on lets it finish first.
                with self.stop.held("the archive, its sidecar and the state are written",
                                    then_stop=False):
                    manifest = self.manifest(profile, client)
                    final = archive.close(manifest)
                    stored = sink.complete()
                    sidecar = {**final, "archive": {"key": opts.dest,
                                                    "size": archive.archive_size,
                                                    "sha256": archive.archive_sha256,
                                                    **stored}}
                    dest.put_sidecar(SIDECAR_SUFFIX, json.dumps(sidecar, indent=1,
                                                                sort_keys=True).encode())
                    if store and cache is not None:
                        store.save(cache)
                    if self.gits is not None:
                        self.gits.save()  # only now: a failed month keeps last month's
                if self.stop.signum is not None:
                    log.warning("%s came while publishing: the archive, its sidecar and the "
                                "state were written first", signal_name(self.stop.signum))
            except BaseException:
                if sink is not None:
                    with self.stop.held("the upload is aborted", then_stop=False):
                        sink.abort()  # a no-op once the archive was published
                raise
            return self.summary(sidecar)
        finally:
            with self.stop.held("the scratch directory is removed", then_stop=False):
                if cache is not None:
                    cache.close()
                if workdir is not None:
                    shutil.rmtree(workdir, ignore_errors=True)
                if client is not None:
                    client.close()
                if self.git is not None:
                    self.git.close()

    def collect(self, job: Job, git: Git, profile: dict[str, Any],
                repos: list[Compact], gists: list[dict[str, Any]]) -> None:
        """Every collector and git job in two pools. When one fails or a signal comes, the
        others are stopped: pending jobs are cancelled, running ones give up at their next
        request or git command, git children are killed; the pools are never waited on
        without a bound."""
        futures: list[Future] = []
        # Twice as many API jobs as requests in flight: a job spends part of its time off
        # the network (JSON, archive writes, memos and asset copies from the state), and
        # the client's slots, not the jobs, bound the requests in flight (github/client.py).
        api = ThreadPoolExecutor(API_JOBS_PER_SLOT * self.opts.concurrency,
                                 thread_name_prefix="api")
        gp = ThreadPoolExecutor(self.opts.git_concurrency, thread_name_prefix="git")
        try:
            if job.wants("account"):
                futures.append(api.submit(collect_account, job, profile))
            if job.wants("projects"):
                futures.append(api.submit(collect_projects, job, profile["login"]))
            if holds_account(self.opts.shard):
                futures.append(api.submit(collect_owner, job, profile, gists))
            # Longest first, so the run is not left waiting on one large repository
            # started last (its pages are read one after another).
            for c in sorted(repos, key=lambda c: c.api_work, reverse=True):
                futures += [api.submit(lambda c, part: self.repo_api(job, c.load(), part),
                                       c, part) for part in REPO_API_PARTS]
            for c in sorted(repos, key=lambda c: c.git_work, reverse=True):
                futures.append(gp.submit(lambda c: self.repo_git(job, git, c.load()), c))
            for g in gists if job.wants("gists") else []:
                futures.append(gp.submit(self.gist, job, git, g))
            while True:  # a signal waits for the next look (the wait's locks stay sound)
                with self.stop.held():
                    done, left = wait(futures, timeout=0.25, return_when=FIRST_EXCEPTION)
                failed = next((f for f in done if f.exception()), None)
                if failed is not None or not left:
                    break
            if failed is not None:
                error = failed.exception()
                if isinstance(error, GitError) and "authentication" in str(error).lower():
                    raise AuthError(str(error)) from None
                if isinstance(error, (OSError, GitError)) and is_disk_full(error):
                    # git mirrors, LFS objects and scratch files: the work directory is full
                    where = getattr(error, "filename", None) or job.workdir
                    raise workdir_full(where, str(error)) from None
                raise error
            if isinstance(job.archive, ScanningArchive):
                job.archive.attachments.finish()
        except BaseException:
            with self.stop.held("the workers stop", then_stop=False):
                self.halt(futures)
            raise
        finally:
            api.shutdown(wait=False, cancel_futures=True)
            gp.shutdown(wait=False, cancel_futures=True)

    def halt(self, futures: list[Future]) -> None:
        """Stop every job: cancel the pending ones, make the running ones give up (the stop
        event, git children killed) and give them STOP_GRACE seconds to do so."""
        self.stop.halt()
        for f in futures:
            f.cancel()
        running = [f for f in futures if not f.done()]
        if running:
            _, left = wait(running, timeout=STOP_GRACE)
            kill_children()  # a git started just before the stop
            if left:
                log.warning("%d job(s) still busy %.0f s after the stop; not waiting for "
                            "them", len(left), STOP_GRACE)

    def manifest(self, profile: dict[str, Any], client: GitHubClient) -> dict[str, Any]:
        return {
            "tool": "ghvault", "version": __version__, "format": 1,
            "owner": profile["login"], "owner_type": profile.get("type", "User"),
            "month": self.opts.month, "api_url": self.opts.api_url,
            "taken_at": self.started_at.strftime("%Y-%m-%d"),  # content as of this day
            "started_at": self.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "kinds": sorted(self.kinds),  # a part > 1 keeps no account kinds
            "counts": dict(sorted(self.ledger.counts.items())),
            "skipped": self.ledger.skipped,
            "api": client.acct.snapshot(),
            **self.shard_info,
        }

    def summary(self, sidecar: dict[str, Any]) -> dict[str, Any]:
        return {
            "owner": sidecar["owner"], "month": sidecar["month"], "dest": self.opts.dest,
            "counts": sidecar["counts"], "skipped": sidecar["skipped"],
            "bytes": sidecar["archive"]["size"], "sha256": sidecar["archive"]["sha256"],
            "api_requests": sidecar["api"]["requests"],
            "not_modified": sidecar["api"]["not_modified"],
            "rate_limit_remaining": sidecar["api"]["rate_remaining"],
            "duration_s": round(time.monotonic() - self.progress.started, 1),
        }


def api_work(repo: dict[str, Any]) -> int:
    """What predicts a repository's API requests: its open issues and pull requests."""
    return int(repo.get("open_issues_count") or 0)


def git_work(repo: dict[str, Any]) -> int:
    """What predicts a repository's git time: its size (KiB, as GitHub gives it)."""
    return int(repo.get("size") or 0)


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"
