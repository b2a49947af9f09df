"""GitHub's REST endpoints that a whole-account backup touches, over the simulator's world.

Filters, sort orders and defaults follow GitHub's documentation for each operation; the
JSON itself comes from shapes.py. List endpoints return `Paged` and the server pages them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import quote

from . import shapes as s
from .model import Issue, Repo
from .routing import ApiError, Ctx, Paged, Reply, not_found, route

if TYPE_CHECKING:
    from .server import Handler, Simulator


def _order(items: list, key, direction: str | None, default: str) -> list:
    return sorted(items, key=key, reverse=(direction or default) == "desc")


def _since(items: list, ctx: Ctx, stamp=lambda x: x.updated_at) -> list:
    since = ctx.arg("since")
    if not since:
        return items
    since = since.replace("+00:00", "Z")
    if len(since) == 10:
        since += "T00:00:00Z"
    return [i for i in items if stamp(i) >= since]


# accounts ------------------------------------------------------------------------------

def _account(ctx: Ctx, login: str):
    acct = ctx.world.account(login)
    if acct is None:
        raise not_found()
    return acct


@route("GET", "/user")
def get_viewer(ctx: Ctx) -> Reply:
    login = ctx.need_auth()
    acct = ctx.world.accounts[login]
    return Reply(s.render_private_user(ctx.world, ctx.urls, login),
                 last_modified=acct.updated_at)


@route("GET", "/users/{username}")
def get_user(ctx: Ctx, username: str) -> Reply:
    acct = _account(ctx, username)  # organisations answer here too, with type Organization
    return Reply(s.render_public_user(ctx.world, ctx.urls, acct.login),
                 last_modified=acct.updated_at)


@route("GET", "/orgs/{org}")
def get_org(ctx: Ctx, org: str) -> Reply:
    acct = _account(ctx, org)
    if acct.type != "Organization":
        raise not_found()
    return Reply(s.render_org_full(ctx.world, ctx.urls, acct.login, viewer=ctx.viewer),
                 last_modified=acct.updated_at)


def _user_list(ctx: Ctx, logins: list[str]) -> Paged:
    return Paged(list(logins), lambda login: s.render_simple_user(ctx.world, ctx.urls, login))


@route("GET", "/users/{username}/followers")
def followers(ctx: Ctx, username: str) -> Paged:
    return _user_list(ctx, _account(ctx, username).followers)


@route("GET", "/users/{username}/following")
def following(ctx: Ctx, username: str) -> Paged:
    return _user_list(ctx, _account(ctx, username).following)


@route("GET", "/user/followers")
def my_followers(ctx: Ctx) -> Paged:
    return _user_list(ctx, ctx.world.accounts[ctx.need_auth()].followers)


@route("GET", "/user/following")
def my_following(ctx: Ctx) -> Paged:
    return _user_list(ctx, ctx.world.accounts[ctx.need_auth()].following)


def _orgs_of(ctx: Ctx, login: str) -> list[str]:
    return [a.login for a in ctx.world.accounts.values()
            if a.type == "Organization" and login in a.members]


@route("GET", "/user/orgs")
def my_orgs(ctx: Ctx) -> Paged:
    return Paged(_orgs_of(ctx, ctx.need_auth()),
                 lambda login: s.render_org_simple(ctx.world, ctx.urls, login))


@route("GET", "/users/{username}/orgs")
def user_orgs(ctx: Ctx, username: str) -> Paged:
    return Paged(_orgs_of(ctx, _account(ctx, username).login),
                 lambda login: s.render_org_simple(ctx.world, ctx.urls, login))


@route("GET", "/orgs/{org}/members")
def org_members(ctx: Ctx, org: str) -> Paged:
    acct = _account(ctx, org)
    if acct.type != "Organization":
        raise not_found()
    role = ctx.arg("role", "all", ("all", "admin", "member"))
    members = [m for m in acct.members
               if role == "all" or (m in acct.admins) == (role == "admin")]
    if not ctx.member_of(acct):
        # Outsiders see public members only; the simulator makes the first half public.
        return _user_list(ctx, [m for m in acct.members[: len(acct.members) // 2]
                                if m in members])
    return _user_list(ctx, members)


def _team(ctx: Ctx, org: str, slug: str):
    acct = _account(ctx, org)
    if not ctx.member_of(acct):
        raise not_found()
    for team in acct.teams:
        if team.slug == slug:
            return acct, team
    raise not_found()


@route("GET", "/orgs/{org}/teams")
def org_teams(ctx: Ctx, org: str) -> Paged:
    acct = _account(ctx, org)
    if not ctx.member_of(acct):
        raise ApiError(403, "Must have admin rights to Repository.",
                       "https://docs.github.com/rest/teams/teams#list-teams")
    return Paged(acct.teams, lambda t: s.render_team(ctx.world, ctx.urls, acct.login, t))


@route("GET", "/orgs/{org}/teams/{team_slug}/members")
def team_members(ctx: Ctx, org: str, team_slug: str) -> Paged:
    _, team = _team(ctx, org, team_slug)
    return _user_list(ctx, team.members)


@route("GET", "/orgs/{org}/teams/{team_slug}/repos")
def team_repos(ctx: Ctx, org: str, team_slug: str) -> Paged:
    acct, team = _team(ctx, org, team_slug)
    repos = [ctx.world.repos[f"{acct.login}/{n}"] for n in team.repos
             if f"{acct.login}/{n}" in ctx.world.repos]
    return Paged(repos, _minimal(ctx))


# repository listings -------------------------------------------------------------------

def _minimal(ctx: Ctx):
    return lambda r: s.render_minimal_repo(ctx.world, ctx.urls, r, viewer=ctx.viewer)


def _sorted_repos(ctx: Ctx, repos: list[Repo], default_sort: str) -> list[Repo]:
    sort = ctx.arg("sort", default_sort, ("created", "updated", "pushed", "full_name"))
    key = {"created": lambda r: r.created_at, "updated": lambda r: r.updated_at,
           "pushed": lambda r: r.pushed_at or "", "full_name": lambda r: r.full_name.lower()}
    return _order(repos, key[sort], ctx.arg("direction"),
                  "asc" if sort == "full_name" else "desc")


@route("GET", "/user/repos")
def my_repos(ctx: Ctx) -> Paged:
    login = ctx.need_auth()
    rtype = ctx.query.get("type")
    if rtype and ("visibility" in ctx.query or "affiliation" in ctx.query):
        raise ApiError(422, "If you specify visibility or affiliation, you cannot specify type.")
    visibility = ctx.arg("visibility", "all", ("all", "public", "private"))
    affiliation = set((ctx.arg("affiliation") or "owner,collaborator,organization_member")
                      .split(","))
    if rtype:
        ctx.arg("type", None, ("all", "owner", "public", "private", "member"))
        affiliation = {"owner"} if rtype == "owner" else (
            {"collaborator", "organization_member"} if rtype == "member"
            else {"owner", "collaborator", "organization_member"})
        visibility = rtype if rtype in ("public", "private") else "all"
    orgs = set(_orgs_of(ctx, login))
    out = []
    for r in ctx.world.repos.values():
        mine = r.owner == login
        if not ((mine and "owner" in affiliation)
                or (r.owner in orgs and "organization_member" in affiliation)):
            continue
        if visibility == "public" and r.private or visibility == "private" and not r.private:
            continue
        out.append(r)
    return Paged(_sorted_repos(ctx, out, "full_name"),
                 _minimal(ctx))


@route("GET", "/users/{username}/repos")
def user_repos(ctx: Ctx, username: str) -> Paged:
    acct = _account(ctx, username)
    rtype = ctx.arg("type", "owner", ("all", "owner", "member"))
    # Public repositories only, whoever asks; "member" lists collaborations (none here).
    out = [r for r in ctx.world.repos_of(acct.login) if not r.private and rtype != "member"]
    return Paged(_sorted_repos(ctx, out, "full_name"),
                 _minimal(ctx))


@route("GET", "/orgs/{org}/repos")
def org_repos(ctx: Ctx, org: str) -> Paged:
    acct = _account(ctx, org)
    if acct.type != "Organization":
        raise not_found()
    rtype = ctx.arg("type", "all", ("all", "public", "private", "forks", "sources", "member"))
    repos = [r for r in ctx.world.repos_of(acct.login) if ctx.can_see(r)]
    if rtype == "public":
        repos = [r for r in repos if not r.private]
    elif rtype == "private":
        repos = [r for r in repos if r.private]
    elif rtype == "forks":
        repos = [r for r in repos if r.fork]
    elif rtype == "sources":
        repos = [r for r in repos if not r.fork]
    return Paged(_sorted_repos(ctx, repos, "created"),
                 _minimal(ctx))


def _starred(ctx: Ctx, login: str) -> Paged:
    acct = _account(ctx, login)
    pairs = [(ctx.world.repos[n], at) for n, at in acct.starred if n in ctx.world.repos
             and ctx.can_see(ctx.world.repos[n])]
    sort = ctx.arg("sort", "created", ("created", "updated"))
    pairs = _order(pairs, (lambda p: p[1]) if sort == "created" else (lambda p: p[0].updated_at),
                   ctx.arg("direction"), "desc")
    if "star+json" in (ctx.headers.get("Accept") or ""):
        return Paged(pairs, lambda p: s.render_starred_repo(
            ctx.world, ctx.urls, p[0], p[1], viewer=ctx.viewer))
    return Paged(pairs, lambda p: _minimal(ctx)(p[0]))


@route("GET", "/users/{username}/starred")
def user_starred(ctx: Ctx, username: str) -> Paged:
    return _starred(ctx, username)


@route("GET", "/user/starred")
def my_starred(ctx: Ctx) -> Paged:
    return _starred(ctx, ctx.need_auth())


@route("GET", "/user/subscriptions")
def my_subscriptions(ctx: Ctx) -> Paged:
    acct = ctx.world.accounts[ctx.need_auth()]
    repos = [ctx.world.repos[n] for n in acct.watching if n in ctx.world.repos]
    return Paged(repos, _minimal(ctx))


@route("GET", "/users/{username}/subscriptions")
def user_subscriptions(ctx: Ctx, username: str) -> Paged:
    acct = _account(ctx, username)
    repos = [ctx.world.repos[n] for n in acct.watching
             if n in ctx.world.repos and not ctx.world.repos[n].private]
    return Paged(repos, _minimal(ctx))


# a repository --------------------------------------------------------------------------

@route("GET", "/repos/{owner}/{repo}")
def get_repo(ctx: Ctx, owner: str, repo: str) -> Reply:
    r = ctx.repo(owner, repo)
    return Reply(s.render_full_repo(ctx.world, ctx.urls, r, viewer=ctx.viewer),
                 last_modified=r.updated_at)


@route("GET", "/repos/{owner}/{repo}/labels")
def labels(ctx: Ctx, owner: str, repo: str) -> Paged:
    r = ctx.repo(owner, repo)
    return Paged(r.labels, lambda x: s.render_label(ctx.world, ctx.urls, r, x))


@route("GET", "/repos/{owner}/{repo}/milestones")
def milestones(ctx: Ctx, owner: str, repo: str) -> Paged:
    r = ctx.repo(owner, repo)
    state = ctx.arg("state", "open", ("open", "closed", "all"))
    items = [m for m in r.milestones if state == "all" or m.state == state]
    sort = ctx.arg("sort", "due_on", ("due_on", "completeness"))
    items = _order(items, (lambda m: m.due_on or "") if sort == "due_on" else
                   (lambda m: m.number), ctx.arg("direction"), "asc")
    return Paged(items, lambda m: s.render_milestone(ctx.world, ctx.urls, r, m))


@route("GET", "/repos/{owner}/{repo}/hooks")
def hooks(ctx: Ctx, owner: str, repo: str) -> Paged:
    r = ctx.repo(owner, repo)
    if not ctx.is_admin(r):
        raise not_found()
    return Paged([], lambda x: x)


@route("GET", "/repos/{owner}/{repo}/security-advisories")
def security_advisories(ctx: Ctx, owner: str, repo: str) -> Paged:
    ctx.repo(owner, repo)
    return Paged([], lambda x: x)


@route("GET", "/repos/{owner}/{repo}/comments")
def commit_comments(ctx: Ctx, owner: str, repo: str) -> Paged:
    r = ctx.repo(owner, repo)
    return Paged(sorted(r.commit_comments, key=lambda c: c.id),
                 lambda c: s.render_commit_comment(ctx.world, ctx.urls, r, c))


# issues --------------------------------------------------------------------------------

def _issue(ctx: Ctx, r: Repo, number: str) -> Issue:
    for i in r.issues:
        if str(i.number) == number:
            return i
    raise not_found()


@route("GET", "/repos/{owner}/{repo}/issues")
def issues(ctx: Ctx, owner: str, repo: str) -> Paged:
    r = ctx.repo(owner, repo)
    state = ctx.arg("state", "open", ("open", "closed", "all"))
    ctx.arg("filter", "all", ("assigned", "created", "mentioned", "subscribed", "repos", "all"))
    items = [i for i in r.issues if state == "all" or i.state == state]
    if ctx.query.get("labels"):
        wanted = set(ctx.query["labels"].split(","))
        items = [i for i in items if wanted <= set(i.labels)]
    items = _since(items, ctx)
    sort = ctx.arg("sort", "created", ("created", "updated", "comments"))
    key = {"created": lambda i: (i.created_at, i.number), "updated": lambda i: (i.updated_at,
           i.number), "comments": lambda i: (len(i.comments), i.number)}[sort]
    items = _order(items, key, ctx.arg("direction"), "desc")
    return Paged(items, lambda i: s.render_issue(ctx.world, ctx.urls, r, i))


@route("GET", "/repos/{owner}/{repo}/issues/{issue_number}")
def get_issue(ctx: Ctx, owner: str, repo: str, issue_number: str) -> Reply:
    r = ctx.repo(owner, repo)
    i = _issue(ctx, r, issue_number)
    return Reply(s.render_issue(ctx.world, ctx.urls, r, i, detail=True),
                 last_modified=i.updated_at)


def _all_comments(r: Repo):
    return [(i, c) for i in r.issues for c in i.comments]


@route("GET", "/repos/{owner}/{repo}/issues/comments")
def repo_issue_comments(ctx: Ctx, owner: str, repo: str) -> Paged:
    r = ctx.repo(owner, repo)
    pairs = _since(_all_comments(r), ctx, lambda p: p[1].updated_at)
    sort = ctx.arg("sort", "created", ("created", "updated"))
    if "sort" in ctx.query:
        key = (lambda p: (p[1].created_at, p[1].id)) if sort == "created" else \
            (lambda p: (p[1].updated_at, p[1].id))
        pairs = _order(pairs, key, ctx.arg("direction"), "desc")
    else:
        pairs = sorted(pairs, key=lambda p: p[1].id)
    return Paged(pairs, lambda p: s.render_issue_comment(ctx.world, ctx.urls, r, p[0], p[1]))


@route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
def issue_comments(ctx: Ctx, owner: str, repo: str, issue_number: str) -> Paged:
    r = ctx.repo(owner, repo)
    i = _issue(ctx, r, issue_number)
    items = _since(sorted(i.comments, key=lambda c: c.id), ctx)
    return Paged(items, lambda c: s.render_issue_comment(ctx.world, ctx.urls, r, i, c))


@route("GET", "/repos/{owner}/{repo}/issues/events")
def repo_issue_events(ctx: Ctx, owner: str, repo: str) -> Paged:
    r = ctx.repo(owner, repo)
    pairs = sorted(((i, e) for i in r.issues for e in i.events),
                   key=lambda p: (p[1].created_at, p[1].id), reverse=True)
    return Paged(pairs, lambda p: s.render_issue_event(ctx.world, ctx.urls, r, p[0], p[1]))


@route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/events")
def issue_events(ctx: Ctx, owner: str, repo: str, issue_number: str) -> Paged:
    r = ctx.repo(owner, repo)
    i = _issue(ctx, r, issue_number)
    return Paged(sorted(i.events, key=lambda e: (e.created_at, e.id)),
                 lambda e: s.render_issue_event_for_issue(ctx.world, ctx.urls, r, i, e))


@route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/timeline")
def issue_timeline(ctx: Ctx, owner: str, repo: str, issue_number: str) -> Paged:
    r = ctx.repo(owner, repo)
    i = _issue(ctx, r, issue_number)
    items: list = [("event", e.created_at, e) for e in i.events]
    items += [("comment", c.created_at, c) for c in i.comments]
    if i.pull:
        items += [("review", rv.submitted_at, rv) for rv in i.pull.reviews]
    items.sort(key=lambda x: (x[1], x[2].id))
    return Paged(items, lambda x: s.render_timeline_item(ctx.world, ctx.urls, r, i, x[0], x[2]))


# pull requests -------------------------------------------------------------------------

def _pull(ctx: Ctx, r: Repo, number: str) -> Issue:
    i = _issue(ctx, r, number)
    if i.pull is None:
        raise not_found()
    return i


@route("GET", "/repos/{owner}/{repo}/pulls")
def pulls(ctx: Ctx, owner: str, repo: str) -> Paged:
    r = ctx.repo(owner, repo)
    state = ctx.arg("state", "open", ("open", "closed", "all"))
    items = [i for i in r.pulls if state == "all" or i.state == state]
    if ctx.query.get("base"):
        items = [i for i in items if i.pull.base_ref == ctx.query["base"]]
    sort = ctx.arg("sort", "created", ("created", "updated", "popularity", "long-running"))
    key = {"created": lambda i: (i.created_at, i.number),
           "updated": lambda i: (i.updated_at, i.number),
           "popularity": lambda i: (len(i.comments), i.number),
           "long-running": lambda i: (i.created_at, i.number)}[sort]
    items = _order(items, key, ctx.arg("direction"), "desc")
    return Paged(items, lambda i: s.render_pull_simple(ctx.world, ctx.urls, r, i))


@route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}")
def get_pull(ctx: Ctx, owner: str, repo: str, pull_number: str) -> Reply:
    r = ctx.repo(owner, repo)
    i = _pull(ctx, r, pull_number)
    return Reply(s.render_pull(ctx.world, ctx.urls, r, i), last_modified=i.updated_at)


@route("GET", "/repos/{owner}/{repo}/pulls/comments")
def repo_review_comments(ctx: Ctx, owner: str, repo: str) -> Paged:
    r = ctx.repo(owner, repo)
    pairs = [(i, c) for i in r.pulls for c in i.pull.review_comments]
    pairs = _since(pairs, ctx, lambda p: p[1].updated_at)
    if "sort" in ctx.query:
        sort = ctx.arg("sort", "created", ("created", "updated"))
        key = (lambda p: (p[1].created_at, p[1].id)) if sort == "created" else \
            (lambda p: (p[1].updated_at, p[1].id))
        pairs = _order(pairs, key, ctx.arg("direction"), "desc")
    else:
        pairs = sorted(pairs, key=lambda p: p[1].id)
    return Paged(pairs, lambda p: s.render_review_comment(ctx.world, ctx.urls, r, p[0], p[1]))


@route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/comments")
def pull_review_comments(ctx: Ctx, owner: str, repo: str, pull_number: str) -> Paged:
    r = ctx.repo(owner, repo)
    i = _pull(ctx, r, pull_number)
    items = _since(sorted(i.pull.review_comments, key=lambda c: c.id), ctx)
    return Paged(items, lambda c: s.render_review_comment(ctx.world, ctx.urls, r, i, c))


@route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews")
def pull_reviews(ctx: Ctx, owner: str, repo: str, pull_number: str) -> Paged:
    r = ctx.repo(owner, repo)
    i = _pull(ctx, r, pull_number)
    return Paged(sorted(i.pull.reviews, key=lambda v: v.id),
                 lambda v: s.render_review(ctx.world, ctx.urls, r, i, v))


@route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/commits")
def pull_commits(ctx: Ctx, owner: str, repo: str, pull_number: str) -> Paged:
    r = ctx.repo(owner, repo)
    i = _pull(ctx, r, pull_number)
    return Paged(list(i.pull.commits),
                 lambda sha: s.render_pull_commit(ctx.world, ctx.urls, r, sha))


# releases ------------------------------------------------------------------------------

@route("GET", "/repos/{owner}/{repo}/releases")
def releases(ctx: Ctx, owner: str, repo: str) -> Paged:
    r = ctx.repo(owner, repo)
    visible = [x for x in r.releases if not x.draft or ctx.is_admin(r)]
    return Paged(sorted(visible, key=lambda x: x.created_at, reverse=True),
                 lambda x: s.render_release(ctx.world, ctx.urls, r, x))


def _release(ctx: Ctx, r: Repo, release_id: str):
    for x in r.releases:
        if str(x.id) == release_id and (not x.draft or ctx.is_admin(r)):
            return x
    raise not_found()


@route("GET", "/repos/{owner}/{repo}/releases/{release_id}")
def get_release(ctx: Ctx, owner: str, repo: str, release_id: str) -> Reply:
    r = ctx.repo(owner, repo)
    if release_id == "latest":
        published = [x for x in r.releases if not x.draft and not x.prerelease]
        if not published:
            raise not_found()
        return Reply(s.render_release(ctx.world, ctx.urls, r, published[-1]))
    return Reply(s.render_release(ctx.world, ctx.urls, r, _release(ctx, r, release_id)))


@route("GET", "/repos/{owner}/{repo}/releases/{release_id}/assets")
def release_assets(ctx: Ctx, owner: str, repo: str, release_id: str) -> Paged:
    r = ctx.repo(owner, repo)
    rel = _release(ctx, r, release_id)
    return Paged(rel.assets, lambda a: s.render_release_asset(ctx.world, ctx.urls, r, rel, a))


@route("GET", "/repos/{owner}/{repo}/releases/assets/{asset_id}")
def get_asset(ctx: Ctx, owner: str, repo: str, asset_id: str) -> Reply:
    r = ctx.repo(owner, repo)
    for rel in r.releases:
        for a in rel.assets:
            if str(a.id) == asset_id and (not rel.draft or ctx.is_admin(r)):
                if "application/octet-stream" in (ctx.headers.get("Accept") or ""):
                    # GitHub answers with a redirect to short-lived signed storage.
                    where = ctx.urls.download(ctx.sim.sign(f"{r.full_name}|{a.id}"))
                    return Reply(None, status=302, raw=b"", headers={"Location": where},
                                 content_type="text/html;charset=utf-8")
                return Reply(s.render_release_asset(ctx.world, ctx.urls, r, rel, a))
    raise not_found()


def serve_download(handler: Handler, sim: Simulator, token: str) -> None:
    if handler.headers.get("Authorization"):
        # Object storage behind GitHub's redirect is pre-signed; like S3 it refuses a
        # second credential (and a client that sends one has leaked its token there).
        handler.send(400, b"<Error><Code>InvalidArgument</Code><Message>Only one auth "
                     b"mechanism allowed</Message></Error>", {}, "application/xml")
        return
    payload = sim.unsign(token)
    asset = None
    if payload:
        full_name, asset_id = payload.split("|")
        repo = sim.world.repos.get(full_name)
        for rel in repo.releases if repo else []:
            for a in rel.assets:
                if str(a.id) == asset_id:
                    asset = a
    if asset is None:
        handler.send(403, b"<Error><Code>AccessDenied</Code></Error>", {}, "application/xml")
        return
    sim.stats.add("downloads")
    if sim.faults.cut_download():
        sim.stats.fault("download-cut")
        handler.cut_body = True
    # RFC 6266's encoded form: any name (a newline, a NUL) stays inside its header.
    disposition = f"attachment; filename*=UTF-8''{quote(asset.name, safe='')}"
    handler.send(200, asset.data, {"Content-Disposition": disposition},
                 "application/octet-stream")


# gists ---------------------------------------------------------------------------------

@route("GET", "/users/{username}/gists")
def user_gists(ctx: Ctx, username: str) -> Paged:
    acct = _account(ctx, username)
    gists = [g for g in ctx.world.gists_of(acct.login) if g.public or ctx.viewer == g.owner]
    gists = _order(_since(gists, ctx), lambda g: g.created_at, None, "desc")
    return Paged(gists, lambda g: s.render_base_gist(ctx.world, ctx.urls, g))


@route("GET", "/gists")
def my_gists(ctx: Ctx) -> Paged:
    login = ctx.need_auth()
    gists = _order(_since(ctx.world.gists_of(login), ctx), lambda g: g.created_at, None, "desc")
    return Paged(gists, lambda g: s.render_base_gist(ctx.world, ctx.urls, g))


@route("GET", "/gists/starred")
def starred_gists(ctx: Ctx) -> Paged:
    ctx.need_auth()
    return Paged([], lambda g: g)


@route("GET", "/gists/{gist_id}")
def get_gist(ctx: Ctx, gist_id: str) -> Reply:
    g = ctx.world.gists.get(gist_id)
    if g is None:
        raise not_found()
    return Reply(s.render_gist(ctx.world, ctx.urls, g), last_modified=g.updated_at)


# rate limit ----------------------------------------------------------------------------

@route("GET", "/rate_limit")
def rate_limit(ctx: Ctx) -> Reply:
    anon = ctx.viewer is None
    core = ctx.sim.rate.peek(ctx.rate_key, "core", anon)
    gql = ctx.sim.rate.peek(ctx.rate_key, "graphql", anon)
    return Reply(s.render_rate_limit(core.limit, core.remaining, core.used, core.reset,
                                     graphql=(gql.limit, gql.remaining, gql.used, gql.reset)))


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
