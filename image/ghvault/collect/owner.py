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

from ..errors import NotFound, OptionalDenied
from ..layout import account_entry, gist_entry, gist_id_problem
from . import Job

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


def _skip(job: Job, what: str, e: Exception) -> None:
    job.ledger.skip(f"account {what}", str(e))


def collect_owner(job: Job, profile: dict[str, Any], gists: list[dict[str, Any]]) -> None:
    if profile.get("type") == "Organization":
        _organisation(job, profile["login"])
        return
    if job.wants("gist_comments"):
        for gist in gists:
            _gist_comments(job, gist)
    if job.wants("account") and job.viewer and job.viewer.lower() == profile["login"].lower():
        # GitHub lists the starred gists of the token's own user only.
        try:
            starred = list(job.client.paginate("/gists/starred"))
        except (OptionalDenied, NotFound) as e:
            _skip(job, "starred_gists", e)
        else:
            job.archive.add_json(account_entry("starred_gists.json"), starred)
            job.ledger.add("starred_gists", len(starred))


def _organisation(job: Job, login: str) -> None:
    base = f"/orgs/{login}"
    for kind, filename, path, params, count in ORG_LISTS:
        if not job.wants(kind):
            continue
        try:
            items = list(job.client.paginate(base + path, params))
        except (OptionalDenied, NotFound) as e:
            _skip(job, filename.removesuffix(".json"), e)
            continue
        job.archive.add_json(account_entry(filename), items)
        if count:
            job.ledger.add(count, len(items))
    if job.wants("rulesets"):
        try:  # the list leaves the rules out: one request each for them
            rulesets = [job.client.get(f"{base}/rulesets/{r['id']}")
                        for r in job.client.paginate(f"{base}/rulesets")]
        except (OptionalDenied, NotFound) as e:
            _skip(job, "rulesets", e)
        else:
            job.archive.add_json(account_entry("rulesets.json"), rulesets)
            job.ledger.add("rulesets", len(rulesets))


def _gist_comments(job: Job, gist: dict[str, Any]) -> None:
    if gist_id_problem(gist["id"]):
        return  # the gist itself is skipped, with the reason (engine.gist)
    comments: list[dict[str, Any]] = []
    if gist.get("comments"):  # the list says how many: none means nothing to ask for
        try:
            comments = list(job.client.paginate(f"/gists/{gist['id']}/comments"))
        except (OptionalDenied, NotFound) as e:
            job.ledger.skip(f"gist {gist['id']} comments", str(e))
            return
    job.archive.add_json(gist_entry(gist["id"], "comments.json"), comments)
    job.ledger.add("gist_comments", len(comments))
