"""Projects (v2) of the owner, user or organisation: GraphQL only (REST has none).

One query lists 100 projects with their fields (100) and views (100) (3 points); one more
per project that has items brings 100 items with up to 50 field values each (1 point), and
with --state only for a project changed since last month. A token without the
`read:project` scope gets GitHub's INSUFFICIENT_SCOPES: the kind is recorded in `skipped`,
naming the scope, and the run goes on.
"""

from __future__ import annotations

from typing import Any

from ..errors import OptionalDenied
from ..layout import account_entry
from . import Job

FIELD = "... on ProjectV2FieldCommon { id databaseId name dataType createdAt updatedAt }"
LIST = f"""
query($login: String!, $after: String) {{
  owner: repositoryOwner(login: $login) {{
    ... on ProjectV2Owner {{
      projectsV2(first: 100, after: $after) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{
          id databaseId number title shortDescription readme public closed closedAt
          createdAt updatedAt url template creator {{ login }}
          fields(first: 100) {{ nodes {{
            {FIELD}
            ... on ProjectV2SingleSelectField {{ options {{ id name color description }} }}
          }} }}
          views(first: 100) {{ nodes {{
            id databaseId number name layout filter createdAt updatedAt
          }} }}
          items {{ totalCount }}
        }}
      }}
    }}
  }}
  rateLimit {{ cost remaining }}
}}
"""
ITEMS = f"""
query($id: ID!, $after: String) {{
  node(id: $id) {{
    ... on ProjectV2 {{
      items(first: 100, after: $after) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{
          id databaseId type isArchived createdAt updatedAt creator {{ login }}
          content {{
            ... on Issue {{ number url repository {{ nameWithOwner }} }}
            ... on PullRequest {{ number url repository {{ nameWithOwner }} }}
            ... on DraftIssue {{ id title body createdAt updatedAt }}
          }}
          fieldValues(first: 50) {{ nodes {{
            ... on ProjectV2ItemFieldTextValue {{ text field {{ {FIELD} }} }}
            ... on ProjectV2ItemFieldNumberValue {{ number field {{ {FIELD} }} }}
            ... on ProjectV2ItemFieldDateValue {{ date field {{ {FIELD} }} }}
            ... on ProjectV2ItemFieldSingleSelectValue {{ name optionId field {{ {FIELD} }} }}
          }} }}
        }}
      }}
    }}
  }}
  rateLimit {{ cost remaining }}
}}
"""


def collect_projects(job: Job, login: str) -> None:
    """account/projects.jsonl and account/project_items.jsonl."""
    projects: list[dict[str, Any]] = []
    after = None
    try:
        while True:
            owner = job.client.graphql(LIST, {"login": login, "after": after})["owner"] or {}
            conn = owner.get("projectsV2") or {"nodes": [], "pageInfo": {"hasNextPage": False}}
            projects += conn["nodes"]
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
    except OptionalDenied as e:
        job.ledger.skip("projects", str(e))
        return
    with job.archive.jsonl(account_entry("projects.jsonl")) as out:
        for p in projects:
            out.write(p)
            job.ledger.add("projects")
    with job.archive.jsonl(account_entry("project_items.jsonl")) as out:
        for p in projects:
            for item in items_of(job, p):
                out.write(item)
                job.ledger.add("project_items")


def items_of(job: Job, p: dict[str, Any]) -> list[dict[str, Any]]:
    """A project's items; from last month's memo when the project is unchanged since (same
    updatedAt and item count: an item added, edited or moved updates its project)."""
    if not p["items"]["totalCount"]:
        return []
    cache = job.client.cache
    key, stamp = f"/ghvault/project/{p['id']}", [p["updatedAt"], p["items"]["totalCount"]]
    memo = cache.get(key) if cache is not None else None
    if memo and memo.get("stamp") == stamp:
        return memo["items"]
    out: list[dict[str, Any]] = []
    after = None
    while True:
        items = job.client.graphql(ITEMS, {"id": p["id"], "after": after})["node"]["items"]
        out += [{**item, "project": p["number"]} for item in items["nodes"]]
        if not items["pageInfo"]["hasNextPage"]:
            break
        after = items["pageInfo"]["endCursor"]
    if cache is not None:
        cache.put(key, {"stamp": stamp, "items": out})
    return out
