"""Attachment hosts on the simulator's origins.

Bodies in the world name attachments as GitHub does (model_content.WEB, IMAGES,
PRIVATE_IMAGES). Every answer is rewritten on its way out: `github.com/user-attachments/`
becomes the web origin (where git lives: the token may go there), both
`*.githubusercontent.com` hosts become the object-storage host (`localhost`, another host
name than the API's, like Urls.download), and a private image's `?jwt=` gets a freshly
signed token, as GitHub signs one per view. The storage host refuses any Authorization
header (a client that sends its token there has leaked it) and counts the attempt.
"""

from __future__ import annotations

import base64
import hmac
import re
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from .model_content import IMAGES, JWT_MARK, PRIVATE_IMAGES, WEB

if TYPE_CHECKING:
    from .server import Handler, Simulator

WEB_PATH = re.compile(r"^/user-attachments/(?:assets/[0-9a-f-]{36}|files/\d+/[^/]+)$")
IMAGE_PATH = re.compile(r"^/\d+/\d+-[0-9a-f-]{36}\.\w+$")
_PRIVATE = re.compile(re.escape(PRIVATE_IMAGES).encode() + rb"([^?\s\"]+)\?jwt=" +
                      JWT_MARK.encode())


# A private image's jwt: signed like Simulator.sign, but with one expiry for the process, so
# two reads of one body are the same (a backup's content does not change with the time it
# was read at; GitHub's expire after minutes, which the engine does not rely on).
EXPIRES = int(time.time()) + 86_400


def image_jwt(sim: Simulator, payload: str) -> str:
    mac = hmac.new(sim.secret, f"{payload}|{EXPIRES}".encode(), "sha256").hexdigest()[:32]
    return base64.urlsafe_b64encode(f"{payload}|{EXPIRES}|{mac}".encode()).decode()


def storage_root(root: str) -> str:
    return root.replace("://127.0.0.1:", "://localhost:", 1)


def rewrite(payload: bytes, site: str, root: str, sign) -> bytes:
    """`payload` with the attachment hosts of github.com put on the simulator's origins."""
    if b"user-attachments/" not in payload and b"githubusercontent.com/" not in payload:
        return payload
    storage = storage_root(root)
    payload = payload.replace(f"{WEB}user-attachments/".encode(),
                              f"{site}/user-attachments/".encode())
    payload = _PRIVATE.sub(lambda m: f"{storage}/{m[1].decode()}?jwt="
                           f"{sign('img|' + m[1].decode())}".encode(), payload)
    return payload.replace(IMAGES.encode(), f"{storage}/".encode())


def find(sim: Simulator, key: str):
    content = sim.world.content
    return content.attachments.get(key) if content is not None else None


def serve_web(handler: Handler, sim: Simulator, path: str) -> None:
    """github.com/user-attachments/...: a repository's reader may download it (a private
    repository's needs the credential); the answer is a 302 to signed storage."""
    from .app import identify  # noqa: PLC0415 - server imports this module
    from .server import token_from  # noqa: PLC0415

    handler.body()
    att = find(sim, f"{WEB}{path.lstrip('/')}")
    token, sent = token_from(handler.headers)
    who = identify(token if sent else None, sim.tokens, sim.owner_login, sim.app)
    repo = sim.world.repos.get(att.repo) if att else None
    allowed = repo is not None and (not repo.private or (
        who.viewer is not None and (who.grant is None or who.grant.covers(repo))))
    if att is None or not allowed:
        return handler.send(404, b"Not Found", {}, "text/plain")
    sim.stats.add("attachment_requests")
    where = f"{storage_root(handler.base_root())}/_sim/objects/{sim.sign('web|' + path)}"
    handler.send(302, b"", {"Location": where}, "text/plain")


def serve_storage(handler: Handler, sim: Simulator, path: str) -> None:
    """Object storage: /_sim/objects/<signed> (after the 302) and the image hosts' paths
    (/<user id>/<file>, with ?jwt= for private images)."""
    handler.body()
    if handler.headers.get("Authorization"):
        sim.stats.add("attachment_token_sent")
        return handler.send(400, b"<Error><Code>InvalidArgument</Code><Message>Only one auth "
                            b"mechanism allowed</Message></Error>", {}, "application/xml")
    att = None
    if path.startswith("/_sim/objects/"):
        signed = sim.unsign(path[len("/_sim/objects/"):]) or ""
        if signed.startswith("web|"):
            att = find(sim, f"{WEB}{signed[4:].lstrip('/')}")
    else:
        jwt = parse_qs(urlsplit(handler.path).query).get("jwt", [None])[0]
        if jwt is not None:
            good = sim.unsign(jwt) == f"img|{path.lstrip('/')}"
            att = find(sim, f"{PRIVATE_IMAGES}{path.lstrip('/')}") if good else None
        else:
            att = find(sim, f"{IMAGES}{path.lstrip('/')}")
    if att is None:
        return handler.send(403, b"<Error><Code>AccessDenied</Code></Error>", {},
                            "application/xml")
    sim.stats.add("attachment_downloads")
    handler.send(200, att.data, {}, att.content_type)
