"""The simulator's request accounting by endpoint and by GraphQL query adds up exactly: the
benchmark's like-for-like request count (bench/by_kind.py) is built from it."""

from __future__ import annotations

from ghvault.collect import discussions, reviews


def test_requests_and_charges_are_counted_by_endpoint_and_graphql_query(fresh_sim):
    s = fresh_sim.session(fresh_sim.token)
    owner = fresh_sim.sim.world.owners["user"]
    repo = next(r for r in fresh_sim.sim.world.repos_of(owner) if r.pulls).name
    fresh_sim.reset()
    assert s.get(f"{fresh_sim.api}/user").status_code == 200
    assert s.get(f"{fresh_sim.api}/rate_limit").status_code == 200  # free
    assert s.get(f"{fresh_sim.api}/repos/{owner}/{repo}/issues").status_code == 200
    for query, variables in ((reviews.QUERY, {"owner": owner, "name": repo}),
                             (reviews.QUERY, {"owner": owner, "name": repo}),
                             (discussions.LIST, {"owner": owner, "name": repo, "first": True})):
        answer = s.post(f"{fresh_sim.root}/graphql",
                        json={"query": query, "variables": variables})
        assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    s.post(f"{fresh_sim.root}/graphql", data=b"{not json")  # refused: still one request
    stats = fresh_sim.stats()
    assert stats["graphql_by_query"] == {
        "Repository.pullRequests": {"200": 2},
        "Repository.discussionCategories,Repository.discussions": {"200": 1},
        "invalid": {"400": 1}}
    assert sum(stats["by_endpoint"]["POST /graphql"].values()) == 4
    assert stats["graphql_cost_by_query"] == {
        "Repository.pullRequests": 2,
        "Repository.discussionCategories,Repository.discussions": 2}
    assert stats["charged_by_endpoint"] == {"GET /user": 1,
                                            "GET /repos/{owner}/{repo}/issues": 1}
    assert stats["charged"] == 2 + 2 + 2
    assert stats["requests_total"] == 3 + 4
