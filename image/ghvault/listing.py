"""Who the owner is and which repositories a run backs up."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .collect import Ledger
from .errors import NotFound, OptionalDenied, OwnerNotFound
from .github.auth import InstallationAuth
from .layout import repo_name_problem

if TYPE_CHECKING:
    from .engine import Options
    from .github.client import GitHubClient


def discover(client: GitHubClient, owner: str) -> tuple[dict[str, Any], str | None]:
    """The owner's profile and the token's own login (None for App installations,
    which have no user: GitHub answers their `/user` with 403)."""
    viewer = None
    if not isinstance(getattr(client, "auth", None), InstallationAuth):
        try:
            viewer = client.get("/user")
        except OptionalDenied:  # a token that may not read its own user
            viewer = None
    if viewer and viewer["login"].lower() == owner.lower():
        return viewer, viewer["login"]
    try:
        profile = client.get(f"/users/{owner}")
    except NotFound:
        raise OwnerNotFound(f"GitHub owner {owner!r} does not exist or is not visible to "
                            "this token: check --owner") from None
    if profile.get("type") == "Organization":
        profile = client.get(f"/orgs/{profile['login']}")
        profile.setdefault("type", "Organization")
    return profile, (viewer or {}).get("login")


def list_repos(client: GitHubClient, profile: dict[str, Any], viewer: str | None,
               opts: Options, ledger: Ledger) -> list[dict[str, Any]]:
    login = profile["login"]
    if isinstance(getattr(client, "auth", None), InstallationAuth):
        # What the installation was granted, private repositories included (a user's
        # own lists would show an App the public ones only), filtered to the owner.
        repos = client.paginate("/installation/repositories")
        if "gists" in opts.kinds and profile.get("type") != "Organization":
            ledger.skip(f"secret gists of {login}", "a GitHub App installation cannot "
                        "list them (GitHub shows them to the user's own tokens only): back "
                        "them up with a token of the user")
    elif profile.get("type") == "Organization":
        repos = client.paginate(f"/orgs/{login}/repos", {"type": "all"})
    elif viewer and viewer.lower() == login.lower():
        repos = client.paginate("/user/repos", {"affiliation": "owner", "visibility": "all"})
    else:
        repos = client.paginate(f"/users/{login}/repos", {"type": "owner"})
        ledger.skip(f"private repositories of {login}", f"not listed: the token is not "
                    f"{login}'s, and GitHub lists another user's public repositories only: "
                    f"use a token of {login} or a GitHub App installed on {login}")
    keep = re.compile(opts.repos) if opts.repos else None
    drop = re.compile(opts.exclude_repos) if opts.exclude_repos else None
    out, seen = [], set()
    for r in repos:
        if r["owner"]["login"].lower() != login.lower():
            continue
        if r["name"].lower() in seen:  # listed twice (pages shift while repos are made)
            continue
        seen.add(r["name"].lower())
        if (not opts.forks and r.get("fork")) or \
                (not opts.archived and r.get("archived")):
            continue
        if (keep and not keep.search(r["name"])) or (drop and drop.search(r["name"])):
            continue
        if problem := repo_name_problem(r["name"]):  # the archive layout cannot hold it
            ledger.skip(f"repo {r['full_name']}", problem)
            continue
        out.append(r)
    return sorted(out, key=lambda r: r["name"].lower())
