"""GraphQL resolvers for discussions and projects (v2) (model_content.py), registered into
graphql_api's RESOLVERS when that module loads. Same conventions as graphql_api.py: every
field named here answers from the model; any other field of these types is an error."""

from __future__ import annotations

import base64
import html
from typing import Any

from graphql import GraphQLResolveInfo

from .graphql_api import (
    ACTOR,
    REPOSITORY,
    RESOLVERS,
    Conn,
    Ctx,
    Fn,
    Obj,
    SimError,
    _c,
    _unpack,
    association,
    attrs,
    consts,
    find_node,
    issue_obj,
    paginate,
    selects,
    unimplemented,
    url,
    web_fields,
)
from .model_content import Discussion, DiscussionComment, Project, ProjectItem
from .shapes_common import node_id

ALL_REACTIONS = ("THUMBS_UP", "THUMBS_DOWN", "LAUGH", "HOORAY", "CONFUSED", "HEART", "ROCKET",
                 "EYES")
PROJECT_SCOPE = "read:project"


def content(i: GraphQLResolveInfo):
    return _c(i).world.content


def reaction_groups(o: Obj, a: dict, i: GraphQLResolveInfo) -> list[dict]:
    return [{"content": r, "createdAt": o.item.created_at if o.item.reactions.get(r) else None,
             "viewerHasReacted": False, "_count": o.item.reactions.get(r, 0)}
            for r in ALL_REACTIONS]


def reactors(o: dict, a: dict, i: GraphQLResolveInfo) -> Conn:
    if selects(i, {"nodes", "edges"}):
        raise unimplemented("listing reactors (their count is modelled)")
    conn = paginate(i, a, [], lambda x: x)
    conn.total = o["_count"]
    return conn


def discussions_of(o: Obj, i: GraphQLResolveInfo) -> list[Discussion]:
    c = content(i)
    return c.discussions.get(o.item.full_name, []) if c else []


def discussion_path(o: Obj) -> str:
    d = o.item if isinstance(o.item, Discussion) else o.issue[0]
    return f"{o.repo.full_name}/discussions/{d.number}"


def category_of(o: Obj, i: GraphQLResolveInfo) -> Obj:
    cats = content(i).categories.get(o.repo.full_name, [])
    return Obj("DiscussionCategory", next(c for c in cats if c.id == o.item.category_id), o.repo)


def comment_obj(o: Obj, c: DiscussionComment, parent: DiscussionComment | None = None) -> Obj:
    d = o.item if isinstance(o.item, Discussion) else o.issue[0]
    return Obj("DiscussionComment", c, o.repo, (d, parent))


def answer(o: Obj) -> DiscussionComment | None:
    return next((c for c in o.item.comments if c.id == o.item.answer_id), None)


def by_discussion_number(o: Obj, a: dict, i: GraphQLResolveInfo) -> Obj:
    for d in discussions_of(o, i):
        if d.number == a["number"]:
            return Obj("Discussion", d, o.item)
    raise SimError("NOT_FOUND", f"Could not resolve to a Discussion with the number of "
                   f"{a['number']}.")


TEXT = "body bodyText=body createdAt=created_at updatedAt=updated_at publishedAt=created_at " \
       "upvoteCount=upvotes databaseId=id"
COMMON = {"author": lambda o, a, i: _c(i).actor(o.item.user),
          # GitHub renders the Markdown; plain paragraphs of escaped text stand in for it
          "bodyHTML": lambda o, a, i: f'<p dir="auto">{html.escape(o.item.body)}</p>',
          "authorAssociation": lambda o, a, i: association(_c(i).world, o.repo, o.item.user),
          "reactionGroups": reaction_groups,
          "repository": lambda o, a, i: Obj("Repository", o.repo, o.repo)} | consts(
    lastEditedAt=None, editor=None, includesCreatedEdit=False, createdViaEmail=False)

DISCUSSION = attrs(TEXT + " number title closed locked") | COMMON | consts(
    closedAt=None, stateReason=None, activeLockReason=None, poll=None) | web_fields(
    discussion_path) | {
    "labels": lambda o, a, i: paginate(i, a, [], lambda x: x),  # none generated
    "id": lambda o, a, i: node_id("D", o.repo.id, o.item.id),
    "category": lambda o, a, i: category_of(o, i),
    "isAnswered": lambda o, a, i: answer(o) is not None,
    "answer": lambda o, a, i: (lambda c: comment_obj(o, c) if c else None)(answer(o)),
    "answerChosenAt": lambda o, a, i: (lambda c: c.created_at if c else None)(answer(o)),
    "answerChosenBy": lambda o, a, i: _c(i).actor(o.repo.owner) if answer(o) else None,
    "comments": lambda o, a, i: paginate(i, a, o.item.comments, lambda c: comment_obj(o, c))}

DISCUSSION_COMMENT = attrs(TEXT) | COMMON | consts(isMinimized=False, minimizedReason=None,
                                                   deletedAt=None) | web_fields(
    lambda o: f"{discussion_path(o)}#discussioncomment-{o.item.id}") | {
    "id": lambda o, a, i: node_id("DC", o.repo.id, o.item.id),
    "isAnswer": lambda o, a, i: o.issue[0].answer_id == o.item.id,
    "discussion": lambda o, a, i: Obj("Discussion", o.issue[0], o.repo),
    "replyTo": lambda o, a, i: comment_obj(Obj("Discussion", o.issue[0], o.repo), o.issue[1])
    if o.issue[1] else None,
    "replies": lambda o, a, i: paginate(
        i, a, o.item.replies if o.issue[1] is None else [],
        lambda c: comment_obj(Obj("Discussion", o.issue[0], o.repo), c, o.item))}

CATEGORY = attrs("name slug emoji description isAnswerable=answerable createdAt=created_at "
                 "updatedAt=created_at") | {
    "id": lambda o, a, i: node_id("DIC", o.repo.id, o.item.id),
    "emojiHTML": lambda o, a, i: f"<div>{o.item.emoji}</div>",
    "repository": lambda o, a, i: Obj("Repository", o.repo, o.repo)}


# projects (v2) ---------------------------------------------------------------------------

def check_scope(i: GraphQLResolveInfo, field: str) -> None:
    scopes = _c(i).scopes
    if scopes is not None and PROJECT_SCOPE not in scopes:
        granted = ", ".join(f"'{s}'" for s in sorted(scopes))
        raise SimError("INSUFFICIENT_SCOPES", "Your token has not been granted the required "
                       f"scopes to execute this query. The '{field}' field requires one of the "
                       f"following scopes: ['{PROJECT_SCOPE}'], but your token has only been "
                       f"granted the: [{granted}] scopes. Please modify your token's scopes "
                       "at: https://github.com/settings/tokens.")


def projects_of(o: Obj, i: GraphQLResolveInfo) -> list[Project]:
    c = content(i)
    return c.projects.get(o.item.login, []) if c else []


def projects(o: Obj, a: dict, i: GraphQLResolveInfo) -> Conn:
    check_scope(i, "projectsV2")
    if a.get("query") or a.get("minPermissionLevel") not in (None, "READ"):
        raise unimplemented("the query and minPermissionLevel filters of projectsV2")
    return paginate(i, a, projects_of(o, i), lambda p: Obj("ProjectV2", p), lambda p: (p.number,))


def project_by_number(o: Obj, a: dict, i: GraphQLResolveInfo) -> Obj:
    check_scope(i, "projectV2")
    for p in projects_of(o, i):
        if p.number == a["number"]:
            return Obj("ProjectV2", p)
    raise SimError("NOT_FOUND", f"Could not resolve to a ProjectV2 with the number {a['number']}.")


def project_path(p: Project, i: GraphQLResolveInfo) -> str:
    kind = "orgs" if _c(i).world.accounts[p.owner].type == "Organization" else "users"
    return f"{kind}/{p.owner}/projects/{p.number}"


def field_obj(p: Project, f: Any) -> Obj:
    return Obj("ProjectV2SingleSelectField" if f.data_type == "SINGLE_SELECT"
               else "ProjectV2Field", f, None, p)


def value_objs(o: Obj) -> list[Obj]:
    p, item, out = o.issue, o.item, []
    for f in p.fields:
        if f.name in item.values:
            kind = {"SINGLE_SELECT": "SingleSelect", "NUMBER": "Number", "DATE": "Date"}.get(
                f.data_type, "Text")
            out.append(Obj(f"ProjectV2ItemField{kind}Value", (f, item.values[f.name], item),
                           None, p))
    return out


def item_content(o: Obj, i: GraphQLResolveInfo) -> Obj | None:
    item: ProjectItem = o.item
    if item.kind == "DRAFT_ISSUE":
        return Obj("DraftIssue", item, None, o.issue)
    repo = _c(i).world.repos.get(item.repo)
    if repo is None or not _c(i).visible(repo):
        return None  # GitHub shows a redacted item: content null
    return issue_obj(repo, next(x for x in repo.issues if x.number == item.number))


PROJECT = attrs("databaseId=id number title shortDescription=description readme public "
                "closed createdAt=created_at updatedAt=updated_at") | consts(
    closedAt=None, template=False) | {
    "id": lambda o, a, i: node_id("PVT", o.item.id),
    "url": lambda o, a, i: url(i, project_path(o.item, i)),
    "resourcePath": lambda o, a, i: "/" + project_path(o.item, i),
    "creator": lambda o, a, i: _c(i).actor(o.item.creator),
    "owner": lambda o, a, i: _c(i).actor(o.item.owner),
    "fields": lambda o, a, i: paginate(i, a, o.item.fields, lambda f: field_obj(o.item, f)),
    "views": lambda o, a, i: paginate(i, a, o.item.views, lambda v: Obj("ProjectV2View", v,
                                                                        None, o.item)),
    "items": lambda o, a, i: paginate(i, a, o.item.items, lambda x: Obj("ProjectV2Item", x,
                                                                        None, o.item))}
FIELD = attrs("databaseId=id name dataType=data_type") | {
    "id": lambda o, a, i: node_id("PVTF", o.issue.id, o.item.id),
    "createdAt": lambda o, a, i: o.issue.created_at,
    "updatedAt": lambda o, a, i: o.issue.updated_at,
    "project": lambda o, a, i: Obj("ProjectV2", o.issue)}
SINGLE_SELECT = FIELD | {
    "options": lambda o, a, i: [{"id": oid, "name": n, "nameHTML": n, "color": "GRAY",
                                 "description": "", "descriptionHTML": ""}
                                for oid, n in o.item.options
                                if not a.get("names") or n in a["names"]]}
VIEW = attrs("databaseId=id number name layout filter") | {
    "id": lambda o, a, i: node_id("PVTV", o.issue.id, o.item.id),
    "createdAt": lambda o, a, i: o.issue.created_at,
    "updatedAt": lambda o, a, i: o.issue.updated_at,
    "project": lambda o, a, i: Obj("ProjectV2", o.issue)}
ITEM = attrs("databaseId=id type=kind isArchived=archived createdAt=created_at "
             "updatedAt=created_at") | {
    "id": lambda o, a, i: node_id("PVTI", o.issue.id, o.item.id),
    "fullDatabaseId": lambda o, a, i: str(o.item.id),
    "creator": lambda o, a, i: _c(i).actor(o.issue.creator),
    "project": lambda o, a, i: Obj("ProjectV2", o.issue),
    "content": lambda o, a, i: item_content(o, i),
    "fieldValues": lambda o, a, i: paginate(i, a, value_objs(o), lambda v: v,
                                            lambda v: (v.item[0].id,))}
DRAFT = {"id": lambda o, a, i: node_id("DI", o.item.id),
         "title": lambda o, a, i: o.item.title, "body": lambda o, a, i: o.item.body,
         "bodyText": lambda o, a, i: o.item.body,
         "createdAt": lambda o, a, i: o.item.created_at,
         "updatedAt": lambda o, a, i: o.item.created_at,
         "creator": lambda o, a, i: _c(i).actor(o.issue.creator)}


def value_fields(**extra: Fn) -> dict[str, Fn]:
    return {"id": lambda o, a, i: node_id("PVTFV", o.item[2].id, o.item[0].id),
            "databaseId": lambda o, a, i: o.item[0].id,
            "field": lambda o, a, i: field_obj(o.issue, o.item[0]),
            "item": lambda o, a, i: Obj("ProjectV2Item", o.item[2], None, o.issue),
            "createdAt": lambda o, a, i: o.item[2].created_at,
            "updatedAt": lambda o, a, i: o.item[2].created_at,
            "creator": lambda o, a, i: _c(i).actor(o.issue.creator)} | extra


def option_id(o: Obj) -> str | None:
    return next((oid for oid, n in o.item[0].options if n == o.item[1]), None)


REPOSITORY.update({
    "hasDiscussionsEnabled": lambda o, a, i: bool(discussions_of(o, i)),
    "discussions": lambda o, a, i: paginate(
        i, a, discussions_of(o, i), lambda d: Obj("Discussion", d, o.item),
        *(((lambda d: (d.created_at, d.id)), (a.get("orderBy") or {}).get("direction") == "DESC")
          if a.get("orderBy") else ())),
    "discussion": by_discussion_number,
    "discussionCategories": lambda o, a, i: paginate(
        i, a, (content(i).categories.get(o.item.full_name, []) if content(i) else []),
        lambda c: Obj("DiscussionCategory", c, o.item))})
ACTOR.update({"projectsV2": projects, "projectV2": project_by_number})
RESOLVERS.update({
    "Discussion": DISCUSSION, "DiscussionComment": DISCUSSION_COMMENT,
    "DiscussionCategory": CATEGORY, "ReactionGroup": {"reactors": reactors},
    "ProjectV2": PROJECT, "ProjectV2Field": FIELD, "ProjectV2SingleSelectField": SINGLE_SELECT,
    "ProjectV2View": VIEW, "ProjectV2Item": ITEM, "DraftIssue": DRAFT,
    "ProjectV2ItemFieldTextValue": value_fields(text=lambda o, a, i: str(o.item[1])),
    "ProjectV2ItemFieldNumberValue": value_fields(number=lambda o, a, i: o.item[1]),
    "ProjectV2ItemFieldDateValue": value_fields(date=lambda o, a, i: o.item[1]),
    "ProjectV2ItemFieldSingleSelectValue": value_fields(
        name=lambda o, a, i: o.item[1], nameHTML=lambda o, a, i: o.item[1],
        optionId=lambda o, a, i: option_id(o), color=lambda o, a, i: "GRAY",
        description=lambda o, a, i: "", descriptionHTML=lambda o, a, i: ""),
})


def find_any(ctx: Ctx, gid: str, strict: bool) -> Obj | None:
    """node(id:) for discussions, their comments and projects, else graphql_api's."""
    prefix, _, rest = gid.partition("_")
    try:
        parts = _unpack(base64.urlsafe_b64decode(rest + "=" * (-len(rest) % 4)))[1:]
    except (ValueError, KeyError, IndexError, UnicodeDecodeError):
        parts = []
    c = ctx.world.content
    if c is not None and prefix in ("D", "DC") and len(parts) == 2:
        repo = next((r for r in ctx.world.repos.values() if r.id == parts[0]), None)
        for d in c.discussions.get(repo.full_name, []) if ctx.visible(repo) else []:
            dobj = Obj("Discussion", d, repo)
            if prefix == "D" and d.id == parts[1]:
                return dobj
            for cm in d.comments:
                if prefix == "DC" and cm.id == parts[1]:
                    return comment_obj(dobj, cm)
                for r in cm.replies:
                    if prefix == "DC" and r.id == parts[1]:
                        return comment_obj(dobj, r, cm)
    if c is not None and prefix == "PVT" and len(parts) == 1:
        for p in (p for ps in c.projects.values() for p in ps):
            if p.id == parts[0]:
                return Obj("ProjectV2", p)
    return find_node(ctx, gid, strict)


RESOLVERS["Query"].update({
    "node": lambda o, a, i: find_any(_c(i), a["id"], True),
    "nodes": lambda o, a, i: [find_any(_c(i), n, False) for n in a["ids"]]})
