"""Secrets kept out of every log line and message: the one registry of them.

The command line registers what it is given (GITHUB_TOKEN, GITHUB_APP_PRIVATE_KEY); the
credentials register what they make at run time (each GitHub App JWT and installation
token, as it is minted). `SCRUBBER` filters the log handler and the final error sentence;
git's stderr goes through it too.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections import deque

KEEP = 256  # secrets remembered (a run mints one installation token per lifetime)


class Scrubber(logging.Filter):
    """Removes secrets (and their base64 forms, as used in Basic auth) from log records."""

    def __init__(self, secrets: list[str] | None = None):
        super().__init__()
        self.lock = threading.Lock()
        self.forms: deque[str] = deque(maxlen=KEEP * 4)
        self.pattern: re.Pattern[str] | None = None
        for s in secrets or []:
            self.add(s)

    def add(self, secret: str) -> None:
        """Scrub `secret` from now on (ignored when too short to be one)."""
        if not secret or len(secret) < 8:
            return
        forms = {secret}
        for raw in (f"x-access-token:{secret}", secret, f"{secret}:x-oauth-basic"):
            forms.add(base64.b64encode(raw.encode()).decode().rstrip("="))
        # A PEM key also appears one line at a time (a traceback, a wrapped message).
        forms |= {ln.strip() for ln in secret.splitlines() if len(ln.strip()) >= 16}
        with self.lock:
            self.forms.extend(f for f in forms if f not in self.forms)
            self.pattern = re.compile("|".join(
                re.escape(f) for f in sorted(set(self.forms), key=len, reverse=True)))

    def scrub(self, text: str) -> str:
        pattern = self.pattern
        return pattern.sub("[REDACTED]", text) if pattern else text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.pattern:
            record.msg = self.scrub(record.getMessage())
            record.args = None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = self.scrub(logging.Formatter().formatException(
                    record.exc_info))
                record.exc_info = None
        return True


SCRUBBER = Scrubber()


def register(secret: str) -> str:
    """Scrub `secret` everywhere from now on; returns it."""
    SCRUBBER.add(secret)
    return secret
