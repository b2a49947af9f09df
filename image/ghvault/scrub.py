"""Secrets kept out of every log line and message: the one registry of them.

The command line registers what it is given (GITHUB_TOKEN, GITHUB_APP_PRIVATE_KEY); the
credentials register what they make at run time (each GitHub App JWT and installation
token, as it is minted). `SCRUBBER` filters the log handler and the final error sentence;
git's stderr goes through it too. Besides what was registered, anything shaped like a
GitHub token, a JWT, a PEM block or a JSON `"token"` field is redacted: a secret can be
logged before it is registered (an HTTP layer logging the answer that carries it).
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections import deque

KEEP = 256  # minted secrets remembered (a run mints one installation token per lifetime)
REDACTED = "[REDACTED]"
# GitHub's token formats, a JWT (header.payload.signature, base64url JSON), a PEM block
# (also one wrapped or cut short), and the token field of an access-token answer.
SHAPES = re.compile("|".join([
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",
    r"\bgithub_pat_[A-Za-z0-9_]{20,}",
    r"\beyJ[\w-]+\.[\w-]+\.[\w-]+",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:.|\n)*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
]))
TOKEN_FIELD = re.compile(r'("token"\s*:\s*")[^"]+(")')


class Scrubber(logging.Filter):
    """Removes secrets (and their base64 forms, as used in Basic auth) from log records."""

    def __init__(self, secrets: list[str] | None = None):
        super().__init__()
        self.lock = threading.Lock()
        # What the run was given lives as long as the run; what it mints is rotated out.
        self.fixed: set[str] = set()
        self.minted: deque[str] = deque(maxlen=KEEP * 4)
        self.pattern: re.Pattern[str] | None = None
        for s in secrets or []:
            self.add(s)

    def add(self, secret: str, rotating: bool = False) -> None:
        """Scrub `secret` from now on (ignored when too short to be one); `rotating`: a
        minted JWT or token, forgotten after KEEP more of them."""
        if not secret or len(secret) < 8:
            return
        forms = {secret}
        for raw in (f"x-access-token:{secret}", secret, f"{secret}:x-oauth-basic"):
            forms.add(base64.b64encode(raw.encode()).decode().rstrip("="))
        # A PEM key also appears one line at a time (a traceback, a wrapped message).
        forms |= {ln.strip() for ln in secret.splitlines() if len(ln.strip()) >= 16}
        with self.lock:
            if rotating:
                self.minted.extend(f for f in forms - self.fixed if f not in self.minted)
            else:
                self.fixed |= forms
            self.pattern = None  # compiled again by the next scrub: many adds, one compile

    def _compiled(self) -> re.Pattern[str] | None:
        with self.lock:
            known = self.fixed | set(self.minted)
            if self.pattern is None and known:
                self.pattern = re.compile("|".join(
                    re.escape(f) for f in sorted(known, key=len, reverse=True)))
            return self.pattern

    def scrub(self, text: str) -> str:
        pattern = self._compiled()
        text = pattern.sub(REDACTED, text) if pattern else text
        text = TOKEN_FIELD.sub(rf"\g<1>{REDACTED}\g<2>", text)
        return SHAPES.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.scrub(logging.Formatter().formatException(
                record.exc_info))
            record.exc_info = None
        return True


SCRUBBER = Scrubber()


def register(secret: str, rotating: bool = False) -> str:
    """Scrub `secret` everywhere from now on; returns it. `rotating`: see Scrubber.add."""
    SCRUBBER.add(secret, rotating)
    return secret
