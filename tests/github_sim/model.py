"""The simulator's world: plain data about accounts, repositories and their activity.

Generation (generate.py) fills it, the REST and GraphQL layers render it in GitHub's JSON
shapes (shapes.py, graphql_api.py), and mutate() changes it the way a month of activity
would. Timestamps are ISO-8601 strings in UTC ("2025-01-02T03:04:05Z"), as GitHub sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Account:
    login: str
    id: int
    type: str  # "User" | "Organization"
    name: str
    created_at: str
    updated_at: str
    bio: str = ""
    company: str = ""
    location: str = ""
    email: str | None = None
    blog: str = ""
    followers: list[str] = field(default_factory=list)  # logins following this account
    following: list[str] = field(default_factory=list)
    starred: list[tuple[str, str]] = field(default_factory=list)  # (full_name, starred_at)
    watching: list[str] = field(default_factory=list)  # full names
    members: list[str] = field(default_factory=list)  # organisations only
    admins: list[str] = field(default_factory=list)  # organisation owners
    teams: list[Team] = field(default_factory=list)  # organisations only


@dataclass
class Team:
    id: int
    name: str
    slug: str
    description: str
    members: list[str]
    repos: list[str]  # repository names in the organisation


@dataclass
class Label:
    id: int
    name: str
    color: str
    description: str
    default: bool = False


@dataclass
class Milestone:
    id: int
    number: int
    title: str
    description: str
    state: str
    creator: str
    created_at: str
    updated_at: str
    closed_at: str | None
    due_on: str | None


@dataclass
class Comment:
    """A conversation comment on an issue or pull request (the issue-comments stream)."""

    id: int
    user: str
    body: str
    created_at: str
    updated_at: str


@dataclass
class IssueEvent:
    id: int
    actor: str
    event: str  # closed, reopened, labeled, unlabeled, assigned, renamed, milestoned, ...
    created_at: str
    label: str | None = None
    assignee: str | None = None
    commit_id: str | None = None
    rename_from: str | None = None
    rename_to: str | None = None
    milestone: str | None = None


@dataclass
class Review:
    id: int
    user: str
    body: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED
    submitted_at: str
    commit_id: str


@dataclass
class ReviewComment:
    id: int
    review_id: int
    user: str
    body: str
    path: str
    line: int
    commit_id: str
    created_at: str
    updated_at: str
    in_reply_to_id: int | None = None


@dataclass
class PullInfo:
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    commits: list[str]  # shas, oldest first
    merged: bool
    merged_at: str | None
    merged_by: str | None
    merge_commit_sha: str | None
    draft: bool
    additions: int
    deletions: int
    changed_files: int
    reviews: list[Review] = field(default_factory=list)
    review_comments: list[ReviewComment] = field(default_factory=list)


@dataclass
class Issue:
    id: int
    number: int
    title: str
    body: str
    user: str
    state: str  # open | closed
    state_reason: str | None
    created_at: str
    updated_at: str
    closed_at: str | None
    closed_by: str | None
    labels: list[str]
    assignees: list[str]
    milestone: int | None  # milestone number
    locked: bool
    comments: list[Comment] = field(default_factory=list)
    events: list[IssueEvent] = field(default_factory=list)
    pull: PullInfo | None = None


@dataclass
class ReleaseAsset:
    id: int
    name: str
    content_type: str
    data: bytes
    uploader: str
    created_at: str
    download_count: int
    # What the API names as the asset's `url` when not its own address: a hostile answer
    # (another host, plain http) for tests of where the token goes.
    url: str | None = None


@dataclass
class Release:
    id: int
    tag_name: str
    target_commitish: str
    name: str
    body: str
    draft: bool
    prerelease: bool
    author: str
    created_at: str
    published_at: str | None
    assets: list[ReleaseAsset] = field(default_factory=list)


@dataclass
class CommitComment:
    id: int
    user: str
    body: str
    commit_id: str
    path: str | None
    line: int | None
    created_at: str
    updated_at: str


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    description: str
    private: bool
    visibility: str  # public | private | internal
    fork: bool
    archived: bool
    has_issues: bool
    has_wiki: bool
    wiki_exists: bool  # a wiki repository was created (GitHub creates it with the first page)
    has_lfs: bool
    empty: bool
    language: str | None
    topics: list[str]
    default_branch: str
    created_at: str
    updated_at: str
    pushed_at: str | None
    license: str | None  # SPDX id
    parent: str | None = None  # full name of the fork's parent
    size_kb: int = 0
    stargazers: int = 0
    watchers: int = 0
    forks_count: int = 0
    labels: list[Label] = field(default_factory=list)
    milestones: list[Milestone] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)  # pull requests included, by number
    releases: list[Release] = field(default_factory=list)
    commit_comments: list[CommitComment] = field(default_factory=list)
    lfs_objects: list[str] = field(default_factory=list)  # sha256 oids
    commit_shas: list[str] = field(default_factory=list)  # default-branch commits, oldest first
    # What the API names as `clone_url` when not the server's own: a hostile answer
    # (another host, plain http) for tests of where the token goes.
    clone_url: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def pulls(self) -> list[Issue]:
        return [i for i in self.issues if i.pull is not None]


@dataclass
class Gist:
    id: str  # 32 hex characters, as GitHub's
    owner: str
    description: str
    public: bool
    files: dict[str, str]  # name -> content
    created_at: str
    updated_at: str
    comments: int = 0


@dataclass
class World:
    """Everything the simulator serves. `owners` maps a role ("user", "org") to a login."""

    seed: int
    size: str
    owners: dict[str, str]
    accounts: dict[str, Account]
    repos: dict[str, Repo]  # by full name
    gists: dict[str, Gist]  # by id
    next_id: int = 900_000_000
    content: Any = None  # model_content.Content: discussions, projects, attachments

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def repos_of(self, login: str) -> list[Repo]:
        return [r for r in self.repos.values() if r.owner.lower() == login.lower()]

    def gists_of(self, login: str) -> list[Gist]:
        return [g for g in self.gists.values() if g.owner.lower() == login.lower()]

    def account(self, login: str) -> Account | None:
        for a in self.accounts.values():
            if a.login.lower() == login.lower():
                return a
        return None

    def timestamps(self) -> Iterator[tuple[str, str]]:
        """(what, stamp) for every created/updated/pushed/closed/submitted time served."""
        for a in self.accounts.values():
            yield f"account {a.login}", a.created_at
            yield f"account {a.login}", a.updated_at
            for name, starred_at in a.starred:
                yield f"star {a.login} {name}", starred_at
        for r in self.repos.values():
            for stamp in (r.created_at, r.updated_at, r.pushed_at):
                if stamp:
                    yield f"repo {r.full_name}", stamp
            for m in r.milestones:
                for stamp in (m.created_at, m.updated_at, m.closed_at):
                    if stamp:
                        yield f"milestone {r.full_name} {m.number}", stamp
            for rel in r.releases:
                for stamp in (rel.created_at, rel.published_at):
                    if stamp:
                        yield f"release {r.full_name} {rel.tag_name}", stamp
            for c in r.commit_comments:
                yield f"commit comment {r.full_name} {c.id}", c.updated_at
            for i in r.issues:
                what = f"issue {r.full_name}#{i.number}"
                for stamp in (i.created_at, i.updated_at, i.closed_at):
                    if stamp:
                        yield what, stamp
                for c in i.comments:
                    yield f"{what} comment {c.id}", c.created_at
                    yield f"{what} comment {c.id}", c.updated_at
                for e in i.events:
                    yield f"{what} event {e.id}", e.created_at
                if i.pull:
                    if i.pull.merged_at:
                        yield what, i.pull.merged_at
                    for rv in i.pull.reviews:
                        yield f"{what} review {rv.id}", rv.submitted_at
                    for rc in i.pull.review_comments:
                        yield f"{what} review comment {rc.id}", rc.updated_at
        for g in self.gists.values():
            yield f"gist {g.id}", g.created_at
            yield f"gist {g.id}", g.updated_at

    def counts(self) -> dict[str, dict[str, int]]:
        """Ground truth per owner role: what a complete backup of that owner must contain."""
        out: dict[str, dict[str, int]] = {}
        for role, login in self.owners.items():
            repos = self.repos_of(login)
            issues = [i for r in repos for i in r.issues]
            pulls = [i for i in issues if i.pull]
            acct = self.accounts[login]
            out[role] = {
                "repos": len(repos),
                "private_repos": sum(r.private for r in repos),
                "forks": sum(r.fork for r in repos),
                "archived": sum(r.archived for r in repos),
                "empty_repos": sum(r.empty for r in repos),
                "issues": len(issues) - len(pulls),
                "pulls": len(pulls),
                "comments": sum(len(i.comments) for i in issues),
                "events": sum(len(i.events) for i in issues),
                "reviews": sum(len(i.pull.reviews) for i in pulls),
                "review_comments": sum(len(i.pull.review_comments) for i in pulls),
                "commit_comments": sum(len(r.commit_comments) for r in repos),
                "labels": sum(len(r.labels) for r in repos),
                "milestones": sum(len(r.milestones) for r in repos),
                "releases": sum(len(r.releases) for r in repos),
                "release_assets": sum(len(rel.assets) for r in repos for rel in r.releases),
                "wikis": sum(r.wiki_exists for r in repos),
                "lfs_objects": sum(len(r.lfs_objects) for r in repos),
                "gists": len(self.gists_of(login)),
                "followers": len(acct.followers),
                "following": len(acct.following),
                "starred": len(acct.starred),
            }
            if self.content is not None:
                out[role].update(self.content.counts(login, [r.full_name for r in repos]))
        return out
