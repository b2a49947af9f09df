"""The like-for-like request count (bench/by_kind.py): every request the simulator can count
maps to a kind of bench/coverage.PEER_KEEPS, a synthetic tally splits as expected, and
anything unmapped or unaccounted fails loudly. Fast (no simulator process):
`.venv/bin/pytest -p no:cacheprovider bench/test_by_kind.py`."""

from __future__ import annotations

import json
from functools import cache

import pytest

from bench.by_kind import (
    ENDPOINT_KIND,
    GRAPHQL_KIND,
    Count,
    UnmappedRequests,
    by_kind,
    ghvault_only,
    graphql_kind,
    like_for_like,
)
from bench.coverage import COUNTED, KINDS, PEER_KEEPS, PEER_KINDS, peer_counts


@cache
def schema():
    from tests.github_sim.graphql_api import load_schema
    from tests.github_sim.server import SCHEMA

    return load_schema(SCHEMA)


def reads(query: str) -> str:
    from tests.github_sim.graphql_reads import reads as name

    return name(schema(), json.dumps({"query": query, "variables": {}}).encode())


def test_every_route_the_simulator_serves_maps_to_a_known_kind():
    import tests.github_sim.server  # noqa: F401  (registers every route)
    from tests.github_sim.routing import ROUTES

    assert {f"{r.method} {r.template}" for r in ROUTES} == set(ENDPOINT_KIND)
    assert set(ENDPOINT_KIND.values()) | set(GRAPHQL_KIND.values()) <= set(PEER_KEEPS)


def test_peer_keeps_names_every_contract_kind_and_counted_kind():
    from ghvault.contract import KINDS as CONTRACT_KINDS

    assert set(CONTRACT_KINDS) <= set(PEER_KEEPS)
    assert set(COUNTED.values()) <= set(PEER_KEEPS)
    # derived, not restated: the peer's counted kinds are those of kinds it keeps
    assert set(PEER_KINDS) == {k for k in KINDS if PEER_KEEPS[COUNTED[k]]}
    assert {"discussions", "discussion_comments"} <= set(PEER_KINDS)
    assert not {"projects", "attachments", "rulesets"} & set(PEER_KINDS)


def test_each_graphql_query_of_either_tool_maps_to_its_kind():
    from ghvault.collect import discussions, projects, reviews
    from github_backup import github_backup as peer
    from github_backup import graphql_queries as peer_queries

    expected = {reviews.QUERY: "reviews", discussions.LIST: "discussions",
                discussions.COMMENTS: "discussions", discussions.REPLIES: "discussions",
                projects.LIST: "projects", projects.ITEMS: "projects",
                peer.DISCUSSION_LIST_QUERY: "discussions",
                peer.DISCUSSION_DETAIL_QUERY: "discussions",
                peer.DISCUSSION_REPLIES_QUERY: "discussions",
                peer_queries.ISSUE_CROSS_REFERENCE_COUNT_QUERY: "events",
                peer_queries.PULL_CROSS_REFERENCE_COUNT_QUERY: "reviews"}
    for query, kind in expected.items():
        assert graphql_kind(reads(query)) == kind, reads(query)
    assert reads(reviews.QUERY) == "Repository.pullRequests"
    assert reads(discussions.LIST) == \
        "Repository.discussionCategories,Repository.discussions"
    assert reads("query { viewer { login } }") == "Query.viewer"
    assert reads("not graphql {") == "invalid" and graphql_kind("invalid") is None


def test_a_query_reading_two_kinds_is_not_mapped():
    assert graphql_kind("Repository.pullRequests,Repository.discussions") is None


def stats(by_endpoint: dict, graphql: dict, charged: dict, points: dict) -> dict:
    return {"by_endpoint": by_endpoint, "graphql_by_query": graphql,
            "charged_by_endpoint": charged, "graphql_cost_by_query": points,
            "requests_total": sum(sum(s.values()) for s in by_endpoint.values()),
            "charged": sum(charged.values()) + sum(points.values())}


ISSUES = "GET /repos/{owner}/{repo}/issues"
RULESETS = "GET /repos/{owner}/{repo}/rulesets"


def synthetic() -> dict:
    return stats(
        {"GET /user": {"200": 1}, ISSUES: {"200": 3, "304": 2}, RULESETS: {"200": 4},
         "GET /repos/{owner}/{repo}/rulesets/{ruleset_id}": {"200": 6},
         "GET /repos/{owner}/{repo}": {"200": 2}, "POST /graphql": {"200": 7}},
        {"Repository.pullRequests": {"200": 5}, "ProjectV2Owner.projectsV2": {"200": 2}},
        {"GET /user": 1, ISSUES: 3, RULESETS: 4,
         "GET /repos/{owner}/{repo}/rulesets/{ruleset_id}": 6, "GET /repos/{owner}/{repo}": 2},
        {"Repository.pullRequests": 5, "ProjectV2Owner.projectsV2": 6})


def test_like_for_like_of_a_synthetic_tally():
    counts = by_kind(synthetic())
    assert counts == {"owner": Count(1, 1), "issues": Count(5, 3), "rulesets": Count(10, 10),
                      "settings": Count(2, 2), "reviews": Count(5, 5), "projects": Count(2, 6)}
    # owner + issues (304s are requests too) + reviews
    assert like_for_like(counts) == Count(11, 9)
    assert ghvault_only(counts) == {"projects": Count(2, 6), "settings": Count(2, 2),
                                    "rulesets": Count(10, 10)}
    assert list(ghvault_only(counts)) == [k for k in PEER_KEEPS if k in
                                          ("projects", "settings", "rulesets")]


@pytest.mark.parametrize("change, named", [
    (lambda s: s["by_endpoint"].update({"GET ?": {"404": 1}}), "GET ?"),
    (lambda s: s["graphql_by_query"].update({"Repository.stargazers": {"200": 1}}),
     "POST /graphql reading Repository.stargazers"),
])
def test_a_request_the_mapping_does_not_know_fails_loudly(change, named):
    tally = synthetic()
    change(tally)
    with pytest.raises(UnmappedRequests, match="maps no kind for") as e:
        by_kind(tally)
    assert named in str(e.value)


def test_requests_missing_from_the_breakdown_fail_loudly():
    tally = synthetic()
    tally["graphql_by_query"].pop("ProjectV2Owner.projectsV2")  # POST /graphql says 7
    with pytest.raises(UnmappedRequests, match="add up to 23 requests"):
        by_kind({**tally, "requests_total": 25})


def test_the_peers_discussions_are_counted_with_their_replies(tmp_path):
    repo = tmp_path / "repositories" / "r"
    (repo / "repository").mkdir(parents=True)
    (repo / "discussions").mkdir()
    (repo / "discussions" / "1.json").write_text(json.dumps({"comment_data": [
        {"reply_data": [{}, {}]}, {"reply_data": []}, {}]}))
    (repo / "discussions" / "2.json").write_text(json.dumps({"comment_data": []}))
    counts = peer_counts(tmp_path)
    assert (counts["repos"], counts["discussions"], counts["discussion_comments"]) == (1, 2, 5)
