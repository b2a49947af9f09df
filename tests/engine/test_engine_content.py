"""Discussions, projects (v2) and attachments: `ghvault run` against the simulator.

Counts equal the simulator's ground truth for the user and the organisation; every
attachment is stored once, by its SHA-256, listed in the index and verified; the token never
reaches the storage hosts; a second month takes unchanged attachments from the state
without downloading them; a token without read:project records projects as skipped, naming
the scope, and the run still succeeds; GraphQL points are accounted as GitHub charges them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile

import pytest
import requests

from tests.conftest import TOKEN
from tests.engine.helpers import GHVAULT, run_ghvault

KINDS = ("discussions", "discussion_comments", "projects", "project_items", "attachments")


def backup(gh, moto, tmp_path, role: str, *extra: str) -> tuple[dict, dict, zipfile.ZipFile]:
    """(summary, simulator stats, archive) of one run of `role` into a file."""
    login = gh.sim.world.owners[role]
    gh.reset()
    dest = tmp_path / f"{role}-{len(list(tmp_path.glob('*.zip')))}.zip"
    proc = run_ghvault(gh, moto, "--owner", login, "--month", "2026-10", "--dest",
                       f"file://{dest}", *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert TOKEN not in proc.stdout + proc.stderr
    return json.loads(proc.stdout.splitlines()[-1]), gh.stats(), zipfile.ZipFile(dest)


@pytest.fixture(scope="module")
def firsts(gh, moto_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("content")
    return {role: backup(gh, moto_server, tmp, role) for role in ("user", "org")}


@pytest.mark.parametrize("role", ["user", "org"])
def test_new_kinds_equal_the_ground_truth(firsts, gh, role):
    summary, _, z = firsts[role]
    truth = gh.sim.world.counts()[role]
    for kind in KINDS:
        assert truth[kind] > 0, kind
        assert summary["counts"][kind] == truth[kind], kind
    names = z.namelist()
    lines = sum(len(z.read(n).splitlines()) for n in names if n.endswith("/discussions.jsonl"))
    assert lines == truth["discussions"]
    replies = [json.loads(x) for n in names if n.endswith("/discussion_comments.jsonl")
               for x in z.read(n).splitlines()]
    assert any(r["reply_to"] for r in replies) and any(r["reply_to"] is None for r in replies)
    assert all(r["reactionGroups"] for r in replies if r["reply_to"] is None)
    projects = [json.loads(x) for x in z.read("account/projects.jsonl").splitlines()]
    assert all(p["fields"]["nodes"] and p["views"]["nodes"] for p in projects)
    assert not summary["skipped"]


@pytest.mark.parametrize("role", ["user", "org"])
def test_attachments_are_stored_once_by_content_hash(firsts, gh, role):
    _, stats, z = firsts[role]
    index = json.loads(z.read("attachments/index.json"))
    content = gh.sim.world.content
    login = gh.sim.world.owners[role]
    keys = {k for k, a in content.attachments.items() if a.repo.startswith(login + "/")}
    assert {urlpath(x["url"]) for x in index} == {urlpath(k) for k in keys}
    assert all("?" not in x["url"] for x in index)  # the signed query is not kept
    for x in index:
        data = z.read(x["path"])
        assert hashlib.sha256(data).hexdigest() == x["sha256"] and len(data) == x["size"]
        assert data == content.attachments[original(content, x["url"])].data
    blobs = [n for n in z.namelist() if n.startswith("attachments/") and "index" not in n]
    assert len(blobs) == len({x["sha256"] for x in index})
    # one download each, although one of them is named in two bodies (and more views)
    assert stats["attachment_downloads"] == len(index)
    assert stats["attachment_token_sent"] == 0  # never to the *.githubusercontent.com hosts
    # the web origin's private attachments needed the token, and got it
    assert stats["attachment_requests"] == sum("/user-attachments/" in x["url"] for x in index)


def urlpath(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1]


def original(content, url: str) -> str:
    return next(k for k in content.attachments if urlpath(k) == urlpath(url))


def test_graphql_points_are_accounted_as_charged(firsts):
    for role in ("user", "org"):
        summary, stats, z = firsts[role]
        api = json.loads(z.read("MANIFEST.json"))["api"]
        assert api["graphql_requests"] == stats["graphql_requests"]
        assert api["graphql_cost"] == stats["graphql_cost"]
        assert summary["api_requests"] == stats["requests_total"]


def test_verify_checks_attachments_by_their_hash(firsts, tmp_path):
    _, _, z = firsts["user"]
    src = tmp_path / "bad.zip"
    victim = next(n for n in z.namelist() if n.startswith("attachments/") and "index" not in n)
    with zipfile.ZipFile(src, "w") as out:
        for info in z.infolist():
            data = z.read(info)
            out.writestr(info, data[:-1] + bytes([data[-1] ^ 1]) if info.filename == victim
                         else data)
    proc = subprocess.run([GHVAULT, "verify", str(src)], capture_output=True, text=True)
    assert proc.returncode == 8, proc.stderr
    assert victim in proc.stdout + proc.stderr


def test_second_month_reuses_attachments_from_the_state(gh, moto_server, tmp_path):
    state = f"file://{tmp_path}/state"
    first, st1, _ = backup(gh, moto_server, tmp_path, "user", "--state", state)
    assert st1["attachment_downloads"] == first["counts"]["attachments"]
    requests.post(f"{gh.root}/_sim/mutate", verify=str(gh.ca))
    second, st2, z = backup(gh, moto_server, tmp_path, "user", "--state", state)
    assert second["counts"]["attachments"] == first["counts"]["attachments"]
    assert st2["attachment_downloads"] == 0 and st2["attachment_requests"] == 0
    index = json.loads(z.read("attachments/index.json"))
    assert all(z.read(x["path"]) for x in index)
    # unchanged discussions and projects reuse last month's comments and items: only the
    # lists are asked again (one per repository with discussions, one for the projects)
    c = gh.sim.world.content
    login = gh.sim.world.owners["user"]
    lists = sum(1 for r in gh.sim.world.repos_of(login) if c.discussions.get(r.full_name)) + 1
    assert lists <= st2["graphql_requests"] <= lists + reviews_pages(gh.sim.world, login)
    assert st2["graphql_requests"] < st1["graphql_requests"] - lists
    assert second["counts"]["project_items"] == first["counts"]["project_items"]
    assert second["counts"]["discussion_comments"] == first["counts"]["discussion_comments"]


def reviews_pages(world, login: str) -> int:
    """At most the GraphQL pages of reviews a second month asks for (repositories whose
    pull request list changed; at most every repository with pull requests)."""
    return sum(-(-len(r.pulls) // 100) for r in world.repos_of(login) if r.pulls)


def test_a_token_without_read_project_skips_projects_naming_the_scope(gh, moto_server,
                                                                         tmp_path):
    gh.sim.scopes[TOKEN] = frozenset({"repo", "read:org", "gist", "read:user"})
    try:
        summary, _, z = backup(gh, moto_server, tmp_path, "org")
    finally:
        gh.sim.scopes.pop(TOKEN)
    assert "projects" not in summary["counts"]
    assert "account/projects.jsonl" not in z.namelist()
    [skip] = summary["skipped"]
    assert skip["item"] == "projects" and "read:project" in skip["reason"]
    assert summary["counts"]["discussions"] == gh.sim.world.counts()["org"]["discussions"]
