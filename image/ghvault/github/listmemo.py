"""Long lists kept in the HTTP cache between months (a repository's issue events, its
reviews), in chunks of CHUNK items, so that neither reading last month's list nor writing
this month's holds more than one chunk in memory: as one entry, the largest repository's
list (and its JSON text, and its parsed copy) was in memory at once, and the engine's
peak grew with the issues of the largest repository.

Layout: the memo's own key holds its head `{"gen": G, "chunks": N, **meta}`; chunk i of
generation G is the entry `/ghvault/chunk/G/i` + key, `{"items": [...]}`. A new list is
written under the other generation while the old one is still being read; the head is
written last and the old chunks are then dropped (an entry this run neither used nor
wrote does not go into the next state, but one it read does: hence the drop). A list cut
short (an error while it was read) drops its new chunks and keeps the old memo as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .cache import HttpCache

CHUNK = 200  # items per entry: a few hundred KiB of JSON at most for events or reviews


def _chunk_key(key: str, gen: int, i: int) -> str:
    return f"/ghvault/chunk/{gen}/{i}{key}"


class ListMemo:
    """One memo: `head` (None when there is none), `items()` to read it, `writer()`."""

    def __init__(self, cache: HttpCache, key: str):
        self.cache, self.key = cache, key
        head = cache.get(key)
        gen, chunks = (head.get("gen"), head.get("chunks")) if isinstance(head, dict) else (0, 0)
        # A memo with a chunk missing or damaged is no memo: the list is read whole, as
        # without one. Checked here, one chunk at a time, because a reader may already
        # have written the items before a chunk that fails half-way through.
        whole = isinstance(gen, int) and isinstance(chunks, int) and all(
            self._chunk(gen, i) is not None for i in range(chunks))
        self.head = head if isinstance(head, dict) and (whole or "items" in head) else None

    def _chunk(self, gen: int, i: int) -> list[Any] | None:
        chunk = self.cache.get(_chunk_key(self.key, gen, i))
        items = chunk.get("items") if chunk is not None else None
        return items if isinstance(items, list) else None

    @property
    def meta(self) -> dict[str, Any]:
        return {k: v for k, v in (self.head or {}).items()
                if k not in ("gen", "chunks", "items")}

    def items(self) -> Iterator[Any]:
        """Last time's items, one chunk in memory at a time."""
        head = self.head
        if head is None:
            return
        if isinstance(head.get("items"), list):  # written whole, by an earlier version
            yield from head["items"]
            return
        for i in range(head["chunks"]):
            chunk = self._chunk(head["gen"], i)
            if chunk is None:  # checked whole when the memo was opened: a bug if it is not
                raise RuntimeError(f"chunk {i} of the memo {self.key} went missing")
            yield from chunk

    def writer(self) -> MemoWriter:
        old_gen = (self.head or {}).get("gen")
        return MemoWriter(self, 1 - old_gen if old_gen in (0, 1) else 0)


class MemoWriter:
    """This run's list, chunk by chunk; `commit(meta)` makes it the memo, and a writer
    left uncommitted (`with` exited by an exception) removes what it wrote."""

    def __init__(self, memo: ListMemo, gen: int):
        self.memo, self.gen = memo, gen
        self.buffer: list[Any] = []
        self.chunks = 0
        self.done = False

    def add(self, item: Any) -> None:
        self.buffer.append(item)
        if len(self.buffer) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        self.memo.cache.put(_chunk_key(self.memo.key, self.gen, self.chunks),
                            {"items": self.buffer})
        self.chunks += 1
        self.buffer = []

    def commit(self, meta: dict[str, Any] | None = None) -> None:
        if self.buffer:
            self._flush()
        memo, cache = self.memo, self.memo.cache
        cache.put(memo.key, {**(meta or {}), "gen": self.gen, "chunks": self.chunks})
        old = memo.head or {}
        if isinstance(old.get("gen"), int) and isinstance(old.get("chunks"), int):
            cache.drop(_chunk_key(memo.key, old["gen"], i) for i in range(old["chunks"]))
        self.done = True

    def __enter__(self) -> MemoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.done:
            self.memo.cache.drop(_chunk_key(self.memo.key, self.gen, i)
                                 for i in range(self.chunks))
