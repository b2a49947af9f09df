"""The small framework REST endpoints are written in: routes, contexts, errors, paging."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .model import Account, Repo, World
from .urls import Urls

DOCS = "https://docs.github.com/rest"


class ApiError(Exception):
    """An error answer in GitHub's shape: {"message", "documentation_url", "status"}."""

    def __init__(self, status: int, message: str, docs: str = DOCS,
                 headers: dict[str, str] | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.body = {"message": message, "documentation_url": docs, "status": str(status),
                     **(extra or {})}
        self.headers = headers or {}


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


@dataclass
class Ctx:
    world: World
    urls: Urls
    viewer: str | None  # login of the token's owner, None when unauthenticated
    query: dict[str, str]
    headers: Any  # the request's email.message.Message
    sim: Any = None  # the Simulator (signing downloads, rate-limit pools)
    rate_key: str = ""  # whose rate-limit pool this request draws from
    grant: Any = None  # an installation token's app.Grant (viewer is then the app's bot)
    app_jwt: bool = False  # authenticated as the GitHub App itself (a JWT)
    body: bytes = b""  # the request body (POST routes)

    def arg(self, name: str, default: str | None = None, choices: tuple[str, ...] = ()
            ) -> str | None:
        value = self.query.get(name, default)
        if choices and value is not None and value not in choices:
            raise ApiError(422, "Validation Failed", extra={"errors": [
                {"resource": "Search", "field": name, "code": "invalid"}]})
        return value

    def can_see(self, repo: Repo) -> bool:
        if not repo.private:
            return True
        if self.grant is not None:
            return self.grant.covers(repo)
        if self.viewer is None:
            return False
        if repo.owner.lower() == self.viewer.lower():
            return True
        owner = self.world.account(repo.owner)
        return bool(owner and owner.type == "Organization"
                    and self.viewer in owner.members)

    def is_admin(self, repo: Repo) -> bool:
        if self.viewer is None or self.grant is not None:  # the app asks for read access only
            return False
        if repo.owner.lower() == self.viewer.lower():
            return True
        owner = self.world.account(repo.owner)
        return bool(owner and owner.type == "Organization" and self.viewer in owner.admins)

    def repo(self, owner: str, name: str) -> Repo:
        repo = self.world.repos.get(f"{owner}/{name}")
        if repo is None:
            for r in self.world.repos.values():
                if r.full_name.lower() == f"{owner}/{name}".lower():
                    repo = r
        if repo is None or not self.can_see(repo):
            raise ApiError(404, "Not Found", "https://docs.github.com/rest/repos/repos#get-a-repository")
        return repo

    def member_of(self, org: Account) -> bool:
        """Sees the organisation's private members and teams (a member, or an installation
        on it with the members permission)."""
        if self.grant is not None:
            return (self.grant.installation.account.lower() == org.login.lower()
                    and self.grant.allows("members=read"))
        return self.viewer is not None and self.viewer in org.members

    def need_auth(self) -> str:
        """The authenticated user's login; installation tokens act for no user (403)."""
        if self.grant is not None:
            raise ApiError(403, "Resource not accessible by integration",
                           "https://docs.github.com/rest/users/users#get-the-authenticated-user")
        if self.viewer is None:
            raise ApiError(401, "Requires authentication",
                           "https://docs.github.com/rest/users/users#get-the-authenticated-user")
        return self.viewer


@dataclass
class Reply:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    last_modified: str | None = None  # ISO timestamp of the resource's last change
    raw: bytes | None = None  # a non-JSON body (downloads)
    content_type: str = "application/json; charset=utf-8"


@dataclass
class Paged:
    """A list endpoint's whole result; the server cuts the page and writes `Link`."""

    items: list
    render: Callable[[Any], Any]


Handler = Callable[..., Reply | Paged]


@dataclass
class Route:
    method: str
    template: str
    pattern: re.Pattern
    handler: Handler


ROUTES: list[Route] = []


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"

    def register(fn: Handler) -> Handler:
        ROUTES.append(Route(method, template, re.compile(regex), fn))
        return fn

    return register


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | tuple[None, None]:
    """The route for a request; a literal segment beats a parameter (`/issues/comments`
    before `/issues/{issue_number}`). (None, {}) when only the method is wrong."""
    candidates = []
    for r in ROUTES:
        m = r.pattern.match(path)
        if m:
            candidates.append((r.template.count("{"), r, m))
    if not candidates:
        return None, None
    for _, r, m in sorted(candidates, key=lambda c: c[0]):
        if r.method == method:
            return r, m.groupdict()
    return None, {}


def page_params(query: dict[str, str]) -> tuple[int, int]:
    try:
        per_page = int(query.get("per_page", "30"))
        page = int(query.get("page", "1"))
    except ValueError:
        raise ApiError(400, "Invalid value for per_page or page") from None
    return max(1, min(per_page, 100)), max(1, page)


def cut_page(paged: Paged, base_url: str, query: dict[str, str]) -> tuple[list, str | None]:
    """The page's rendered items and GitHub's Link header (next, last, first, prev)."""
    per_page, page = page_params(query)
    total = len(paged.items)
    last = max(1, -(-total // per_page))
    chunk = paged.items[(page - 1) * per_page: page * per_page]

    def url(n: int) -> str:
        q = {k: v for k, v in query.items() if k != "page"}
        q["page"] = str(n)
        return f"{base_url}?{urlencode(q)}"

    links = []
    if page < last:
        links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if page > 1:
        links += [f'<{url(page - 1)}>; rel="prev"', f'<{url(1)}>; rel="first"']
    return [paged.render(item) for item in chunk], ", ".join(links) or None
