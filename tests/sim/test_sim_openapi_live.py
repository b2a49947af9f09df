"""What the running simulator serves, over HTTP, against GitHub's OpenAPI description.

Every GET route the simulator registers is fetched at least once (as the token's owner,
and the public ones anonymously too) and each answer is validated against the response
schema of the operation GitHub documents for that path.
"""

from __future__ import annotations

import pytest

from tests.conftest import TOKEN
from tests.github_sim import openapi as oa
from tests.github_sim.app import JWT_ROUTES
from tests.github_sim.rest_settings import example_paths
from tests.github_sim.routing import ROUTES

SPEC_VERSION = "23.0.2"  # @octokit/openapi, see package.json


@pytest.fixture(scope="module")
def spec():
    return oa.load_spec()


def concrete_paths(world) -> list[str]:
    user, org = world.owners["user"], world.owners["org"]
    repo = world.repos[f"{user}/toolbox"]
    issue = next(i for i in repo.issues if i.pull is None and i.comments and i.events)
    pull = next(i for i in repo.pulls if i.pull.reviews and i.pull.review_comments)
    release = next(r for r in repo.releases if r.assets)
    gist = world.gists_of(user)[0]
    team = world.accounts[org].teams[0]
    base = f"/repos/{user}/toolbox"
    return [
        "/user", "/user/repos", "/user/orgs", "/user/starred", "/user/subscriptions",
        "/user/followers", "/user/following", "/gists", "/gists/starred", f"/gists/{gist.id}",
        f"/users/{user}", f"/users/{org}", f"/users/{user}/repos", f"/users/{user}/starred",
        f"/users/{user}/followers", f"/users/{user}/following", f"/users/{user}/gists",
        f"/users/{user}/orgs", f"/users/{user}/subscriptions",
        f"/orgs/{org}", f"/orgs/{org}/repos", f"/orgs/{org}/members", f"/orgs/{org}/teams",
        f"/orgs/{org}/teams/{team.slug}/members", f"/orgs/{org}/teams/{team.slug}/repos",
        base, f"/repos/{org}/platform", f"/repos/{user}/fastlib", f"{base}/labels",
        f"{base}/milestones?state=all", f"{base}/hooks", f"{base}/security-advisories",
        f"{base}/comments", f"{base}/issues?state=all", f"{base}/issues/{issue.number}",
        f"{base}/issues/{pull.number}", f"{base}/issues/comments",
        f"{base}/issues/{issue.number}/comments", f"{base}/issues/events",
        f"{base}/issues/{issue.number}/events", f"{base}/issues/{issue.number}/timeline",
        f"{base}/issues/{pull.number}/timeline", f"{base}/pulls?state=all",
        f"{base}/pulls/{pull.number}", f"{base}/pulls/comments",
        f"{base}/pulls/{pull.number}/comments", f"{base}/pulls/{pull.number}/reviews",
        f"{base}/pulls/{pull.number}/commits", f"{base}/releases",
        f"{base}/releases/{release.id}", f"{base}/releases/latest",
        f"{base}/releases/{release.id}/assets",
        f"{base}/releases/assets/{release.assets[0].id}", "/rate_limit",
        *example_paths(world),
    ]


def test_every_served_shape_matches_githubs_openapi(sim, spec):
    s = sim.session(TOKEN)
    paths = concrete_paths(sim.sim.world)
    covered, errors = set(), []
    for path in paths:
        resp = s.get(f"{sim.api}{path}", params={"per_page": 100})
        assert resp.status_code == 200, f"{path}: {resp.status_code} {resp.text[:200]}"
        template = oa.find_template(spec, path.split("?")[0])
        covered.add(template)
        try:
            oa.validate_response(spec, template, "get", 200, resp.json())
        except oa.SchemaMismatch as e:
            errors.append(str(e))
    assert not errors, "\n\n".join(errors)
    # The GitHub App's routes need an app-enabled simulator: test_sim_app_auth validates them.
    app_routes = JWT_ROUTES | {"/installation/repositories"}
    served = {r.template for r in ROUTES if r.method == "GET"} - app_routes
    assert served <= covered, f"routes never validated: {sorted(served - covered)}"


def test_anonymous_answers_match_too(sim, spec):
    s = sim.session()
    user = sim.sim.world.owners["user"]
    for path in (f"/users/{user}", f"/users/{user}/repos", f"/repos/{user}/toolbox",
                 f"/repos/{user}/toolbox/issues", f"/users/{user}/gists"):
        resp = s.get(f"{sim.api}{path}")
        assert resp.status_code == 200
        oa.validate_response(spec, oa.find_template(spec, path), "get", 200, resp.json())


def test_error_bodies_match_githubs_basic_error(sim, spec):
    s = sim.session(TOKEN)
    resp = s.get(f"{sim.api}/repos/{sim.sim.world.owners['user']}/no-such-repo")
    assert resp.status_code == 404
    oa.validate_component(spec, "basic-error", resp.json())


def test_spec_version_is_the_pinned_one():
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pkg = json.loads((root / "node_modules/@octokit/openapi/package.json").read_text())
    assert pkg["version"] == SPEC_VERSION
