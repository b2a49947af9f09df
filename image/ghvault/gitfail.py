"""How a git command failed: the errors it becomes, read from git's stderr."""

from __future__ import annotations

import re

from .errors import AuthError, GhvaultError, GitHubUnavailable, NotFound

_NOT_FOUND = re.compile(r"repository not found|repository '[^']*' not found|returned error: 404",
                        re.I)
_AUTH = re.compile(r"could not read (username|password)|authentication (failed|required)|"
                   r"terminal prompts disabled|returned error: 40[13]|HTTP 40[13]|"
                   r"invalid username or token|permission to \S+ denied|authorization error|"
                   r"access denied|credentials for \S+ not found", re.I)
_TRANSIENT = re.compile(r"error: 5\d\d|HTTP 5\d\d|\[5\d\d\]|server error|connection reset|"
                        r"early EOF|remote end hung up|unexpected disconnect|transfer closed|"
                        r"failed to connect|couldn't connect|could not resolve host|timed out|"
                        r"empty reply from server|SSL_read|SSL_ERROR_SYSCALL|GnuTLS recv error|"
                        r"curl (7|18|28|35|52|55|56)\b|index-pack failed|connection refused|"
                        r"error: 429|HTTP 429",
                        re.I)
_REDIRECT = re.compile(r"returned error: 30[1278]\b|HTTP 30[1278]\b", re.I)
_LFS_MISSING = re.compile(r"\[([0-9a-f]{64})\] (?:object )?does not exist", re.I)


class GitError(GhvaultError):
    """A git operation failed; the message names the repository, the cause and the fix."""


class RepoNotFound(GitError, NotFound):
    """The server answered 404 / "Repository not found"."""


class RemoteElsewhere(RepoNotFound):
    """The remote is outside the git origin, or redirects: not fetched, so the token is
    not sent there; skipped like a missing repository."""


class GitAuthError(GitError, AuthError):
    """The server refused the credentials (or asked for some and there were none)."""


class GitUnavailable(GitError, GitHubUnavailable):
    """Transient failures (5xx, resets, early EOF) outlasted the bounded retries."""


def classify_failure(stderr: str) -> str:
    """"not_found", "redirect", "auth", "transient" or "other" for the stderr of a failed
    git command."""
    if _REDIRECT.search(stderr):
        return "redirect"
    if _NOT_FOUND.search(stderr):
        return "not_found"
    if _AUTH.search(stderr):
        return "auth"
    if _TRANSIENT.search(stderr):
        return "transient"
    return "other"



def _cause(stderr: str) -> str:
    """The most telling line of git's stderr, without `fatal:`/`error:` and trailing dots."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    picked = next((ln for ln in reversed(lines) if ln.startswith("fatal:")), None)
    picked = picked or next((ln for ln in reversed(lines) if ln.startswith("error:")), None)
    picked = picked or (lines[-1] if lines else "no error output")
    return re.sub(r"^(fatal|error):\s*", "", picked).rstrip(".")[:300]
