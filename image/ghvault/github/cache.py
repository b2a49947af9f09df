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
            self.prefix = "/".join(p for p in (prefix.strip("/"), owner) if p)
            self.bucket, self.key = bucket, f"{self.prefix}/http-cache.json.gz"
            self.path = None
        else:
            directory = Path(url[7:] if url.startswith("file://") else url)
            self.path = directory / owner / "http-cache.json.gz"
            self.bucket = self.key = self.prefix = None

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
                code = e.response["Error"]["Code"]
                if code in ("NoSuchKey", "404"):
                    return HttpCache()
                raise ConfigError(f"cannot read the state at {self.url} ({code}): create the "
                                  "bucket or grant s3:GetObject on it, or fix --state") from None
            return HttpCache.loads(body)
        except (OSError, ValueError) as e:
            log.warning("state at %s is unreadable (%s); starting without it", self.url, e)
            return HttpCache()

    def assets(self) -> AssetCopies:
        return AssetCopies(self)

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


class AssetCopies:
    """Copies of release assets kept with the state, `{state}/{owner}/assets/{id}-{size}`.

    A release asset's bytes never change under its id (GitHub replaces an asset by
    deleting it and uploading a new one), and every download costs a request from the
    rate limit. With --state the archive's copy comes from here after the first month;
    the archive is still complete and self-contained.
    """

    def __init__(self, store: StateStore):
        self.store = store

    def _name(self, asset: dict[str, Any]) -> str:
        return f"assets/{int(asset['id'])}-{int(asset.get('size') or 0)}"

    def fetch(self, asset: dict[str, Any], dest: str) -> bool:
        """Write the kept copy to `dest`; False when there is none (or it is damaged)."""
        want = int(asset.get("size") or 0)
        try:
            if self.store.path is not None:
                src = self.store.path.parent / self._name(asset)
                if not src.exists() or src.stat().st_size != want:
                    return False
                with open(src, "rb") as f, open(dest, "wb") as out:
                    while chunk := f.read(1 << 20):
                        out.write(chunk)
                return True
            key = f"{self.store.prefix}/{self._name(asset)}"
            self.store._s3().download_file(self.store.bucket, key, dest)
            return Path(dest).stat().st_size == want
        except Exception:  # noqa: BLE001 - a missing or unreadable copy means: download it
            return False

    def keep(self, asset: dict[str, Any], path: str) -> None:
        try:
            if self.store.path is not None:
                dst = self.store.path.parent / self._name(asset)
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_suffix(".tmp")
                with open(path, "rb") as f, open(tmp, "wb") as out:
                    while chunk := f.read(1 << 20):
                        out.write(chunk)
                tmp.replace(dst)
            else:
                key = f"{self.store.prefix}/{self._name(asset)}"
                self.store._s3().upload_file(path, self.store.bucket, key)
        except Exception as e:  # noqa: BLE001 - the backup itself does not depend on it
            log.warning("could not keep a copy of asset %s in the state (%s)", asset.get("id"), e)
