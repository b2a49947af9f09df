"""A repository's settings: the full repository object, branch protections, rulesets,
collaborators and invitations, deploy keys, environments, Actions variables, secret names
and workflow permissions, autolinks and Pages.

Most of these need admin rights on the repository (or the matching permission of an App
installation): GitHub answers 403 naming what is missing, and the kind is recorded in
`skipped` with that reason; the run goes on.

Requests go through the engine's client, not PyGithub's objects (its
`get_branch_protection`, `get_collaborators`, `get_keys`, `get_environments`): those
would bypass the HTTP cache, so a second month would pay for every unchanged setting
instead of a free 304, and each object may lazily fetch itself again. PyGithub has no
calls at all for rulesets, Actions variables or workflow permissions.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..errors import NotFound, OptionalDenied
from ..layout import repo_entry
from . import Job

# (kind, archive file (layout.REPO_FILES), path under /repos/{o}/{r}, query, count name):
# lists read whole, 100 per page. Wrapped lists ({"total_count", "variables": [...]}) are
# unwrapped by the client.
LISTS = [
    ("collaborators", "collaborators.json", "/collaborators", {"affiliation": "all"},
     "collaborators"),
    ("collaborators", "invitations.json", "/invitations", {}, "invitations"),
    ("deploy_keys", "deploy_keys.json", "/keys", {}, "deploy_keys"),
    ("actions", "actions_variables.json", "/actions/variables", {}, "actions_variables"),
    # The API lists secrets' names and dates only: their values never leave GitHub.
    ("actions", "actions_secret_names.json", "/actions/secrets", {}, "actions_secret_names"),
    ("autolinks", "autolinks.json", "/autolinks", {}, "autolinks"),
]
# (kind, archive file, path): single documents.
DOCUMENTS = [
    ("actions", "actions_workflow_permissions.json", "/actions/permissions/workflow"),
]


def _denied(job: Job, full: str, what: str, e: Exception) -> None:
    job.ledger.skip(f"{full} {what}", str(e))


def collect_repo_settings(job: Job, repo: dict[str, Any]) -> None:
    full, name = repo["full_name"], repo["name"]
    base = f"/repos/{full}"
    if job.wants("settings"):
        # The list form (repo.json) lacks merge settings, security_and_analysis and custom
        # properties: the repository's own document has them.
        job.archive.add_json(repo_entry(name, "settings.json"), job.client.get(base))
        job.ledger.add("repo_settings")
    if job.wants("branch_protections"):
        _branch_protections(job, repo)
    if job.wants("rulesets"):
        _rulesets(job, repo)
    for kind, filename, path, params, count in LISTS:
        if not job.wants(kind):
            continue
        try:
            items = list(job.client.paginate(base + path, params))
        except (OptionalDenied, NotFound) as e:
            _denied(job, full, filename.removesuffix(".json"), e)
            continue
        job.archive.add_json(repo_entry(name, filename), items)
        job.ledger.add(count, len(items))
    for kind, filename, path in DOCUMENTS:
        if not job.wants(kind):
            continue
        try:
            doc = job.client.get(base + path)
        except (OptionalDenied, NotFound) as e:
            _denied(job, full, filename.removesuffix(".json"), e)
            continue
        job.archive.add_json(repo_entry(name, filename), doc)
    if job.wants("environments"):
        _environments(job, repo)
    if job.wants("pages") and repo.get("has_pages"):  # no site: nothing to ask for
        try:
            job.archive.add_json(repo_entry(name, "pages.json"), job.client.get(f"{base}/pages"))
            job.ledger.add("pages")
        except (OptionalDenied, NotFound) as e:
            _denied(job, full, "pages", e)


def _branch_protections(job: Job, repo: dict[str, Any]) -> None:
    """Each protected branch's protection (GitHub has no list of them: one request each,
    for the branches the list marks protected)."""
    full, base = repo["full_name"], f"/repos/{repo['full_name']}"
    out = []
    try:
        for branch in job.client.paginate(f"{base}/branches", {"protected": "true"}):
            if not branch.get("protected"):
                continue
            out.append({"branch": branch["name"], "protection": job.client.get(
                f"{base}/branches/{quote(branch['name'], safe='')}/protection")})
    except (OptionalDenied, NotFound) as e:
        _denied(job, full, "branch_protections", e)
        return
    job.archive.add_json(repo_entry(repo["name"], "branch_protections.json"), out)
    job.ledger.add("branch_protections", len(out))


def _rulesets(job: Job, repo: dict[str, Any]) -> None:
    """The repository's own rulesets with their rules (the list leaves the rules out: one
    request each); the organisation's are kept once, with the owner (owner.py)."""
    full, base = repo["full_name"], f"/repos/{repo['full_name']}"
    try:
        listed = list(job.client.paginate(f"{base}/rulesets", {"includes_parents": "false"}))
        full_sets = [job.client.get(f"{base}/rulesets/{r['id']}") for r in listed]
    except (OptionalDenied, NotFound) as e:
        _denied(job, full, "rulesets", e)
        return
    job.archive.add_json(repo_entry(repo["name"], "rulesets.json"), full_sets)
    job.ledger.add("rulesets", len(full_sets))


def _environments(job: Job, repo: dict[str, Any]) -> None:
    """Environments with their protection rules, each with its deployment branch policies
    (`deployment_branch_policies`) when it has custom ones."""
    full, base = repo["full_name"], f"/repos/{repo['full_name']}"
    try:
        envs = list(job.client.paginate(f"{base}/environments"))
        for env in envs:
            if (env.get("deployment_branch_policy") or {}).get("custom_branch_policies"):
                env["deployment_branch_policies"] = list(job.client.paginate(
                    f"{base}/environments/{quote(env['name'], safe='')}"
                    "/deployment-branch-policies"))
    except (OptionalDenied, NotFound) as e:
        _denied(job, full, "environments", e)
        return
    job.archive.add_json(repo_entry(repo["name"], "environments.json"), envs)
    job.ledger.add("environments", len(envs))
