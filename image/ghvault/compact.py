"""A repository's listing entry kept as compact JSON text until its job runs.

The listing is held for the whole run (every repository's jobs are queued at the start):
as parsed dicts, ~20 KiB each, it was the largest thing in the engine's heap that grew
with the number of repositories (6.7 MiB at 326); as text it is about a quarter of that,
and each job parses its own copy only while it runs.
"""

from __future__ import annotations

import json
from typing import Any


class Compact:
    __slots__ = ("text", "api_work", "git_work")

    def __init__(self, doc: dict[str, Any], api_work: int, git_work: int):
        self.text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
        self.api_work, self.git_work = api_work, git_work  # the queue's order

    def load(self) -> dict[str, Any]:
        return json.loads(self.text)
