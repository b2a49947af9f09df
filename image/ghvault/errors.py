"""Failures the engine names, each with its exit code from `ghvault.contract.Exit`."""

from __future__ import annotations

from .contract import EXIT_MEANINGS, Exit


class GhvaultError(Exception):
    """A failure with one sentence that names the cause and the fix."""

    exit_code: int = Exit.INTERNAL


class ConfigError(GhvaultError):
    exit_code = Exit.CONFIG


class AuthError(GhvaultError):
    exit_code = Exit.AUTH


class OwnerNotFound(GhvaultError):
    exit_code = Exit.OWNER_NOT_FOUND


class DestinationError(GhvaultError):
    exit_code = Exit.DESTINATION


class GitHubUnavailable(GhvaultError):
    exit_code = Exit.GITHUB_UNAVAILABLE  # GitHub kept failing after the bounded retries


class ArchiveNotReady(GhvaultError):
    exit_code = Exit.NOT_READY


class ArchiveInvalid(GhvaultError):
    exit_code = Exit.INVALID


class ArchiveUnreadable(GhvaultError):
    exit_code = Exit.UNREADABLE


class NotFound(GhvaultError):
    """A resource answered 404 (a repository deleted during the run, say)."""


class OptionalDenied(GhvaultError):
    """A 403 on data this token may not read (hooks, teams): recorded and skipped."""


# What `ghvault run --help` lists, by plain number.
EXIT_CODES: dict[int, str] = {int(code): text for code, text in EXIT_MEANINGS.items()}
