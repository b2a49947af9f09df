"""Pull request reviews: GraphQL, 100 pull requests (and 100 reviews each) per query.

REST has reviews only per pull request (`/pulls/{n}/reviews`); GraphQL returns them for a
whole page of pull requests in one query costing one point. Each review is written in the
REST shape a restore or a reader expects. A pull request with more than 100 reviews, or a
server without GraphQL, falls back to the REST list for that pull request.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import GhvaultError, NotFound
from ..github.listmemo import ListMemo, MemoWriter
from . import Job

log = logging.getLogger("ghvault.collect")

QUERY = """
query($owner: String!, $name: String!, $after: String) {
  repository(owner: $owner, name: $name) {
    pullRequests(first: 100, after: $after, orderBy: {field: CREATED_AT, direction: ASC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        number
        reviews(first: 100) {
          totalCount
          nodes {
            id databaseId body state submittedAt authorAssociation url
            author { login }
            commit { oid }
          }
        }
      }
    }
  }
  rateLimit { cost remaining }
}
"""


def rest_shape(node: dict[str, Any], number: int) -> dict[str, Any]:
    return {
        "id": node.get("databaseId"),
        "node_id": node.get("id"),
        "pull_number": number,
        "user": {"login": (node.get("author") or {}).get("login")},
        "body": node.get("body") or "",
        "state": node.get("state"),
        "submitted_at": node.get("submittedAt"),
        "commit_id": (node.get("commit") or {}).get("oid"),
        "html_url": node.get("url"),
        "author_association": node.get("authorAssociation"),
    }


def collect_reviews(job: Job, repo: dict[str, Any], numbers: list[int], name: str,
                    pulls_etags: list[str] | None = None) -> None:
    """Reviews of every pull request. With --state, when the pull request list is exactly
    last month's (same ETags: a new review bumps its pull request's `updated_at`), last
    month's reviews are reused and no GraphQL point is spent."""
    cache = job.client.cache
    if cache is None or not pulls_etags or not all(pulls_etags):
        with job.archive.jsonl(name) as out:
            _collect(job, repo, numbers, out)
        return
    # Chunked (listmemo.py): a repository's reviews are never all in memory at once.
    memo = ListMemo(cache, f"/ghvault/reviews-list/{repo['full_name']}")
    if memo.head is not None and memo.meta.get("pulls_etags") == pulls_etags:
        with job.archive.jsonl(name) as out:
            for review in memo.items():
                out.write(review)
                job.ledger.add("reviews")
        return
    with memo.writer() as kept, job.archive.jsonl(name) as out:
        _collect(job, repo, numbers, _Recorder(out, kept))
        kept.commit({"pulls_etags": pulls_etags})


class _Recorder:
    """Writes reviews to the archive and keeps them for the next month's memo."""

    def __init__(self, out, kept: MemoWriter):
        self.out, self.kept = out, kept

    def write(self, review: dict[str, Any]) -> None:
        self.out.write(review)
        self.kept.add(review)


def _collect(job: Job, repo: dict[str, Any], numbers: list[int], out) -> None:
    owner, _, repo_name = repo["full_name"].partition("/")
    seen: set[int] = set()
    try:
        after = None
        while True:
            data = job.client.graphql(QUERY, {"owner": owner, "name": repo_name,
                                              "after": after})
            conn = data["repository"]["pullRequests"]
            for pr in conn["nodes"]:
                reviews = pr["reviews"]
                seen.add(pr["number"])
                if reviews["totalCount"] > len(reviews["nodes"]):
                    rest_reviews(job, repo, pr["number"], out)
                    continue
                for node in reviews["nodes"]:
                    out.write(rest_shape(node, pr["number"]))
                    job.ledger.add("reviews")
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
    except (GhvaultError, KeyError, TypeError) as e:
        if isinstance(e, NotFound):
            raise
        log.warning("GraphQL reviews failed for %s (%s); using REST per pull request",
                    repo["full_name"], e)
    for number in numbers:  # anything GraphQL did not cover (or all, without GraphQL)
        if number not in seen:
            rest_reviews(job, repo, number, out)


def rest_reviews(job: Job, repo: dict[str, Any], number: int, out) -> None:
    for review in job.client.paginate(f"/repos/{repo['full_name']}/pulls/{number}/reviews"):
        review["pull_number"] = number
        out.write(review)
        job.ledger.add("reviews")
