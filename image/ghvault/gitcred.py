"""Tokens for git children that outlive a token: a credential helper the engine answers.

Why a helper and not a token in each child's environment: an installation token lives an
hour (or, against a test server, seconds), and a clone on a slow network, or an LFS fetch
of many objects, can outlive whatever margin a token handed over at the start had. git asks
its credential helper when a server answers 401, git-lfs asks again after a 401 on a later
request, so each gets a current token (`InstallationAuth.git_token`: at least
`git_margin` left) when it needs one. The helper (`credential_helper.py`) reads it from a
Unix socket in a private (0700) directory the engine owns; the token passes through pipes
only, never a file, an argv or a config. The helper is configured for the git origin only
(`credential.<url>.helper`), and the server checks the asked origin again. Should git
itself still hold an expired token (its requests spread over more than the margin), the
command is run again: see `Git._retrying`.

A personal access token does not expire during a run: it goes as a header instead (see
git.py), which spares each private clone the 401 round trip.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import socketserver
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol

from .credential_helper import SOCKET_ENV
from .errors import GhvaultError, GitHubUnavailable
from .github.urls import origin

log = logging.getLogger(__name__)
HELPER = Path(__file__).with_name("credential_helper.py")


class TokenSource(Protocol):
    name: str  # which credential, for messages
    generation: int  # tokens minted so far

    def git_token(self) -> str: ...

    def expired_since(self, generation: int) -> bool: ...


class CredentialServer:
    """Answers the credential helper of this run's git children for the `urls` origins."""

    def __init__(self, source: TokenSource, urls: list[str]):
        self.source = source
        self.origins = {origin(u) for u in urls}
        self.failure: GhvaultError | None = None  # why the last token could not be had
        self.dir = tempfile.mkdtemp(prefix="ghvault-cred-")  # 0700: only this user
        self.path = os.path.join(self.dir, "s")
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    asked = json.loads(self.rfile.readline() or b"{}")
                    answer = server.answer(asked)
                except ValueError:
                    answer = {}
                self.wfile.write(json.dumps(answer).encode())

        self.server = socketserver.ThreadingUnixStreamServer(self.path, Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.2}, daemon=True,
                                       name="credentials")
        self.thread.start()

    def answer(self, asked: dict[str, Any]) -> dict[str, str]:
        wanted = origin(f"{asked.get('protocol', '')}://{asked.get('host', '')}")
        if wanted not in self.origins:
            log.warning("a git child asked for credentials for %s, outside the git origin: "
                        "none given", wanted)
            return {}
        try:
            token = self.source.git_token()
        except GhvaultError as e:  # the mint's own errors say what failed (auth.py)
            self.failure = e
            return {}
        except Exception as e:  # noqa: BLE001 - git must get an answer whatever happened
            self.failure = GitHubUnavailable(f"no token for git: {type(e).__name__}: try "
                                             "again later")
            return {}
        self.failure = None
        return {"username": "x-access-token", "password": token}

    def config(self, urls: list[str]) -> list[tuple[str, str]]:
        """git configuration that makes the children of `urls` ask this server."""
        command = f"!{shlex.quote(sys.executable)} -I {shlex.quote(str(HELPER))}"
        return [(f"credential.{u}/.helper", command) for u in urls]

    def env(self) -> dict[str, str]:
        return {SOCKET_ENV: self.path}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)
