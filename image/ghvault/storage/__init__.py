"""Destinations: where one archive (and its sidecar manifest) is written.

`open_destination(url)` understands `s3://bucket/key.zip` and `file:///path/x.zip` (or a
plain path). A destination publishes the archive atomically: the object or file appears
at its final name only when `Sink.complete()` succeeds; `Sink.abort()` (or any failure)
leaves nothing there.

    dest = open_destination("s3://bucket/owner/2025/01/owner-2025-01.zip")
    dest.check()                       # fails early: missing bucket, no permission, ...
    with dest.open() as sink:          # aborts on an exception
        sink.write(b"...")
        stored = sink.complete()
    dest.put_sidecar(".manifest.json", manifest_bytes)
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from typing import Any
from urllib.parse import unquote, urlsplit

from ghvault.errors import ConfigError, DestinationError

__all__ = [
    "Destination", "DestinationError", "DestinationURLError", "Sink", "open_destination",
]

URL_HELP = "--dest must be s3://bucket/key.zip or file:///path/x.zip"


class DestinationURLError(ConfigError, ValueError):
    """--dest is not a destination this tool can write to (exit code of a config error)."""


class Sink(ABC):
    """The write end of one archive. Use `complete()` to publish or `abort()` to drop it;
    as a context manager it aborts when the block raises and was not completed."""

    @abstractmethod
    def write(self, data: bytes, /) -> int:
        """Append bytes; raises DestinationError when the destination fails."""

    @abstractmethod
    def complete(self) -> dict[str, Any]:
        """Publish the archive at its final name and describe what was stored."""

    @abstractmethod
    def abort(self) -> None:
        """Drop everything written; nothing appears at the final name. Idempotent, and a
        no-op after a successful complete()."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()


class Destination(ABC):
    """One archive's place: `check()` before the run, `open()` for the archive, then
    `put_sidecar()` once the archive is complete."""

    url: str

    @abstractmethod
    def check(self) -> None:
        """Raise DestinationError now if the archive could not be written."""

    @abstractmethod
    def open(self) -> Sink:
        """Start writing the archive."""

    @abstractmethod
    def put_sidecar(self, name_suffix: str, data: bytes) -> dict[str, Any]:
        """Write `<archive name><name_suffix>` (".manifest.json") in one atomic step."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def check_suffix(name_suffix: str) -> str:
    if not name_suffix.startswith(".") or "/" in name_suffix or "\\" in name_suffix:
        raise ValueError(f"sidecar suffix {name_suffix!r} must start with '.' and contain "
                         "no '/'")
    return name_suffix


def open_destination(url: str, *, part_size: int | None = None) -> Destination:
    """The destination `url` names: s3://bucket/key.zip, file:///abs/x.zip or a path.
    `part_size` (bytes, at least 5 MiB) sets the S3 multipart part size."""
    from ghvault.storage.local import LocalDestination
    from ghvault.storage.s3 import S3Destination

    if not isinstance(url, str) or not url.strip():
        raise DestinationURLError(f"{URL_HELP} (it is empty)")
    url = url.strip()
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]+):", url)
    scheme = match.group(1).lower() if match else ""
    if scheme == "s3":
        bucket, _, key = url[len("s3://"):].partition("/")
        if not bucket or not key or key.endswith("/"):
            raise DestinationURLError(f"{URL_HELP}: {url!r} names no object key")
        require_zip(url, key)
        return S3Destination(bucket, key, part_size=part_size)
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise DestinationURLError(f"{URL_HELP}: {url!r} is not a local file URL")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise DestinationURLError(f"{URL_HELP}: {url!r} needs an absolute path")
        require_zip(url, path)
        return LocalDestination(path)
    if scheme:
        raise DestinationURLError(f"{URL_HELP}, not {url!r}")  # http://, gs://, file:x
    path = os.path.abspath(os.path.expanduser(url))
    require_zip(url, path)
    return LocalDestination(path)


def require_zip(url: str, name: str) -> None:
    if name.endswith("/") or not name.lower().endswith(".zip"):
        raise DestinationURLError(f"{URL_HELP}: {url!r} does not end in .zip")


def __getattr__(name: str) -> Any:
    # The concrete classes load on first use, so a local run never imports boto3.
    if name in ("LocalDestination", "LocalSink"):
        from ghvault.storage import local
        return getattr(local, name)
    if name in ("S3Destination", "S3Sink"):
        from ghvault.storage import s3
        return getattr(s3, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
