"""Discussions of a repository: GraphQL (REST has no list of them).

One query lists 100 discussions with their category, answer and reactions (and the
repository's categories on the first page); one more per discussion that has comments
brings 100 comments with up to 100 replies each (2 points each); a comment with more
replies pages them by itself. With --state a discussion whose `updatedAt` and comment count
are last month's reuses last month's comments: no query for them.

`discussion_comments` counts top-level comments and replies alike: every line of
discussion_comments.jsonl, where a reply names its comment in `reply_to`.
"""

from __future__ import annotations

from typing import Any

from ..errors import OptionalDenied
from ..layout import repo_entry
from . import Job

# Reaction counts of discussions and comments; not of replies, where GitHub would charge
# them as a connection per reply (100 points a query instead of 2).
REPLY = "id databaseId body createdAt updatedAt url upvoteCount authorAssociation " \
        "author { login }"
POST = f"{REPLY} reactionGroups {{ content reactors {{ totalCount }} }}"
LIST = f"""
query($owner: String!, $name: String!, $after: String, $first: Boolean!) {{
  repository(owner: $owner, name: $name) {{
    discussionCategories(first: 100) @include(if: $first) {{
      nodes {{ id name slug emoji description isAnswerable createdAt updatedAt }}
    }}
    discussions(first: 100, after: $after, orderBy: {{field: CREATED_AT, direction: ASC}}) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{
        {POST} number title closed closedAt locked stateReason
        category {{ id slug }} answer {{ databaseId }} answerChosenAt
        answerChosenBy {{ login }} comments {{ totalCount }}
      }}
    }}
  }}
  rateLimit {{ cost remaining }}
}}
"""
COMMENTS = f"""
query($id: ID!, $after: String) {{
  node(id: $id) {{
    ... on Discussion {{
      comments(first: 100, after: $after) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{
          {POST} isAnswer isMinimized
          replies(first: 100) {{
            totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {REPLY} }}
          }}
        }}
      }}
    }}
  }}
  rateLimit {{ cost remaining }}
}}
"""
REPLIES = f"""
query($id: ID!, $after: String) {{
  node(id: $id) {{
    ... on DiscussionComment {{
      replies(first: 100, after: $after) {{
        pageInfo {{ hasNextPage endCursor }} nodes {{ {REPLY} }}
      }}
    }}
  }}
  rateLimit {{ cost remaining }}
}}
"""


def collect_discussions(job: Job, repo: dict[str, Any]) -> None:
    """discussions.jsonl, discussion_comments.jsonl and discussion_categories.json of a
    repository with discussions enabled (`has_discussions` of the REST repository)."""
    if not repo.get("has_discussions"):
        return
    full, name = repo["full_name"], repo["name"]
    owner, _, repo_name = full.partition("/")
    discussions: list[dict[str, Any]] = []
    categories: list[dict[str, Any]] = []
    after = None
    try:
        while True:
            data = job.client.graphql(LIST, {"owner": owner, "name": repo_name,
                                             "after": after, "first": after is None})
            repo_data = data["repository"]
            if after is None:
                categories = repo_data["discussionCategories"]["nodes"]
            conn = repo_data["discussions"]
            discussions += conn["nodes"]
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
    except OptionalDenied as e:
        job.ledger.skip(f"{full} discussions", str(e))
        return
    job.archive.add_json(repo_entry(name, "discussion_categories.json"), categories)
    with job.archive.jsonl(repo_entry(name, "discussions.jsonl")) as out:
        for d in discussions:
            out.write(d)
            job.ledger.add("discussions")
    with job.archive.jsonl(repo_entry(name, "discussion_comments.jsonl")) as out:
        for d in discussions:
            for comment in comments_of(job, d):
                out.write(comment)
                job.ledger.add("discussion_comments")


def comments_of(job: Job, d: dict[str, Any]) -> list[dict[str, Any]]:
    """A discussion's comments, each followed by its replies; from last month's memo when
    the discussion is unchanged since (same updatedAt and comment count)."""
    total = d["comments"]["totalCount"]
    if not total:
        return []
    cache = job.client.cache
    key = f"/ghvault/discussion/{d['id']}"
    stamp = [d["updatedAt"], total]
    memo = cache.get(key) if cache is not None else None
    if memo and memo.get("stamp") == stamp:
        return memo["comments"]
    out: list[dict[str, Any]] = []
    after = None
    while True:
        conn = job.client.graphql(COMMENTS, {"id": d["id"], "after": after})["node"]["comments"]
        for c in conn["nodes"]:
            replies = c.pop("replies")
            out.append({**c, "discussion": d["number"], "reply_to": None})
            nodes = replies["nodes"]
            if replies["pageInfo"]["hasNextPage"]:
                nodes = nodes + more_replies(job, c["id"], replies["pageInfo"]["endCursor"])
            out += [{**r, "discussion": d["number"], "reply_to": c["databaseId"]} for r in nodes]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    if cache is not None:
        cache.put(key, {"stamp": stamp, "comments": out})
    return out


def more_replies(job: Job, comment_id: str, after: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while after is not None:
        conn = job.client.graphql(REPLIES, {"id": comment_id, "after": after})["node"]["replies"]
        out += conn["nodes"]
        after = conn["pageInfo"]["endCursor"] if conn["pageInfo"]["hasNextPage"] else None
    return out
