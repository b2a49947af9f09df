"""The simulator's repository settings and organisation administration (rest_settings.py):
the ground truth in the ready file is what the endpoints serve, admin-only endpoints refuse
anyone else the way GitHub does, and the filters GitHub documents work. Every route's
shape is validated against GitHub's OpenAPI description in test_sim_openapi_live.py."""

from __future__ import annotations

import pytest

from tests.conftest import TOKEN
from tests.github_sim import openapi as oa


@pytest.fixture(scope="module")
def spec():
    return oa.load_spec()


def get(sim, path: str, **params):
    resp = sim.session(TOKEN).get(f"{sim.api}{path}", params={"per_page": 100, **params})
    assert resp.status_code == 200, f"{path}: {resp.status_code} {resp.text[:200]}"
    return resp.json()


def served_counts(sim, login: str) -> dict[str, int]:
    """The counts as a client reading every endpoint (as the owner) finds them."""
    world = sim.sim.world
    out = dict.fromkeys(("branch_protections", "rulesets", "collaborators", "deploy_keys",
                         "environments", "actions_variables", "actions_secret_names"), 0)
    for r in world.repos_of(login):
        base = f"/repos/{r.full_name}"
        out["branch_protections"] += len(get(sim, f"{base}/branches", protected="true"))
        out["rulesets"] += len(get(sim, f"{base}/rulesets", includes_parents="false"))
        out["collaborators"] += len(get(sim, f"{base}/collaborators"))
        out["deploy_keys"] += len(get(sim, f"{base}/keys"))
        out["environments"] += get(sim, f"{base}/environments")["total_count"]
        out["actions_variables"] += get(sim, f"{base}/actions/variables")["total_count"]
        out["actions_secret_names"] += get(sim, f"{base}/actions/secrets")["total_count"]
    if world.accounts[login].type == "Organization":
        out["rulesets"] += len(get(sim, f"/orgs/{login}/rulesets"))
        out["actions_variables"] += get(sim, f"/orgs/{login}/actions/variables")["total_count"]
        out["actions_secret_names"] += get(sim, f"/orgs/{login}/actions/secrets")["total_count"]
    else:
        out["gist_comments"] = sum(len(get(sim, f"/gists/{g.id}/comments"))
                                   for g in world.gists_of(login))
    return out


@pytest.mark.parametrize("role", ["user", "org"])
def test_the_ground_truth_is_what_the_endpoints_serve(sim, role):
    login = sim.sim.world.owners[role]
    truth = sim.sim.world.counts()[role]
    served = served_counts(sim, login)
    for kind, n in served.items():
        assert n > 0, kind
        assert truth[kind] == n, kind


def test_the_gist_list_counts_the_comments_served(sim):
    user = sim.sim.world.owners["user"]
    for g in get(sim, f"/users/{user}/gists"):
        assert g["comments"] == len(get(sim, f"/gists/{g['id']}/comments")), g["id"]


def test_repository_rulesets_include_the_organisations_unless_asked_not_to(sim):
    org = sim.sim.world.owners["org"]
    repo = next(r for r in sim.sim.world.repos_of(org) if not r.fork and not r.empty)
    base = f"/repos/{repo.full_name}/rulesets"
    own = get(sim, base, includes_parents="false")
    every = get(sim, base)
    assert {r["source_type"] for r in own} == {"Repository"}
    assert len(every) == len(own) + len(get(sim, f"/orgs/{org}/rulesets"))
    detail = get(sim, f"{base}/{own[0]['id']}")
    assert detail["rules"] and "rules" not in own[0]  # the list leaves the rules out


def test_branch_list_filters_protected_branches(sim):
    user = sim.sim.world.owners["user"]
    base = f"/repos/{user}/toolbox/branches"
    every, protected = get(sim, base), get(sim, base, protected="true")
    assert protected and all(b["protected"] for b in protected)
    assert len(every) > len(protected)
    assert get(sim, base, protected="false") == [b for b in every if not b["protected"]]


def test_members_filter_by_role(sim):
    world = sim.sim.world
    org = world.accounts[world.owners["org"]]
    admins = [u["login"] for u in get(sim, f"/orgs/{org.login}/members", role="admin")]
    plain = [u["login"] for u in get(sim, f"/orgs/{org.login}/members", role="member")]
    assert admins == org.admins and sorted(admins + plain) == sorted(org.members)


def test_admin_only_endpoints_refuse_a_member_naming_the_permission(fresh_sim, spec):
    world = fresh_sim.sim.world
    org = world.owners["org"]
    world.accounts[org].admins = []  # the token's user is a plain member now
    repo = next(r for r in world.repos_of(org) if not r.fork and not r.empty)
    base = f"/repos/{repo.full_name}"
    s = fresh_sim.session(TOKEN)
    for path, permission in (
            (f"{base}/branches/{repo.default_branch}/protection", "administration=read"),
            (f"{base}/keys", "administration=read"),
            (f"{base}/actions/variables", "actions_variables=read"),
            (f"{base}/actions/secrets", "secrets=read"),
            (f"/orgs/{org}/hooks", "organization_hooks=read"),
            (f"/orgs/{org}/rulesets", "organization_administration=read")):
        resp = s.get(f"{fresh_sim.api}{path}")
        assert resp.status_code == 403, path
        assert resp.headers["X-Accepted-GitHub-Permissions"] == permission, path
        oa.validate_component(spec, "basic-error", resp.json())
    # what a member may read still answers
    for path in (f"{base}/rulesets", f"{base}/environments", f"/orgs/{org}/properties/schema"):
        assert s.get(f"{fresh_sim.api}{path}").status_code == 200, path


def test_nested_teams_name_their_parent(sim):
    org = sim.sim.world.accounts[sim.sim.world.owners["org"]]
    teams = {t["slug"]: t for t in get(sim, f"/orgs/{org.login}/teams")}
    nested = [t for t in org.teams if t.parent]
    assert nested
    for t in nested:
        assert teams[t.slug]["parent"]["slug"] == t.parent
        assert "parent" not in teams[t.slug]["parent"]  # a team-simple
