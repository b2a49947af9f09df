"""The simulator's JSON shapes against GitHub's OpenAPI description.

Every renderer in tests/github_sim/shapes.py is validated (strictly: no undocumented
fields) against the response schema of the operation that serves it, over a small
hand-built world that has one of everything; a few semantics (URLs, associations,
forks, pull requests) are asserted directly.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.github_sim import openapi as oa
from tests.github_sim import shapes as s
from tests.github_sim.model import (
    Account,
    Comment,
    CommitComment,
    Gist,
    Issue,
    IssueEvent,
    Label,
    Milestone,
    PullInfo,
    Release,
    ReleaseAsset,
    Repo,
    Review,
    ReviewComment,
    Team,
    World,
)
from tests.github_sim.urls import Urls

ROOT = "https://127.0.0.1:8443"
U = Urls(ROOT, f"{ROOT}/api/v3")
# Fields GitHub sends that the description does not list (see shapes for each).
UNDOCUMENTED = {"state_reason", "code_scanning_upload"}
SHA = [f"{n:040x}" for n in range(0xA1, 0xA9)]


def t(day: int, hour: int = 10) -> str:
    return f"2025-02-{day:02d}T{hour:02d}:00:00Z"


def _repo(owner: str, name: str, rid: int, **kw: Any) -> Repo:
    base = dict(description=f"{name} things", private=False, visibility="public", fork=False,
                archived=False, has_issues=True, has_wiki=True, wiki_exists=False,
                has_lfs=False, empty=False, language="Python", topics=["backup"],
                default_branch="main", created_at=t(1), updated_at=t(9), pushed_at=t(8),
                license="MIT", size_kb=120, stargazers=3, watchers=2, forks_count=1)
    base.update(kw)
    return Repo(id=rid, owner=owner, name=name, **base)


def build_world() -> World:
    octo = Account("octo", 1001, "User", "Octo Cat", t(1), t(2), bio="Backs up things.",
                   company="@acme", location="Lisbon", email="octo@example.com",
                   blog="https://octo.example.com", followers=["bob"], following=["bob"],
                   starred=[("upstream/lib", t(3))], watching=["octo/app"])
    bob = Account("bob", 1002, "User", "Bob", t(1), t(1))
    upstream = Account("upstream", 1003, "User", "", t(1), t(1))
    acme = Account("acme", 2001, "Organization", "Acme", t(1), t(2), bio="We make widgets.",
                   members=["bob", "octo"], admins=["octo"],
                   teams=[Team(3001, "Core", "core", "Maintainers", ["bob", "octo"],
                               ["widget"])])
    lib = _repo("upstream", "lib", 5001, forks_count=4)
    fork = _repo("octo", "lib", 5002, fork=True, parent="upstream/lib", license=None,
                 has_wiki=False)
    widget = _repo("acme", "widget", 5004, private=True, visibility="private",
                   language="Go", license="Apache-2.0")
    empty = _repo("octo", "empty", 5005, empty=True, pushed_at=None, language=None,
                  license=None, topics=[], size_kb=0)
    app = _repo("octo", "app", 5003, wiki_exists=True, commit_shas=SHA[:4])
    app.labels = [Label(6001, "bug", "d73a4a", "Something isn't working", default=True),
                  Label(6002, "good first issue", "7057ff", "")]
    app.milestones = [
        Milestone(6101, 1, "v1.0", "First", "closed", "octo", t(2), t(6), t(6), t(20)),
        Milestone(6102, 2, "v2.0", "", "open", "octo", t(3), t(3), None, None),
    ]
    issue = Issue(
        7001, 1, "Crash on start", "It crashes.", "bob", "closed", "completed", t(2), t(6),
        t(6), "octo", ["bug", "good first issue"], ["octo"], 1, False,
        comments=[Comment(7101, "octo", "Looking.", t(3), t(3)),
                  Comment(7102, "upstream", "Same here.", t(4), t(5))],
        events=[IssueEvent(7201, "bob", "labeled", t(2, 11), label="bug"),
                IssueEvent(7202, "octo", "assigned", t(2, 12), assignee="octo"),
                IssueEvent(7203, "octo", "milestoned", t(2, 13), milestone="v1.0"),
                IssueEvent(7204, "bob", "renamed", t(2, 14), rename_from="Crash",
                           rename_to="Crash on start"),
                IssueEvent(7205, "octo", "referenced", t(5), commit_id=SHA[2]),
                IssueEvent(7206, "octo", "closed", t(6), commit_id=SHA[2]),
                IssueEvent(7207, "octo", "locked", t(6, 12)),
                IssueEvent(7208, "octo", "unlabeled", t(6, 13), label="good first issue")])
    pull = Issue(
        7002, 2, "Fix crash", "", "bob", "closed", None, t(4), t(7), t(7), "octo", ["bug"],
        [], 2, False,
        comments=[Comment(7103, "bob", "Ready for review.", t(4, 12), t(4, 12))],
        events=[IssueEvent(7209, "bob", "review_requested", t(4, 13), assignee="octo"),
                IssueEvent(7210, "octo", "merged", t(7), commit_id=SHA[3]),
                IssueEvent(7211, "octo", "closed", t(7), commit_id=SHA[3]),
                IssueEvent(7212, "bob", "head_ref_deleted", t(7, 11))],
        pull=PullInfo("fix-crash", SHA[5], "main", SHA[1], [SHA[4], SHA[5]], True, t(7),
                      "octo", SHA[3], False, 12, 3, 2,
                      reviews=[Review(7301, "octo", "Looks good", "APPROVED", t(5), SHA[5]),
                               Review(7302, "upstream", "", "COMMENTED", t(5, 12), SHA[5])],
                      review_comments=[
                          ReviewComment(7401, 7302, "upstream", "Why?", "src/app.py", 12,
                                        SHA[5], t(5, 12), t(5, 12)),
                          ReviewComment(7402, 7302, "bob", "Because.", "src/app.py", 12,
                                        SHA[5], t(5, 13), t(5, 13), in_reply_to_id=7401)]))
    open_issue = Issue(7003, 3, "Docs", "", "octo", "open", None, t(8), t(8), None, None, [],
                       [], None, False)
    draft = Issue(7004, 4, "WIP: speed", "Faster.", "octo", "open", None, t(8), t(9), None,
                  None, [], ["bob", "octo"], 2, True,
                  pull=PullInfo("speed", SHA[7], "main", SHA[3], [SHA[6], SHA[7]], False,
                                None, None, None, True, 40, 1, 3))
    app.issues = [issue, pull, open_issue, draft]
    app.releases = [
        Release(8001, "v1.0", "main", "App 1.0", "Notes.", False, False, "octo", t(7), t(7),
                assets=[ReleaseAsset(8101, "app-1.0.tar.gz", "application/gzip",
                                     b"\x1f\x8b" + b"x" * 100, "octo", t(7), 12)]),
        Release(8002, "v2.0", "main", "", "", True, False, "octo", t(9), None),
    ]
    app.commit_comments = [
        CommitComment(8201, "bob", "Nice.", SHA[0], None, None, t(3), t(3)),
        CommitComment(8202, "octo", "Typo here.", SHA[1], "README.md", 3, t(4), t(4)),
    ]
    widget.issues = [Issue(7005, 1, "Widget broken", "Broken.", "bob", "open", None, t(5),
                           t(5), None, None, [], [], None, False)]
    gists = {
        "aa" * 16: Gist("aa" * 16, "octo", "Setup", True,
                        {"setup.sh": "#!/bin/sh\necho hi\n", "README.md": "# Setup\n",
                         "notes": "plain"}, t(3), t(4), comments=2),
        "bb" * 16: Gist("bb" * 16, "octo", "", False, {"x.py": "print(1)\n"}, t(5), t(5)),
    }
    accounts = {a.login: a for a in (octo, bob, upstream, acme)}
    repos = {r.full_name: r for r in (lib, fork, app, widget, empty)}
    return World(seed=1, size="hand", owners={"user": "octo", "org": "acme"},
                 accounts=accounts, repos=repos, gists=gists)


@pytest.fixture(scope="session")
def spec() -> oa.Spec:
    return oa.load_spec()


@pytest.fixture(scope="module")
def w() -> World:
    return build_world()


def app_of(w: World) -> Repo:
    return w.repos["octo/app"]


def issue_of(w: World, number: int) -> Issue:
    return next(i for i in app_of(w).issues if i.number == number)


# every renderer against its operation ------------------------------------------------

Case = tuple[str, Callable[[World], Any], str]
J = "application/json"
CASES: dict[str, Case] = {
    "private-user": ("/user", lambda w: s.render_private_user(w, U, "octo"), J),
    "public-user": ("/users/{username}", lambda w: s.render_public_user(w, U, "bob"), J),
    "public-user-org": ("/users/{username}", lambda w: s.render_public_user(w, U, "acme"), J),
    "followers": ("/users/{username}/followers",
                  lambda w: [s.render_simple_user(w, U, x) for x in ("bob", "ghost", "gone")],
                  J),
    "org-full": ("/orgs/{org}", lambda w: s.render_org_full(w, U, "acme"), J),
    "org-full-owner": ("/orgs/{org}", lambda w: s.render_org_full(w, U, "acme", "octo"), J),
    "user-orgs": ("/user/orgs", lambda w: [s.render_org_simple(w, U, "acme")], J),
    "org-members": ("/orgs/{org}/members",
                    lambda w: [s.render_simple_user(w, U, m) for m in w.accounts["acme"].members],
                    J),
    "teams": ("/orgs/{org}/teams",
              lambda w: [s.render_team(w, U, "acme", x) for x in w.accounts["acme"].teams], J),
    "team-members": ("/orgs/{org}/teams/{team_slug}/members",
                     lambda w: [s.render_simple_user(w, U, "bob")], J),
    "user-repos": ("/user/repos", lambda w: [s.render_minimal_repo(w, U, r, viewer="octo")
                                             for r in w.repos.values()], J),
    "users-repos": ("/users/{username}/repos",
                    lambda w: [s.render_minimal_repo(w, U, r) for r in w.repos.values()], J),
    "org-repos": ("/orgs/{org}/repos",
                  lambda w: [s.render_minimal_repo(w, U, w.repos["acme/widget"], "bob")], J),
    "team-repos": ("/orgs/{org}/teams/{team_slug}/repos",
                   lambda w: [s.render_minimal_repo(w, U, w.repos["acme/widget"], "bob")], J),
    "starred": ("/users/{username}/starred",
                lambda w: [s.render_minimal_repo(w, U, w.repos["upstream/lib"], "octo")], J),
    "user-starred": ("/user/starred",
                     lambda w: [s.render_minimal_repo(w, U, w.repos["upstream/lib"], "octo")], J),
    "starred-star-json": ("/user/starred", lambda w: [s.render_starred_repo(
        w, U, w.repos["upstream/lib"], t(3), "octo")], "application/vnd.github.v3.star+json"),
    "users-starred-star-json": ("/users/{username}/starred", lambda w: [s.render_starred_repo(
        w, U, w.repos["upstream/lib"], t(3))], J),
    "subscriptions": ("/user/subscriptions",
                      lambda w: [s.render_minimal_repo(w, U, app_of(w), "octo")], J),
    **{f"full-repo-{name.replace('/', '-')}-{who or 'anon'}": (
        "/repos/{owner}/{repo}",
        lambda w, name=name, who=who: s.render_full_repo(w, U, w.repos[name], viewer=who), J)
       for name in ("upstream/lib", "octo/lib", "octo/app", "acme/widget", "octo/empty")
       for who in ("octo", "bob", None)},
    "labels": ("/repos/{owner}/{repo}/labels",
               lambda w: [s.render_label(w, U, app_of(w), x) for x in app_of(w).labels], J),
    "milestones": ("/repos/{owner}/{repo}/milestones", lambda w: [
        s.render_milestone(w, U, app_of(w), m) for m in app_of(w).milestones], J),
    "issues": ("/repos/{owner}/{repo}/issues", lambda w: [
        s.render_issue(w, U, r, i) for r in w.repos.values() for i in r.issues], J),
    **{f"issue-{n}": ("/repos/{owner}/{repo}/issues/{issue_number}",
                      lambda w, n=n: s.render_issue(w, U, app_of(w), issue_of(w, n), True), J)
       for n in (1, 2, 3, 4)},
    "issue-comments": ("/repos/{owner}/{repo}/issues/{issue_number}/comments", lambda w: [
        s.render_issue_comment(w, U, app_of(w), i, c) for i in app_of(w).issues
        for c in i.comments], J),
    "repo-issue-comments": ("/repos/{owner}/{repo}/issues/comments", lambda w: [
        s.render_issue_comment(w, U, app_of(w), i, c) for i in app_of(w).issues
        for c in i.comments], J),
    "repo-issue-events": ("/repos/{owner}/{repo}/issues/events", lambda w: [
        s.render_issue_event(w, U, app_of(w), i, e) for i in app_of(w).issues
        for e in i.events], J),
    "issue-events": ("/repos/{owner}/{repo}/issues/{issue_number}/events", lambda w: [
        s.render_issue_event_for_issue(w, U, app_of(w), i, e) for i in app_of(w).issues
        for e in i.events], J),
    **{f"timeline-{n}": ("/repos/{owner}/{repo}/issues/{issue_number}/timeline",
                         lambda w, n=n: list(timeline(w, issue_of(w, n))), J)
       for n in (1, 2, 4)},
    "pulls": ("/repos/{owner}/{repo}/pulls",
              lambda w: [s.render_pull_simple(w, U, app_of(w), i) for i in app_of(w).pulls], J),
    **{f"pull-{n}": ("/repos/{owner}/{repo}/pulls/{pull_number}",
                     lambda w, n=n: s.render_pull(w, U, app_of(w), issue_of(w, n)), J)
       for n in (2, 4)},
    "reviews": ("/repos/{owner}/{repo}/pulls/{pull_number}/reviews", lambda w: [
        s.render_review(w, U, app_of(w), issue_of(w, 2), v)
        for v in issue_of(w, 2).pull.reviews], J),
    "review-comments": ("/repos/{owner}/{repo}/pulls/{pull_number}/comments", lambda w: [
        s.render_review_comment(w, U, app_of(w), issue_of(w, 2), c)
        for c in issue_of(w, 2).pull.review_comments], J),
    "repo-review-comments": ("/repos/{owner}/{repo}/pulls/comments", lambda w: [
        s.render_review_comment(w, U, app_of(w), issue_of(w, 2), c)
        for c in issue_of(w, 2).pull.review_comments], J),
    "pull-commits": ("/repos/{owner}/{repo}/pulls/{pull_number}/commits", lambda w: [
        s.render_pull_commit(w, U, app_of(w), sha) for n in (2, 4)
        for sha in issue_of(w, n).pull.commits] + [s.render_pull_commit(
            w, U, app_of(w), SHA[4], {SHA[4]: ("Given message", "nobody-known", t(4))})], J),
    "releases": ("/repos/{owner}/{repo}/releases", lambda w: [
        s.render_release(w, U, app_of(w), x) for x in app_of(w).releases], J),
    "release": ("/repos/{owner}/{repo}/releases/{release_id}",
                lambda w: s.render_release(w, U, app_of(w), app_of(w).releases[0]), J),
    "release-assets": ("/repos/{owner}/{repo}/releases/{release_id}/assets", lambda w: [
        s.render_release_asset(w, U, app_of(w), app_of(w).releases[0], a)
        for a in app_of(w).releases[0].assets], J),
    "release-asset": ("/repos/{owner}/{repo}/releases/assets/{asset_id}",
                      lambda w: s.render_release_asset(w, U, app_of(w), app_of(w).releases[0],
                                                       app_of(w).releases[0].assets[0]), J),
    "commit-comments": ("/repos/{owner}/{repo}/comments", lambda w: [
        s.render_commit_comment(w, U, app_of(w), c) for c in app_of(w).commit_comments], J),
    "user-gists": ("/users/{username}/gists",
                   lambda w: [s.render_base_gist(w, U, g) for g in w.gists.values()], J),
    "gists": ("/gists", lambda w: [s.render_base_gist(w, U, g) for g in w.gists.values()], J),
    **{f"gist-{k}": ("/gists/{gist_id}",
                     lambda w, k=k: s.render_gist(w, U, list(w.gists.values())[k]), J)
       for k in (0, 1)},
    "rate-limit": ("/rate_limit", lambda w: s.render_rate_limit(
        5000, 4990, 10, 1_740_000_000, graphql=(5000, 4999, 1, 1_740_000_100)), J),
}


def timeline(w: World, i: Issue) -> Iterator[dict]:
    r = app_of(w)
    items: list = [("event", e.created_at, e) for e in i.events]
    items += [("comment", c.created_at, c) for c in i.comments]
    if i.pull:
        items += [("review", v.submitted_at, v) for v in i.pull.reviews]
        items += [("commit", i.created_at, sha) for sha in i.pull.commits]
    for kind, _, obj in sorted(items, key=lambda x: x[1]):
        yield s.render_timeline_item(w, U, r, i, kind, obj)


@pytest.mark.parametrize("case", sorted(CASES))
def test_renderer_matches_documented_schema(spec, w, case):
    path, render, content_type = CASES[case]
    body = render(w)
    assert body, "render something to validate"
    oa.validate_response(spec, path, "get", 200, body, content_type, strict=True,
                         allow_extra=UNDOCUMENTED)


def test_each_event_matches_its_own_schema(spec, w):
    """The spec's event anyOf accepts anything some alternative accepts: check each event
    against the schema of its kind too."""
    r = app_of(w)
    kinds = set()
    for i in r.issues:
        for e in i.events:
            body = s.render_issue_event_for_issue(w, U, r, i, e)
            oa.validate_component(spec, oa.event_schema(e.event), body, strict=True,
                                  allow_extra=UNDOCUMENTED)
            kinds.add(e.event)
        for item in timeline(w, i):
            oa.validate_component(spec, oa.event_schema(item["event"], timeline=True), item,
                                  strict=True, allow_extra=UNDOCUMENTED)
            kinds.add(item["event"])
    assert {"labeled", "unlabeled", "assigned", "milestoned", "renamed", "referenced",
            "closed", "locked", "merged", "review_requested", "commented", "reviewed",
            "committed"} <= kinds


# the validator itself ----------------------------------------------------------------

def test_nullable_and_discriminator_conversion():
    assert oa.to_json_schema({"type": "string", "nullable": True}) == {
        "type": ["string", "null"]}
    assert oa.to_json_schema({"type": "string", "enum": ["a"], "nullable": True}) == {
        "type": ["string", "null"], "enum": ["a", None]}
    wrapped = oa.to_json_schema({"nullable": True, "allOf": [{"$ref": "#/x"}]})
    assert wrapped == {"anyOf": [{"type": "null"}, {"allOf": [{"$ref": oa.BASE_URI + "#/x"}]}]}
    picked = oa.to_json_schema({"oneOf": [{"$ref": "#/a"}, {"$ref": "#/b"}], "discriminator": {
        "propertyName": "kind", "mapping": {"a": "#/a", "b": "#/b"}}})
    assert "oneOf" not in picked and picked["else"] == {
        "oneOf": [{"$ref": oa.BASE_URI + "#/a"}, {"$ref": oa.BASE_URI + "#/b"}]}


def test_validation_reports_every_error_readably(spec, w):
    body = s.render_issue(w, U, app_of(w), issue_of(w, 1))
    body.update(created_at="2025-02-01 10:00", locked=None, html_url="not a url")
    body["user"]["id"] = "1002"
    del body["node_id"]
    with pytest.raises(oa.SchemaMismatch) as err:
        oa.validate_response(spec, "/repos/{owner}/{repo}/issues/{issue_number}", "get", 200,
                             body)
    text = str(err.value)
    assert len(err.value.errors) == 5, text
    for needle in ("'node_id' is a required property", "$.created_at", "'date-time'",
                   "$.locked: None is not of type 'boolean'", "$.html_url", "$.user.id"):
        assert needle in text
    with pytest.raises(oa.SchemaMismatch, match=r"\$\.extra: property is not in the doc"):
        oa.validate_component(spec, "label", {**s.render_label(
            w, U, app_of(w), app_of(w).labels[0]), "extra": 1}, strict=True)


def test_event_lists_are_checked_per_kind(spec, w):
    """The timeline's anyOf has alternatives that accept almost anything; validate_response
    checks each item against its kind's own schema as well."""
    items = list(timeline(w, issue_of(w, 1)))
    labeled = next(x for x in items if x["event"] == "labeled")
    labeled["label"]["color"] = 5
    path = "/repos/{owner}/{repo}/issues/{issue_number}/timeline"
    assert not oa.schema_errors(spec, spec.response_schema(path, "get"), items)
    with pytest.raises(oa.SchemaMismatch, match=r"label\.color: 5 is not of type 'string'.*"
                       r"labeled-issue-event"):
        oa.validate_response(spec, path, "get", 200, items)


def test_discriminator_keeps_private_and_public_users_apart(spec, w):
    private = s.render_private_user(w, U, "octo")
    oa.validate_response(spec, "/user", "get", 200, private)
    with pytest.raises(oa.SchemaMismatch, match="two_factor_authentication"):
        oa.validate_response(spec, "/user", "get", 200, {**private, "user_view_type": "public"})


def test_find_template_prefers_literal_segments(spec):
    assert oa.find_template(spec, "/repos/a/b/issues/comments") == \
        "/repos/{owner}/{repo}/issues/comments"
    assert oa.find_template(spec, "/repos/a/b/issues/12/comments?page=2") == \
        "/repos/{owner}/{repo}/issues/{issue_number}/comments"
    assert oa.find_template(spec, "/repos/a/b/releases/latest") == \
        "/repos/{owner}/{repo}/releases/latest"
    with pytest.raises(KeyError):
        oa.find_template(spec, "/no/such/thing/at/all")


def test_spec_is_loaded_once():
    assert oa.load_spec() is oa.load_spec()
    assert "organization-full nullable contact fields" in oa.load_spec().corrections


# semantics ---------------------------------------------------------------------------

def _strings(obj: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v, key)
    elif isinstance(obj, str):
        yield key, obj


@pytest.mark.parametrize("api", [ROOT, f"{ROOT}/api/v3"])
def test_links_follow_the_request_prefix(w, api):
    u = Urls(ROOT, api)
    r = app_of(w)
    bodies = [s.render_full_repo(w, u, w.repos["octo/lib"], "octo"),
              s.render_pull(w, u, r, issue_of(w, 2)), s.render_issue(w, u, r, issue_of(w, 1)),
              s.render_release(w, u, r, r.releases[0]), s.render_gist(w, u, list(
                  w.gists.values())[0]), s.render_private_user(w, u, "octo")]
    for body in bodies:
        for key, value in _strings(body):
            if key == "url" or key.endswith("_url") and value.startswith("http"):
                assert value.startswith(ROOT), (key, value)
            if key == "url":
                assert value.startswith(api + "/"), (key, value)
            if key == "html_url":
                assert not value.startswith(f"{ROOT}/api/"), (key, value)


def test_repository_urls_and_fork_links(w):
    full = s.render_full_repo(w, U, w.repos["octo/lib"], viewer="octo")
    assert full["url"] == f"{U.api}/repos/octo/lib"
    assert full["html_url"] == f"{ROOT}/octo/lib"
    assert full["clone_url"] == f"{ROOT}/octo/lib.git"
    assert full["git_url"] == "git://127.0.0.1/octo/lib.git"
    assert full["ssh_url"] == "git@127.0.0.1:octo/lib.git"
    assert full["fork"] and full["parent"]["full_name"] == full["source"]["full_name"] == \
        "upstream/lib"
    assert full["network_count"] == 4 and full["permissions"]["admin"]
    assert "organization" not in full and full["license"] is None
    org = s.render_full_repo(w, U, w.repos["acme/widget"], viewer="bob")
    assert org["organization"]["login"] == "acme" and org["organization"]["type"] == \
        "Organization"
    assert org["permissions"] == {"admin": False, "maintain": False, "push": True,
                                  "triage": True, "pull": True}
    assert org["license"]["spdx_id"] == "Apache-2.0" and org["private"]
    assert "permissions" not in s.render_full_repo(w, U, app_of(w))
    empty = s.render_minimal_repo(w, U, w.repos["octo/empty"])
    assert empty["pushed_at"] == empty["created_at"] and empty["size"] == 0
    app = s.render_minimal_repo(w, U, app_of(w))
    assert app["open_issues_count"] == 2  # the open issue and the open draft pull request
    assert app["watchers_count"] == app["stargazers_count"] == 3


def test_issue_of_pull_request_points_at_the_pull(w):
    r = app_of(w)
    issue = s.render_issue(w, U, r, issue_of(w, 2))
    pull = s.render_pull(w, U, r, issue_of(w, 2))
    assert issue["pull_request"]["url"] == pull["url"] == f"{U.api}/repos/octo/app/pulls/2"
    assert issue["html_url"] == pull["html_url"] == f"{ROOT}/octo/app/pull/2"
    assert issue["pull_request"]["merged_at"] == pull["merged_at"] == t(7)
    assert issue["node_id"] == pull["node_id"] and issue["id"] != pull["id"]
    assert pull["merged"] and pull["merged_by"]["login"] == "octo"
    assert pull["commits"] == 2 and pull["review_comments"] == 2 and pull["comments"] == 1
    assert pull["head"]["sha"] == SHA[5] and pull["base"]["ref"] == "main"
    assert pull["head"]["label"] == "octo:fix-crash"
    plain = s.render_issue(w, U, r, issue_of(w, 1))
    assert "pull_request" not in plain and "closed_by" not in plain
    assert s.render_issue(w, U, r, issue_of(w, 1), detail=True)["closed_by"]["login"] == "octo"
    assert plain["labels"][1]["url"].endswith("/labels/good%20first%20issue")
    assert plain["milestone"]["closed_issues"] == 1 and plain["body"] == "It crashes."
    assert s.render_issue(w, U, r, issue_of(w, 3))["body"] is None
    draft = s.render_pull(w, U, r, issue_of(w, 4))
    assert draft["draft"] and draft["mergeable_state"] == "draft" and not draft["merged"]


def test_events_carry_their_payload(w):
    r = app_of(w)
    i = issue_of(w, 1)
    got = {e.event: s.render_issue_event(w, U, r, i, e) for e in i.events}
    assert got["labeled"]["label"] == {"name": "bug", "color": "d73a4a"}
    assert got["assigned"]["assignee"]["login"] == "octo"
    assert got["assigned"]["assigner"]["login"] == "octo"
    assert got["milestoned"]["milestone"] == {"title": "v1.0"}
    assert got["renamed"]["rename"] == {"from": "Crash", "to": "Crash on start"}
    assert got["referenced"]["commit_url"] == f"{U.api}/repos/octo/app/commits/{SHA[2]}"
    assert got["closed"]["issue"]["number"] == 1 and got["closed"]["state_reason"] == \
        "completed"
    assert got["closed"]["url"] == f"{U.api}/repos/octo/app/issues/events/7206"
    assert "issue" not in s.render_issue_event_for_issue(w, U, r, i, i.events[0])
    items = list(timeline(w, issue_of(w, 2)))
    reviewed = [x for x in items if x["event"] == "reviewed"]
    assert [x["state"] for x in reviewed] == ["approved", "commented"]
    assert reviewed[1]["body"] is None
    commits = [x for x in items if x["event"] == "committed"]
    assert [x["sha"] for x in commits] == [SHA[4], SHA[5]]
    assert commits[1]["parents"][0]["sha"] == SHA[4]


def test_author_association(w):
    r = app_of(w)
    assert s.author_association(w, r, "octo") == "OWNER"
    assert s.author_association(w, r, "bob") == "CONTRIBUTOR"  # merged pull request
    assert s.author_association(w, r, "upstream") == "NONE"
    assert s.author_association(w, w.repos["acme/widget"], "bob") == "MEMBER"
    comments = [s.render_issue_comment(w, U, r, issue_of(w, 1), c)
                for c in issue_of(w, 1).comments]
    assert [c["author_association"] for c in comments] == ["OWNER", "NONE"]
    assert comments[0]["html_url"] == f"{ROOT}/octo/app/issues/1#issuecomment-7101"


def test_reviews_and_review_comments(w):
    r = app_of(w)
    p = issue_of(w, 2)
    review = s.render_review(w, U, r, p, p.pull.reviews[0])
    assert review["state"] == "APPROVED" and review["commit_id"] == SHA[5]
    assert review["pull_request_url"] == f"{U.api}/repos/octo/app/pulls/2"
    first, reply = (s.render_review_comment(w, U, r, p, c) for c in p.pull.review_comments)
    assert "in_reply_to_id" not in first and reply["in_reply_to_id"] == first["id"]
    assert first["pull_request_review_id"] == 7302 and first["line"] == 12
    assert first["diff_hunk"].startswith("@@ ")
    commit = s.render_pull_commit(w, U, r, SHA[4])
    assert commit["commit"]["message"] == "Fix crash (1)" and commit["author"]["login"] == "bob"
    assert commit["parents"][0]["sha"] == SHA[1]  # the pull request's base
    given = s.render_pull_commit(w, U, r, SHA[4], {SHA[4]: ("Msg", "ghost-writer", t(3))})
    assert given["commit"]["message"] == "Msg" and given["author"] is None


def test_release_and_asset_urls(w):
    r = app_of(w)
    rel = s.render_release(w, U, r, r.releases[0])
    asset = rel["assets"][0]
    assert asset["url"] == f"{U.api}/repos/octo/app/releases/assets/8101"
    assert asset["browser_download_url"] == \
        f"{ROOT}/octo/app/releases/download/v1.0/app-1.0.tar.gz"
    assert asset["size"] == 102 and asset["digest"].startswith("sha256:")
    assert rel["upload_url"].startswith(f"{ROOT}/api/uploads/repos/octo/app/releases/8001/")
    draft = s.render_release(w, U, r, r.releases[1])
    assert draft["draft"] and draft["published_at"] is None and draft["assets"] == []


def test_gists(w):
    g = w.gists["aa" * 16]
    listed = s.render_base_gist(w, U, g)
    single = s.render_gist(w, U, g)
    assert listed["git_pull_url"] == listed["git_push_url"] == f"{ROOT}/gist/{g.id}.git"
    assert list(listed["files"]) == ["README.md", "notes", "setup.sh"]
    assert all("content" not in f for f in listed["files"].values())
    assert single["files"]["setup.sh"]["content"] == g.files["setup.sh"]
    assert single["files"]["setup.sh"]["language"] == "Shell"
    assert single["files"]["notes"]["language"] is None
    assert single["files"]["README.md"]["size"] == len("# Setup\n")
    assert single["owner"]["login"] == "octo" and single["history"]
    assert base64.b64decode(single["node_id"]).decode() == f"04:Gist{g.id}"


def test_users_orgs_and_rate_limit(w):
    me = s.render_private_user(w, U, "octo")
    assert me["user_view_type"] == "private" and me["total_private_repos"] == 0
    assert me["public_repos"] == 3 and me["public_gists"] == 1 and me["private_gists"] == 1
    assert s.render_public_user(w, U, "acme")["type"] == "Organization"
    assert s.render_simple_user(w, U, "acme")["url"] == f"{U.api}/users/acme"
    assert s.render_simple_user(w, U, "ghost")["id"] == 10137
    org = s.render_org_full(w, U, "acme")
    assert org["url"] == f"{U.api}/orgs/acme" and "plan" not in org
    assert s.render_org_full(w, U, "acme", viewer="octo")["total_private_repos"] == 1
    team = s.render_team(w, U, "acme", w.accounts["acme"].teams[0])
    assert team["url"] == f"{U.api}/organizations/2001/team/3001"
    rl = s.render_rate_limit(60, 0, 60, 1_740_000_000)
    assert rl["rate"] == rl["resources"]["core"] == {"limit": 60, "used": 60, "remaining": 0,
                                                     "reset": 1_740_000_000}


def test_node_ids_are_githubs_format_and_unique(w):
    assert s.node_id("U", 1001).startswith("U_kgDN")
    assert s.node_id("R", 0x12345678).startswith("R_kgDOEjRWeA")
    assert s.node_id("I", 5003, 7001).startswith("I_kwDN")
    r = app_of(w)
    ids = [s.render_issue(w, U, r, i)["node_id"] for i in r.issues]
    ids += [s.render_issue_comment(w, U, r, i, c)["node_id"] for i in r.issues
            for c in i.comments]
    ids += [s.render_issue_event_for_issue(w, U, r, i, e)["node_id"] for i in r.issues
            for e in i.events]
    ids += [s.render_minimal_repo(w, U, x)["node_id"] for x in w.repos.values()]
    assert len(ids) == len(set(ids))
    assert s.render_full_repo(w, U, r) == s.render_full_repo(w, U, r)  # deterministic


# the generated world ------------------------------------------------------------------

@pytest.mark.slow
def test_generated_world_validates(spec):
    """Every object of the generated tiny world through its renderer (builds it on first
    use, which takes a while)."""
    from tests.github_sim.generate import load

    world, _ = load("tiny", 7)
    errors: list[str] = []

    def check(path: str, body: Any, ct: str = J) -> None:
        try:
            oa.validate_response(spec, path, "get", 200, body, ct, strict=True,
                                 allow_extra=UNDOCUMENTED)
        except oa.SchemaMismatch as exc:
            errors.append(str(exc))

    viewer = world.owners["user"]
    check("/user", s.render_private_user(world, U, viewer))
    for a in world.accounts.values():
        check("/users/{username}", s.render_public_user(world, U, a.login))
        if a.type == "Organization":
            check("/orgs/{org}", s.render_org_full(world, U, a.login, viewer))
            check("/orgs/{org}/teams", [s.render_team(world, U, a.login, x) for x in a.teams])
    for r in world.repos.values():
        check("/repos/{owner}/{repo}", s.render_full_repo(world, U, r, viewer))
        check("/repos/{owner}/{repo}/issues", [s.render_issue(world, U, r, i)
                                               for i in r.issues])
        check("/repos/{owner}/{repo}/issues/events", [
            s.render_issue_event(world, U, r, i, e) for i in r.issues for e in i.events])
        check("/repos/{owner}/{repo}/issues/comments", [
            s.render_issue_comment(world, U, r, i, c) for i in r.issues for c in i.comments])
        check("/repos/{owner}/{repo}/pulls", [s.render_pull_simple(world, U, r, i)
                                              for i in r.pulls])
        for i in r.pulls:
            check("/repos/{owner}/{repo}/pulls/{pull_number}", s.render_pull(world, U, r, i))
            check("/repos/{owner}/{repo}/pulls/{pull_number}/reviews", [
                s.render_review(world, U, r, i, v) for v in i.pull.reviews])
            check("/repos/{owner}/{repo}/pulls/{pull_number}/comments", [
                s.render_review_comment(world, U, r, i, c) for c in i.pull.review_comments])
            check("/repos/{owner}/{repo}/pulls/{pull_number}/commits", [
                s.render_pull_commit(world, U, r, sha) for sha in i.pull.commits])
        check("/repos/{owner}/{repo}/labels", [s.render_label(world, U, r, x)
                                               for x in r.labels])
        check("/repos/{owner}/{repo}/milestones", [s.render_milestone(world, U, r, m)
                                                   for m in r.milestones])
        check("/repos/{owner}/{repo}/releases", [s.render_release(world, U, r, x)
                                                 for x in r.releases])
        check("/repos/{owner}/{repo}/comments", [s.render_commit_comment(world, U, r, c)
                                                 for c in r.commit_comments])
    for g in world.gists.values():
        check("/gists/{gist_id}", s.render_gist(world, U, g))
    check("/gists", [s.render_base_gist(world, U, g) for g in world.gists.values()])
    assert not errors, "\n".join(errors[:10])
