"""The owner's account: profile, social graph and stars for a user; profile, members and
teams for an organisation (what the token may read; a 403 is recorded and skipped)."""

from __future__ import annotations

from typing import Any

from ..errors import NotFound, OptionalDenied
from . import Job


def _list(job: Job, name: str, path: str, kind: str | None = None) -> list[dict[str, Any]]:
    try:
        items = list(job.client.paginate(path))
    except (OptionalDenied, NotFound) as e:
        job.ledger.skip(f"account {name}", str(e))
        return []
    job.archive.add_json(f"account/{name}.json", items)
    if kind:
        job.ledger.add(kind, len(items))
    return items


def collect_account(job: Job, profile: dict[str, Any]) -> None:
    login = profile["login"]
    job.archive.add_json("account/profile.json", profile)
    if profile.get("type") == "Organization":
        _list(job, "members", f"/orgs/{login}/members", "members")
        teams = _list(job, "teams", f"/orgs/{login}/teams", "teams")
        for team in teams:
            slug = team["slug"]
            _list(job, f"teams/{slug}/members", f"/orgs/{login}/teams/{slug}/members")
            _list(job, f"teams/{slug}/repos", f"/orgs/{login}/teams/{slug}/repos")
        return
    _list(job, "followers", f"/users/{login}/followers", "followers")
    _list(job, "following", f"/users/{login}/following", "following")
    _list(job, "starred", f"/users/{login}/starred", "starred")
    _list(job, "subscriptions", f"/users/{login}/subscriptions", "watching")
