"""The engine's per-repository git work with `--git-state` (gitstate.py): the same
archive entries and counts as without it, from the kept bundles where nothing changed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .collect import Job
from .git import Git, GitAuthError, RepoNotFound
from .gitstate import GitState, ls_remote
from .layout import lfs_entry, repo_entry


class KeptGit:
    """Mixed into engine.Backup (its `gits`, `ledger`)."""

    gits: GitState | None
    ledger: Any

    @staticmethod
    def adder(job: Job, name: str) -> Callable[[IO[bytes]], object]:
        return lambda source: job.archive.add_stream(name, source, kind="stored")

    def repo_git_kept(self, job: Job, git: Git, repo: dict[str, Any], scratch: Path) -> bool:
        """The repository's bundle (and LFS objects); False when it is gone (skipped)."""
        assert self.gits is not None
        name = repo["name"]
        unit = f"repo-{repo['id']}"
        try:
            got = self.gits.backup(git, unit, repo["clone_url"], scratch,
                                   self.adder(job, repo_entry(name, "git.bundle")),
                                   want_mirror=job.wants("lfs"))
        except RepoNotFound as e:
            self.ledger.skip(f"repo {repo['full_name']}", f"git: {e}")
            return False
        if got.empty:
            self.ledger.add("empty_repos")
            job.archive.add_json(repo_entry(name, "git.empty.json"),
                                 {"full_name": repo["full_name"], "empty": True})
            return True
        if got.mirror is not None:
            # LFS objects are not kept in the state: a repository with LFS is fetched
            # (incrementally for git) and its objects downloaded again.
            objects = git.lfs_fetch(got.mirror) if job.wants("lfs") else []
            for obj in objects:
                job.archive.add_file(lfs_entry(name, obj.oid), obj.path)
                self.ledger.add("lfs_objects")
            self.gits.set_lfs(unit, bool(objects))
            shutil.rmtree(got.mirror.path)  # in the archive now: free the disk
        self.ledger.add("git_bundles")
        return True

    def wiki_git_kept(self, job: Job, git: Git, repo: dict[str, Any], url: str,
                      scratch: Path) -> None:
        assert self.gits is not None
        try:
            remote = ls_remote(git, url)
        except RepoNotFound:
            return  # no wiki yet (it exists once a page was written)
        except GitAuthError:
            if git.authenticated:
                raise
            return  # anonymous: a private repository's wiki answers 401 (as Git.exists)
        if not remote.refs:
            return
        got = self.gits.backup(git, f"wiki-{repo['id']}", url, scratch,
                               self.adder(job, repo_entry(repo["name"], "wiki.bundle")),
                               remote=remote)
        if not got.empty:
            self.ledger.add("wikis")
