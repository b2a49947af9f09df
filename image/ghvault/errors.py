"""Failures the engine names, each with its exit code from `ghvault.contract.Exit`."""

from __future__ import annotations

from .contract import EXIT_MEANINGS, Exit


class GhvaultError(Exception):
    """A failure with one sentence that names the cause and the fix."""

    exit_code: int = Exit.INTERNAL


class ConfigError(GhvaultError):
    """An argument, setting or location the engine cannot use; raised before any GitHub or
    S3 work where it can be told then."""

    exit_code = Exit.CONFIG


class AuthError(GhvaultError):
    """GitHub or a git origin refused the credentials."""

    exit_code = Exit.AUTH


class OwnerNotFound(GhvaultError):
    exit_code = Exit.OWNER_NOT_FOUND


class DestinationError(GhvaultError):
    """The archive, its sidecar or the state could not be written (S3, disk); nothing was
    published under the final key."""

    exit_code = Exit.DESTINATION


class GitHubUnavailable(GhvaultError):
    exit_code = Exit.GITHUB_UNAVAILABLE  # GitHub kept failing after the bounded retries


class ArchiveNotReady(GhvaultError):
    """The archive is in a cold storage class: a restore was requested."""

    exit_code = Exit.NOT_READY


class ArchiveInvalid(GhvaultError):
    exit_code = Exit.INVALID  # verify and restore list each problem on its own line


class ArchiveUnreadable(GhvaultError):
    exit_code = Exit.UNREADABLE


class MonthIncomplete(GhvaultError):
    """`ghvault list --expect`: some owner's archive for the month is missing or
    incomplete (each listed on its own line before)."""

    exit_code = Exit.INCOMPLETE_MONTH


class NotFound(GhvaultError):
    """A resource answered 404 (a repository deleted during the run, say)."""


class OptionalDenied(GhvaultError):
    """A 403 on data this token may not read (hooks, teams): recorded and skipped."""


# What `ghvault run --help` lists, by plain number.
EXIT_CODES: dict[int, str] = {int(code): text for code, text in EXIT_MEANINGS.items()}
