"""An archive's destination: a store opened for writing and the archive's key in it.

The archive is published atomically: it appears at its final key only when
`Sink.complete()` succeeds; `Sink.abort()` (or any failure) leaves nothing there. The
sidecar manifest goes beside it, `<key><suffix>`, in one atomic write.
"""

from __future__ import annotations

from typing import Any

from ghvault.storage.store import Sink, Store


def check_suffix(name_suffix: str) -> str:
    if not name_suffix.startswith(".") or "/" in name_suffix or "\\" in name_suffix:
        raise ValueError(f"sidecar suffix {name_suffix!r} must start with '.' and contain "
                         "no '/'")
    return name_suffix


class Destination:
    """One archive's place: `check()` before the run, `open()` for the archive, then
    `put_sidecar()` once the archive is complete."""

    def __init__(self, store: Store, key: str, url: str) -> None:
        self.store = store
        self.key = key
        self.url = url

    def check(self) -> None:
        """Raise DestinationError now if the archive could not be written."""
        self.store.check_writable(self.key)

    def open(self) -> Sink:
        """Start writing the archive."""
        return self.store.open_write(self.key, content_type="application/zip")

    def put_sidecar(self, name_suffix: str, data: bytes) -> dict[str, Any]:
        """Write `<archive key><name_suffix>` (contract.SIDECAR_SUFFIX) in one atomic step."""
        return self.store.put(self.key + check_suffix(name_suffix), data,
                              content_type="application/json")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


__all__ = ["Destination"]
