"""Issue and pull request renderers: issues, comments, events, timeline, pulls, reviews,
review comments and pull request commits. Import them from `tests.github_sim.shapes`."""

from __future__ import annotations

from typing import Any

from .model import Comment, Issue, IssueEvent, Repo, Review, ReviewComment, World
from .shapes_common import (
    JSON,
    NOREPLY_DOMAIN,
    author_association,
    blank,
    fake_sha,
    find_label,
    maybe_user,
    node_id,
    reactions,
    render_simple_user,
    repo_api,
)
from .shapes_repo import render_label, render_milestone, render_minimal_repo
from .urls import Urls

# sha -> (message, author login, ISO date); what a caller knows about commits from git
CommitInfo = dict[str, tuple[str, str, str]]

PULL_ID_OFFSET = 4_000_000_000  # the model gives a pull request one id: its issue's

# GraphQL type prefixes of issue event node ids
EVENT_PREFIX = {
    "closed": "CE", "reopened": "REE", "labeled": "LE", "unlabeled": "UNLE",
    "assigned": "AE", "unassigned": "UAE", "milestoned": "MIE", "demilestoned": "DEME",
    "renamed": "RTE", "referenced": "REFE", "merged": "ME", "locked": "LOE",
    "unlocked": "UNLOE", "head_ref_deleted": "HRDE", "head_ref_restored": "HRRE",
    "head_ref_force_pushed": "HRFPE", "mentioned": "MEE", "subscribed": "SE",
    "unsubscribed": "USE", "review_requested": "RRE", "review_request_removed": "RRRE",
    "ready_for_review": "RFRE", "convert_to_draft": "CTDE", "pinned": "PIE",
    "unpinned": "UPIE", "transferred": "TE",
}


def pull_id(i: Issue) -> int:
    """The pull request's own id (GitHub numbers issues and pull requests separately)."""
    return i.id + PULL_ID_OFFSET


def issue_node_id(r: Repo, i: Issue) -> str:
    # The issue object of a pull request carries the pull request's node id.
    return node_id("PR", r.id, pull_id(i)) if i.pull else node_id("I", r.id, i.id)


def _label(w: World, u: Urls, r: Repo, name: str) -> JSON:
    return render_label(w, u, r, find_label(r, name))


def _milestone(w: World, u: Urls, r: Repo, number: int | None) -> JSON | None:
    for m in r.milestones:
        if m.number == number:
            return render_milestone(w, u, r, m)
    return None


def _web(u: Urls, r: Repo, i: Issue) -> str:
    return u.html(f"{r.full_name}/{'pull' if i.pull else 'issues'}/{i.number}")


# issues --------------------------------------------------------------------------------

def render_issue(w: World, u: Urls, r: Repo, i: Issue, detail: bool = False) -> JSON:
    """`issue`; pull requests carry `pull_request` and `draft`. `detail` is the single
    issue form (GET /repos/{o}/{r}/issues/{n}), which alone includes `closed_by`."""
    url = f"{repo_api(u, r)}/issues/{i.number}"
    out: JSON = {
        "url": url,
        "repository_url": repo_api(u, r),
        "labels_url": f"{url}/labels{{/name}}",
        "comments_url": f"{url}/comments",
        "events_url": f"{url}/events",
        "html_url": _web(u, r, i),
        "id": i.id,
        "node_id": issue_node_id(r, i),
        "number": i.number,
        "title": i.title,
        "user": maybe_user(w, u, i.user),
        "labels": [_label(w, u, r, n) for n in i.labels],
        "state": i.state,
        "locked": i.locked,
        "assignee": maybe_user(w, u, i.assignees[0] if i.assignees else None),
        "assignees": [render_simple_user(w, u, a) for a in i.assignees],
        "milestone": _milestone(w, u, r, i.milestone),
        "comments": len(i.comments),
        "created_at": i.created_at,
        "updated_at": i.updated_at,
        "closed_at": i.closed_at,
        "author_association": author_association(w, r, i.user),
        "type": None,
        "active_lock_reason": None,
        "sub_issues_summary": {"total": 0, "completed": 0, "percent_completed": 0},
        "issue_dependencies_summary": {"blocked_by": 0, "total_blocked_by": 0, "blocking": 0,
                                       "total_blocking": 0},
    }
    if i.pull:
        web = _web(u, r, i)
        out["draft"] = i.pull.draft
        out["pull_request"] = {"url": f"{repo_api(u, r)}/pulls/{i.number}", "html_url": web,
                               "diff_url": f"{web}.diff", "patch_url": f"{web}.patch",
                               "merged_at": i.pull.merged_at}
    out["body"] = blank(i.body)
    if detail:
        out["closed_by"] = maybe_user(w, u, i.closed_by)
    out["reactions"] = reactions(f"{url}/reactions")
    out["timeline_url"] = f"{url}/timeline"
    out["performed_via_github_app"] = None
    out["state_reason"] = i.state_reason
    return out


def render_issue_comment(w: World, u: Urls, r: Repo, i: Issue, c: Comment) -> JSON:
    """`issue-comment` (both the per-issue and the repository-wide list)."""
    url = f"{repo_api(u, r)}/issues/comments/{c.id}"
    return {
        "url": url,
        "html_url": f"{_web(u, r, i)}#issuecomment-{c.id}",
        "issue_url": f"{repo_api(u, r)}/issues/{i.number}",
        "id": c.id,
        "node_id": node_id("IC", r.id, c.id),
        "user": maybe_user(w, u, c.user),
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "author_association": author_association(w, r, c.user),
        "body": c.body,
        "reactions": reactions(f"{url}/reactions"),
        "performed_via_github_app": None,
    }


# events --------------------------------------------------------------------------------

def _event(w: World, u: Urls, r: Repo, i: Issue, e: IssueEvent, timeline: bool) -> JSON:
    api = repo_api(u, r)
    out: JSON = {
        "id": e.id,
        "node_id": node_id(EVENT_PREFIX.get(e.event, "E"), r.id, i.id, e.id),
        "url": f"{api}/issues/events/{e.id}",
        "actor": render_simple_user(w, u, e.actor),
        "event": e.event,
        "commit_id": e.commit_id,
        "commit_url": f"{api}/commits/{e.commit_id}" if e.commit_id else None,
        "created_at": e.created_at,
    }
    kind = e.event
    if kind in ("labeled", "unlabeled") and e.label is not None:
        out["label"] = {"name": e.label, "color": find_label(r, e.label).color}
    elif kind in ("assigned", "unassigned") and e.assignee:
        out["assignee"] = render_simple_user(w, u, e.assignee)
        if not timeline:
            out["assigner"] = render_simple_user(w, u, e.actor)
    elif kind in ("review_requested", "review_request_removed") and e.assignee:
        out["review_requester"] = render_simple_user(w, u, e.actor)
        out["requested_reviewer"] = render_simple_user(w, u, e.assignee)
    elif kind in ("milestoned", "demilestoned") and e.milestone is not None:
        out["milestone"] = {"title": e.milestone}
    elif kind == "renamed":
        out["rename"] = {"from": e.rename_from or "", "to": e.rename_to or ""}
    elif kind == "locked":
        out["lock_reason"] = None
    elif kind == "closed":
        out["state_reason"] = _closed_reason(i)
    out["performed_via_github_app"] = None
    return out


def _closed_reason(i: Issue) -> str | None:
    if i.pull:
        return None
    if i.state == "closed" and i.state_reason in ("completed", "not_planned", "duplicate"):
        return i.state_reason
    return "completed"


def render_issue_event(w: World, u: Urls, r: Repo, i: Issue, e: IssueEvent) -> JSON:
    """`issue-event` (GET /repos/{o}/{r}/issues/events): the event and its issue."""
    out = _event(w, u, r, i, e, timeline=False)
    out["issue"] = render_issue(w, u, r, i)
    return out


def render_issue_event_for_issue(w: World, u: Urls, r: Repo, i: Issue,
                                 e: IssueEvent) -> JSON:
    """`issue-event-for-issue` (GET /repos/{o}/{r}/issues/{n}/events)."""
    return _event(w, u, r, i, e, timeline=False)


def render_timeline_item(w: World, u: Urls, r: Repo, i: Issue, kind: str, obj: Any,
                         commits: CommitInfo | None = None) -> JSON:
    """One `timeline-issue-events` item. `kind` is "event" (an IssueEvent), "comment"
    (a Comment: event "commented"), "review" (a Review: event "reviewed") or "commit"
    (a sha on the pull request: event "committed")."""
    if kind == "event":
        return _event(w, u, r, i, obj, timeline=True)
    if kind == "comment":
        out = render_issue_comment(w, u, r, i, obj)
        out["event"] = "commented"
        out["actor"] = render_simple_user(w, u, obj.user)
        return out
    if kind == "review":
        out = render_review(w, u, r, i, obj)
        out["body"] = blank(obj.body)
        out["state"] = obj.state.lower()
        out["event"] = "reviewed"
        return out
    if kind == "commit":
        return _timeline_commit(w, u, r, obj, commits)
    raise ValueError(f"unknown timeline item kind {kind!r}")


# pull requests -------------------------------------------------------------------------

def _ref(w: World, u: Urls, r: Repo, ref: str, sha: str) -> JSON:
    return {"label": f"{r.owner}:{ref}", "ref": ref, "sha": sha,
            "user": render_simple_user(w, u, r.owner), "repo": render_minimal_repo(w, u, r)}


def render_pull_simple(w: World, u: Urls, r: Repo, i: Issue) -> JSON:
    """`pull-request-simple` (GET /repos/{o}/{r}/pulls)."""
    p = i.pull
    if p is None:
        raise ValueError(f"{r.full_name}#{i.number} is not a pull request")
    api = repo_api(u, r)
    url = f"{api}/pulls/{i.number}"
    web = _web(u, r, i)
    issue_url = f"{api}/issues/{i.number}"
    links = {
        "self": url, "html": web, "issue": issue_url, "comments": f"{issue_url}/comments",
        "review_comments": f"{url}/comments", "review_comment": f"{api}/pulls/comments{{/number}}",
        "commits": f"{url}/commits", "statuses": f"{api}/statuses/{p.head_sha}",
    }
    return {
        "url": url,
        "id": pull_id(i),
        "node_id": node_id("PR", r.id, pull_id(i)),
        "html_url": web,
        "diff_url": f"{web}.diff",
        "patch_url": f"{web}.patch",
        "issue_url": issue_url,
        "number": i.number,
        "state": i.state,
        "locked": i.locked,
        "title": i.title,
        "user": maybe_user(w, u, i.user),
        "body": blank(i.body),
        "created_at": i.created_at,
        "updated_at": i.updated_at,
        "closed_at": i.closed_at,
        "merged_at": p.merged_at,
        "merge_commit_sha": p.merge_commit_sha,
        "assignee": maybe_user(w, u, i.assignees[0] if i.assignees else None),
        "assignees": [render_simple_user(w, u, a) for a in i.assignees],
        "requested_reviewers": [],
        "requested_teams": [],
        "labels": [_label(w, u, r, n) for n in i.labels],
        "milestone": _milestone(w, u, r, i.milestone),
        "draft": p.draft,
        "commits_url": links["commits"],
        "review_comments_url": links["review_comments"],
        "review_comment_url": links["review_comment"],
        "comments_url": links["comments"],
        "statuses_url": links["statuses"],
        "head": _ref(w, u, r, p.head_ref, p.head_sha),
        "base": _ref(w, u, r, p.base_ref, p.base_sha),
        "_links": {k: {"href": v} for k, v in links.items()},
        "author_association": author_association(w, r, i.user),
        "auto_merge": None,
        "active_lock_reason": None,
    }


def render_pull(w: World, u: Urls, r: Repo, i: Issue) -> JSON:
    """`pull-request` (GET /repos/{o}/{r}/pulls/{n}): the list form plus merge state and
    counts."""
    out = render_pull_simple(w, u, r, i)
    p = i.pull
    assert p is not None
    is_open = i.state == "open"
    out.update({
        "merged": p.merged,
        "mergeable": True if is_open else None,
        "rebaseable": True if is_open else None,
        "mergeable_state": ("draft" if p.draft else "clean") if is_open else "unknown",
        "merged_by": maybe_user(w, u, p.merged_by),
        "comments": len(i.comments),
        "review_comments": len(p.review_comments),
        "maintainer_can_modify": False,
        "commits": len(p.commits),
        "additions": p.additions,
        "deletions": p.deletions,
        "changed_files": p.changed_files,
    })
    return out


def render_review(w: World, u: Urls, r: Repo, i: Issue, v: Review) -> JSON:
    """`pull-request-review`."""
    pull_url = f"{repo_api(u, r)}/pulls/{i.number}"
    html = f"{_web(u, r, i)}#pullrequestreview-{v.id}"
    out: JSON = {
        "id": v.id,
        "node_id": node_id("PRR", r.id, v.id),
        "user": maybe_user(w, u, v.user),
        "body": v.body,
        "state": v.state,
        "html_url": html,
        "pull_request_url": pull_url,
        "author_association": author_association(w, r, v.user),
        "_links": {"html": {"href": html}, "pull_request": {"href": pull_url}},
        "commit_id": v.commit_id or None,
    }
    if v.state != "PENDING":
        out["submitted_at"] = v.submitted_at
    return out


def _diff_hunk(c: ReviewComment) -> str:
    start = max(1, c.line - 3)
    context = [f" line {n}" for n in range(start, c.line)]
    return "\n".join([f"@@ -{start},{len(context)} +{start},{len(context) + 1} @@",
                      *context, f"+line {c.line}"])


def render_review_comment(w: World, u: Urls, r: Repo, i: Issue, c: ReviewComment) -> JSON:
    """`pull-request-review-comment`."""
    api = repo_api(u, r)
    url = f"{api}/pulls/comments/{c.id}"
    html = f"{_web(u, r, i)}#discussion_r{c.id}"
    pull_url = f"{api}/pulls/{i.number}"
    out: JSON = {
        "url": url,
        "pull_request_review_id": c.review_id,
        "id": c.id,
        "node_id": node_id("PRRC", r.id, c.id),
        "diff_hunk": _diff_hunk(c),
        "path": c.path,
        "commit_id": c.commit_id,
        "original_commit_id": c.commit_id,
        "user": maybe_user(w, u, c.user),
        "body": c.body,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "html_url": html,
        "pull_request_url": pull_url,
        "author_association": author_association(w, r, c.user),
        "_links": {"self": {"href": url}, "html": {"href": html},
                   "pull_request": {"href": pull_url}},
        "reactions": reactions(f"{url}/reactions"),
        "start_line": None,
        "original_start_line": None,
        "start_side": None,
        "line": c.line,
        "original_line": c.line,
        "side": "RIGHT",
        "original_position": c.line,
        "position": c.line,
        "subject_type": "line",
    }
    if c.in_reply_to_id is not None:
        out["in_reply_to_id"] = c.in_reply_to_id
    return out


# commits -------------------------------------------------------------------------------

def _commit_facts(w: World, r: Repo, sha: str,
                  commits: CommitInfo | None) -> tuple[str, str, str, list[str]]:
    """(message, author login, date, parent shas) for a commit the model knows by sha."""
    parents: list[str] = []
    message, author, date = f"Commit {sha[:7]}", r.owner, r.pushed_at or r.created_at
    for i in r.pulls:
        if sha in i.pull.commits:
            k = i.pull.commits.index(sha)
            parent = i.pull.commits[k - 1] if k else i.pull.base_sha
            parents = [parent] if parent else []
            message, author, date = f"{i.title} ({k + 1})", i.user, i.created_at
            break
    else:
        if sha in r.commit_shas:
            k = r.commit_shas.index(sha)
            parents = [r.commit_shas[k - 1]] if k else []
    if commits and sha in commits:
        message, author, date = commits[sha]
    acct = w.account(author)
    if acct is not None and acct.type == "Organization":
        author = w.owners.get("user", author)
    return message, author, date, parents


def _git_person(login: str, date: str) -> JSON:
    return {"name": login, "email": f"{login}@{NOREPLY_DOMAIN}", "date": date}


def _verification() -> JSON:
    return {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
            "verified_at": None}


def render_pull_commit(w: World, u: Urls, r: Repo, sha: str,
                       commits: CommitInfo | None = None) -> JSON:
    """`commit` as GET /repos/{o}/{r}/pulls/{n}/commits lists it. The model records only
    shas: message, author and date come from `commits` (sha -> (message, login, date))
    when given, else from the pull request ("<title> (k)", its author, its creation)."""
    message, author, date, parents = _commit_facts(w, r, sha, commits)
    api = repo_api(u, r)
    person = _git_person(author, date)
    user = render_simple_user(w, u, author) if w.account(author) else None
    return {
        "sha": sha,
        "node_id": node_id("C", r.id, sha),
        "commit": {
            "author": person,
            "committer": dict(person),
            "message": message,
            "tree": {"sha": fake_sha("tree", sha), "url":
                     f"{api}/git/trees/{fake_sha('tree', sha)}"},
            "url": f"{api}/git/commits/{sha}",
            "comment_count": sum(c.commit_id == sha for c in r.commit_comments),
            "verification": _verification(),
        },
        "url": f"{api}/commits/{sha}",
        "html_url": u.html(f"{r.full_name}/commit/{sha}"),
        "comments_url": f"{api}/commits/{sha}/comments",
        "author": user,
        "committer": user,
        "parents": [{"sha": p, "url": f"{api}/commits/{p}",
                     "html_url": u.html(f"{r.full_name}/commit/{p}")} for p in parents],
    }


def _timeline_commit(w: World, u: Urls, r: Repo, sha: str,
                     commits: CommitInfo | None) -> JSON:
    message, author, date, parents = _commit_facts(w, r, sha, commits)
    api = repo_api(u, r)
    person = _git_person(author, date)
    tree = fake_sha("tree", sha)
    return {
        "sha": sha,
        "node_id": node_id("C", r.id, sha),
        "url": f"{api}/git/commits/{sha}",
        "html_url": u.html(f"{r.full_name}/commit/{sha}"),
        "author": person,
        "committer": dict(person),
        "tree": {"sha": tree, "url": f"{api}/git/trees/{tree}"},
        "message": message,
        "parents": [{"sha": p, "url": f"{api}/git/commits/{p}",
                     "html_url": u.html(f"{r.full_name}/commit/{p}")} for p in parents],
        "verification": _verification(),
        "event": "committed",
    }
