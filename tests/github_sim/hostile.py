"""Hostile releases on a running simulator: names GitHub's API can hand a backup tool.

`add_colliding_releases(sim, full_name)` adds releases and assets whose names collide once
they become archive paths, or are no file name at all: two draft releases with the same tag
and the same asset name (GitHub keeps a draft's tag free until it is published), tags
`release/1.0` and `release__1.0`, a tag `..`, and assets named `.`, `..`, `a\\0b` beside
`a_b`, one with a newline and one with a tab. Each asset's bytes are distinct, so a test
can tell which one an archive entry holds. Returns the added releases.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from .generate import USER_LOGIN
from .model import Release, ReleaseAsset

if TYPE_CHECKING:
    from .server import Simulator

STAMP = "2024-05-01T12:00:00Z"

# (tag, draft, asset names)
COLLIDING = (
    ("v9.0", True, ("app.tar.gz",)),
    ("v9.0", True, ("app.tar.gz",)),
    ("release/1.0", False, ("notes.txt",)),
    ("release__1.0", False, ("notes.txt",)),
    ("..", False, ("x.bin",)),
    ("names", False, (".", "..", "a\x00b", "a_b", "line\nbreak.txt", "tab\tname.txt")),
)


def add_colliding_releases(sim: Simulator, full_name: str) -> list[Release]:
    world = sim.world
    repo = world.repos[full_name]
    added = []
    with sim.lock:
        for tag, draft, names in COLLIDING:
            rel = Release(world.new_id(), tag, repo.default_branch, f"hostile {tag}", "", draft,
                          False, USER_LOGIN, STAMP, None if draft else STAMP)
            for name in names:
                data = hashlib.sha256(f"{rel.id}/{name}".encode()).hexdigest().encode() * 40
                rel.assets.append(ReleaseAsset(world.new_id(), name, "application/octet-stream",
                                               data, USER_LOGIN, STAMP, 0))
            repo.releases.append(rel)
            added.append(rel)
    return added
