"""Failures the engine names, each with the exit code `ghvault run --help` documents."""

from __future__ import annotations


class GhvaultError(Exception):
    """A failure with one sentence that names the cause and the fix."""

    exit_code = 1


class ConfigError(GhvaultError):
    exit_code = 2  # bad arguments or configuration


class AuthError(GhvaultError):
    exit_code = 3  # authentication or permission failure


class OwnerNotFound(GhvaultError):
    exit_code = 4


class DestinationError(GhvaultError):
    exit_code = 5  # the archive could not be written where --dest says


class GitHubUnavailable(GhvaultError):
    exit_code = 6  # GitHub kept failing after the bounded retries


class ArchiveNotReady(GhvaultError):
    exit_code = 7  # the archive is in Glacier: a restore was started, run again later


class ArchiveInvalid(GhvaultError):
    exit_code = 8  # verify (or restore) found the archive damaged or incomplete


class ArchiveUnreadable(GhvaultError):
    exit_code = 9  # the archive cannot be read (missing, access denied, not a zip)


class NotFound(GhvaultError):
    """A resource answered 404 (a repository deleted during the run, say)."""


class OptionalDenied(GhvaultError):
    """A 403 on data this token may not read (hooks, teams): recorded and skipped."""


EXIT_CODES = {
    0: "success: the archive and its manifest are in place",
    ConfigError.exit_code: "bad arguments or configuration",
    AuthError.exit_code: "authentication or permission failure (token missing, invalid or "
                         "lacking scopes)",
    OwnerNotFound.exit_code: "the owner does not exist or is not visible to the token",
    DestinationError.exit_code: "the destination cannot be written (bucket, permissions, disk)",
    GitHubUnavailable.exit_code: "GitHub unavailable after retries (5xx, rate limits, network)",
    ArchiveNotReady.exit_code: "verify/restore: the archive is in Glacier and not restored "
                               "yet; a restore was started: run the same command again once "
                               "it completes (or add --wait)",
    ArchiveInvalid.exit_code: "verify/restore: the archive is damaged or incomplete (the "
                              "problems are listed, one per line)",
    ArchiveUnreadable.exit_code: "verify/restore/list: the archive cannot be read (missing, "
                                 "access denied, not a zip archive)",
    1: "unexpected internal error",
}
