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

from ..layout import repo_entry
from . import Job, keep, keep_lists

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


def full_rulesets(job: Job, base: str, params: dict[str, str] | None = None) -> list[Any]:
    """Rulesets with their rules: the list leaves the rules out, one request each."""
    return [job.client.get(f"{base}/rulesets/{r['id']}")
            for r in job.client.paginate(f"{base}/rulesets", params)]


def collect_repo_settings(job: Job, repo: dict[str, Any]) -> None:
    full, name = repo["full_name"], repo["name"]
    base = f"/repos/{full}"
    entry = lambda filename: repo_entry(name, filename)  # noqa: E731
    if job.wants("settings"):
        # The list form (repo.json) lacks merge settings, security_and_analysis and custom
        # properties: the repository's own document has them.
        job.archive.add_json(entry("settings.json"), job.client.get(base))
        job.ledger.add("repo_settings")
    if job.wants("branch_protections"):
        keep(job, entry("branch_protections.json"), "branch_protections",
             f"{full} branch_protections", lambda: _branch_protections(job, base))
    if job.wants("rulesets"):  # the organisation's are kept once, with the owner (owner.py)
        keep(job, entry("rulesets.json"), "rulesets", f"{full} rulesets",
             lambda: full_rulesets(job, base, {"includes_parents": "false"}))
    keep_lists(job, base, LISTS, entry, full)
    for kind, filename, path in DOCUMENTS:
        if job.wants(kind):
            keep(job, entry(filename), None, f"{full} {filename.removesuffix('.json')}",
                 lambda path=path: job.client.get(base + path))
    if job.wants("environments"):
        keep(job, entry("environments.json"), "environments", f"{full} environments",
             lambda: _environments(job, base))
    if job.wants("pages") and repo.get("has_pages"):  # no site: nothing to ask for
        keep(job, entry("pages.json"), "pages", f"{full} pages",
             lambda: job.client.get(f"{base}/pages"))


def _branch_protections(job: Job, base: str) -> list[dict[str, Any]]:
    """Each protected branch's protection (GitHub has no list of them: one request each,
    for the branches the list marks protected)."""
    return [{"branch": branch["name"], "protection": job.client.get(
                f"{base}/branches/{quote(branch['name'], safe='')}/protection")}
            for branch in job.client.paginate(f"{base}/branches", {"protected": "true"})
            if branch.get("protected")]


def _environments(job: Job, base: str) -> list[dict[str, Any]]:
    """Environments with their protection rules, each with its deployment branch policies
    (`deployment_branch_policies`) when it has custom ones."""
    envs = list(job.client.paginate(f"{base}/environments"))
    for env in envs:
        if (env.get("deployment_branch_policy") or {}).get("custom_branch_policies"):
            env["deployment_branch_policies"] = list(job.client.paginate(
                f"{base}/environments/{quote(env['name'], safe='')}"
                "/deployment-branch-policies"))
    return envs
