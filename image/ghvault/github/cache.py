"""HTTP validators and bodies kept between months, so unchanged lists cost a free 304.

The cache is one gzip'd JSON document per owner, read at the start of a run and written at
the end: `{state}/{owner}/http-cache.json.gz` in a local directory or an S3 prefix (kept in
S3 Standard, outside the Glacier-transitioned archive prefix). Only what this run used is
written back, so entries of deleted repositories age out by themselves.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, DestinationError

log = logging.getLogger("ghvault.state")
FORMAT = 1


class HttpCache:
    def __init__(self, entries: dict[str, dict[str, Any]] | None = None):
        self.old = entries or {}
        self.new: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    @staticmethod
    def key(url: str) -> str:
        parts = urlsplit(url)  # host and port may change between runs; the path does not
        return parts.path + ("?" + parts.query if parts.query else "")

    def get(self, url: str) -> dict[str, Any] | None:
        k = self.key(url)
        with self.lock:
            entry = self.new.get(k) or self.old.get(k)
            if entry is not None:
                self.new[k] = entry
            return entry

    def put(self, url: str, entry: dict[str, Any]) -> None:
        with self.lock:
            self.new[self.key(url)] = entry

    def dumps(self) -> bytes:
        with self.lock:
            return gzip.compress(json.dumps({"format": FORMAT, "entries": self.new}).encode())

    @classmethod
    def loads(cls, data: bytes) -> HttpCache:
        doc = json.loads(gzip.decompress(data))
        if doc.get("format") != FORMAT:
            return cls()
        return cls(doc.get("entries", {}))


class StateStore:
    """Where the cache lives: a local directory or s3://bucket/prefix/."""

    def __init__(self, url: str, owner: str):
        self.url = url
        self.owner = owner
        if url.startswith("s3://"):
            bucket, _, prefix = url[5:].partition("/")
            if not bucket:
                raise ConfigError(f"--state {url!r} names no bucket: use s3://bucket/prefix/")
            self.bucket, self.key = bucket, f"{prefix.rstrip('/')}/{owner}/http-cache.json.gz"
            self.key = self.key.lstrip("/")
            self.path = None
        else:
            directory = Path(url[7:] if url.startswith("file://") else url)
            self.path = directory / owner / "http-cache.json.gz"
            self.bucket = self.key = None

    def _s3(self):
        import boto3

        return boto3.client("s3")

    def load(self) -> HttpCache:
        try:
            if self.path is not None:
                return HttpCache.loads(self.path.read_bytes()) if self.path.exists() else \
                    HttpCache()
            from botocore.exceptions import ClientError

            try:
                body = self._s3().get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
            except ClientError as e:
                if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
                    return HttpCache()
                raise
            return HttpCache.loads(body)
        except (OSError, ValueError) as e:
            log.warning("state at %s is unreadable (%s); starting without it", self.url, e)
            return HttpCache()

    def save(self, cache: HttpCache) -> None:
        data = cache.dumps()
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(".tmp")
                tmp.write_bytes(data)
                tmp.replace(self.path)
            else:
                self._s3().put_object(Bucket=self.bucket, Key=self.key, Body=data,
                                      ContentType="application/gzip")
        except Exception as e:  # noqa: BLE001 - boto or OS errors alike
            raise DestinationError(f"could not save state to {self.url} ({e}): check the "
                                   "path or the bucket permissions for --state") from None
