"""The simulator's discussions, projects (v2) and attachment hosts: the engine's queries
validate against GitHub's schema and return the ground truth at the documented cost; a token
without read:project gets GitHub's INSUFFICIENT_SCOPES; attachments are served as GitHub's
hosts serve them (the web origin wants access to a private repository, storage refuses any
Authorization header, a private image wants its signed jwt)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from ghvault.collect import discussions, projects

from tests.github_sim import generate
from tests.github_sim.graphql_api import GraphQLEndpoint
from tests.github_sim.model_content import IMAGES, PRIVATE_IMAGES, WEB

SCHEMA = Path(__file__).resolve().parents[2] / "node_modules/@octokit/graphql-schema/schema.json"


@pytest.fixture(scope="module")
def world():
    return generate.load("tiny", 7)[0]


@pytest.fixture(scope="module")
def ep(world) -> GraphQLEndpoint:
    return GraphQLEndpoint(lambda: world, SCHEMA)


def run(ep, query: str, variables: dict, scopes=None) -> tuple[dict, int]:
    status, answer, cost = ep.execute(json.dumps({"query": query, "variables": variables})
                                      .encode(), "hubber", lambda r: True, scopes=scopes)
    assert status == 200
    return answer, cost


def test_discussion_queries_return_the_ground_truth_at_their_cost(ep, world):
    assert ep.cost(discussions.LIST, {"first": True})[0] == 2
    assert ep.cost(discussions.COMMENTS)[0] == 2
    assert ep.cost(discussions.REPLIES)[0] == 1
    for full, truth in world.content.discussions.items():
        owner, name = full.split("/")
        answer, _ = run(ep, discussions.LIST, {"owner": owner, "name": name, "after": None,
                                               "first": True})
        assert "errors" not in answer, answer["errors"]
        repo = answer["data"]["repository"]
        assert len(repo["discussionCategories"]["nodes"]) == len(world.content.categories[full])
        nodes = repo["discussions"]["nodes"]
        ordered = sorted(truth, key=lambda x: (x.created_at, x.id))  # orderBy CREATED_AT
        assert [d["number"] for d in nodes] == [d.number for d in ordered]
        for d, m in zip(nodes, ordered, strict=True):
            assert d["comments"]["totalCount"] == len(m.comments)
            assert len(d["reactionGroups"]) == 8
            assert {g["content"]: g["reactors"]["totalCount"] for g in d["reactionGroups"]
                    if g["reactors"]["totalCount"]} == m.reactions
            if not d["comments"]["totalCount"]:
                continue
            got, _ = run(ep, discussions.COMMENTS, {"id": d["id"], "after": None})
            assert "errors" not in got, got["errors"]
            comments = got["data"]["node"]["comments"]["nodes"]
            assert [c["databaseId"] for c in comments] == [c.id for c in m.comments]
            assert [len(c["replies"]["nodes"]) for c in comments] == [
                len(c.replies) for c in m.comments]
            assert sum(c["isAnswer"] for c in comments) == (m.answer_id is not None)
            first = comments[0]
            more, _ = run(ep, discussions.REPLIES, {"id": first["id"], "after": None})
            assert len(more["data"]["node"]["replies"]["nodes"]) == len(m.comments[0].replies)


@pytest.mark.parametrize("login", ["hubber", "hubworks"])
def test_project_queries_return_fields_views_and_items(ep, world, login):
    answer, cost = run(ep, projects.LIST, {"login": login, "after": None})
    assert "errors" not in answer, answer["errors"]
    assert cost == 3 and ep.cost(projects.ITEMS)[0] == 1
    nodes = answer["data"]["owner"]["projectsV2"]["nodes"]
    truth = world.content.projects[login]
    assert [p["number"] for p in nodes] == [p.number for p in truth]
    for p, model in zip(nodes, truth, strict=True):
        assert [f["name"] for f in p["fields"]["nodes"]] == [f.name for f in model.fields]
        assert len(p["views"]["nodes"]) == len(model.views)
        items, _ = run(ep, projects.ITEMS, {"id": p["id"], "after": None})
        assert "errors" not in items, items["errors"]
        got = items["data"]["node"]["items"]["nodes"]
        assert [i["type"] for i in got] == [i.kind for i in model.items]
        for i, m in zip(got, model.items, strict=True):
            assert len(i["fieldValues"]["nodes"]) == len(m.values)
            assert (i["content"].get("number") == m.number) if m.number else i["content"]["title"]


def test_projects_want_the_read_project_scope(ep):
    answer, _ = run(ep, projects.LIST, {"login": "hubworks", "after": None},
                    scopes=frozenset({"repo", "read:org"}))
    [err] = answer["errors"]
    assert err["type"] == "INSUFFICIENT_SCOPES" and "['read:project']" in err["message"]
    answer, _ = run(ep, projects.LIST, {"login": "hubworks", "after": None},
                    scopes=frozenset({"repo", "read:project"}))
    assert "errors" not in answer


def test_reply_reactions_would_cost_a_hundred_points(ep):
    """Why the engine leaves reactions of replies out (GitHub's arithmetic)."""
    heavy = discussions.COMMENTS.replace("nodes { id databaseId body createdAt updatedAt url "
                                         "upvoteCount authorAssociation author { login } }",
                                         "nodes { reactionGroups { reactors { totalCount } } }")
    assert heavy != discussions.COMMENTS and ep.cost(heavy)[0] > 100


def test_every_style_of_attachment_in_every_kind_of_body(world):
    c = world.content
    for login in world.owners.values():
        urls = [a.url for a in c.attachments.values() if a.repo.startswith(login + "/")]
        for prefix in (f"{WEB}user-attachments/assets/", f"{WEB}user-attachments/files/",
                       IMAGES, PRIVATE_IMAGES):
            assert any(u.startswith(prefix) for u in urls), (login, prefix)
        assert any(world.repos[a.repo].private for a in c.attachments.values()
                   if a.repo.startswith(login + "/"))
    holders = {type(o).__name__ for r in world.repos.values() for o in
               [*r.issues, *r.releases, *(x for i in r.issues for x in i.comments),
                *(v for i in r.issues if i.pull for v in i.pull.reviews),
                *c.discussions.get(r.full_name, [])]
               if any(a.url in o.body for a in c.attachments.values())}
    assert {"Issue", "Comment", "Review", "Release", "Discussion"} <= holders


def test_attachment_hosts_answer_as_githubs(sim):
    world, ca = sim.sim.world, str(sim.ca)
    auth = {"Authorization": f"token {sim.token}"}
    text = "".join(requests.get(f"{sim.api}/repos/{r.full_name}/issues",
                                params={"state": "all", "per_page": 100}, headers=auth,
                                verify=ca).text for r in world.repos_of("hubworks"))
    text += "".join(requests.get(f"{sim.api}/repos/{r.full_name}/releases", headers=auth,
                                 verify=ca).text for r in world.repos_of("hubworks"))
    assert "github.com/user-attachments" not in text and "githubusercontent.com" not in text
    found = set(re.findall(r"https://[^/\s\"]+/(?:user-attachments/[^\s)\"\\]+|\d+/\d+-[\w-]+"
                           r"\.png(?:\?jwt=[\w=-]+)?)", text))
    web = [u for u in found if "/user-attachments/" in u]
    images = [u for u in found if "/user-attachments/" not in u]
    assert web and images and all(u.startswith(sim.root) for u in web)
    assert all(u.startswith(sim.root.replace("127.0.0.1", "localhost")) for u in images)
    before = sim.stats()["attachment_token_sent"]
    for u in images:
        assert requests.get(u, verify=ca).status_code == 200
        assert requests.get(u, headers=auth, verify=ca).status_code == 400
        if "?jwt=" in u:
            assert requests.get(u.split("?")[0], verify=ca).status_code == 403
    assert sim.stats()["attachment_token_sent"] == before + len(images)
    private = [u for u in web if any(
        a.repo and world.repos[a.repo].private and a.url.split("user-attachments/")[1] in u
        for a in world.content.attachments.values() if "user-attachments/" in a.url)]
    assert private
    for u in private:
        assert requests.get(u, verify=ca).status_code == 404
        got = requests.get(u, headers=auth, verify=ca)  # requests drops it on the redirect
        assert got.status_code == 200 and got.content
