"""GitHub's GraphQL API (POST /graphql) over the simulator's World.

Every query is parsed and validated against GitHub's published schema, its cost is worked
out the way GitHub documents it, then it runs with resolvers keyed by (type, field). Errors
come back in GitHub's (graphql-ruby's) shapes. A field of the schema the simulator does not
model answers an error naming it instead of a quiet null, so tests notice.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphql
from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema, get_named_type, print_ast
from graphql import language as ast
from graphql.execution.values import get_variable_values

from .model import Account, Issue, Repo, World
from .shapes_common import account_id, author_association, node_id

MAX_PAGE = 100
MAX_NODES = 500_000
DOCS = "https://docs.github.com/graphql"
RateInfo = Callable[[int], dict]
Fn = Callable[["Obj", dict, GraphQLResolveInfo], Any]


def load_schema(path: Path | str) -> GraphQLSchema:
    data = json.loads(Path(path).read_text())
    schema = graphql.build_client_schema(data.get("data", data))
    # graphql-core's own schema-consistency check rejects GitHub's schema (deprecated fields
    # implementing interfaces); marking it done skips only that check. Every query is still
    # validated against the schema by graphql.validate() before it runs.
    schema._validation_errors = []
    return schema


# cursors (and global ids, see shapes_common.node_id) are MessagePack in base64, as GitHub's --

def _pack(value: Any) -> bytes:
    if isinstance(value, (list, tuple)):
        return bytes([0x90 | len(value)]) + b"".join(_pack(v) for v in value)
    if isinstance(value, str):
        raw = value.encode()
        return (bytes([0xA0 | len(raw)]) if len(raw) < 32 else bytes([0xD9, len(raw)])) + raw
    if value < 128:
        return bytes([value])
    size = next(n for n in (1, 2, 4, 8) if value < 1 << (8 * n))
    return bytes([{1: 0xCC, 2: 0xCD, 4: 0xCE, 8: 0xCF}[size]]) + value.to_bytes(size, "big")


def _unpack(raw: bytes) -> list:
    def one(i: int) -> tuple[Any, int]:
        b = raw[i]
        if b < 0x80:
            return b, i + 1
        if 0x90 <= b < 0xA0:
            out, i = [], i + 1
            for _ in range(b & 0x0F):
                v, i = one(i)
                out.append(v)
            return out, i
        if 0xA0 <= b < 0xC0 or b == 0xD9:
            n, i = (b & 0x1F, i + 1) if b != 0xD9 else (raw[i + 1], i + 2)
            return raw[i:i + n].decode(), i + n
        size = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[b]
        return int.from_bytes(raw[i + 1:i + 1 + size], "big"), i + 1 + size

    value, end = one(0)
    if end != len(raw) or not isinstance(value, list):
        raise ValueError("not a packed list")
    return value


def make_cursor(key: tuple) -> str:
    return base64.b64encode(b"cursor:v2:" + _pack(list(key))).decode()


def read_cursor(text: str) -> tuple | None:
    try:
        raw = base64.b64decode(text, validate=True)
        return tuple(_unpack(raw[10:])) if raw.startswith(b"cursor:v2:") else None
    except (ValueError, KeyError, IndexError, UnicodeDecodeError):
        return None


# what resolvers work with ----------------------------------------------------------------

class SimError(Exception):
    """An execution error; `kind` becomes GitHub's "type" (NOT_FOUND, ...)."""

    def __init__(self, kind: str | None, message: str):
        super().__init__(message)
        self.kind = kind


def unimplemented(what: str) -> SimError:
    return SimError(None, f"the GitHub simulator does not implement {what}")


@dataclass(frozen=True)
class Obj:
    typename: str  # the GraphQL object type it resolves as
    item: Any  # the model object (an Account, Repo, Issue, Review, ..., or a sha)
    repo: Repo | None = None
    issue: Issue | None = None


@dataclass
class Conn:
    nodes: list
    cursors: list[str]
    total: int
    has_next: bool = False
    has_prev: bool = False
    extra: dict = field(default_factory=dict)


@dataclass
class Ctx:
    world: World
    viewer: str | None
    can_see: Callable[[Repo], bool]
    root: str  # html root, for url fields
    fragments: dict[str, ast.FragmentDefinitionNode]
    cost: int = 1
    node_count: int = 0
    rate: dict = field(default_factory=dict)
    scopes: frozenset[str] | None = None  # a PAT's OAuth scopes; None: not limited by scope

    def visible(self, repo: Repo | None) -> bool:
        return repo is not None and (not repo.private or self.can_see(repo))

    def repo(self, owner: str, name: str) -> Repo | None:
        want = f"{owner}/{name}".lower()
        repo = self.world.repos.get(f"{owner}/{name}") or next(
            (r for r in self.world.repos.values() if r.full_name.lower() == want), None)
        return repo if self.visible(repo) else None

    def actor(self, login: str | None) -> Obj | None:
        """The account behind a login; logins the world has no account for (deleted users,
        "ghost") get the same stand-in REST renders (shapes_common.account_id)."""
        if not login:
            return None
        acct = self.world.account(login)
        if acct is None:
            name, ident, kind = account_id(self.world, login)
            acct = Account(name, ident, kind, "", "2008-01-01T00:00:00Z", "2008-01-01T00:00:00Z")
        return Obj(acct.type, acct)


def _c(info: GraphQLResolveInfo) -> Ctx:
    return info.context


def selects(info: GraphQLResolveInfo, names: set[str]) -> bool:
    """Whether the current field's selection asks for any of `names` (fragments followed)."""
    def walk(sel: ast.SelectionSetNode | None) -> bool:
        for s in sel.selections if sel else ():
            if isinstance(s, ast.FieldNode):
                if s.name.value in names:
                    return True
            elif walk(s.selection_set if isinstance(s, ast.InlineFragmentNode)
                      else _c(info).fragments[s.name.value].selection_set):
                return True
        return False

    return any(walk(n.selection_set) for n in info.field_nodes)


def paginate(info: GraphQLResolveInfo, a: dict, items: list, wrap: Callable[[Any], Any],
             key: Callable[[Any], tuple] = lambda x: (x.id,), reverse: bool = False) -> Conn:
    """A connection page as GitHub cuts it: keyset cursors, first/last at most 100."""
    name, first, last = info.field_name, a.get("first"), a.get("last")
    for arg, n in (("first", first), ("last", last)):
        if n is not None and n > MAX_PAGE:
            raise SimError("EXCESSIVE_PAGINATION", f"Requesting {n} records on the `{name}` "
                           f"connection exceeds the `{arg}` limit of {MAX_PAGE} records.")
        if n is not None and n < 0:
            raise SimError("INVALID_PAGINATION",
                           f"`{arg}` on the `{name}` connection cannot be less than zero.")
    if first is None and last is None and selects(info, {"nodes", "edges"}):
        raise SimError("MISSING_PAGINATION_BOUNDARIES", "You must provide a `first` or `last` "
                       f"value to properly paginate the `{name}` connection.")
    window = sorted(items, key=key, reverse=reverse)
    total, has_next, has_prev = len(window), False, False
    for arg, forward in (("after", True), ("before", False)):
        if a.get(arg) is None:
            continue
        mark = read_cursor(a[arg])
        later = forward != reverse  # keep keys above the mark (or below it)
        try:
            keep = None if mark is None else [
                x for x in window if (key(x) > mark if later else key(x) < mark)]
        except TypeError:  # a cursor from another ordering
            keep = None
        if keep is None:
            raise SimError("INVALID_CURSOR_ARGUMENTS",
                           f"`{a[arg]}` does not appear to be a valid cursor.")
        if forward:
            has_prev = len(keep) < len(window)
        else:
            has_next = len(keep) < len(window)
        window = keep
    if first is not None:
        has_next, window = has_next or len(window) > first, window[:first]
    if last is not None:
        has_prev, window = has_prev or len(window) > last, window[max(0, len(window) - last):]
    return Conn([wrap(x) for x in window], [make_cursor(key(x)) for x in window], total,
                has_next, has_prev)


def conn_field(c: Conn, name: str) -> Any:
    if name == "nodes":
        return c.nodes
    if name == "edges":
        return [{"cursor": cur, "node": n} for cur, n in zip(c.cursors, c.nodes, strict=True)]
    if name == "pageInfo":
        return {"hasNextPage": c.has_next, "hasPreviousPage": c.has_prev,
                "startCursor": c.cursors[0] if c.cursors else None,
                "endCursor": c.cursors[-1] if c.cursors else None}
    return c.total if name == "totalCount" else c.extra[name]


# resolvers: type name -> field name -> fn(obj, args, info) ---------------------------------

def attrs(spec: str) -> dict[str, Fn]:
    """Plain fields, "graphqlName=model_attr" ("attr?" answers null for an empty value)."""
    def getter(attr: str, blank_null: bool) -> Fn:
        return lambda o, a, i: (getattr(o.item, attr) or None) if blank_null else getattr(
            o.item, attr)

    out = {}
    for pair in spec.split():
        name, _, attr = pair.partition("=")
        out[name] = getter((attr or name).rstrip("?"), attr.endswith("?"))
    return out


def const(value: Any) -> Fn:
    return lambda o, a, i: value


def consts(**values: Any) -> dict[str, Fn]:
    return {name: const(v) for name, v in values.items()}


def pull_attr(attr: str) -> Fn:
    return lambda o, a, i: getattr(o.item.pull, attr)


def url(info: GraphQLResolveInfo, path: str) -> str:
    return f"{_c(info).root}/{path}"


def web_fields(path: Callable[[Obj], str]) -> dict[str, Fn]:
    return {"url": lambda o, a, i: url(i, path(o)), "resourcePath": lambda o, a, i: f"/{path(o)}"}


def association(world: World, repo: Repo, login: str | None) -> str:
    return author_association(world, repo, login) if login else "NONE"


def state_of(x: Issue) -> str:
    return "MERGED" if x.pull and x.pull.merged else x.state.upper()


def issue_obj(repo: Repo, issue: Issue) -> Obj:
    return Obj("PullRequest" if issue.pull else "Issue", issue, repo, issue)


def commit(o: Obj, sha: str | None) -> Obj | None:
    return Obj("Commit", sha, o.repo) if sha else None


ACTOR = attrs("login databaseId=id name=name? createdAt=created_at updatedAt=updated_at "
              "bio=bio? description=bio? company=company? location=location? "
              "websiteUrl=blog?") | web_fields(lambda o: o.item.login) | {
    "id": lambda o, a, i: node_id(o.typename[0], o.item.id),
    "avatarUrl": lambda o, a, i: url(i, f"avatars/u/{o.item.id}?v=4"),  # as REST's
    "email": lambda o, a, i: o.item.email or ("" if o.typename == "User" else None)}


def issue_list(o: Obj, a: dict, pulls: bool) -> list[Issue]:
    out = [x for x in o.item.issues if (x.pull is not None) == pulls]
    f = {**(a.get("filterBy") or {}), **{k: a[k] for k in ("states", "labels") if k in a}}
    known = {"states", "labels", "since", "createdBy", "assignee", "milestoneNumber"}
    if unknown := {k for k, v in f.items() if v not in (None, False, [])} - known:
        what = "pullRequests" if pulls else "issues"
        raise unimplemented(f"the {sorted(unknown)} filters of {what}")
    tests: list[Callable[[Issue], bool]] = [
        lambda x: not f.get("states") or state_of(x) in f["states"],
        lambda x: not f.get("labels") or bool(set(x.labels) & set(f["labels"])),
        lambda x: not f.get("since") or x.updated_at >= f["since"],
        lambda x: not f.get("createdBy") or x.user.lower() == f["createdBy"].lower(),
        lambda x: not f.get("assignee") or f["assignee"] in x.assignees,
        lambda x: milestone_matches(f.get("milestoneNumber"), x.milestone),
        lambda x: a.get("headRefName") in (None, x.pull and x.pull.head_ref),
        lambda x: a.get("baseRefName") in (None, x.pull and x.pull.base_ref)]
    return [x for x in out if all(t(x) for t in tests)]


def milestone_matches(wanted: str | None, number: int | None) -> bool:
    if wanted in (None, "*", "none"):
        return wanted is None or (wanted == "*") == (number is not None)
    return str(number) == wanted


def listing(pulls: bool) -> Fn:
    def fn(o: Obj, a: dict, i: GraphQLResolveInfo) -> Conn:
        order = a.get("orderBy") or {}
        key = {None: lambda x: (x.id,), "CREATED_AT": lambda x: (x.created_at, x.id),
               "UPDATED_AT": lambda x: (x.updated_at, x.id),
               "COMMENTS": lambda x: (len(x.comments), x.id)}[order.get("field")]
        return paginate(i, a, issue_list(o, a, pulls), lambda x: issue_obj(o.item, x), key,
                        order.get("direction") == "DESC")
    return fn


def by_number(kind: str, pulls: bool) -> Fn:
    def fn(o: Obj, a: dict, i: GraphQLResolveInfo) -> Obj:
        for x in o.item.issues if kind != "Discussion" else ():
            if x.number == a["number"] and (x.pull is not None) == pulls:
                return issue_obj(o.item, x)
        raise SimError("NOT_FOUND", f"Could not resolve to a{'n' if kind[0] in 'AEIOU' else ''} "
                       f"{kind} with the number of {a['number']}.")
    return fn


REPOSITORY = attrs(
    "databaseId=id name nameWithOwner=full_name description=description? isPrivate=private "
    "isFork=fork isArchived=archived isEmpty=empty hasWikiEnabled=has_wiki "
    "hasIssuesEnabled=has_issues createdAt=created_at updatedAt=updated_at pushedAt=pushed_at "
    "stargazerCount=stargazers forkCount=forks_count diskUsage=size_kb"
) | consts(isLocked=False, isDisabled=False, isTemplate=False, isMirror=False,
           hasDiscussionsEnabled=False) | web_fields(lambda o: o.item.full_name) | {
    "id": lambda o, a, i: node_id("R", o.item.id),
    "owner": lambda o, a, i: _c(i).actor(o.item.owner),
    "visibility": lambda o, a, i: o.item.visibility.upper(),
    "parent": lambda o, a, i: (lambda r: Obj("Repository", r, r) if r else None)(
        _c(i).repo(*o.item.parent.split("/", 1)) if o.item.parent else None),
    "discussions": lambda o, a, i: paginate(i, a, [], lambda x: x),
    "discussion": by_number("Discussion", False),
    "pullRequests": listing(True), "issues": listing(False),
    "pullRequest": by_number("PullRequest", True), "issue": by_number("Issue", False),
    "labels": lambda o, a, i: paginate(i, a, o.item.labels, lambda x: Obj("Label", x, o.item))}


def timeline(o: Obj, a: dict, i: GraphQLResolveInfo) -> Conn:
    """Counts only: the world keeps comments, events, reviews and commits but no
    cross-references, so listing an item that exists is unimplemented."""
    x: Issue = o.item
    kinds = ["ISSUE_COMMENT"] * len(x.comments) + [
        "RENAMED_TITLE_EVENT" if e.event == "renamed"
        else e.event.upper().replace("-", "_") + "_EVENT" for e in x.events]
    if x.pull:
        kinds += ["PULL_REQUEST_REVIEW"] * len(x.pull.reviews)
        kinds += ["PULL_REQUEST_COMMIT"] * len(x.pull.commits)
    chosen = [k for k in kinds if a.get("itemTypes") is None or k in a["itemTypes"]]
    if chosen and (selects(i, {"nodes", "edges"}) or a.get("since") or a.get("skip")):
        raise unimplemented(f"listing timelineItems of type {sorted(set(chosen))}")
    conn = paginate(i, a, [], lambda n: n)
    # On a pull request GitHub's totalCount ignores itemTypes; on an issue it honours them.
    conn.total = len(kinds) if o.typename == "PullRequest" else len(chosen)
    conn.extra = {"filteredCount": len(chosen), "pageCount": len(chosen),
                  "updatedAt": x.updated_at}
    return conn


def issue_path(o: Obj) -> str:
    return f"{o.repo.full_name}/{'pull' if o.issue.pull else 'issues'}/{o.issue.number}"


ISSUE = attrs("databaseId=id number title body bodyText=body locked createdAt=created_at "
              "updatedAt=updated_at publishedAt=created_at closedAt=closed_at"
              ) | consts(lastEditedAt=None) | web_fields(issue_path) | {
    "id": lambda o, a, i: node_id("PR" if o.issue.pull else "I", o.repo.id, o.item.id),
    "state": lambda o, a, i: state_of(o.item),
    "stateReason": lambda o, a, i: (o.item.state_reason or "").upper() or None,
    "closed": lambda o, a, i: o.item.state == "closed",
    "author": lambda o, a, i: _c(i).actor(o.item.user),
    "authorAssociation": lambda o, a, i: association(_c(i).world, o.repo, o.item.user),
    "repository": lambda o, a, i: Obj("Repository", o.repo, o.repo),
    "labels": lambda o, a, i: paginate(i, a, [x for x in o.repo.labels if x.name in o.item.labels],
                                       lambda x: Obj("Label", x, o.repo)),
    "assignees": lambda o, a, i: paginate(
        i, a, [x for n in o.item.assignees if (x := _c(i).world.account(n))],
        lambda x: Obj("User", x)),
    "comments": lambda o, a, i: paginate(i, a, o.item.comments,
                                         lambda c: Obj("IssueComment", c, o.repo, o.item)),
    "timelineItems": timeline}

PULL = {k: v for k, v in ISSUE.items() if k != "stateReason"} | {
    f: pull_attr(attr) for f, attr in (
        ("isDraft", "draft"), ("merged", "merged"), ("mergedAt", "merged_at"),
        ("headRefName", "head_ref"), ("baseRefName", "base_ref"), ("headRefOid", "head_sha"),
        ("baseRefOid", "base_sha"), ("additions", "additions"), ("deletions", "deletions"),
        ("changedFiles", "changed_files"))} | {
    "mergedBy": lambda o, a, i: _c(i).actor(o.item.pull.merged_by),
    "mergeCommit": lambda o, a, i: commit(o, o.item.pull.merge_commit_sha),
    "permalink": lambda o, a, i: url(i, issue_path(o)),
    "reviews": lambda o, a, i: paginate(
        i, a, [r for r in o.item.pull.reviews if (not a.get("states") or r.state in a["states"])
               and (not a.get("author") or r.user.lower() == a["author"].lower())],
        lambda r: Obj("PullRequestReview", r, o.repo, o.item))}


def comment_fields(prefix: str, anchor: str, created: str, updated: str) -> dict[str, Fn]:
    """What issue comments, reviews and review comments share."""
    return attrs(f"databaseId=id body bodyText=body createdAt={created} updatedAt={updated} "
                 f"publishedAt={created}") | consts(lastEditedAt=None, isMinimized=False) | {
        "id": lambda o, a, i: node_id(prefix, o.repo.id, o.item.id),
        "author": lambda o, a, i: _c(i).actor(o.item.user),
        "authorAssociation": lambda o, a, i: association(_c(i).world, o.repo, o.item.user),
        "repository": lambda o, a, i: Obj("Repository", o.repo, o.repo),
        "pullRequest": lambda o, a, i: issue_obj(o.repo, o.issue),
        "issue": lambda o, a, i: issue_obj(o.repo, o.issue),
    } | web_fields(lambda o: f"{issue_path(o)}#{anchor}{o.item.id}")


def diff_hunk(line: int) -> str:
    """The model keeps no diff hunks: a made-up one that ends at the commented line."""
    start = max(1, line - 3)
    return f"@@ -{start},{line - start} +{start},{line - start + 1} @@" + "".join(
        f"\n {n}" for n in range(start, line)) + f"\n+{line}"


def find(items: list, ident: int | None, typename: str, o: Obj) -> Obj | None:
    hit = next((x for x in items if ident is not None and x.id == ident), None)
    return Obj(typename, hit, o.repo, o.issue) if hit else None


REVIEW = comment_fields("PRR", "pullrequestreview-", "submitted_at", "submitted_at") | attrs(
    "state submittedAt=submitted_at") | {
    "commit": lambda o, a, i: commit(o, o.item.commit_id),
    "comments": lambda o, a, i: paginate(
        i, a, [c for c in o.issue.pull.review_comments if c.review_id == o.item.id],
        lambda c: Obj("PullRequestReviewComment", c, o.repo, o.issue))}

REVIEW_COMMENT = comment_fields("PRRC", "discussion_r", "created_at", "updated_at") | attrs(
    "path line originalLine=line position=line originalPosition=line"
) | consts(startLine=None, originalStartLine=None, outdated=False, state="SUBMITTED",
           subjectType="LINE") | {
    "diffHunk": lambda o, a, i: diff_hunk(o.item.line),
    "commit": lambda o, a, i: commit(o, o.item.commit_id),
    "originalCommit": lambda o, a, i: commit(o, o.item.commit_id),
    "replyTo": lambda o, a, i: find(o.issue.pull.review_comments, o.item.in_reply_to_id,
                                    "PullRequestReviewComment", o),
    "pullRequestReview": lambda o, a, i: find(o.issue.pull.reviews, o.item.review_id,
                                              "PullRequestReview", o)}


def q_repository(o: Any, a: dict, i: GraphQLResolveInfo) -> Obj:
    repo = _c(i).repo(a["owner"], a["name"])
    if repo is None:
        raise SimError("NOT_FOUND", "Could not resolve to a Repository with the name "
                       f"'{a['owner']}/{a['name']}'.")
    return Obj("Repository", repo, repo)


def q_account(kind: str) -> Fn:
    def fn(o: Any, a: dict, i: GraphQLResolveInfo) -> Obj:
        found = _c(i).actor(a["login"])
        if found is None or kind not in ("RepositoryOwner", found.typename):
            raise SimError("NOT_FOUND", f"Could not resolve to a{'n' if kind[0] in 'AEIOU' else ''}"
                           f" {kind} with the login of '{a['login']}'.")
        return found
    return fn


def q_viewer(o: Any, a: dict, i: GraphQLResolveInfo) -> Obj:
    found = _c(i).actor(_c(i).viewer)
    if found is None:
        raise SimError("FORBIDDEN", "This endpoint requires you to be authenticated.")
    return found


def q_rate_limit(o: Any, a: dict, i: GraphQLResolveInfo) -> dict:
    if a.get("dryRun"):
        raise unimplemented("rateLimit(dryRun: true)")
    c = _c(i)
    return {"cost": c.cost, "limit": c.rate["limit"], "remaining": c.rate["remaining"],
            "used": c.rate["used"], "nodeCount": c.node_count,
            "resetAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(c.rate["reset"]))}


PREFIX = {"Issue": "I", "PullRequest": "PR", "IssueComment": "IC", "PullRequestReview": "PRR",
          "PullRequestReviewComment": "PRRC"}


def find_node(ctx: Ctx, gid: str, strict: bool) -> Obj | None:
    """node(id:) for the ids handed out here: repositories, accounts, issues, pulls,
    reviews and comments."""
    prefix, _, rest = gid.partition("_")
    try:
        parts = _unpack(base64.urlsafe_b64decode(rest + "=" * (-len(rest) % 4)))[1:]
    except (ValueError, KeyError, IndexError, UnicodeDecodeError):
        parts = []
    found: Obj | None = None
    if prefix in ("U", "O") and len(parts) == 1:
        acct = next((x for x in ctx.world.accounts.values() if x.id == parts[0]), None)
        found = Obj(acct.type, acct) if acct and acct.type[0] == prefix else None
    repo = next((r for r in ctx.world.repos.values() if parts and r.id == parts[0]), None)
    if ctx.visible(repo) and prefix == "R" and len(parts) == 1:
        found = Obj("Repository", repo, repo)
    elif ctx.visible(repo) and len(parts) == 2:
        for x in repo.issues:
            p = x.pull
            cands = [issue_obj(repo, x)] + [Obj("IssueComment", c, repo, x) for c in x.comments]
            cands += [Obj("PullRequestReview", v, repo, x) for v in (p.reviews if p else [])]
            cands += [Obj("PullRequestReviewComment", v, repo, x)
                      for v in (p.review_comments if p else [])]
            found = next((c for c in cands if c.item.id == parts[1]
                          and PREFIX[c.typename] == prefix), found)
    if found is None and strict:
        raise SimError("NOT_FOUND", f"Could not resolve to a node with the global id of '{gid}'")
    return found


RESOLVERS: dict[str, dict[str, Fn]] = {
    "Query": {"repository": q_repository, "viewer": q_viewer, "rateLimit": q_rate_limit,
              "user": q_account("User"), "organization": q_account("Organization"),
              "repositoryOwner": q_account("RepositoryOwner"),
              "node": lambda o, a, i: find_node(_c(i), a["id"], True),
              "nodes": lambda o, a, i: [find_node(_c(i), n, False) for n in a["ids"]]},
    "User": ACTOR, "Organization": ACTOR, "Repository": REPOSITORY, "Issue": ISSUE,
    "PullRequest": PULL, "PullRequestReview": REVIEW, "PullRequestReviewComment": REVIEW_COMMENT,
    "IssueComment": comment_fields("IC", "issuecomment-", "created_at", "updated_at"),
    "Commit": {"oid": lambda o, a, i: o.item, "abbreviatedOid": lambda o, a, i: o.item[:7],
               "id": lambda o, a, i: node_id("C", o.repo.id, o.item)}
    | web_fields(lambda o: f"{o.repo.full_name}/commit/{o.item}"),
    "Label": attrs("name color description=description? isDefault=default") | {
        "id": lambda o, a, i: node_id("LA", o.repo.id, o.item.id)}
    | web_fields(lambda o: f"{o.repo.full_name}/labels/{o.item.name}"),
}


def resolve(parent: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    type_name, name = info.parent_type.name, info.field_name
    if type_name.startswith("__"):
        return graphql.default_field_resolver(parent, info, **args)
    if isinstance(parent, Conn) and (name in ("nodes", "edges", "pageInfo", "totalCount")
                                     or name in parent.extra):
        return conn_field(parent, name)
    if isinstance(parent, dict) and name in parent:  # edges, pageInfo, rateLimit
        return parent[name]
    fn = RESOLVERS.get(type_name, {}).get(name)
    if fn is None:
        raise unimplemented(f"field {name} on type {type_name}")
    return fn(parent, args, info)


def type_of(value: Any, info: GraphQLResolveInfo, abstract: Any) -> str | None:
    return value.typename if isinstance(value, Obj) else None


# errors in GitHub's (graphql-ruby's) words ------------------------------------------------

TOKENS = {"{": "LCURLY", "}": "RCURLY", "(": "LPAREN", ")": "RPAREN", "[": "LBRACKET",
          "]": "RBRACKET", ":": "COLON", "=": "EQUALS", "!": "BANG", "$": "VAR_SIGN",
          "@": "DIR_SIGN", "|": "PIPE", "&": "AMP", "...": "ELLIPSIS"}
KEYWORDS = {"query", "mutation", "subscription", "fragment", "on", "true", "false", "null",
            "schema", "type", "input", "enum", "union", "interface", "scalar", "extend",
            "directive", "implements", "repeatable"}


def parse_error(source: str, err: GraphQLError) -> dict:
    text = source[err.positions[0]:] if err.positions else ""
    if not text.strip():
        return {"message": "Unexpected end of document", "locations": []}
    tok = re.match(r'\.\.\.|"(?:[^"\\\n]|\\.)*"?|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\w+|.',
                   text, re.S).group(0)
    kind = TOKENS.get(tok) or ("STRING" if tok.startswith('"') else
                               "INT" if re.fullmatch(r"-?\d+", tok) else
                               "FLOAT" if re.fullmatch(r"-?[\d.eE+-]+", tok) else
                               (tok.upper() if tok in KEYWORDS else "IDENTIFIER")
                               if re.fullmatch(r"[_A-Za-z]\w*", tok) else "UNKNOWN_CHAR")
    loc = err.locations[0]
    return {"message": f"Parse error on {json.dumps(tok.strip(chr(34)))} ({kind}) at "
                       f"[{loc.line}, {loc.column}]",
            "locations": [{"line": loc.line, "column": loc.column}]}


def check_nonempty(node: Any) -> None:
    """graphql-core 3.3 accepts `{ }`; GitHub's parser fails on its closing brace."""
    if isinstance(node, ast.SelectionSetNode) and not node.selections and node.loc:
        raise GraphQLError("empty selection", source=node.loc.source, positions=[node.loc.end - 1])
    for key in getattr(node, "keys", ()):
        child = getattr(node, key, None)
        for c in child if isinstance(child, tuple) else (child,):
            if isinstance(c, ast.Node):
                check_nonempty(c)


@dataclass
class Where:
    """Where a node sits as graphql-ruby names it ("query", "repository", "first", ...)."""

    path: list[str]
    node: ast.Node
    field: str | None = None
    arg: ast.ArgumentNode | None = None
    op: ast.OperationDefinitionNode | None = None
    var: str | None = None


def locate(doc: ast.DocumentNode) -> dict[int, Where]:
    out: dict[int, Where] = {}

    def value(v: ast.Node, w: Where) -> None:
        out[id(v)] = w
        for child in getattr(v, "values", None) or getattr(v, "fields", None) or ():
            value(child.value if isinstance(child, ast.ObjectFieldNode) else child, w)

    def walk(sel: ast.SelectionSetNode | None, path: list[str], op: Any) -> None:
        for s in sel.selections if sel else ():
            if isinstance(s, ast.FieldNode):
                p = path + [(s.alias or s.name).value]
                out[id(s)] = Where(p, s, s.name.value, op=op)
                if s.selection_set:
                    out[id(s.selection_set)] = out[id(s)]
                for arg in s.arguments or ():
                    out[id(arg)] = Where(p + [arg.name.value], arg, s.name.value, arg, op)
                    value(arg.value, out[id(arg)])
                walk(s.selection_set, p, op)
            elif isinstance(s, ast.InlineFragmentNode):
                cond = s.type_condition
                w = Where(path + ["..." + (f" on {cond.name.value}" if cond else "")], s, op=op)
                out[id(s)] = out[id(cond)] = w
                walk(s.selection_set, w.path, op)
            else:
                out[id(s)] = out[id(s.name)] = Where(path + [f"... {s.name.value}"], s, op=op)

    for d in doc.definitions:
        if isinstance(d, ast.OperationDefinitionNode):
            root = d.operation.value + (f" {d.name.value}" if d.name else "")
            out[id(d)] = Where([root], d, op=d)
            for vd in d.variable_definitions or ():
                out[id(vd)] = out[id(named(vd.type))] = Where([root], d, op=d,
                                                               var=vd.variable.name.value)
            walk(d.selection_set, [root], d)
        elif isinstance(d, ast.FragmentDefinitionNode):
            out[id(d)] = out[id(d.type_condition)] = Where([f"fragment {d.name.value}"], d)
            walk(d.selection_set, out[id(d)].path, None)
    return out


def named(t: ast.TypeNode) -> ast.NamedTypeNode:
    while not isinstance(t, ast.NamedTypeNode):
        t = t.type
    return t


def op_name(op: ast.OperationDefinitionNode | None) -> str:
    if op is None or op.name is None:
        return f"anonymous {op.operation.value if op else 'query'}"
    return op.name.value


def validation_errors(schema: GraphQLSchema, doc: ast.DocumentNode,
                      errors: list[GraphQLError]) -> list[dict]:
    """graphql-core's validation errors re-worded and shaped as graphql-ruby's."""
    where, out, missing = locate(doc), [], {}
    for err in errors:
        msg, nodes = err.message, err.nodes or []
        at = nodes[-1] if "used in position" in msg else nodes[0] if nodes else None
        w = where.get(id(at))
        node, ext = w.node if w else None, None
        if m := re.match(r"Cannot query field '(\w+)' on type '(\w+)'", msg):
            msg = f"Field '{m[1]}' doesn't exist on type '{m[2]}'"
            ext = {"code": "undefinedField", "typeName": m[2], "fieldName": m[1]}
        elif m := re.match(r"Unknown argument '(\w+)' on field '\w+\.(\w+)'", msg):
            msg = f"Field '{m[2]}' doesn't accept argument '{m[1]}'"
            ext = {"code": "argumentNotAccepted", "name": m[2], "typeName": "Field",
                   "argumentName": m[1]}
        elif m := re.match(r"Argument '(?:\w+\.)?(\w+)\((\w+):\)' of type .* is required", msg):
            if (seen := missing.get(id(at))) is not None:  # graphql-ruby lists them in one
                seen["extensions"]["arguments"] += f", {m[2]}"
                seen["message"] += f", {m[2]}"
                continue
            msg = f"Field '{m[1]}' is missing required arguments: {m[2]}"
            ext = {"code": "missingRequiredArguments", "className": "Field", "name": m[1],
                   "arguments": m[2]}
        elif m := re.match(r"Field '(\w+)' of type '(.+?)' must have a selection", msg):
            msg = (f"Field must have selections (field '{m[1]}' returns {m[2].strip('[]!')} but "
                   f"has no selections. Did you mean '{m[1]} {{ ... }}'?)")
            ext = {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'",
                   "typeName": m[2].strip("[]!")}
        elif m := re.match(r"Field '(\w+)' must not have a selection since type '(.+?)'", msg):
            picked = ", ".join(f'"... on {s.type_condition.name.value} {{ ... }}"'
                               if isinstance(s, ast.InlineFragmentNode) else f'"{s.name.value}"'
                               for s in w.node.selection_set.selections)
            msg = (f"Selections can't be made on scalars (field '{m[1]}' returns "
                   f"{m[2].strip('[]!')} but has selections [{picked}])")
            ext = {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'",
                   "typeName": m[2].strip("[]!")}
        elif m := re.match(r"Variable '\$(\w+)' is never used", msg):
            msg = f"Variable ${m[1]} is declared by {op_name(w.op if w else None)} but not used"
            ext, node = {"code": "variableNotUsed", "variableName": m[1]}, w.op if w else None
        elif m := re.match(r"Variable '\$(\w+)' is not defined", msg):
            msg = f"Variable ${m[1]} is used by {op_name(w.op if w else None)} but not declared"
            ext = {"code": "variableNotDefined", "variableName": m[1]}
        elif m := re.match(r"Variable '\$(\w+)' of type '(.+)' used in position expecting "
                           r"type '(.+)'\.", msg):
            got, want, arg = m[2], m[3], w.arg.name.value if w and w.arg else "?"
            kind = ("Type mismatch" if got.strip("[]!") != want.strip("[]!") else
                    "List dimension mismatch" if got.count("[") != want.count("[") else
                    "Nullability mismatch")
            msg = f"{kind} on variable ${m[1]} and argument {arg} ({got} / {want})"
            ext = {"code": "variableMismatch", "variableName": m[1], "typeName": got,
                   "argumentName": arg, "errorMessage": kind}
        elif (m := re.match(r"Unknown type '(\w+)'", msg)) and w and w.var:
            msg = f"{m[1]} isn't a defined input type (on ${w.var})"
            ext = {"code": "variableRequiresValidType", "typeName": m[1], "variableName": w.var}
        elif m:
            msg = f"No such type {m[1]}, so it can't be a fragment condition"
            ext = {"code": "undefinedType", "typeName": m[1]}
        elif m := re.match(r"(?:Fragment '(\w+)' is never used|Unknown fragment '(\w+)')", msg):
            how = "defined, but not used" if m[1] else "used, but not defined"
            msg = f"Fragment {m[1] or m[2]} was {how}"
            ext = {"code": "useAndDefineFragment", "fragmentName": m[1] or m[2]}
        elif m := re.match(r"Fragment (?:'(\w+)' )?cannot be spread here as objects of type "
                           r"'(\w+)' can never be of type '(\w+)'", msg):
            msg = f"Fragment {m[1] + ' ' if m[1] else ''}on {m[3]} can't be spread inside {m[2]}"
            ext = {"code": "cannotSpreadFragment", "typeName": m[3],
                   "fragmentName": m[1] or "unknown", "parentName": m[2]}
        elif w and w.arg is not None and not isinstance(at, ast.ArgumentNode):
            msg = (f"Argument '{w.arg.name.value}' on Field '{w.field}' has an invalid value "
                   f"({print_ast(w.arg.value)}). Expected type "
                   f"'{arg_type(schema, doc, w.arg)}'.")
            ext = {"code": "argumentLiteralsIncompatible", "typeName": "Field",
                   "argumentName": w.arg.name.value}
        shaped: dict[str, Any] = {"path": w.path} if w else {}
        if ext:
            shaped["extensions"] = ext
        if node and node.loc:
            loc = node.loc.source.get_location(node.loc.start)
            shaped["locations"] = [{"line": loc.line, "column": loc.column}]
        elif err.locations:
            shaped["locations"] = [{"line": x.line, "column": x.column} for x in err.locations]
        shaped["message"] = msg
        if ext and ext["code"] == "missingRequiredArguments":
            missing[id(at)] = shaped
        out.append(shaped)
    return out


def arg_type(schema: GraphQLSchema, doc: ast.DocumentNode, arg: ast.ArgumentNode) -> str:
    """The declared type of the argument a bad literal was given to."""
    info, found = graphql.TypeInfo(schema), []

    class Finder(graphql.Visitor):
        def enter_argument(self, node: ast.ArgumentNode, *_: Any) -> None:
            if node is arg and info.get_argument():
                found.append(str(info.get_argument().type))

    graphql.visit(doc, graphql.TypeInfoVisitor(info, Finder()))
    return found[0] if found else "?"


def variable_error(op: ast.OperationDefinitionNode, err: GraphQLError, given: dict) -> dict:
    m = re.match(r"Variable '\$(\w+)'", err.message)
    vd = next((v for v in op.variable_definitions or () if m and v.variable.name.value == m[1]),
              None)
    if vd is None or vd.loc is None:
        return {"message": err.message}
    value, loc = given.get(m[1]), vd.loc.source.get_location(vd.loc.start)
    why = ("Expected value to not be null" if value is None
           else f"Could not coerce value {json.dumps(value)} to {named(vd.type).name.value}")
    return {"extensions": {"value": value, "problems": [{"path": [], "explanation": why}]},
            "locations": [{"line": loc.line, "column": loc.column}],
            "message": f"Variable ${m[1]} of type {print_ast(vd.type)} was provided invalid value"}


def execution_error(err: GraphQLError) -> dict:
    out: dict[str, Any] = {}
    if isinstance(err.original_error, SimError) and err.original_error.kind:
        out["type"] = err.original_error.kind
    if err.path:
        out["path"] = list(err.path)
    if err.locations:
        out["locations"] = [{"line": x.line, "column": x.column} for x in err.locations]
    out["message"] = err.message
    return out


# cost -------------------------------------------------------------------------------------

def analyse(schema: GraphQLSchema, doc: ast.DocumentNode, op: ast.OperationDefinitionNode,
            variables: dict) -> tuple[int, int, str | None]:
    """(cost, node count, node-limit message or None), by GitHub's documented arithmetic:
    each unique connection takes one request per node of its parent connections (their page
    sizes multiplied) and brings up to that many times its own page size nodes; the cost is
    requests / 100, rounded to the nearest whole number, at least 1."""
    frags = {d.name.value: d for d in doc.definitions if isinstance(d, ast.FragmentDefinitionNode)}
    seen: set[tuple] = set()
    count = {"requests": 0, "nodes": 0}
    over: list[str] = []

    def size(sel: ast.FieldNode) -> int:
        args = {a.name.value: a.value for a in sel.arguments or ()}
        for name in ("first", "last"):
            v = args.get(name)
            n = variables.get(v.name.value) if isinstance(v, ast.VariableNode) else (
                int(v.value) if isinstance(v, ast.IntValueNode) else None)
            if isinstance(n, int):
                return max(n, 0)
        return 0

    def walk(sel_set: ast.SelectionSetNode, parent: Any, mult: int, path: tuple) -> None:
        for sel in sel_set.selections:
            if isinstance(sel, ast.FieldNode):
                fdef = getattr(parent, "fields", {}).get(sel.name.value)
                if fdef is None:
                    continue
                ftype, key, child = get_named_type(fdef.type), path + (
                    (sel.alias or sel.name).value,), mult
                if ftype.name.endswith("Connection") and {"first", "last"} & set(fdef.args):
                    child = mult * size(sel)
                    if key not in seen:
                        seen.add(key)
                        count["requests"] += mult
                        count["nodes"] += child
                        if count["nodes"] > MAX_NODES and not over:
                            over.append(f"By the time this query traverses to the "
                                        f"{sel.name.value} connection, it is requesting up to "
                                        f"{count['nodes']:,} possible nodes which exceeds the "
                                        f"maximum limit of {MAX_NODES:,}.")
                if sel.selection_set:
                    walk(sel.selection_set, ftype, child, key)
            elif isinstance(sel, ast.InlineFragmentNode):
                cond = sel.type_condition
                walk(sel.selection_set, schema.get_type(cond.name.value) if cond else parent,
                     mult, path)
            elif sel.name.value in frags:
                f = frags[sel.name.value]
                walk(f.selection_set, schema.get_type(f.type_condition.name.value), mult, path)

    walk(op.selection_set, schema.get_root_type(op.operation), 1, ())
    return max(1, int(count["requests"] / 100 + 0.5)), count["nodes"], (over or [None])[0]


# the endpoint -----------------------------------------------------------------------------

class GraphQLEndpoint:
    def __init__(self, world_getter: Callable[[], World], schema_path: Path | str):
        self.world_getter = world_getter
        self.schema = load_schema(schema_path)

    def execute(self, body: bytes, viewer: str | None, can_see_private: Callable[[Repo], bool],
                rate_info: RateInfo | None = None, *, html_root: str = "https://github.com",
                scopes: frozenset[str] | None = None) -> tuple[int, dict, int]:
        """(HTTP status, JSON answer, cost in points) for one POST /graphql body.

        `rate_info(cost)` is called once, when the cost is known and before anything runs.
        It should charge the cost and return {"limit", "remaining", "used", "reset" (epoch
        seconds)} as they stand after the charge, with "exceeded": True if the budget could
        not pay (the answer is then GitHub's RATE_LIMITED error). Requests that fail before
        that point (bad JSON, parse, validation, variables, node limit) do not call it: the
        returned cost (0 for unparseable JSON, else 1) is for the caller to charge.
        """
        try:
            req = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            req = None
        if not isinstance(req, dict):
            return 400, {"message": "Problems parsing JSON", "documentation_url": DOCS}, 0
        source, variables = req.get("query"), req.get("variables") or {}
        if isinstance(variables, str):
            try:
                variables = json.loads(variables or "{}") or {}
            except ValueError:
                variables = None
        if not isinstance(source, str) or not source.strip() or not isinstance(variables, dict):
            return 200, {"errors": [{"message": "A query attribute must be specified and must "
                                                "be a string."}]}, 1
        try:
            doc = graphql.parse(source)
            check_nonempty(doc)
        except GraphQLError as e:
            return 200, {"errors": [parse_error(source, e)]}, 1
        if errors := graphql.validate(self.schema, doc):
            return 200, {"errors": validation_errors(self.schema, doc, errors)}, 1
        op = graphql.utilities.get_operation_ast(doc, req.get("operationName"))
        if op is None:
            name = req.get("operationName")
            msg = f'No operation named "{name}"' if name else "An operation name is required"
            return 200, {"errors": [{"message": msg}]}, 1
        coerced = get_variable_values(self.schema, op.variable_definitions or (), variables)
        if isinstance(coerced, list):
            return 200, {"errors": [variable_error(op, e, variables) for e in coerced]}, 1
        cost, nodes, over = analyse(self.schema, doc, op, coerced.coerced)
        if over:
            return 200, {"errors": [{"type": "MAX_NODE_LIMIT_EXCEEDED", "message": over}]}, 1
        world = self.world_getter()
        rate = rate_info(cost) if rate_info else {"limit": 5000, "remaining": 5000 - cost,
                                                  "used": cost, "reset": int(time.time()) + 3600}
        if rate.get("exceeded"):
            acct = world.account(viewer) if viewer else None
            return 200, {"errors": [{"type": "RATE_LIMITED", "message": "API rate limit already "
                                     f"exceeded for user ID {acct.id if acct else 0}."}]}, cost
        frags = {d.name.value: d for d in doc.definitions
                 if isinstance(d, ast.FragmentDefinitionNode)}
        ctx = Ctx(world, viewer, can_see_private, html_root.rstrip("/"), frags, cost, nodes, rate,
                  scopes)
        result = graphql.execute(self.schema, doc, context_value=ctx, variable_values=variables,
                                 operation_name=req.get("operationName"),
                                 field_resolver=resolve, type_resolver=type_of)
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [execution_error(e) for e in result.errors]
        return 200, answer, cost

    def cost(self, query: str, variables: dict | None = None) -> tuple[int, int]:
        """(cost, node count) of a query, for tests and diagnostics."""
        doc = graphql.parse(query)
        return analyse(self.schema, doc, graphql.utilities.get_operation_ast(doc),
                       variables or {})[:2]


from . import graphql_content  # noqa: E402, F401  (registers its resolvers)
