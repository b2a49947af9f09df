"""ghvault's API requests by kind of content, counted from the simulator's statistics.

The simulator counts every API request by endpoint (`by_endpoint`: REST route templates and
`POST /graphql`), what each REST endpoint charged (`charged_by_endpoint`), and breaks
`POST /graphql` down by what each query reads (`graphql_by_query` and its points,
`graphql_cost_by_query`; tests/github_sim/graphql_reads.py). Each endpoint and each GraphQL
connection maps here to the kind of content (bench/coverage.PEER_KEEPS) it is asked for; the
like-for-like count is the sum over the kinds python-github-backup keeps too. An endpoint
or query the mapping does not know, or counts that do not add up to the simulator's totals,
fail the benchmark (UnmappedRequests): a request must never count on neither side.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.coverage import PEER_KEEPS

GRAPHQL = "POST /graphql"
_R = "GET /repos/{owner}/{repo}"
_O = "GET /orgs/{org}"
_U = "GET /users/{username}"

# Every REST route the simulator serves (tests/github_sim/routing.ROUTES), by kind.
ENDPOINT_KIND: dict[str, str] = {
    # finding the owner (and the token's installation) and listing its repositories
    "GET /user": "owner", _U: "owner", _O: "owner", "GET /rate_limit": "owner",
    "GET /user/repos": "owner", f"{_U}/repos": "owner", f"{_O}/repos": "owner",
    "GET /installation/repositories": "owner", "GET /app": "owner",
    "GET /app/installations": "owner", "GET /app/installations/{installation_id}": "owner",
    "POST /app/installations/{installation_id}/access_tokens": "owner",
    f"{_O}/installation": "owner", f"{_U}/installation": "owner",
    # a user's account
    "GET /user/followers": "account", "GET /user/following": "account",
    "GET /user/starred": "account", "GET /user/subscriptions": "account",
    f"{_U}/followers": "account", f"{_U}/following": "account", f"{_U}/starred": "account",
    f"{_U}/subscriptions": "account", "GET /user/orgs": "account", f"{_U}/orgs": "account",
    "GET /gists/starred": "account: starred gists",
    # an organisation's
    f"{_O}/members": "account: organisation", f"{_O}/teams": "account: organisation",
    f"{_O}/teams/{{team_slug}}/members": "account: organisation",
    f"{_O}/teams/{{team_slug}}/repos": "account: organisation",
    f"{_O}/properties/schema": "account: organisation",
    f"{_O}/outside_collaborators": "collaborators", f"{_O}/hooks": "hooks: organisation",
    f"{_O}/rulesets": "rulesets", f"{_O}/rulesets/{{ruleset_id}}": "rulesets",
    f"{_O}/actions/variables": "actions", f"{_O}/actions/secrets": "actions",
    # gists
    "GET /gists": "gists", f"{_U}/gists": "gists", "GET /gists/{gist_id}": "gists",
    "GET /gists/{gist_id}/comments": "gist_comments",
    # a repository's content
    f"{_R}/issues": "issues", f"{_R}/issues/{{issue_number}}": "issues",
    f"{_R}/issues/comments": "comments", f"{_R}/issues/{{issue_number}}/comments": "comments",
    f"{_R}/issues/events": "events", f"{_R}/issues/{{issue_number}}/events": "events",
    f"{_R}/issues/{{issue_number}}/timeline": "events",
    f"{_R}/pulls": "pulls", f"{_R}/pulls/{{pull_number}}": "pulls",
    f"{_R}/pulls/{{pull_number}}/commits": "pulls",
    f"{_R}/pulls/{{pull_number}}/reviews": "reviews",
    f"{_R}/pulls/comments": "review_comments",
    f"{_R}/pulls/{{pull_number}}/comments": "review_comments",
    f"{_R}/comments": "commit_comments", f"{_R}/labels": "labels",
    f"{_R}/milestones": "milestones", f"{_R}/hooks": "hooks",
    f"{_R}/security-advisories": "advisories",
    f"{_R}/releases": "releases", f"{_R}/releases/{{release_id}}": "releases",
    f"{_R}/releases/{{release_id}}/assets": "assets",
    f"{_R}/releases/assets/{{asset_id}}": "assets",
    # a repository's settings and administration (the full repository object: its list
    # form is what the listing gives)
    _R: "settings", f"{_R}/actions/permissions/workflow": "actions",
    f"{_R}/branches": "branch_protections",
    f"{_R}/branches/{{branch}}/protection": "branch_protections",
    f"{_R}/rulesets": "rulesets", f"{_R}/rulesets/{{ruleset_id}}": "rulesets",
    f"{_R}/collaborators": "collaborators", f"{_R}/invitations": "collaborators",
    f"{_R}/keys": "deploy_keys", f"{_R}/environments": "environments",
    f"{_R}/environments/{{environment_name}}/deployment-branch-policies": "environments",
    f"{_R}/actions/variables": "actions", f"{_R}/actions/secrets": "actions",
    f"{_R}/autolinks": "autolinks", f"{_R}/pages": "pages",
}

# GraphQL: the outermost connections a query reads, as graphql_reads names them.
GRAPHQL_KIND: dict[str, str] = {
    # ghvault's reviews; python-github-backup's incremental check of its timelines' cross
    # references reads pulls the same way (counted here as reviews: both kinds both keep)
    "Repository.pullRequests": "reviews", "Repository.issues": "events",
    "Repository.discussions": "discussions", "Repository.discussionCategories": "discussions",
    "Discussion.comments": "discussions", "DiscussionComment.replies": "discussions",
    # read beside a discussion's comments (python-github-backup's query for one discussion)
    "Discussion.labels": "discussions", "DiscussionPoll.options": "discussions",
    "ReactionGroup.reactors": "discussions",
    "ProjectV2Owner.projectsV2": "projects", "ProjectV2.items": "projects",
}


class UnmappedRequests(RuntimeError):
    pass


@dataclass
class Count:
    requests: int = 0
    charged: int = 0  # REST requests and GraphQL points paid from the rate limits


def graphql_kind(reads: str) -> str | None:
    """The kind of a query named `reads`: the one kind all its connections map to."""
    kinds = {GRAPHQL_KIND.get(c) for c in reads.split(",")}
    return kinds.pop() if len(kinds) == 1 else None


def by_kind(stats: dict) -> dict[str, Count]:
    """Requests and charges by kind; UnmappedRequests unless every one is accounted for."""
    out: dict[str, Count] = {}
    unknown: list[str] = []

    def add(kind: str | None, what: str, requests: int, charged: int) -> None:
        if kind is None:
            unknown.append(what)
            return
        count = out.setdefault(kind, Count())
        count.requests += requests
        count.charged += charged

    charged_rest = stats.get("charged_by_endpoint", {})
    for endpoint, statuses in stats["by_endpoint"].items():
        if endpoint != GRAPHQL:
            add(ENDPOINT_KIND.get(endpoint), endpoint, sum(statuses.values()),
                charged_rest.get(endpoint, 0))
    points = stats.get("graphql_cost_by_query", {})
    for reads, statuses in stats.get("graphql_by_query", {}).items():
        add(graphql_kind(reads), f"{GRAPHQL} reading {reads}", sum(statuses.values()),
            points.get(reads, 0))
    if unknown:
        raise UnmappedRequests("bench/by_kind.py maps no kind for " + "; ".join(unknown)
                               + ": add each to ENDPOINT_KIND or GRAPHQL_KIND.")
    counted = Count(sum(c.requests for c in out.values()), sum(c.charged for c in out.values()))
    if (counted.requests, counted.charged) != (stats["requests_total"], stats["charged"]):
        raise UnmappedRequests(
            f"requests by kind add up to {counted.requests} requests and {counted.charged} "
            f"charged, the simulator counted {stats['requests_total']} and {stats['charged']}:"
            " it must record every request by endpoint (and POST /graphql by query).")
    return out


def like_for_like(counts: dict[str, Count]) -> Count:
    """The requests for the kinds both tools keep (those python-github-backup keeps)."""
    both = [c for kind, c in counts.items() if PEER_KEEPS[kind]]
    return Count(sum(c.requests for c in both), sum(c.charged for c in both))


def ghvault_only(counts: dict[str, Count]) -> dict[str, Count]:
    """The kinds only ghvault keeps, in PEER_KEEPS' order."""
    return {kind: counts[kind] for kind in PEER_KEEPS if kind in counts and not PEER_KEEPS[kind]}


def both_keep(run) -> float:
    """A run's requests for the content both tools keep (NaN when they could not be told
    apart: the run then failed, see tools.run_ghvault and run_peer)."""
    return float(like_for_like(run.kinds).requests) if run.kinds else float("nan")
