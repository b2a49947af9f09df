"""The simulator's GraphQL endpoint: GitHub's error shapes, paging, cost and visibility, and
the exact queries python-github-backup sends."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from github_backup import github_backup as gb
from github_backup import graphql_queries as ghq

from tests.github_sim.graphql_api import GraphQLEndpoint, make_cursor, read_cursor
from tests.github_sim.model import (
    Account,
    Comment,
    Issue,
    Label,
    PullInfo,
    Repo,
    Review,
    ReviewComment,
    World,
)

SCHEMA = Path(__file__).resolve().parents[2] / "node_modules/@octokit/graphql-schema/schema.json"
T0 = 1_600_000_000
N_ITEMS = 175  # every 7th is an issue: 25 issues, 150 pull requests
BUSY_PR, REVIEWED_PR = 3, 2  # 120 reviews; 3 reviews with comments


def stamp(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 + seconds))


def account(login: str, ident: int, kind: str = "User", members: list[str] | None = None
            ) -> Account:
    return Account(login, ident, kind, login.title(), stamp(0), stamp(0), members=members or [])


def repo(owner: str, name: str, ident: int, private: bool = False) -> Repo:
    return Repo(id=ident, owner=owner, name=name, description="", private=private,
                visibility="private" if private else "public", fork=False, archived=False,
                has_issues=True, has_wiki=True, wiki_exists=False, has_lfs=False, empty=False,
                language="Python", topics=[], default_branch="main", created_at=stamp(0),
                updated_at=stamp(0), pushed_at=stamp(0), license=None,
                labels=[Label(ident + 1, "bug", "d73a4a", "Something isn't working"),
                        Label(ident + 2, "docs", "0075ca", "")])


def item(n: int, pull: bool) -> Issue:
    state = "open" if not pull or n % 5 > 1 else "closed"
    issue = Issue(id=70_000 + n, number=n, title=f"item {n}", body=f"body {n}",
                  user=("alice", "bob", "hubber")[n % 3], state=state, state_reason=None,
                  created_at=stamp(n * 60), updated_at=stamp(100_000 + (n * 37 % N_ITEMS) * 60),
                  closed_at=None if state == "open" else stamp(n * 60 + 30), closed_by=None,
                  labels=["bug"] if n % 4 == 0 else [], assignees=[], milestone=None,
                  locked=False, comments=[Comment(80_000 + n, "bob", "hi", stamp(n), stamp(n))])
    if pull:
        merged = n % 5 == 0
        issue.pull = PullInfo(head_ref=f"pr-{n}", head_sha=f"{n:040x}", base_ref="main",
                              base_sha="b" * 40, commits=[f"{n:040x}"], merged=merged,
                              merged_at=stamp(n * 60 + 30) if merged else None,
                              merged_by="hubber" if merged else None, merge_commit_sha=None,
                              draft=n % 11 == 0 and state == "open", additions=1, deletions=1,
                              changed_files=1)
    return issue


def build_world() -> World:
    accounts = {a.login: a for a in (
        account("hubber", 1001), account("alice", 1002), account("bob", 1003),
        account("hubworks", 2001, "Organization", ["hubber", "alice"]))}
    big = repo("hubber", "big", 50_000)
    big.issues = [item(n, n % 7 != 0) for n in range(1, N_ITEMS + 1)]
    reviewed = big.issues[REVIEWED_PR - 1].pull
    for k, (who, state) in enumerate((("alice", "CHANGES_REQUESTED"), ("bob", "COMMENTED"),
                                      ("alice", "APPROVED"))):
        reviewed.reviews.append(Review(90_000 + k, who, f"review {k}", state,
                                       stamp(5000 + k), "c" * 40))
    reviewed.review_comments = [
        ReviewComment(91_000, 90_000, "alice", "fix this", "src/a.py", 12, "c" * 40,
                      stamp(5000), stamp(5000)),
        ReviewComment(91_001, 90_001, "bob", "agreed", "src/a.py", 12, "c" * 40,
                      stamp(5001), stamp(5001), in_reply_to_id=91_000)]
    big.issues[BUSY_PR - 1].pull.reviews = [
        Review(100_000 + k, "bob", "", "COMMENTED", stamp(6000 + k), "") for k in range(120)]
    secret = repo("hubber", "secret", 60_000, private=True)
    secret.issues = [item(1, False)]
    infra = repo("hubworks", "infra", 61_000, private=True)
    return World(seed=1, size="test", owners={"user": "hubber", "org": "hubworks"},
                 accounts=accounts, repos={r.full_name: r for r in (big, secret, infra)},
                 gists={})


ALL: Callable[[Repo], bool] = lambda r: True  # noqa: E731
NONE: Callable[[Repo], bool] = lambda r: False  # noqa: E731
WORLD = {"now": build_world()}


@pytest.fixture(scope="module")
def ep() -> GraphQLEndpoint:
    return GraphQLEndpoint(lambda: WORLD["now"], SCHEMA)


def run(ep: GraphQLEndpoint, query: str, variables: dict | None = None, *,
        see: Callable[[Repo], bool] = ALL, rate: Callable[[int], dict] | None = None
        ) -> tuple[int, dict, int]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    return ep.execute(body, "hubber", see, rate)


def data(ep: GraphQLEndpoint, query: str, variables: dict | None = None, **kw: Any) -> dict:
    status, answer, _ = run(ep, query, variables, **kw)
    assert status == 200 and "errors" not in answer, answer
    return answer["data"]


def errors(ep: GraphQLEndpoint, query: str, variables: dict | None = None, **kw: Any) -> list:
    status, answer, _ = run(ep, query, variables, **kw)
    assert status == 200 and answer.get("errors"), answer
    return answer["errors"]


PULLS = """query($after: String, $before: String, $first: Int, $last: Int) {
  repository(owner: "hubber", name: "big") {
    pullRequests(first: $first, last: $last, after: $after, before: $before) {
      totalCount
      edges { cursor }
      nodes { number }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}"""


# basics and error shapes ------------------------------------------------------------------

def test_viewer_and_rate_limit_report_what_the_server_charged(ep: GraphQLEndpoint) -> None:
    charged: list[int] = []

    def rate(cost: int) -> dict:
        charged.append(cost)
        return {"limit": 5000, "remaining": 4000, "used": 1000, "reset": 1_700_000_000}

    status, answer, cost = run(ep, "{ viewer { login databaseId id name } "
                                   "rateLimit { cost limit remaining used resetAt nodeCount } }",
                               rate=rate)
    assert (status, cost, charged) == (200, 1, [1])
    assert answer["data"]["viewer"]["login"] == "hubber"
    assert answer["data"]["viewer"]["databaseId"] == 1001
    assert answer["data"]["viewer"]["id"].startswith("U_")
    assert answer["data"]["rateLimit"] == {"cost": 1, "limit": 5000, "remaining": 4000,
                                           "used": 1000, "resetAt": "2023-11-14T22:13:20Z",
                                           "nodeCount": 0}


def test_undefined_field_error_has_githubs_shape(ep: GraphQLEndpoint) -> None:
    status, answer, _ = run(ep, "query { viewer { logn } }")
    assert status == 200 and "data" not in answer
    assert answer["errors"] == [{
        "path": ["query", "viewer", "logn"],
        "extensions": {"code": "undefinedField", "typeName": "User", "fieldName": "logn"},
        "locations": [{"line": 1, "column": 18}],
        "message": "Field 'logn' doesn't exist on type 'User'"}]
    assert list(answer["errors"][0]) == ["path", "extensions", "locations", "message"]


@pytest.mark.parametrize("query, message, code, path", [
    ("{ repository { name } }",
     "Field 'repository' is missing required arguments: owner, name",
     "missingRequiredArguments", ["query", "repository"]),
    ("{ viewer { login(x: 1) } }", "Field 'login' doesn't accept argument 'x'",
     "argumentNotAccepted", ["query", "viewer", "login", "x"]),
    ("{ viewer }", "Field must have selections (field 'viewer' returns User but has no "
     "selections. Did you mean 'viewer { ... }'?)", "selectionMismatch", ["query", "viewer"]),
    ("{ viewer { login { x } } }", "Selections can't be made on scalars (field 'login' "
     "returns String but has selections [\"x\"])", "selectionMismatch",
     ["query", "viewer", "login"]),
    ("query Q($x: Int) { viewer { login } }", "Variable $x is declared by Q but not used",
     "variableNotUsed", ["query Q"]),
    ("{ repository(owner: $o, name: \"x\") { id } }",
     "Variable $o is used by anonymous query but not declared", "variableNotDefined",
     ["query", "repository", "owner"]),
    ("query($o: Int!) { repository(owner: $o, name: \"x\") { id } }",
     "Type mismatch on variable $o and argument owner (Int! / String!)", "variableMismatch",
     ["query", "repository", "owner"]),
    ("{ repository(owner: \"a\", name: \"b\") { pullRequests(states: [FOO]) { totalCount } } }",
     "Argument 'states' on Field 'pullRequests' has an invalid value ([FOO]). Expected type "
     "'[PullRequestState!]'.", "argumentLiteralsIncompatible",
     ["query", "repository", "pullRequests", "states"]),
    ("{ viewer { ... on Repository { id } } }",
     "Fragment on Repository can't be spread inside User", "cannotSpreadFragment",
     ["query", "viewer", "... on Repository"]),
    ("fragment F on User { login } { viewer { login } }", "Fragment F was defined, but not used",
     "useAndDefineFragment", ["fragment F"]),
])
def test_validation_errors_are_worded_as_githubs(ep: GraphQLEndpoint, query: str, message: str,
                                                code: str, path: list[str]) -> None:
    errs = errors(ep, query)
    assert [(e["message"], e["extensions"]["code"], e["path"]) for e in errs] == [
        (message, code, path)]
    assert all(e["locations"] for e in errs)


def test_parse_errors(ep: GraphQLEndpoint) -> None:
    assert errors(ep, "query { viewer { } }") == [
        {"message": 'Parse error on "}" (RCURLY) at [1, 18]',
         "locations": [{"line": 1, "column": 18}]}]
    assert errors(ep, "{ viewer { login }") == [
        {"message": "Unexpected end of document", "locations": []}]
    assert errors(ep, "{ viewer { login } } %")[0]["message"] == (
        'Parse error on "%" (UNKNOWN_CHAR) at [1, 22]')


def test_bad_bodies(ep: GraphQLEndpoint) -> None:
    assert ep.execute(b"{not json", "hubber", ALL) == (
        400, {"message": "Problems parsing JSON", "documentation_url":
              "https://docs.github.com/graphql"}, 0)
    status, answer, _ = ep.execute(b'{"variables": {}}', "hubber", ALL)
    assert (status, answer) == (200, {"errors": [{
        "message": "A query attribute must be specified and must be a string."}]})


def test_bad_variables(ep: GraphQLEndpoint) -> None:
    q = "query($name: String!) {\n  repository(owner: \"hubber\", name: $name) { id }\n}"
    assert errors(ep, q) == [{
        "extensions": {"value": None, "problems": [
            {"path": [], "explanation": "Expected value to not be null"}]},
        "locations": [{"line": 1, "column": 7}],
        "message": "Variable $name of type String! was provided invalid value"}]
    assert errors(ep, q, {"name": 5})[0]["extensions"]["problems"][0]["explanation"] == (
        "Could not coerce value 5 to String")


def test_unmodelled_fields_are_errors_not_nulls(ep: GraphQLEndpoint) -> None:
    status, answer, _ = run(ep, '{ repository(owner: "hubber", name: "big") { name '
                                'licenseInfo { name } } }')
    assert answer["data"] == {"repository": {"name": "big", "licenseInfo": None}}
    assert answer["errors"] == [{
        "path": ["repository", "licenseInfo"], "locations": [{"line": 1, "column": 51}],
        "message": "the GitHub simulator does not implement field licenseInfo on type "
                   "Repository"}]


# paging ----------------------------------------------------------------------------------

def all_pull_numbers() -> list[int]:
    return [n for n in range(1, N_ITEMS + 1) if n % 7]


def test_paging_forward_returns_every_pull_request_once(ep: GraphQLEndpoint) -> None:
    seen, after, pages = [], None, []
    while True:
        conn = data(ep, PULLS, {"first": 100, "after": after})["repository"]["pullRequests"]
        pages.append(conn["pageInfo"])
        assert conn["totalCount"] == 150
        assert [e["cursor"] for e in conn["edges"]][-1] == conn["pageInfo"]["endCursor"]
        seen += [n["number"] for n in conn["nodes"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == all_pull_numbers()
    assert [(p["hasNextPage"], p["hasPreviousPage"]) for p in pages] == [
        (True, False), (False, True)]
    assert read_cursor(pages[0]["startCursor"]) == (70_001,)
    assert pages[0]["startCursor"].startswith("Y3Vyc29yOnYyO")  # base64("cursor:v2:")


def test_paging_backward_with_last_and_before(ep: GraphQLEndpoint) -> None:
    seen, before = [], None
    while True:
        conn = data(ep, PULLS, {"last": 60, "before": before})["repository"]["pullRequests"]
        seen = [n["number"] for n in conn["nodes"]] + seen
        if not conn["pageInfo"]["hasPreviousPage"]:
            break
        before = conn["pageInfo"]["startCursor"]
    assert seen == all_pull_numbers()


def test_states_filter_and_ordering(ep: GraphQLEndpoint) -> None:
    q = """query($after: String) { repository(owner: "hubber", name: "big") {
      merged: pullRequests(first: 100, states: [MERGED]) { totalCount nodes { number state } }
      open: pullRequests(first: 1, states: [OPEN]) { totalCount }
      recent: pullRequests(first: 40, after: $after,
                           orderBy: {field: UPDATED_AT, direction: DESC}) {
        nodes { number updatedAt } pageInfo { hasNextPage endCursor } } } }"""
    r = data(ep, q)["repository"]
    merged = [n for n in all_pull_numbers() if n % 5 == 0]
    assert [n["number"] for n in r["merged"]["nodes"]] == merged
    assert {n["state"] for n in r["merged"]["nodes"]} == {"MERGED"}
    assert r["open"]["totalCount"] == len([n for n in all_pull_numbers() if n % 5 > 1])
    stamps, after = [], None
    while True:
        page = data(ep, q, {"after": after})["repository"]["recent"]
        stamps += [n["updatedAt"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(stamps) == 150 and stamps == sorted(stamps, reverse=True)


def test_issues_leave_pull_requests_out(ep: GraphQLEndpoint) -> None:
    q = """{ repository(owner: "hubber", name: "big") {
      issues(first: 100, states: [OPEN]) { totalCount nodes { number state } }
      labelled: issues(first: 100, filterBy: {labels: ["bug"]}) { totalCount } } }"""
    r = data(ep, q)["repository"]
    assert [n["number"] for n in r["issues"]["nodes"]] == list(range(7, N_ITEMS + 1, 7))
    assert r["labelled"]["totalCount"] == len(range(28, N_ITEMS + 1, 28))


def test_page_size_limits(ep: GraphQLEndpoint) -> None:
    q = '{ repository(owner: "hubber", name: "big") { pullRequests(%s) { nodes { number } } } }'
    status, answer, _ = run(ep, q % "first: 101")
    assert answer == {"data": {"repository": None}, "errors": [{
        "type": "EXCESSIVE_PAGINATION", "path": ["repository", "pullRequests"],
        "locations": [{"line": 1, "column": 46}],
        "message": "Requesting 101 records on the `pullRequests` connection exceeds the "
                   "`first` limit of 100 records."}]}
    assert errors(ep, q % "last: 500")[0]["message"] == (
        "Requesting 500 records on the `pullRequests` connection exceeds the `last` limit of "
        "100 records.")
    missing = errors(ep, q.replace("(%s)", ""))
    assert (missing[0]["type"], missing[0]["message"]) == (
        "MISSING_PAGINATION_BOUNDARIES", "You must provide a `first` or `last` value to "
        "properly paginate the `pullRequests` connection.")
    counted = data(ep, '{ repository(owner: "hubber", name: "big") { pullRequests '
                       '{ totalCount } } }')
    assert counted["repository"]["pullRequests"]["totalCount"] == 150
    bad = errors(ep, q % 'first: 5, after: "nope"')[0]
    assert (bad["type"], bad["message"]) == (
        "INVALID_CURSOR_ARGUMENTS", "`nope` does not appear to be a valid cursor.")
    other = errors(ep, q % f'first: 5, after: "{make_cursor(("2020-01-01T00:00:00Z", 1))}"')
    assert other[0]["type"] == "INVALID_CURSOR_ARGUMENTS"


# reviews ---------------------------------------------------------------------------------

REVIEWS = """query($number: Int!, $after: String) {
  repository(owner: "hubber", name: "big") {
    pullRequest(number: $number) {
      reviews(first: 100, after: $after) {
        totalCount
        pageInfo { hasNextPage hasPreviousPage endCursor }
        nodes {
          databaseId state body submittedAt authorAssociation url
          author { login ... on User { name } }
          commit { oid }
          comments(first: 10) {
            totalCount
            nodes { databaseId body path line originalLine diffHunk author { login }
                    replyTo { databaseId } }
          }
        }
      }
    }
  }
}"""


def test_reviews_with_their_comments(ep: GraphQLEndpoint) -> None:
    reviews = data(ep, REVIEWS, {"number": REVIEWED_PR})["repository"]["pullRequest"]["reviews"]
    assert reviews["totalCount"] == 3 and not reviews["pageInfo"]["hasNextPage"]
    first, second, third = reviews["nodes"]
    assert (first["databaseId"], first["state"], first["author"]) == (
        90_000, "CHANGES_REQUESTED", {"login": "alice", "name": "Alice"})
    # alice authored merged pull requests; associations are computed as the REST shapes do
    assert first["authorAssociation"] == "CONTRIBUTOR" and third["comments"]["totalCount"] == 0
    assert first["url"] == "https://github.com/hubber/big/pull/2#pullrequestreview-90000"
    assert first["commit"] == {"oid": "c" * 40}
    assert first["comments"]["nodes"][0]["replyTo"] is None
    reply = second["comments"]["nodes"][0]
    assert (reply["databaseId"], reply["replyTo"], reply["path"], reply["line"]) == (
        91_001, {"databaseId": 91_000}, "src/a.py", 12)
    assert reply["diffHunk"].startswith("@@ ") and reply["author"] == {"login": "bob"}


def test_nested_reviews_page_past_100(ep: GraphQLEndpoint) -> None:
    seen, after, pages = [], None, 0
    while True:
        reviews = data(ep, REVIEWS, {"number": BUSY_PR, "after": after}
                       )["repository"]["pullRequest"]["reviews"]
        pages += 1
        assert reviews["totalCount"] == 120
        seen += [r["databaseId"] for r in reviews["nodes"]]
        if not reviews["pageInfo"]["hasNextPage"]:
            assert reviews["pageInfo"]["hasPreviousPage"]
            break
        after = reviews["pageInfo"]["endCursor"]
    assert pages == 2 and seen == [100_000 + k for k in range(120)]
    nested = data(ep, """{ repository(owner: "hubber", name: "big") {
      pullRequests(first: 5) { nodes { number reviews(first: 100, states: [APPROVED]) {
        totalCount pageInfo { hasNextPage } } } } } }""")
    counts = {n["number"]: n["reviews"]["totalCount"]
              for n in nested["repository"]["pullRequests"]["nodes"]}
    assert counts == {1: 0, 2: 1, 3: 0, 4: 0, 5: 0}


# cost ------------------------------------------------------------------------------------

def test_cost_of_pull_requests_with_reviews(ep: GraphQLEndpoint) -> None:
    q = """{ repository(owner: "hubber", name: "big") { pullRequests(first: 100) {
      nodes { reviews(first: 100) { nodes { id } } } } }
      rateLimit { cost nodeCount } }"""
    status, answer, cost = run(ep, q)
    # 1 request for the pull requests + 100 for their reviews = 101 -> 1.01 -> 1 point
    assert (status, cost) == (200, 1)
    assert answer["data"]["rateLimit"] == {"cost": 1, "nodeCount": 100 + 100 * 100}


def test_three_nested_levels_cost_more(ep: GraphQLEndpoint) -> None:
    q = """{ repository(owner: "hubber", name: "big") { pullRequests(first: 100) {
      nodes { reviews(first: 100) { nodes { comments(first: 40) { nodes { id } } } } } } }
      rateLimit { cost nodeCount } }"""
    status, answer, cost = run(ep, q)
    # 1 + 100 + 100 * 100 = 10,101 requests -> 101 points
    assert (status, cost) == (200, 101)
    assert answer["data"]["rateLimit"] == {"cost": 101,
                                           "nodeCount": 100 + 100 * 100 + 100 * 100 * 40}


def test_cost_matches_githubs_documented_examples(ep: GraphQLEndpoint) -> None:
    docs_rate = """query { viewer { login repositories(first: 100) { edges { node { id
      issues(first: 50) { edges { node { id labels(first: 60) { edges { node { id name }
      } } } } } } } } } }"""
    assert ep.cost(docs_rate) == (51, 100 + 100 * 50 + 100 * 50 * 60)  # 5,101 requests
    docs_simple = """query { viewer { repositories(first: 50) { edges { repository: node {
      name issues(first: 10) { totalCount edges { node { title bodyHTML } } } } } } } }"""
    assert ep.cost(docs_simple) == (1, 550)
    docs_complex = """query { viewer { repositories(first: 50) { edges { repository: node {
      name pullRequests(first: 20) { edges { pullRequest: node { title
        comments(first: 10) { edges { comment: node { bodyHTML } } } } } }
      issues(first: 20) { totalCount edges { issue: node { title bodyHTML
        comments(first: 10) { edges { comment: node { bodyHTML } } } } } } } } }
      followers(first: 10) { edges { follower: node { login } } } } }"""
    assert ep.cost(docs_complex)[1] == 22_060
    with_variables = "query($n: Int!) { viewer { repositories(first: $n) { totalCount } } }"
    assert ep.cost(with_variables, {"n": 100}) == (1, 100)


def test_node_limit(ep: GraphQLEndpoint) -> None:
    charged: list[int] = []
    q = """{ repository(owner: "hubber", name: "big") { pullRequests(first: 100) {
      nodes { reviews(first: 100) { nodes { comments(first: 100) { nodes { id } } } } } } } }"""
    status, answer, _ = run(ep, q, rate=lambda c: charged.append(c) or {})
    assert status == 200 and charged == []
    assert answer == {"errors": [{
        "type": "MAX_NODE_LIMIT_EXCEEDED",
        "message": "By the time this query traverses to the comments connection, it is "
                   "requesting up to 1,010,100 possible nodes which exceeds the maximum limit "
                   "of 500,000."}]}


def test_rate_limited_when_the_budget_cannot_pay(ep: GraphQLEndpoint) -> None:
    status, answer, cost = run(ep, "{ viewer { login } }", rate=lambda c: {
        "limit": 5000, "remaining": 0, "used": 5000, "reset": 0, "exceeded": True})
    assert (status, cost) == (200, 1)
    assert answer == {"errors": [{"type": "RATE_LIMITED", "message":
                                  "API rate limit already exceeded for user ID 1001."}]}


# visibility ------------------------------------------------------------------------------

def test_private_repositories_need_permission(ep: GraphQLEndpoint) -> None:
    q = '{ repository(owner: "%s", name: "%s") { nameWithOwner isPrivate } }'
    for owner, name in (("hubber", "secret"), ("hubworks", "infra"), ("hubber", "nothing")):
        status, answer, _ = run(ep, q % (owner, name), see=NONE)
        assert answer == {"data": {"repository": None}, "errors": [{
            "type": "NOT_FOUND", "path": ["repository"], "locations": [{"line": 1, "column": 3}],
            "message": f"Could not resolve to a Repository with the name '{owner}/{name}'."}]}
    assert data(ep, q % ("hubber", "secret"))["repository"] == {
        "nameWithOwner": "hubber/secret", "isPrivate": True}
    assert data(ep, q % ("HUBBER", "Big"), see=NONE)["repository"]["nameWithOwner"] == (
        "hubber/big")
    gid = data(ep, q.replace("nameWithOwner", "id") % ("hubber", "secret"))["repository"]["id"]
    hidden = errors(ep, "query($id: ID!) { node(id: $id) { id } }", {"id": gid}, see=NONE)
    assert hidden[0]["type"] == "NOT_FOUND"


def test_node_ids_round_trip(ep: GraphQLEndpoint) -> None:
    pr = data(ep, REVIEWS, {"number": REVIEWED_PR})["repository"]["pullRequest"]
    q = """query($ids: [ID!]!) { nodes(ids: $ids) { __typename id
      ... on PullRequest { number } ... on PullRequestReview { databaseId } } }"""
    ids = data(ep, '{ repository(owner: "hubber", name: "big") { pullRequest(number: 2) { id '
                   'reviews(first: 1) { nodes { id } } } } }')["repository"]["pullRequest"]
    got = data(ep, q, {"ids": [ids["id"], ids["reviews"]["nodes"][0]["id"], "X_nope"]})["nodes"]
    assert got == [{"__typename": "PullRequest", "id": ids["id"], "number": 2},
                   {"__typename": "PullRequestReview", "id": ids["reviews"]["nodes"][0]["id"],
                    "databaseId": pr["reviews"]["nodes"][0]["databaseId"]}, None]
    assert ids["id"].startswith("PR_") and ids["reviews"]["nodes"][0]["id"].startswith("PRR_")


def test_the_world_is_read_at_every_request(ep: GraphQLEndpoint) -> None:
    q = '{ repository(owner: "hubber", name: "big") { issues(first: 1) { totalCount } } }'
    before = data(ep, q)["repository"]["issues"]["totalCount"]
    replaced = build_world()
    replaced.repos["hubber/big"].issues.append(item(N_ITEMS + 7, False))
    WORLD["now"] = replaced
    try:
        assert data(ep, q)["repository"]["issues"]["totalCount"] == before + 1
    finally:
        WORLD["now"] = build_world()


# timelines -------------------------------------------------------------------------------

def test_timeline_counts(ep: GraphQLEndpoint) -> None:
    q = """{ repository(owner: "hubber", name: "big") {
      issue(number: 7) { timelineItems(first: 10, itemTypes: [CROSS_REFERENCED_EVENT]) {
        totalCount nodes { __typename } } }
      pullRequest(number: 1) { timelineItems(last: 10, itemTypes: [CROSS_REFERENCED_EVENT]) {
        totalCount filteredCount nodes { __typename } } } } }"""
    r = data(ep, q)["repository"]
    assert r["issue"]["timelineItems"] == {"totalCount": 0, "nodes": []}
    # on a pull request totalCount ignores itemTypes: 1 comment + 1 commit
    assert r["pullRequest"]["timelineItems"] == {"totalCount": 2, "filteredCount": 0,
                                                 "nodes": []}
    listing = errors(ep, q.replace("CROSS_REFERENCED_EVENT]) {\n        totalCount",
                                   "ISSUE_COMMENT]) {\n        totalCount", 1))
    assert "does not implement" in listing[0]["message"]


# python-github-backup's own queries ------------------------------------------------------

@pytest.fixture
def backup_against(ep: GraphQLEndpoint, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Send github-backup's GraphQL calls to the endpoint, failing as it does on errors."""
    calls: list[dict] = []

    def fake(args: Any, query: str, variables: dict | None = None, log_context: Any = None
             ) -> dict:
        calls.append(variables or {})
        status, answer, _ = run(ep, query, variables)
        assert status == 200
        if answer.get("errors"):
            raise Exception("GraphQL Error: " + "; ".join(e["message"] for e in answer["errors"]))
        return answer.get("data", {})

    monkeypatch.setattr(gb, "retrieve_graphql_data", fake)
    return calls


def test_discussion_list_query(ep: GraphQLEndpoint, backup_against: list[dict]) -> None:
    variables = {"owner": "hubber", "name": "big", "after": None,
                 "pageSize": ghq.DISCUSSION_PAGE_SIZE}
    assert data(ep, ghq.DISCUSSION_LIST_QUERY, variables) == {"repository": {
        "hasDiscussionsEnabled": False, "discussions": {
            "totalCount": 0, "nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}}}
    assert gb.retrieve_discussion_summaries(SimpleNamespace(), {"full_name": "hubber/big"}) == (
        [], None, False, 0)


def test_discussion_detail_queries_validate(ep: GraphQLEndpoint) -> None:
    detail = errors(ep, ghq.DISCUSSION_DETAIL_QUERY, {
        "owner": "hubber", "name": "big", "number": 1, "commentsCursor": None, "pageSize": 100})
    assert [(e["type"], e["path"]) for e in detail] == [("NOT_FOUND", ["repository", "discussion"])]
    replies = errors(ep, ghq.DISCUSSION_REPLIES_QUERY, {
        "commentId": "DC_kwDOAAAB", "repliesCursor": None, "pageSize": 100})
    assert [(e["type"], e["path"]) for e in replies] == [("NOT_FOUND", ["node"])]


def test_cross_reference_queries(ep: GraphQLEndpoint, backup_against: list[dict]) -> None:
    issues = data(ep, ghq.ISSUE_CROSS_REFERENCE_COUNT_QUERY, {
        "owner": "hubber", "name": "big", "after": None,
        "pageSize": ghq.CROSS_REFERENCE_PAGE_SIZE})["repository"]["issues"]
    assert issues["nodes"][0] == {"number": 7, "timelineItems": {"totalCount": 0, "nodes": []}}
    state = gb.retrieve_cross_reference_state(SimpleNamespace(), {"full_name": "hubber/big"},
                                              include_pulls=True)
    assert state == {n: (0, None) for n in range(1, N_ITEMS + 1)}
    # one page of 25 issues, two pages of pull requests (100 + 50), following endCursor
    assert [c["after"] is None for c in backup_against] == [True, True, False]
    assert backup_against[1].get("nodeLimit") == ghq.CROSS_REFERENCE_NODE_LIMIT
