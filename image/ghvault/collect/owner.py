"""What an owner keeps outside its repositories, beside the account (account.py).

Organisations: the owners among the members, outside collaborators, webhooks, rulesets
(with their rules), Actions variables and secret names, the custom property schema; most
need an organisation owner's token, and a 403 is recorded in `skipped` with the
permission GitHub names. Users: their gists' comments and the gists they starred.

Requests go through the engine's client for its HTTP cache and accounting (a second
month answers unchanged lists with free 304s); PyGithub has no calls for org rulesets,
Actions variables or the custom property schema.
"""

from __future__ import annotations

from typing import Any

from ..layout import account_entry, gist_entry, gist_id_problem
from . import Job, keep, keep_lists
from .settings import full_rulesets

# (kind, archive file (layout.ACCOUNT_FILES), path under /orgs/{org}, query, count name)
ORG_LISTS = [
    ("account", "owners.json", "/members", {"role": "admin"}, None),
    ("collaborators", "outside_collaborators.json", "/outside_collaborators", {},
     "outside_collaborators"),
    ("hooks", "hooks.json", "/hooks", {}, "org_hooks"),
    ("actions", "actions_variables.json", "/actions/variables", {}, "actions_variables"),
    # Names and dates only: GitHub never sends a secret's value.
    ("actions", "actions_secret_names.json", "/actions/secrets", {}, "actions_secret_names"),
    ("account", "custom_properties.json", "/properties/schema", {}, None),
]


def collect_owner(job: Job, profile: dict[str, Any], gists: list[dict[str, Any]]) -> None:
    if profile.get("type") == "Organization":
        _organisation(job, profile["login"])
        return
    if job.wants("gist_comments"):
        for gist in gists:
            _gist_comments(job, gist)
    if job.wants("account") and job.viewer and job.viewer.lower() == profile["login"].lower():
        # GitHub lists the starred gists of the token's own user only.
        keep(job, account_entry("starred_gists.json"), "starred_gists",
             "account starred_gists", lambda: list(job.client.paginate("/gists/starred")))


def _organisation(job: Job, login: str) -> None:
    base = f"/orgs/{login}"
    keep_lists(job, base, ORG_LISTS, account_entry, "account")
    if job.wants("rulesets"):
        keep(job, account_entry("rulesets.json"), "rulesets", "account rulesets",
             lambda: full_rulesets(job, base))


def _gist_comments(job: Job, gist: dict[str, Any]) -> None:
    if gist_id_problem(gist["id"]):
        return  # the gist itself is skipped, with the reason (engine.gist)
    # the list says how many: none means nothing to ask for
    keep(job, gist_entry(gist["id"], "comments.json"), "gist_comments",
         f"gist {gist['id']} comments",
         lambda: list(job.client.paginate(f"/gists/{gist['id']}/comments"))
         if gist.get("comments") else [])
