"""The engine's storage layer: one location parser, one store interface for S3 and local
files, one translation of storage failures into the engine's errors.

    location = parse_location("s3://bucket/github/", "LOCATION", kind="prefix")
    store = open_store(location, Purpose.READ)   # S3Store or LocalStore
    for info in store.list("hubber/"): ...       # ObjectInfo: key, size, storage class, ...

    dest = open_destination("s3://bucket/owner/2025/01/owner-2025-01.zip")
    dest.check()                       # fails early: missing bucket, no permission, ...
    with dest.open() as sink:          # aborts on an exception
        sink.write(b"...")
        stored = sink.complete()       # the archive appears at its key only now
    dest.put_sidecar(SIDECAR_SUFFIX, manifest_bytes)

The S3 classes load on first use, so a local run never imports boto3.
"""

from __future__ import annotations

from typing import Any

from ghvault.contract import ARCHIVE_SUFFIX
from ghvault.storage.destination import Destination
from ghvault.storage.location import Location, LocationError, parse_location, usage
from ghvault.storage.reader import RangeReader, TruncatedRead
from ghvault.storage.store import ObjectInfo, Purpose, Sink, Store

__all__ = [
    "URL_HELP", "Destination", "Location", "LocationError", "ObjectInfo", "Purpose",
    "RangeReader", "Sink", "Store", "TruncatedRead", "open_destination", "open_store",
    "parse_location",
]

URL_HELP = usage("--dest", "object")


def open_store(location: Location, purpose: Purpose, *, part_size: int | None = None) -> Store:
    """The store rooted at `location.root`: S3Store for s3://, LocalStore otherwise.
    `part_size` (bytes, 5 MiB to 5 GiB) sets the S3 multipart part size."""
    if location.bucket is not None:
        from ghvault.storage.s3 import S3Store

        return S3Store(location.bucket, location.root, purpose=purpose, part_size=part_size)
    from ghvault.storage.local import LocalStore

    return LocalStore(location.root, purpose=purpose)


def open_destination(url: str, *, part_size: int | None = None) -> Destination:
    """The destination `url` (--dest) names: s3://bucket/key.zip, file:///abs/x.zip or a
    path."""
    location = parse_location(url, "--dest", kind="object", suffix=ARCHIVE_SUFFIX)
    if location.bucket is not None:
        from ghvault.storage.s3 import S3Destination

        return S3Destination(location.bucket, location.root + location.name,
                             part_size=part_size)
    from ghvault.storage.local import LocalDestination

    return LocalDestination(f"{location.root}/{location.name}")


def __getattr__(name: str) -> Any:
    # The concrete classes load on first use, so a local run never imports boto3.
    if name in ("LocalDestination", "LocalReader", "LocalSink", "LocalStore"):
        from ghvault.storage import local
        return getattr(local, name)
    if name in ("S3Destination", "S3Reader", "S3Store"):
        from ghvault.storage import s3
        return getattr(s3, name)
    if name == "S3Sink":
        from ghvault.storage import s3_upload
        return s3_upload.S3Sink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
