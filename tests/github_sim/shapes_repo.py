"""Repository-level renderers: repositories, labels, milestones, releases, commit
comments and gists. Import them from `tests.github_sim.shapes`."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from .model import CommitComment, Gist, Label, Milestone, Release, ReleaseAsset, Repo, World
from .shapes_common import (
    JSON,
    author_association,
    blank,
    legacy_node_id,
    maybe_user,
    node_id,
    permissions,
    reactions,
    render_simple_user,
    repo_api,
)
from .urls import Urls

# SPDX id -> (key, name, legacy node id number) as GitHub's /licenses lists them.
LICENSES = {
    "MIT": ("mit", "MIT License", 13),
    "Apache-2.0": ("apache-2.0", "Apache License 2.0", 2),
    "GPL-3.0": ("gpl-3.0", "GNU General Public License v3.0", 9),
    "GPL-2.0": ("gpl-2.0", "GNU General Public License v2.0", 8),
    "BSD-3-Clause": ("bsd-3-clause", 'BSD 3-Clause "New" or "Revised" License', 5),
    "BSD-2-Clause": ("bsd-2-clause", 'BSD 2-Clause "Simplified" License', 4),
    "MPL-2.0": ("mpl-2.0", "Mozilla Public License 2.0", 14),
    "Unlicense": ("unlicense", "The Unlicense", 15),
}


def render_license(u: Urls, spdx: str | None) -> JSON | None:
    if spdx is None:
        return None
    if spdx == "NOASSERTION":
        return {"key": "other", "name": "Other", "spdx_id": "NOASSERTION", "url": None,
                "node_id": legacy_node_id("License", 0)}
    key, name, num = LICENSES.get(spdx, (spdx.lower(), spdx, 90 + len(spdx)))
    return {"key": key, "name": name, "spdx_id": spdx, "url": f"{u.api}/licenses/{key}",
            "node_id": legacy_node_id("License", num)}


def _host(u: Urls) -> str:
    return u.site.split("://", 1)[1].split("/")[0].split(":")[0]


def open_issue_count(r: Repo) -> int:
    """GitHub's open_issues_count counts open pull requests too."""
    return sum(i.state == "open" for i in r.issues)


def _repo_body(w: World, u: Urls, r: Repo) -> JSON:
    """The repository object GitHub's listings send (minimal-repository / repository)."""
    url = repo_api(u, r)
    html = u.html(r.full_name)
    return {
        "id": r.id,
        "node_id": node_id("R", r.id),
        "name": r.name,
        "full_name": r.full_name,
        "private": r.private,
        "owner": render_simple_user(w, u, r.owner),
        "html_url": html,
        "description": blank(r.description),
        "fork": r.fork,
        "url": url,
        "forks_url": f"{url}/forks",
        "keys_url": f"{url}/keys{{/key_id}}",
        "collaborators_url": f"{url}/collaborators{{/collaborator}}",
        "teams_url": f"{url}/teams",
        "hooks_url": f"{url}/hooks",
        "issue_events_url": f"{url}/issues/events{{/number}}",
        "events_url": f"{url}/events",
        "assignees_url": f"{url}/assignees{{/user}}",
        "branches_url": f"{url}/branches{{/branch}}",
        "tags_url": f"{url}/tags",
        "blobs_url": f"{url}/git/blobs{{/sha}}",
        "git_tags_url": f"{url}/git/tags{{/sha}}",
        "git_refs_url": f"{url}/git/refs{{/sha}}",
        "trees_url": f"{url}/git/trees{{/sha}}",
        "statuses_url": f"{url}/statuses/{{sha}}",
        "languages_url": f"{url}/languages",
        "stargazers_url": f"{url}/stargazers",
        "contributors_url": f"{url}/contributors",
        "subscribers_url": f"{url}/subscribers",
        "subscription_url": f"{url}/subscription",
        "commits_url": f"{url}/commits{{/sha}}",
        "git_commits_url": f"{url}/git/commits{{/sha}}",
        "comments_url": f"{url}/comments{{/number}}",
        "issue_comment_url": f"{url}/issues/comments{{/number}}",
        "contents_url": f"{url}/contents/{{+path}}",
        "compare_url": f"{url}/compare/{{base}}...{{head}}",
        "merges_url": f"{url}/merges",
        "archive_url": f"{url}/{{archive_format}}{{/ref}}",
        "downloads_url": f"{url}/downloads",
        "issues_url": f"{url}/issues{{/number}}",
        "pulls_url": f"{url}/pulls{{/number}}",
        "milestones_url": f"{url}/milestones{{/number}}",
        "notifications_url": f"{url}/notifications{{?since,all,participating}}",
        "labels_url": f"{url}/labels{{/name}}",
        "releases_url": f"{url}/releases{{/id}}",
        "deployments_url": f"{url}/deployments",
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        # GitHub stamps pushed_at when the repository is created, so it is never null.
        "pushed_at": r.pushed_at or r.created_at,
        "git_url": f"git://{_host(u)}/{r.full_name}.git",
        "ssh_url": u.ssh(r.full_name),
        "clone_url": r.clone_url or u.git(r.full_name),
        "svn_url": html,
        "homepage": None,
        "size": 0 if r.empty else r.size_kb,
        "stargazers_count": r.stargazers,
        "watchers_count": r.stargazers,  # GitHub's historical alias of stargazers
        "language": r.language,
        "has_issues": r.has_issues,
        "has_projects": True,
        "has_downloads": True,
        "has_wiki": r.has_wiki,
        "has_pages": False,
        "has_discussions": bool(w.content and w.content.discussions.get(r.full_name)),
        "forks_count": r.forks_count,
        "mirror_url": None,
        "archived": r.archived,
        "disabled": False,
        "open_issues_count": open_issue_count(r),
        "license": render_license(u, r.license),
        "allow_forking": True,
        "is_template": False,
        "web_commit_signoff_required": False,
        "topics": list(r.topics),
        "visibility": r.visibility,
        "forks": r.forks_count,
        "open_issues": open_issue_count(r),
        "watchers": r.stargazers,
        "default_branch": r.default_branch,
    }


def render_minimal_repo(w: World, u: Urls, r: Repo, viewer: str | None = None) -> JSON:
    """A repository in listings (/user/repos, /users/{u}/repos, /orgs/{o}/repos, starred,
    subscriptions, team repos; also pull request head/base.repo). The object satisfies
    both `minimal-repository` and `repository`. `viewer` adds `permissions`."""
    out = _repo_body(w, u, r)
    perms = permissions(w, r, viewer)
    if perms is not None:
        out["permissions"] = perms
    return out


def render_starred_repo(w: World, u: Urls, r: Repo, starred_at: str,
                        viewer: str | None = None) -> JSON:
    """`starred-repository`: the application/vnd.github.star+json form of a star."""
    return {"starred_at": starred_at, "repo": render_minimal_repo(w, u, r, viewer)}


def _source(w: World, r: Repo) -> Repo:
    seen = {r.full_name}
    while r.parent and r.parent in w.repos and r.parent not in seen:
        r = w.repos[r.parent]
        seen.add(r.full_name)
    return r


def render_full_repo(w: World, u: Urls, r: Repo, viewer: str | None = None) -> JSON:
    """`full-repository` (GET /repos/{owner}/{repo}); forks carry `parent` and `source`,
    organisation repositories `organization`; `viewer` adds permissions and, with push
    access, the merge settings GitHub shows only to writers."""
    out = _repo_body(w, u, r)
    perms = permissions(w, r, viewer)
    if perms is not None:
        out["permissions"] = perms
        if perms["push"]:
            out.update({
                "allow_squash_merge": True, "allow_merge_commit": True,
                "allow_rebase_merge": True, "allow_auto_merge": False,
                "delete_branch_on_merge": False, "allow_update_branch": False,
                "use_squash_pr_title_as_default": False,
                "squash_merge_commit_message": "COMMIT_MESSAGES",
                "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
                "merge_commit_message": "PR_TITLE", "merge_commit_title": "MERGE_MESSAGE",
            })
        if perms["admin"]:
            status = "disabled" if r.private else "enabled"
            out["security_and_analysis"] = {
                "secret_scanning": {"status": status},
                "secret_scanning_push_protection": {"status": status},
                "dependabot_security_updates": {"status": "disabled"},
                "secret_scanning_non_provider_patterns": {"status": "disabled"},
            }
    owner = w.account(r.owner)
    if owner is not None and owner.type == "Organization":
        out["organization"] = render_simple_user(w, u, owner.login)
    if r.fork and r.parent and r.parent in w.repos:
        out["parent"] = render_minimal_repo(w, u, w.repos[r.parent])
        out["source"] = render_minimal_repo(w, u, _source(w, r))
    out["custom_properties"] = {}
    out["network_count"] = _source(w, r).forks_count
    out["subscribers_count"] = r.watchers
    return out


# labels and milestones -----------------------------------------------------------------

def render_label(w: World, u: Urls, r: Repo, label: Label) -> JSON:
    """`label`."""
    return {
        "id": label.id,
        "node_id": node_id("LA", r.id, label.id),
        "url": f"{repo_api(u, r)}/labels/{quote(label.name)}",
        "name": label.name,
        "color": label.color,
        "default": label.default,
        "description": blank(label.description),
    }


def render_milestone(w: World, u: Urls, r: Repo, m: Milestone) -> JSON:
    """`milestone`, with issue counts computed from the repository's issues."""
    url = f"{repo_api(u, r)}/milestones/{m.number}"
    mine = [i for i in r.issues if i.milestone == m.number]
    return {
        "url": url,
        "html_url": u.html(f"{r.full_name}/milestone/{m.number}"),
        "labels_url": f"{url}/labels",
        "id": m.id,
        "node_id": node_id("MI", r.id, m.id),
        "number": m.number,
        "title": m.title,
        "description": blank(m.description),
        "creator": maybe_user(w, u, m.creator),
        "open_issues": sum(i.state == "open" for i in mine),
        "closed_issues": sum(i.state == "closed" for i in mine),
        "state": m.state,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "due_on": m.due_on,
        "closed_at": m.closed_at,
    }


# releases ------------------------------------------------------------------------------

def render_release_asset(w: World, u: Urls, r: Repo, rel: Release, a: ReleaseAsset) -> JSON:
    """`release-asset`: `url` is the API address (Accept: application/octet-stream
    redirects to the bytes), `browser_download_url` the web download."""
    return {
        "url": a.url or f"{repo_api(u, r)}/releases/assets/{a.id}",
        "id": a.id,
        "node_id": node_id("RA", r.id, a.id),
        "name": a.name,
        "label": "",
        "uploader": maybe_user(w, u, a.uploader),
        "content_type": a.content_type,
        "state": "uploaded",
        "size": len(a.data),
        "digest": "sha256:" + hashlib.sha256(a.data).hexdigest(),
        "download_count": a.download_count,
        "created_at": a.created_at,
        "updated_at": a.created_at,
        "browser_download_url": u.html(
            f"{r.full_name}/releases/download/{quote(rel.tag_name)}/{quote(a.name)}"),
    }


def render_release(w: World, u: Urls, r: Repo, rel: Release) -> JSON:
    """`release`, with its assets."""
    api = repo_api(u, r)
    url = f"{api}/releases/{rel.id}"
    return {
        "url": url,
        "assets_url": f"{url}/assets",
        "upload_url": f"{u.uploads}/repos/{r.full_name}/releases/{rel.id}/assets{{?name,label}}",
        "html_url": u.html(f"{r.full_name}/releases/tag/{quote(rel.tag_name)}"),
        "id": rel.id,
        "author": render_simple_user(w, u, rel.author),
        "node_id": node_id("RE", r.id, rel.id),
        "tag_name": rel.tag_name,
        "target_commitish": rel.target_commitish,
        "name": rel.name or None,
        "draft": rel.draft,
        "immutable": False,
        "prerelease": rel.prerelease,
        "created_at": rel.created_at,
        "updated_at": rel.published_at or rel.created_at,
        "published_at": rel.published_at,
        "assets": [render_release_asset(w, u, r, rel, a) for a in rel.assets],
        "tarball_url": f"{api}/tarball/{quote(rel.tag_name)}",
        "zipball_url": f"{api}/zipball/{quote(rel.tag_name)}",
        "body": rel.body,
    }


# commit comments -----------------------------------------------------------------------

def render_commit_comment(w: World, u: Urls, r: Repo, c: CommitComment) -> JSON:
    """`commit-comment` (GET /repos/{owner}/{repo}/comments)."""
    url = f"{repo_api(u, r)}/comments/{c.id}"
    return {
        "url": url,
        "html_url": u.html(f"{r.full_name}/commit/{c.commit_id}#commitcomment-{c.id}"),
        "id": c.id,
        "node_id": node_id("CC", r.id, c.id),
        "user": maybe_user(w, u, c.user),
        "position": c.line if c.path else None,
        "line": c.line,
        "path": c.path,
        "commit_id": c.commit_id,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "author_association": author_association(w, r, c.user),
        "body": c.body,
        "reactions": reactions(f"{url}/reactions"),
    }


# gists ---------------------------------------------------------------------------------

# extension -> (MIME type, linguist language) for the gist files GitHub classifies
GIST_TYPES = {
    "py": ("application/x-python", "Python"), "sh": ("application/x-sh", "Shell"),
    "md": ("text/markdown", "Markdown"), "json": ("application/json", "JSON"),
    "js": ("text/javascript", "JavaScript"), "ts": ("video/MP2T", "TypeScript"),
    "go": ("text/x-go", "Go"), "rb": ("application/x-ruby", "Ruby"),
    "yml": ("application/x-yaml", "YAML"), "yaml": ("application/x-yaml", "YAML"),
    "toml": ("application/toml", "TOML"), "txt": ("text/plain", "Text"),
    "html": ("text/html", "HTML"), "css": ("text/css", "CSS"), "c": ("text/x-c", "C"),
    "rs": ("text/rust", "Rust"), "sql": ("application/sql", "SQL"),
}


def gist_blob_sha(content: str) -> str:
    data = content.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def gist_file(u: Urls, g: Gist, name: str, with_content: bool) -> JSON:
    content = g.files[name]
    ext = name.rsplit(".", 1)[1].lower() if "." in name else ""
    mime, language = GIST_TYPES.get(ext, ("text/plain", None))
    out: JSON = {
        "filename": name,
        "type": mime,
        "language": language,
        "raw_url": u.html(f"gist/{g.owner}/{g.id}/raw/{gist_blob_sha(content)}/{quote(name)}"),
        "size": len(content.encode()),
    }
    if with_content:
        out.update({"truncated": False, "content": content, "encoding": "utf-8"})
    return out


def _gist_body(w: World, u: Urls, g: Gist, with_content: bool) -> JSON:
    url = f"{u.api}/gists/{g.id}"
    return {
        "url": url,
        "forks_url": f"{url}/forks",
        "commits_url": f"{url}/commits",
        "id": g.id,
        "node_id": legacy_node_id("Gist", g.id),
        "git_pull_url": u.gist_git(g.id),
        "git_push_url": u.gist_git(g.id),
        "html_url": u.html(f"gist/{g.id}"),
        "files": {n: gist_file(u, g, n, with_content) for n in sorted(g.files)},
        "public": g.public,
        "created_at": g.created_at,
        "updated_at": g.updated_at,
        "description": g.description,
        "comments": g.comments,
        "comments_enabled": True,
        "user": None,
        "comments_url": f"{url}/comments",
        "owner": render_simple_user(w, u, g.owner),
        "truncated": False,
    }


def render_base_gist(w: World, u: Urls, g: Gist) -> JSON:
    """`base-gist` (GET /users/{u}/gists, GET /gists): files without content."""
    return _gist_body(w, u, g, with_content=False)


def render_gist(w: World, u: Urls, g: Gist,
                history: list[tuple[str, str]] | None = None) -> JSON:
    """`gist-simple` (GET /gists/{id}): files with content, forks and history.
    `history` is [(version sha, committed_at)] newest first; by default one revision
    stamped `updated_at` (the model keeps no gist revisions)."""
    out = _gist_body(w, u, g, with_content=True)
    if history is None:
        history = [(fake_gist_version(g), g.updated_at)]
    lines = sum(c.count("\n") + (not c.endswith("\n") and bool(c)) for c in g.files.values())
    out["forks"] = []
    out["history"] = [{
        "user": render_simple_user(w, u, g.owner),
        "version": version,
        "committed_at": at,
        "change_status": ({"total": lines, "additions": lines, "deletions": 0}
                          if k == len(history) - 1 else {}),
        "url": f"{u.api}/gists/{g.id}/{version}",
    } for k, (version, at) in enumerate(history)]
    return out


def fake_gist_version(g: Gist) -> str:
    return hashlib.sha1(f"gist:{g.id}:{g.updated_at}".encode()).hexdigest()
