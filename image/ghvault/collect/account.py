"""The owner's account: profile, social graph and stars for a user; profile, members and
teams for an organisation (what the token may read; a 403 is recorded and skipped)."""

from __future__ import annotations

from typing import Any

from ..errors import NotFound, OptionalDenied
from ..layout import account_entry, team_dirs, team_entry
from . import Job


def _list(job: Job, what: str, entry: str, path: str,
          kind: str | None = None) -> list[dict[str, Any]]:
    try:
        items = list(job.client.paginate(path))
    except (OptionalDenied, NotFound) as e:
        job.ledger.skip(f"account {what}", str(e))
        return []
    job.archive.add_json(entry, items)
    if kind:
        job.ledger.add(kind, len(items))
    return items


def _account_list(job: Job, name: str, path: str, kind: str) -> list[dict[str, Any]]:
    return _list(job, name, account_entry(f"{name}.json"), path, kind)


def collect_account(job: Job, profile: dict[str, Any]) -> None:
    login = profile["login"]
    job.archive.add_json(account_entry("profile.json"), profile)
    if profile.get("type") == "Organization":
        _account_list(job, "members", f"/orgs/{login}/members", "members")
        teams = _account_list(job, "teams", f"/orgs/{login}/teams", "teams")
        for team, folder in zip(teams, team_dirs(teams), strict=True):
            slug = team["slug"]
            for file in ("members", "repos"):
                _list(job, f"teams/{slug}/{file}", team_entry(folder, f"{file}.json"),
                      f"/orgs/{login}/teams/{slug}/{file}")
        return
    _account_list(job, "followers", f"/users/{login}/followers", "followers")
    _account_list(job, "following", f"/users/{login}/following", "following")
    _account_list(job, "starred", f"/users/{login}/starred", "starred")
    _account_list(job, "subscriptions", f"/users/{login}/subscriptions", "watching")
