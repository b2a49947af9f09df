"""The simulator's world in the exact JSON shapes of GitHub's REST API.

Every renderer is a pure function of the World `w`, the `Urls` `u` of the request (so
links follow the prefix the client used) and the model object; each names the schema in
GitHub's OpenAPI description it produces (tests/sim/test_sim_shapes.py validates them).
Values the model does not record get deterministic defaults derived from it.

This module is the import surface: account renderers live here, repository ones in
shapes_repo.py, issue and pull request ones in shapes_issue.py, helpers (node ids,
associations) in shapes_common.py.
"""

from __future__ import annotations

from .model import Account, Team, World
from .shapes_common import (
    JSON,
    author_association,
    avatar_url,
    blank,
    legacy_node_id,
    node_id,
    permissions,
    reactions,
    render_simple_user,
    user_node_id,
)
from .shapes_issue import (
    CommitInfo,
    issue_node_id,
    pull_id,
    render_issue,
    render_issue_comment,
    render_issue_event,
    render_issue_event_for_issue,
    render_pull,
    render_pull_commit,
    render_pull_simple,
    render_review,
    render_review_comment,
    render_timeline_item,
)
from .shapes_repo import (
    render_base_gist,
    render_commit_comment,
    render_full_repo,
    render_gist,
    render_label,
    render_license,
    render_milestone,
    render_minimal_repo,
    render_release,
    render_release_asset,
    render_starred_repo,
)
from .urls import Urls

__all__ = [
    "JSON", "CommitInfo", "author_association", "issue_node_id", "legacy_node_id", "node_id",
    "permissions", "pull_id", "reactions", "user_node_id",
    "render_simple_user", "render_public_user", "render_private_user", "render_org_full",
    "render_org_simple", "render_team", "render_rate_limit",
    "render_minimal_repo", "render_full_repo", "render_starred_repo", "render_license",
    "render_label", "render_milestone", "render_release", "render_release_asset",
    "render_commit_comment", "render_base_gist", "render_gist",
    "render_issue", "render_issue_comment", "render_issue_event",
    "render_issue_event_for_issue", "render_timeline_item", "render_pull_simple",
    "render_pull", "render_review", "render_review_comment", "render_pull_commit",
]

PLAN_SPACE = 976_562_499  # what GitHub reports as a paid plan's space


def _account(w: World, login: str) -> Account:
    acct = w.account(login)
    if acct is None:
        raise KeyError(f"no account {login!r} in the world")
    return acct


def _counts(w: World, acct: Account) -> dict[str, int]:
    repos = w.repos_of(acct.login)
    gists = w.gists_of(acct.login)
    private = sum(r.private for r in repos)
    return {
        "public_repos": len(repos) - private,
        "public_gists": sum(g.public for g in gists),
        "private_gists": sum(not g.public for g in gists),
        "total_private_repos": private,
        "owned_private_repos": private,
        "disk_usage": sum(r.size_kb for r in repos),
        "followers": len(acct.followers),
        "following": len(acct.following),
    }


def render_public_user(w: World, u: Urls, login: str) -> JSON:
    """`public-user` (GET /users/{username}, organisations included)."""
    acct = _account(w, login)
    c = _counts(w, acct)
    out = render_simple_user(w, u, acct.login)
    out.update({
        "name": blank(acct.name),
        "company": blank(acct.company),
        "blog": acct.blog,
        "location": blank(acct.location),
        "email": acct.email,
        "hireable": None,
        "bio": blank(acct.bio),
        "twitter_username": None,
        "public_repos": c["public_repos"],
        "public_gists": c["public_gists"],
        "followers": c["followers"],
        "following": c["following"],
        "created_at": acct.created_at,
        "updated_at": acct.updated_at,
    })
    return out


def render_private_user(w: World, u: Urls, login: str) -> JSON:
    """`private-user` (GET /user): the public profile plus what only its owner sees."""
    acct = _account(w, login)
    c = _counts(w, acct)
    out = render_public_user(w, u, login)
    out["user_view_type"] = "private"
    out.update({
        "notification_email": acct.email,
        "private_gists": c["private_gists"],
        "total_private_repos": c["total_private_repos"],
        "owned_private_repos": c["owned_private_repos"],
        "disk_usage": c["disk_usage"],
        "collaborators": 0,
        "two_factor_authentication": True,
        "plan": {"name": "pro", "space": PLAN_SPACE, "collaborators": 0,
                 "private_repos": 9999},
    })
    return out


def _org_urls(u: Urls, login: str) -> JSON:
    base = f"{u.api}/orgs/{login}"
    return {
        "url": base,
        "repos_url": f"{base}/repos",
        "events_url": f"{base}/events",
        "hooks_url": f"{base}/hooks",
        "issues_url": f"{base}/issues",
        "members_url": f"{base}/members{{/member}}",
        "public_members_url": f"{base}/public_members{{/member}}",
    }


def render_org_simple(w: World, u: Urls, login: str) -> JSON:
    """`organization-simple` (GET /user/orgs, /users/{u}/orgs)."""
    acct = _account(w, login)
    return {"login": acct.login, "id": acct.id, "node_id": node_id("O", acct.id),
            **_org_urls(u, acct.login), "avatar_url": avatar_url(u, acct.id),
            "description": blank(acct.bio)}


def render_org_full(w: World, u: Urls, login: str, viewer: str | None = None) -> JSON:
    """`organization-full` (GET /orgs/{org}); an owner (`viewer` in admins) also sees the
    plan, private counts and member settings."""
    acct = _account(w, login)
    c = _counts(w, acct)
    out = render_org_simple(w, u, login)
    out.update({
        "name": blank(acct.name),
        "company": blank(acct.company),
        "blog": acct.blog or None,
        "location": blank(acct.location),
        "email": acct.email,
        "twitter_username": None,
        "is_verified": False,
        "has_organization_projects": True,
        "has_repository_projects": True,
        "public_repos": c["public_repos"],
        "public_gists": c["public_gists"],
        "followers": c["followers"],
        "following": c["following"],
        "html_url": u.html(acct.login),
        "created_at": acct.created_at,
        "updated_at": acct.updated_at,
        "archived_at": None,
        "type": "Organization",
    })
    if viewer is not None and viewer in acct.admins:
        out.update({
            "total_private_repos": c["total_private_repos"],
            "owned_private_repos": c["owned_private_repos"],
            "private_gists": 0,
            "disk_usage": c["disk_usage"],
            "collaborators": 0,
            "billing_email": acct.email or f"billing@{acct.login}.example.com",
            "default_repository_permission": "read",
            "members_can_create_repositories": True,
            "two_factor_requirement_enabled": False,
            "members_allowed_repository_creation_type": "all",
            "members_can_create_public_repositories": True,
            "members_can_create_private_repositories": True,
            "members_can_create_internal_repositories": False,
            "members_can_create_pages": True,
            "members_can_create_public_pages": True,
            "members_can_create_private_pages": True,
            "members_can_fork_private_repositories": False,
            "web_commit_signoff_required": False,
            "deploy_keys_enabled_for_repositories": False,
            "plan": {"name": "team", "space": PLAN_SPACE, "private_repos": 999999,
                     "filled_seats": len(acct.members), "seats": max(5, len(acct.members))},
        })
    return out


def render_team(w: World, u: Urls, org: str, team: Team) -> JSON:
    """`team` (GET /orgs/{org}/teams)."""
    acct = _account(w, org)
    base = f"{u.api}/organizations/{acct.id}/team/{team.id}"
    return {
        "name": team.name,
        "id": team.id,
        "node_id": node_id("T", acct.id, team.id),
        "slug": team.slug,
        "description": blank(team.description),
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "url": base,
        "html_url": u.html(f"orgs/{acct.login}/teams/{team.slug}"),
        "members_url": f"{base}/members{{/member}}",
        "repositories_url": f"{base}/repos",
        "type": "organization",
        "organization_id": acct.id,
        "permission": "pull",
        "parent": next(({k: v for k, v in render_team(w, u, org, p).items() if k != "parent"}
                        for p in acct.teams if p.slug == team.parent), None),
    }


# Limits of the resources GitHub lists besides core and graphql (authenticated).
_OTHER_LIMITS = {"search": 30, "code_search": 10, "integration_manifest": 5000,
                 "source_import": 100, "code_scanning_upload": 1000,
                 "code_scanning_autofix": 10, "actions_runner_registration": 10000,
                 "scim": 15000, "dependency_snapshots": 100, "dependency_sbom": 100}


def render_rate_limit(limit: int, remaining: int, used: int, reset: int,
                      graphql: tuple[int, int, int, int] | None = None) -> JSON:
    """`rate-limit-overview` (GET /rate_limit) from the core numbers (reset is epoch
    seconds) and optionally graphql's (limit, remaining, used, reset); the other
    resources are untouched by the simulator and report their full allowance."""
    def rate(lim: int, rem: int, use: int, rst: int) -> JSON:
        return {"limit": lim, "used": use, "remaining": rem, "reset": rst}

    core = rate(limit, remaining, used, reset)
    gql = rate(*graphql) if graphql else rate(limit, limit, 0, reset)
    resources = {"core": core, "graphql": gql}
    resources.update({k: rate(v, v, 0, reset) for k, v in _OTHER_LIMITS.items()})
    return {"resources": resources, "rate": dict(core)}
