"""GitHub App endpoints: the app itself (JWT), its installations, their tokens and repositories.

Who may call which is checked before a handler runs (server.Handler.answer_rest): the
JWT_ROUTES need the app's JWT, /installation/repositories an installation token.
"""

from __future__ import annotations

import json
import time

from . import shapes as s
from .app import APP_SLUG, CREATED, PERMISSIONS, App, Installation
from .routing import ApiError, Ctx, Paged, Reply, cut_page, route
from .shapes_common import node_id

DOCS_TOKENS = ("https://docs.github.com/rest/apps/apps#create-an-installation-access-token-"
               "for-an-app")


def _app(ctx: Ctx) -> App:
    app = ctx.sim.app if ctx.sim is not None else None
    if app is None:  # the simulator runs without --app-token-ttl
        raise ApiError(404, "Not Found")
    return app


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def render_installation(ctx: Ctx, app: App, inst: Installation) -> dict:
    """`installation`."""
    acct = ctx.world.account(inst.account)
    assert acct is not None
    settings = (f"organizations/{acct.login}/settings/installations/{inst.id}"
                if acct.type == "Organization" else f"settings/installations/{inst.id}")
    return {
        "id": inst.id,
        "client_id": app.client_id,
        "account": s.render_simple_user(ctx.world, ctx.urls, acct.login),
        "repository_selection": "all",
        "access_tokens_url": f"{ctx.urls.api}/app/installations/{inst.id}/access_tokens",
        "repositories_url": f"{ctx.urls.api}/installation/repositories",
        "html_url": ctx.urls.html(settings),
        "app_id": app.id,
        "app_slug": APP_SLUG,
        "target_id": acct.id,
        "target_type": acct.type,
        "permissions": dict(PERMISSIONS),
        "events": [],
        "created_at": CREATED,
        "updated_at": CREATED,
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": None,
        "suspended_at": None,
    }


@route("GET", "/app")
def get_app(ctx: Ctx) -> Reply:
    app = _app(ctx)
    org = ctx.world.owners["org"]
    return Reply({
        "id": app.id,
        "slug": APP_SLUG,
        "node_id": node_id("A", app.id),
        "client_id": app.client_id,
        "owner": s.render_simple_user(ctx.world, ctx.urls, org),
        "name": "ghvault simulator backup",
        "description": "Reads repositories, issues and pull requests for backups.",
        "external_url": ctx.urls.html(f"apps/{APP_SLUG}"),
        "html_url": ctx.urls.html(f"apps/{APP_SLUG}"),
        "created_at": CREATED,
        "updated_at": CREATED,
        "permissions": dict(PERMISSIONS),
        "events": [],
        "installations_count": len(app.installations),
    })


@route("GET", "/app/installations")
def list_installations(ctx: Ctx) -> Paged:
    app = _app(ctx)
    return Paged(sorted(app.installations.values(), key=lambda i: i.id),
                 lambda inst: render_installation(ctx, app, inst))


@route("GET", "/app/installations/{installation_id}")
def get_installation(ctx: Ctx, installation_id: str) -> Reply:
    app = _app(ctx)
    return Reply(render_installation(ctx, app, app.installation(installation_id)))


@route("GET", "/users/{username}/installation")
def user_installation(ctx: Ctx, username: str) -> Reply:
    app = _app(ctx)
    return Reply(render_installation(ctx, app, app.installation_of(username)))


@route("GET", "/orgs/{org}/installation")
def org_installation(ctx: Ctx, org: str) -> Reply:
    app = _app(ctx)
    inst = app.installation_of(org)
    acct = ctx.world.account(inst.account)
    if acct is None or acct.type != "Organization":
        raise ApiError(404, "Not Found")
    return Reply(render_installation(ctx, app, inst))


@route("POST", "/app/installations/{installation_id}/access_tokens")
def create_token(ctx: Ctx, installation_id: str) -> Reply:
    app = _app(ctx)
    inst = app.installation(installation_id)
    try:
        body = json.loads(ctx.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Problems parsing JSON", DOCS_TOKENS) from None
    if not isinstance(body, dict):
        raise ApiError(400, "Problems parsing JSON", DOCS_TOKENS)
    token, grant = app.issue(inst, body)
    ctx.sim.stats.add("installation_tokens_issued")
    out = {"token": token, "expires_at": _iso(grant.expires), "permissions": grant.permissions,
           "repository_selection": "all" if grant.repos is None else "selected"}
    if grant.repos is not None:
        repos = [ctx.world.repos[f"{inst.account}/{n}"] for n in sorted(grant.repos)]
        out["repositories"] = [s.render_minimal_repo(ctx.world, ctx.urls, r) for r in repos]
    return Reply(out, status=201)


@route("GET", "/installation/repositories")
def installation_repositories(ctx: Ctx) -> Reply:
    grant = ctx.grant
    if grant is None:  # a PAT: this endpoint is for installation tokens only
        raise ApiError(403, "You must authenticate with an installation access token in order "
                            "to list repositories for an installation.", DOCS_TOKENS)
    repos = sorted((r for r in ctx.world.repos_of(grant.installation.account)
                    if grant.covers(r)), key=lambda r: r.full_name.lower())
    page, link = cut_page(Paged(repos, lambda r: s.render_minimal_repo(ctx.world, ctx.urls, r)),
                          f"{ctx.urls.api}/installation/repositories", ctx.query)
    return Reply({"total_count": len(repos), "repositories": page,
                  "repository_selection": "all" if grant.repos is None else "selected"},
                 headers={"Link": link} if link else {})
