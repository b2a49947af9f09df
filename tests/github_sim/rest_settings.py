"""GitHub's REST endpoints for repository settings, organisation administration and gist
comments, over `world.settings` (generate_settings.py), in the shapes GitHub documents.

Permissions as on GitHub: the settings a repository's admin manages (branch protection,
rulesets in full, invitations, deploy keys, Actions secrets and variables, workflow
permissions, autolinks) answer 403 to any other user and to an installation without the
permission, which X-Accepted-GitHub-Permissions names; an organisation's owners (or an
installation on it with the permission) alone read its outside collaborators, hooks,
rulesets, Actions secrets and variables.
"""

from __future__ import annotations

from typing import Any

from . import shapes as s
from .generate_settings import collaborators
from .gitrepos import ref_map
from .model import Repo
from .routing import ApiError, Ctx, Paged, Reply, not_found, route
from .shapes_common import legacy_node_id, node_id, repo_api

DOCS = "https://docs.github.com/rest"
ROLE_PERMS = {"read": ("pull",), "triage": ("pull", "triage"),
              "write": ("pull", "triage", "push"),
              "maintain": ("pull", "triage", "push", "maintain"),
              "admin": ("pull", "triage", "push", "maintain", "admin")}


def _denied(message: str, permission: str, docs: str) -> ApiError:
    return ApiError(403, message, f"{DOCS}/{docs}",
                    headers={"X-Accepted-GitHub-Permissions": permission})


def _admin_repo(ctx: Ctx, owner: str, name: str, permission: str, docs: str
                ) -> tuple[Repo, dict[str, Any]]:
    r = ctx.repo(owner, name)
    # A user needs admin rights on the repository; an installation, the permission.
    allowed = ctx.grant.allows(permission) if ctx.grant is not None else ctx.is_admin(r)
    if not allowed:
        raise _denied("Must have admin rights to Repository.", permission, docs)
    return r, ctx.world.settings.get(r.full_name) or {}


def _org(ctx: Ctx, org: str, permission: str, docs: str) -> tuple[Any, dict[str, Any]]:
    acct = ctx.world.account(org)
    if acct is None or acct.type != "Organization":
        raise not_found()
    if ctx.grant is not None:  # an installation on the organisation, with the permission
        allowed = (ctx.grant.installation.account.lower() == acct.login.lower()
                   and ctx.grant.allows(permission))
    else:
        allowed = ctx.viewer in acct.admins
    if not allowed:
        raise _denied("You must be an org owner to access this resource.", permission, docs)
    return acct, ctx.world.settings.get(f"org:{acct.login}") or {}


# repository settings --------------------------------------------------------------------

@route("GET", "/repos/{owner}/{repo}/branches")
def branches(ctx: Ctx, owner: str, repo: str) -> Paged:
    r = ctx.repo(owner, repo)
    protected = (ctx.world.settings.get(r.full_name) or {}).get("protected", [])
    refs = ref_map(ctx.sim.repo_dir(r.owner, r.name)) if ctx.sim is not None else {}
    heads = sorted((ref.removeprefix("refs/heads/"), sha) for ref, sha in refs.items()
                   if ref.startswith("refs/heads/"))
    want = ctx.arg("protected")
    if want is not None:
        heads = [h for h in heads if (h[0] in protected) == (want == "true")]

    def render(head: tuple[str, str]) -> dict:
        name, sha = head
        out = {"name": name, "protected": name in protected,
               "commit": {"sha": sha, "url": f"{repo_api(ctx.urls, r)}/commits/{sha}"}}
        if name in protected:
            out["protection_url"] = f"{repo_api(ctx.urls, r)}/branches/{name}/protection"
        return out
    return Paged(heads, render)


@route("GET", "/repos/{owner}/{repo}/branches/{branch}/protection")
def branch_protection(ctx: Ctx, owner: str, repo: str, branch: str) -> Reply:
    r, st = _admin_repo(ctx, owner, repo, "administration=read",
                        "branches/branch-protection#get-branch-protection")
    if branch not in st.get("protected", []):
        raise ApiError(404, "Branch not protected")
    url = f"{repo_api(ctx.urls, r)}/branches/{branch}/protection"
    return Reply({
        "url": url,
        "required_status_checks": {"url": f"{url}/required_status_checks", "strict": True,
                                   "contexts": ["ci"], "contexts_url":
                                   f"{url}/required_status_checks/contexts",
                                   "checks": [{"context": "ci", "app_id": None}]},
        "required_pull_request_reviews": {"url": f"{url}/required_pull_request_reviews",
                                          "dismiss_stale_reviews": True,
                                          "require_code_owner_reviews": False,
                                          "require_last_push_approval": False,
                                          "required_approving_review_count": 1},
        "required_signatures": {"url": f"{url}/required_signatures", "enabled": False},
        "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": True},
        "required_linear_history": {"enabled": True},
        "allow_force_pushes": {"enabled": False}, "allow_deletions": {"enabled": False},
        "block_creations": {"enabled": False},
        "required_conversation_resolution": {"enabled": True},
        "lock_branch": {"enabled": False}, "allow_fork_syncing": {"enabled": False},
    })


def _ruleset(ctx: Ctx, source: str, source_type: str, base: str, rs: dict, full: bool) -> dict:
    out = {"id": rs["id"], "name": rs["name"], "target": rs["target"],
           "source_type": source_type, "source": source, "enforcement": "active",
           "node_id": node_id("RRS", rs["id"]),
           "_links": {"self": {"href": f"{base}/rulesets/{rs['id']}"}},
           "created_at": rs["created_at"], "updated_at": rs["updated_at"]}
    if full:  # the list leaves out conditions, rules and bypass actors
        out.update(bypass_actors=[{"actor_id": None, "actor_type": "OrganizationAdmin",
                                   "bypass_mode": "always"}],
                   current_user_can_bypass="always",
                   conditions={"ref_name": {"include": rs["include"], "exclude": []}},
                   rules=rs["rules"])
    return out


@route("GET", "/repos/{owner}/{repo}/rulesets")
def repo_rulesets(ctx: Ctx, owner: str, repo: str) -> Paged:
    r = ctx.repo(owner, repo)  # anyone with read access lists them; details need admin
    items = [("Repository", r.full_name, x) for x in
             (ctx.world.settings.get(r.full_name) or {}).get("rulesets", [])]
    if ctx.arg("includes_parents", "true") == "true":
        items += [("Organization", r.owner, x) for x in
                  (ctx.world.settings.get(f"org:{r.owner}") or {}).get("rulesets", [])]
    return Paged(items, lambda x: _ruleset(ctx, x[1], x[0], repo_api(ctx.urls, r), x[2], False))


@route("GET", "/repos/{owner}/{repo}/rulesets/{ruleset_id}")
def repo_ruleset(ctx: Ctx, owner: str, repo: str, ruleset_id: str) -> Reply:
    r, st = _admin_repo(ctx, owner, repo, "administration=read",
                        "repos/rules#get-a-repository-ruleset")
    for rs in st.get("rulesets", []):
        if str(rs["id"]) == ruleset_id:
            return Reply(_ruleset(ctx, r.full_name, "Repository", repo_api(ctx.urls, r), rs,
                                  True), last_modified=rs["updated_at"])
    raise not_found()


@route("GET", "/repos/{owner}/{repo}/collaborators")
def repo_collaborators(ctx: Ctx, owner: str, repo: str) -> Paged:
    r = ctx.repo(owner, repo)
    # An installation reads it with metadata (every installation has it); a user needs
    # push access, which the simulator's users have on exactly the repositories they admin.
    if ctx.grant is None and not ctx.is_admin(r):
        raise _denied("Must have push access to view repository collaborators.",
                      "metadata=read", "collaborators/collaborators#list-repository-collaborators")

    def render(c: tuple[str, str]) -> dict:
        perms = ROLE_PERMS[c[1]]
        return {**s.render_simple_user(ctx.world, ctx.urls, c[0]),
                "permissions": {p: p in perms for p in ROLE_PERMS["admin"]}, "role_name": c[1]}
    return Paged(collaborators(ctx.world, r), render)


@route("GET", "/repos/{owner}/{repo}/invitations")
def repo_invitations(ctx: Ctx, owner: str, repo: str) -> Paged:
    r, st = _admin_repo(ctx, owner, repo, "administration=read",
                        "collaborators/invitations#list-repository-invitations")
    base = repo_api(ctx.urls, r)
    return Paged(st.get("invitations", []), lambda i: {
        "id": i["id"], "node_id": node_id("RI", i["id"]),
        "repository": s.render_minimal_repo(ctx.world, ctx.urls, r),
        "invitee": s.render_simple_user(ctx.world, ctx.urls, i["login"]),
        "inviter": s.render_simple_user(ctx.world, ctx.urls, r.owner),
        "permissions": i["permissions"], "created_at": i["created_at"], "expired": False,
        "url": f"{base}/invitations/{i['id']}",
        "html_url": ctx.urls.html(f"{r.full_name}/invitations")})


@route("GET", "/repos/{owner}/{repo}/keys")
def deploy_keys(ctx: Ctx, owner: str, repo: str) -> Paged:
    r, st = _admin_repo(ctx, owner, repo, "administration=read",
                        "deploy-keys/deploy-keys#list-deploy-keys")
    return Paged(st.get("deploy_keys", []), lambda k: {
        "id": k["id"], "key": f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA{k['id']:020d}",
        "url": f"{repo_api(ctx.urls, r)}/keys/{k['id']}", "title": k["title"],
        "verified": True, "created_at": k["created_at"], "read_only": k["read_only"],
        "added_by": r.owner, "last_used": None, "enabled": True})


def _environment(ctx: Ctx, r: Repo, e: dict) -> dict:
    rules = [{"id": e["id"] + 1, "node_id": node_id("GA", e["id"] + 1), "type": "branch_policy"}]
    if e["reviewers"]:
        rules.append({"id": e["id"] + 2, "node_id": node_id("GA", e["id"] + 2),
                      "prevent_self_review": True, "type": "required_reviewers",
                      "reviewers": [{"type": "User", "reviewer":
                                     s.render_simple_user(ctx.world, ctx.urls, r.owner)}]})
    if e["wait_timer"]:
        rules.append({"id": e["id"] + 3, "node_id": node_id("GA", e["id"] + 3),
                      "type": "wait_timer", "wait_timer": e["wait_timer"]})
    return {"id": e["id"], "node_id": node_id("EN", e["id"]), "name": e["name"],
            "url": f"{repo_api(ctx.urls, r)}/environments/{e['name']}",
            "html_url": ctx.urls.html(f"{r.full_name}/deployments/activity_log?"
                                      f"environments_filter={e['name']}"),
            "created_at": e["created_at"], "updated_at": e["created_at"],
            "protection_rules": rules,
            "deployment_branch_policy": {"protected_branches": not e["custom_branches"],
                                         "custom_branch_policies": e["custom_branches"]}}


@route("GET", "/repos/{owner}/{repo}/environments")
def environments(ctx: Ctx, owner: str, repo: str) -> Reply:
    # Readable with read access on GitHub (public repositories even anonymously).
    r = ctx.repo(owner, repo)
    envs = (ctx.world.settings.get(r.full_name) or {}).get("environments", [])
    return _wrapped(ctx, "environments", [_environment(ctx, r, e) for e in envs])


@route("GET", "/repos/{owner}/{repo}/environments/{environment_name}/deployment-branch-policies")
def branch_policies(ctx: Ctx, owner: str, repo: str, environment_name: str) -> Reply:
    r = ctx.repo(owner, repo)
    for e in (ctx.world.settings.get(r.full_name) or {}).get("environments", []):
        if e["name"] == environment_name:
            return _wrapped(ctx, "branch_policies", [
                {**p, "node_id": node_id("GBP", p["id"])} for p in e["policies"]])
    raise not_found()


def _wrapped(ctx: Ctx, key: str, items: list) -> Reply:
    """A list GitHub wraps as {"total_count", key: [...]}, paged by per_page/page."""
    per_page = max(1, min(int(ctx.query.get("per_page", "30")), 100))
    page = max(1, int(ctx.query.get("page", "1")))
    return Reply({"total_count": len(items), key: items[(page - 1) * per_page: page * per_page]})


@route("GET", "/repos/{owner}/{repo}/actions/variables")
def repo_variables(ctx: Ctx, owner: str, repo: str) -> Reply:
    _, st = _admin_repo(ctx, owner, repo, "actions_variables=read",
                        "actions/variables#list-repository-variables")
    return _wrapped(ctx, "variables", [{**v, "updated_at": v["created_at"]}
                                       for v in st.get("variables", [])])


@route("GET", "/repos/{owner}/{repo}/actions/secrets")
def repo_secrets(ctx: Ctx, owner: str, repo: str) -> Reply:
    _, st = _admin_repo(ctx, owner, repo, "secrets=read",
                        "actions/secrets#list-repository-secrets")
    return _wrapped(ctx, "secrets", [{**x, "updated_at": x["created_at"]}
                                     for x in st.get("secrets", [])])


@route("GET", "/repos/{owner}/{repo}/actions/permissions/workflow")
def workflow_permissions(ctx: Ctx, owner: str, repo: str) -> Reply:
    _, st = _admin_repo(ctx, owner, repo, "administration=read",
                        "actions/permissions#get-default-workflow-permissions-for-a-repository")
    return Reply(st.get("workflow") or {"default_workflow_permissions": "read",
                                        "can_approve_pull_request_reviews": False})


@route("GET", "/repos/{owner}/{repo}/autolinks")
def autolinks(ctx: Ctx, owner: str, repo: str) -> Paged:
    _, st = _admin_repo(ctx, owner, repo, "administration=read",
                        "repos/autolinks#get-all-autolinks-of-a-repository")
    return Paged(st.get("autolinks", []), lambda a: {**a, "updated_at": None})


@route("GET", "/repos/{owner}/{repo}/pages")
def pages(ctx: Ctx, owner: str, repo: str) -> Reply:
    r = ctx.repo(owner, repo)
    p = (ctx.world.settings.get(r.full_name) or {}).get("pages")
    if not p:
        raise not_found()
    site = f"https://{r.owner.lower()}.github.io/{r.name}/"
    return Reply({"url": f"{repo_api(ctx.urls, r)}/pages", "status": "built",
                  "cname": p["cname"], "custom_404": False, "html_url": site,
                  "build_type": p["build_type"], "public": not r.private,
                  "source": {"branch": r.default_branch, "path": "/"},
                  "https_enforced": p["https_enforced"]})


# organisations --------------------------------------------------------------------------

@route("GET", "/orgs/{org}/outside_collaborators")
def outside_collaborators(ctx: Ctx, org: str) -> Paged:
    _, st = _org(ctx, org, "members=read",
                 "orgs/outside-collaborators#list-outside-collaborators-for-an-organization")
    return Paged(st.get("outside", []), lambda login: s.render_simple_user(ctx.world, ctx.urls,
                                                                           login))


@route("GET", "/orgs/{org}/hooks")
def org_hooks(ctx: Ctx, org: str) -> Paged:
    acct, st = _org(ctx, org, "organization_hooks=read", "orgs/webhooks#list-organization-webhooks")
    base = f"{ctx.urls.api}/orgs/{acct.login}/hooks"
    return Paged(st.get("hooks", []), lambda h: {
        "id": h["id"], "url": f"{base}/{h['id']}", "ping_url": f"{base}/{h['id']}/pings",
        "deliveries_url": f"{base}/{h['id']}/deliveries", "name": "web", "events": h["events"],
        "active": True, "config": {"url": h["url"], "content_type": "json", "insecure_ssl": "0"},
        "updated_at": h["created_at"], "created_at": h["created_at"], "type": "Organization"})


@route("GET", "/orgs/{org}/rulesets")
def org_rulesets(ctx: Ctx, org: str) -> Paged:
    acct, st = _org(ctx, org, "organization_administration=read",
                    "orgs/rules#get-all-organization-repository-rulesets")
    base = f"{ctx.urls.api}/orgs/{acct.login}"
    return Paged(st.get("rulesets", []),
                 lambda x: _ruleset(ctx, acct.login, "Organization", base, x, False))


@route("GET", "/orgs/{org}/rulesets/{ruleset_id}")
def org_ruleset(ctx: Ctx, org: str, ruleset_id: str) -> Reply:
    acct, st = _org(ctx, org, "organization_administration=read",
                    "orgs/rules#get-an-organization-repository-ruleset")
    for rs in st.get("rulesets", []):
        if str(rs["id"]) == ruleset_id:
            return Reply(_ruleset(ctx, acct.login, "Organization",
                                  f"{ctx.urls.api}/orgs/{acct.login}", rs, True))
    raise not_found()


@route("GET", "/orgs/{org}/actions/variables")
def org_variables(ctx: Ctx, org: str) -> Reply:
    acct, st = _org(ctx, org, "organization_actions_variables=read",
                    "actions/variables#list-organization-variables")
    return _wrapped(ctx, "variables", [{**v, "updated_at": v["created_at"]}
                                       for v in st.get("variables", [])])


@route("GET", "/orgs/{org}/actions/secrets")
def org_secrets(ctx: Ctx, org: str) -> Reply:
    acct, st = _org(ctx, org, "organization_secrets=read",
                    "actions/secrets#list-organization-secrets")
    return _wrapped(ctx, "secrets", [{**x, "updated_at": x["created_at"]}
                                     for x in st.get("secrets", [])])


@route("GET", "/orgs/{org}/properties/schema")
def custom_properties(ctx: Ctx, org: str) -> Reply:
    acct = ctx.world.account(org)
    if acct is None or acct.type != "Organization":
        raise not_found()
    if not ctx.member_of(acct):
        raise _denied("Must be an organization member.", "organization_custom_properties=read",
                      "orgs/custom-properties#get-all-custom-properties-for-an-organization")
    props = (ctx.world.settings.get(f"org:{acct.login}") or {}).get("properties", [])
    return Reply([{**p, "url": f"{ctx.urls.api}/orgs/{acct.login}/properties/schema/"
                  f"{p['property_name']}", "source_type": "organization"} for p in props])


# gists ----------------------------------------------------------------------------------

@route("GET", "/gists/{gist_id}/comments")
def gist_comments(ctx: Ctx, gist_id: str) -> Paged:
    g = ctx.world.gists.get(gist_id)
    if g is None or (not g.public and ctx.viewer != g.owner):
        raise not_found()
    base = f"{ctx.urls.api}/gists/{g.id}/comments"
    return Paged(ctx.world.settings.get(f"gist:{g.id}", []), lambda c: {
        "id": c["id"], "node_id": legacy_node_id("GistComment", c["id"]),
        "url": f"{base}/{c['id']}", "body": c["body"],
        "user": s.render_simple_user(ctx.world, ctx.urls, c["user"]),
        "created_at": c["created_at"], "updated_at": c["created_at"],
        "author_association": "NONE"})


def example_paths(world) -> list[str]:
    """One concrete path per GET route above, for validating them against the description."""
    user, org = world.owners["user"], world.owners["org"]
    base = f"/repos/{user}/toolbox"
    st = world.settings[f"{user}/toolbox"]
    env = next(e for e in st["environments"] if e["policies"]) if any(
        e["policies"] for e in st["environments"]) else st["environments"][0]
    gist = next(g for g in world.gists_of(user) if g.comments)
    pages_repo = next(n for n, x in world.settings.items() if "/" in n and x.get("pages"))
    return [
        f"{base}/branches", f"{base}/branches?protected=true",
        f"{base}/branches/{st['protected'][0]}/protection", f"{base}/rulesets",
        f"{base}/rulesets/{st['rulesets'][0]['id']}", f"{base}/collaborators",
        f"{base}/invitations", f"{base}/keys", f"{base}/environments",
        f"{base}/environments/{env['name']}/deployment-branch-policies",
        f"{base}/actions/variables", f"{base}/actions/secrets",
        f"{base}/actions/permissions/workflow", f"{base}/autolinks",
        f"/repos/{pages_repo}/pages", f"/orgs/{org}/outside_collaborators",
        f"/orgs/{org}/hooks", f"/orgs/{org}/rulesets",
        f"/orgs/{org}/rulesets/{world.settings[f'org:{org}']['rulesets'][0]['id']}",
        f"/orgs/{org}/actions/variables", f"/orgs/{org}/actions/secrets",
        f"/orgs/{org}/properties/schema", f"/gists/{gist.id}/comments",
    ]
