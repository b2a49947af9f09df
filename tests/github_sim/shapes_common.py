"""Helpers shared by the renderers: node ids, users, associations, reaction rollups.

Import renderers from `tests.github_sim.shapes`; this module holds what they share.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Any

from .model import Label, Repo, World
from .urls import Urls

JSON = dict[str, Any]
GHOST_ID = 10137  # GitHub's "ghost" account, which stands in for deleted users
NOREPLY_DOMAIN = "users.noreply.example.com"  # the generator's commit e-mail domain


# identifiers ---------------------------------------------------------------------------

def _msgpack(values: list[int | str]) -> bytes:
    out = bytearray([0x90 | len(values)])
    for v in values:
        if isinstance(v, str):
            raw = v.encode()
            out += (bytes([0xA0 | len(raw)]) if len(raw) < 32 else bytes([0xD9, len(raw)])) + raw
        elif v < 0x80:
            out.append(v)
        elif v < 0x100:
            out += bytes([0xCC, v])
        elif v < 0x10000:
            out += b"\xcd" + v.to_bytes(2, "big")
        elif v < 0x1_0000_0000:
            out += b"\xce" + v.to_bytes(4, "big")
        else:
            out += b"\xcf" + v.to_bytes(8, "big")
    return bytes(out)


def node_id(prefix: str, *parts: int | str) -> str:
    """A GraphQL global id in GitHub's current format, e.g. node_id("U", 583231) ->
    "U_kgDOAAjmPw" (base64url of the msgpack array [0, *parts]). Repository-scoped objects
    pass the repository id first: node_id("I", repo.id, issue.id)."""
    return f"{prefix}_" + base64.urlsafe_b64encode(_msgpack([0, *parts])).decode().rstrip("=")


def legacy_node_id(type_name: str, ident: int | str) -> str:
    """GitHub's older id format, still used for gists and licenses: "04:Gist<id>"."""
    raw = f"{len(type_name):02d}:{type_name}{ident}"
    return base64.b64encode(raw.encode()).decode()


def fake_sha(*parts: object) -> str:
    """A deterministic 40-hex id for git objects the model does not record (trees...)."""
    return hashlib.sha1("\0".join(map(str, parts)).encode()).hexdigest()


def synthetic_id(*parts: object) -> int:
    """A stable id for objects the model names but does not number."""
    return 700_000_000 + zlib.crc32("\0".join(map(str, parts)).encode()) % 100_000_000


# urls ----------------------------------------------------------------------------------

def repo_api(u: Urls, r: Repo) -> str:
    return f"{u.api}/repos/{r.full_name}"


def avatar_url(u: Urls, ident: int) -> str:
    return u.html(f"avatars/u/{ident}?v=4")


def blank(text: str | None) -> str | None:
    """GitHub sends null, not "", for optional text nobody filled in."""
    return text or None


# users ---------------------------------------------------------------------------------

def account_id(w: World, login: str) -> tuple[str, int, str]:
    """(login as GitHub spells it, id, type) for any login, known to the world or not."""
    acct = w.account(login)
    if acct is not None:
        return acct.login, acct.id, acct.type
    if login.lower() == "ghost":
        return "ghost", GHOST_ID, "User"
    return login, synthetic_id("user", login.lower()), "User"


def user_node_id(w: World, login: str) -> str:
    _, ident, kind = account_id(w, login)
    return node_id("O" if kind == "Organization" else "U", ident)


def render_simple_user(w: World, u: Urls, login: str) -> JSON:
    """`simple-user`: the owner/user/actor object embedded everywhere."""
    login, ident, kind = account_id(w, login)
    base = f"{u.api}/users/{login}"
    return {
        "login": login,
        "id": ident,
        "node_id": node_id("O" if kind == "Organization" else "U", ident),
        "avatar_url": avatar_url(u, ident),
        "gravatar_id": "",
        "url": base,
        "html_url": u.html(login),
        "followers_url": f"{base}/followers",
        "following_url": f"{base}/following{{/other_user}}",
        "gists_url": f"{base}/gists{{/gist_id}}",
        "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{base}/subscriptions",
        "organizations_url": f"{base}/orgs",
        "repos_url": f"{base}/repos",
        "events_url": f"{base}/events{{/privacy}}",
        "received_events_url": f"{base}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def maybe_user(w: World, u: Urls, login: str | None) -> JSON | None:
    return render_simple_user(w, u, login) if login else None


def author_association(w: World, r: Repo, login: str) -> str:
    """How `login` relates to the repository, as GitHub computes it for authors."""
    if login.lower() == r.owner.lower():
        return "OWNER"
    owner = w.account(r.owner)
    if owner is not None and owner.type == "Organization" and login in owner.members:
        return "MEMBER"
    if any(i.pull and i.pull.merged and i.user == login for i in r.issues):
        return "CONTRIBUTOR"
    return "NONE"


def permissions(w: World, r: Repo, viewer: str | None) -> JSON | None:
    """The viewer's permissions on a repository (None: anonymous, GitHub omits them)."""
    if viewer is None:
        return None
    owner = w.account(r.owner)
    admin = viewer.lower() == r.owner.lower() or (
        owner is not None and owner.type == "Organization" and viewer in owner.admins)
    member = owner is not None and owner.type == "Organization" and viewer in owner.members
    on_team = member and any(viewer in t.members and r.name in t.repos for t in owner.teams)
    push = admin or on_team
    pull = admin or member or not r.private
    return {"admin": admin, "maintain": admin, "push": push, "triage": push, "pull": pull}


def reactions(url: str) -> JSON:
    """A `reaction-rollup` (the model records no reactions: all counts are zero)."""
    return {"url": url, "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
            "confused": 0, "heart": 0, "rocket": 0, "eyes": 0}


# labels --------------------------------------------------------------------------------

def find_label(r: Repo, name: str) -> Label:
    for label in r.labels:
        if label.name == name:
            return label
    return Label(synthetic_id("label", r.full_name, name), name, "ededed", "")
