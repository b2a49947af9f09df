"""The simulator's world beyond issues and pulls: discussions, projects (v2) and the files
people attached to bodies. Kept on `World.content` (generate_content.py fills it)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Where attachments live on github.com; the simulator serves them on its own origins
# (attachments.py rewrites these prefixes in every answer).
WEB = "https://github.com/"
IMAGES = "https://user-images.githubusercontent.com/"
PRIVATE_IMAGES = "https://private-user-images.githubusercontent.com/"
JWT_MARK = "SIMJWT"  # replaced by a signed token when rendered, as GitHub signs per view


@dataclass
class DiscussionComment:
    id: int
    user: str
    body: str
    created_at: str
    updated_at: str
    reactions: dict[str, int] = field(default_factory=dict)  # content -> count
    replies: list[DiscussionComment] = field(default_factory=list)
    upvotes: int = 0


@dataclass
class Category:
    id: int
    name: str
    slug: str
    emoji: str
    description: str
    answerable: bool
    created_at: str


@dataclass
class Discussion:
    id: int
    number: int
    title: str
    body: str
    user: str
    category_id: int
    created_at: str
    updated_at: str
    closed: bool = False
    locked: bool = False
    answer_id: int | None = None  # a top-level comment of an answerable category
    reactions: dict[str, int] = field(default_factory=dict)
    comments: list[DiscussionComment] = field(default_factory=list)
    upvotes: int = 0


@dataclass
class ProjectField:
    id: int
    name: str
    data_type: str  # TITLE, TEXT, NUMBER, DATE, SINGLE_SELECT, ...
    options: list[tuple[str, str]] = field(default_factory=list)  # (option id, name)


@dataclass
class ProjectView:
    id: int
    number: int
    name: str
    layout: str  # TABLE_LAYOUT, BOARD_LAYOUT, ROADMAP_LAYOUT
    filter: str


@dataclass
class ProjectItem:
    id: int
    kind: str  # ISSUE, PULL_REQUEST, DRAFT_ISSUE
    created_at: str
    repo: str | None = None  # full name, for issues and pull requests
    number: int | None = None
    title: str = ""  # drafts
    body: str = ""
    values: dict[str, str | float] = field(default_factory=dict)  # field name -> value
    archived: bool = False


@dataclass
class Project:
    id: int
    number: int
    owner: str
    title: str
    description: str
    readme: str
    public: bool
    closed: bool
    creator: str
    created_at: str
    updated_at: str
    fields: list[ProjectField] = field(default_factory=list)
    views: list[ProjectView] = field(default_factory=list)
    items: list[ProjectItem] = field(default_factory=list)


@dataclass
class Attachment:
    url: str  # as written in bodies (github.com hosts; private images end in ?jwt=SIMJWT)
    repo: str  # the repository whose body holds it (private: downloads need access)
    content_type: str
    data: bytes

    @property
    def key(self) -> str:
        """The URL without its signed query: what stays the same between views."""
        return self.url.split("?", 1)[0]


@dataclass
class Content:
    categories: dict[str, list[Category]] = field(default_factory=dict)  # by repo full name
    discussions: dict[str, list[Discussion]] = field(default_factory=dict)
    projects: dict[str, list[Project]] = field(default_factory=dict)  # by owner login
    attachments: dict[str, Attachment] = field(default_factory=dict)  # by key

    def counts(self, login: str, repos: list[str]) -> dict[str, int]:
        """Ground truth: `discussion_comments` counts top-level comments and their replies;
        `attachments` the distinct files attached in the owner's repositories' bodies."""
        ds = [d for r in repos for d in self.discussions.get(r, [])]
        projects = self.projects.get(login, [])
        return {
            "discussions": len(ds),
            "discussion_comments": sum(len(c.replies) + 1 for d in ds for c in d.comments),
            "projects": len(projects),
            "project_items": sum(len(p.items) for p in projects),
            "attachments": sum(a.repo in repos for a in self.attachments.values()),
        }
