"""Repository settings, organisation administration and gist comments for the simulator.

`build_settings(world, rng, clock)` fills `world.settings` (plain data, rendered by
rest_settings.py): per repository (key: full name) branch protections, rulesets,
collaborators and invitations, deploy keys, environments, Actions variables and secret
names, workflow permissions, autolinks and Pages; per organisation (key: "org:{login}")
outside collaborators, webhooks, rulesets, Actions variables and secret names and the
custom property schema; per gist (key: "gist:{id}") its comments. `settings_counts`
gives the ground truth under the manifest's count names.
"""

from __future__ import annotations

import random
from typing import Any

from .model import World

RULE_SETS = [
    ("main protection", "branch", ["~DEFAULT_BRANCH"],
     [{"type": "deletion"}, {"type": "non_fast_forward"},
      {"type": "pull_request", "parameters": {
          "dismiss_stale_reviews_on_push": True, "require_code_owner_review": False,
          "require_last_push_approval": False, "required_approving_review_count": 1,
          "required_review_thread_resolution": True,
          "allowed_merge_methods": ["merge", "squash", "rebase"]}}]),
    ("release tags", "tag", ["refs/tags/v*"], [{"type": "deletion"}, {"type": "update"}]),
]


def _who(rng: random.Random, pool: list[str], n: int) -> list[str]:
    return sorted(rng.sample(pool, min(n, len(pool))))


def _repo_settings(rng: random.Random, world: World, repo: Any, others: list[str],
                   stamp) -> dict[str, Any]:
    """One repository's settings; a fork or an empty repository has fewer of them."""
    plain = repo.fork or repo.empty
    out: dict[str, Any] = {
        "protected": [] if plain else [repo.default_branch],
        "rulesets": [] if plain else [
            {"id": world.new_id(), "name": n, "target": t, "include": inc, "rules": rules,
             "created_at": stamp(), "updated_at": stamp()}
            for n, t, inc, rules in RULE_SETS[: rng.randint(1, 2)]],
        "collaborators": [(login, rng.choice(["read", "write", "maintain"]))
                          for login in _who(rng, others, rng.randint(1, 3))],
        "invitations": [] if plain else [
            {"id": world.new_id(), "login": login, "permissions": "write",
             "created_at": stamp()} for login in _who(rng, others, 1)],
        "deploy_keys": [] if plain else [
            {"id": world.new_id(), "title": f"deploy-{k}", "read_only": k == 0,
             "created_at": stamp()} for k in range(rng.randint(1, 2))],
        "environments": [] if plain else [
            {"id": world.new_id(), "name": name, "custom_branches": name == "production",
             "policies": [{"id": world.new_id(), "name": "release/*", "type": "branch"}]
             if name == "production" else [],
             "reviewers": name == "production", "wait_timer": 30 if name == "production"
             else 0, "created_at": stamp()} for name in ("production", "staging")[
                 : rng.randint(1, 2)]],
        "variables": [{"name": n, "value": v, "created_at": stamp()} for n, v in
                      [("DEPLOY_REGION", "eu-west-1"), ("LOG_LEVEL", "info")][
                          : rng.randint(1, 2)]],
        "secrets": [{"name": n, "created_at": stamp()} for n in
                    ["DEPLOY_TOKEN", "SLACK_WEBHOOK", "NPM_TOKEN"][: rng.randint(1, 3)]],
        "workflow": {"default_workflow_permissions": rng.choice(["read", "write"]),
                     "can_approve_pull_request_reviews": False},
        "autolinks": [{"id": world.new_id(), "key_prefix": "JIRA-",
                       "url_template": "https://jira.example.com/browse/JIRA-<num>",
                       "is_alphanumeric": False}] if rng.random() < 0.6 else [],
        "pages": None if plain or rng.random() < 0.5 else {
            "cname": None, "build_type": "workflow", "https_enforced": True},
    }
    return out


def build_settings(world: World, rng: random.Random, stamp) -> None:
    """Fill world.settings; `stamp()` gives the next generated timestamp."""
    owners = set(world.owners.values())
    people = sorted(a.login for a in world.accounts.values()
                    if a.type == "User" and a.login not in owners)
    for repo in sorted(world.repos.values(), key=lambda r: r.full_name):
        if repo.owner in owners:
            world.settings[repo.full_name] = _repo_settings(rng, world, repo, people, stamp)
    for login in owners:
        acct = world.accounts[login]
        if acct.type != "Organization":
            continue
        for team in acct.teams[1:]:  # nested teams: the first is the others' parent
            team.parent = acct.teams[0].slug
        for r in world.repos_of(login):  # values of the schema below
            world.settings[r.full_name]["custom_properties"] = {
                "team": rng.choice(["core", "docs", "infra"]), "cost_center": "CC-1"}
        outsiders = sorted({c for r in world.repos_of(login)
                            for c, _ in world.settings[r.full_name]["collaborators"]}
                           - set(acct.members))
        world.settings[f"org:{login}"] = {
            "outside": outsiders,
            "hooks": [{"id": world.new_id(), "url": "https://ci.example.com/hook",
                       "events": ["push", "pull_request"], "created_at": stamp()}],
            "rulesets": [{"id": world.new_id(), "name": "org default branch", "target": "branch",
                          "include": ["~DEFAULT_BRANCH"],
                          "rules": [{"type": "deletion"}, {"type": "required_linear_history"}],
                          "created_at": stamp(), "updated_at": stamp()}],
            "variables": [{"name": "ORG_REGISTRY", "value": "registry.example.com",
                           "visibility": "all", "created_at": stamp()}],
            "secrets": [{"name": n, "visibility": "private", "created_at": stamp()}
                        for n in ("ORG_DEPLOY_KEY", "ORG_SIGNING_KEY")],
            "properties": [{"property_name": "team", "value_type": "single_select",
                            "required": False, "allowed_values": ["core", "docs", "infra"]},
                           {"property_name": "cost_center", "value_type": "string",
                            "required": False}],
        }
    gists = sorted(world.gists.values(), key=lambda g: g.id)
    if gists and not any(g.comments for g in gists):
        gists[0].comments = 2  # the owner's gists always carry some conversation
    for g in gists:
        world.settings[f"gist:{g.id}"] = [
            {"id": world.new_id(), "user": rng.choice(people), "body": f"Works for me ({k})",
             "created_at": stamp()} for k in range(g.comments)]


def collaborators(world: World, repo: Any) -> list[tuple[str, str]]:
    """(login, role) as GET /repos/{o}/{r}/collaborators lists them (affiliation all): the
    owner, or the organisation's owners, as admin, then the direct collaborators."""
    acct = world.accounts[repo.owner]
    admins = acct.admins if acct.type == "Organization" else [acct.login]
    return [(a, "admin") for a in admins] + list(
        world.settings.get(repo.full_name, {}).get("collaborators", []))


def settings_counts(world: World, login: str) -> dict[str, int]:
    """Ground truth for one owner under the manifest's names: what a complete backup by an
    admin of every repository (and an owner of the organisation) keeps."""
    repos = [world.settings[r.full_name] for r in world.repos_of(login)
             if r.full_name in world.settings]
    org = world.settings.get(f"org:{login}", {})
    out = {
        "branch_protections": sum(len(s["protected"]) for s in repos),
        "rulesets": sum(len(s["rulesets"]) for s in repos) + len(org.get("rulesets", [])),
        # every repository lists its owner (or the organisation's owners), settings or none
        # (a repository made after generation, by the month's mutation, has none)
        "collaborators": sum(len(collaborators(world, r)) for r in world.repos_of(login)),
        "deploy_keys": sum(len(s["deploy_keys"]) for s in repos),
        "environments": sum(len(s["environments"]) for s in repos),
        "actions_variables": sum(len(s["variables"]) for s in repos)
        + len(org.get("variables", [])),
        "actions_secret_names": sum(len(s["secrets"]) for s in repos)
        + len(org.get("secrets", [])),
    }
    if world.accounts[login].type != "Organization":
        out["gist_comments"] = sum(len(world.settings.get(f"gist:{g.id}", []))
                                   for g in world.gists_of(login))
    return out
