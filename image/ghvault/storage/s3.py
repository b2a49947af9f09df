"""The S3 store: objects under a key prefix of one bucket.

Writes go through a multipart upload (`S3Sink`, published on completion) or one PutObject
with its SHA-256; reads are ranged GETs kept open while reads stay sequential (`S3Reader`).
Every failure becomes the engine's error for the store's purpose (storage.failures).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

import boto3
from botocore.config import Config

from ghvault.storage.destination import Destination
from ghvault.storage.failures import error_code, is_absent, s3_error
from ghvault.storage.location import s3_url
from ghvault.storage.reader import GAP_FILL, RangeReader
from ghvault.storage.s3_upload import S3Sink, check_part_size, sha256_b64
from ghvault.storage.store import ObjectInfo, Purpose, Store

log = logging.getLogger(__name__)

ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")  # objects that must be restored to be read


def s3_client(max_attempts: int | None = None) -> Any:
    """boto3's S3 client: credentials, region and AWS_ENDPOINT_URL from the usual chain,
    botocore's standard retry mode (AWS_MAX_ATTEMPTS, default 8 attempts)."""
    attempts = max_attempts or int(os.environ.get("AWS_MAX_ATTEMPTS") or 8)
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts},
                    connect_timeout=20, read_timeout=300)
    # A session of its own: credentials and endpoint are read from the environment now,
    # not from whatever boto3's default session cached earlier in the process.
    return boto3.session.Session().client("s3", config=config)


def restore_state(head: dict[str, Any]) -> str:
    """"available" (no restore needed), "archived", "restoring" or "restored", from a
    HeadObject response."""
    if head.get("StorageClass") not in ARCHIVE_CLASSES:
        return "available"
    restore = head.get("Restore") or ""
    if 'ongoing-request="true"' in restore:
        return "restoring"
    if 'ongoing-request="false"' in restore:
        return "restored"
    return "archived"


class S3Store(Store):
    """Objects under `prefix` ("" or ending in "/") in `bucket`."""

    def __init__(self, bucket: str, prefix: str = "", *, purpose: Purpose = Purpose.READ,
                 part_size: int | None = None, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.purpose = purpose
        self.part_size = check_part_size(part_size)
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client()
        return self._client

    def where(self, key: str) -> str:
        return s3_url(self.bucket, self.prefix + key)

    def _failure(self, exc: BaseException, key: str, action: str,
                 writing: bool = False) -> Exception:
        return s3_error(exc, self.where(key), self.purpose, writing=writing, action=action,
                        bucket=self.bucket)

    # -- writing ---------------------------------------------------------------------------

    def check_writable(self, key: str) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise self._failure(exc, key, "head_bucket", writing=True) from exc

    def open_write(self, key: str, *, content_type: str = "application/octet-stream") -> S3Sink:
        return S3Sink(self.client, self.bucket, self.prefix + key, part_size=self.part_size,
                      content_type=content_type, purpose=self.purpose)

    def put(self, key: str, data: bytes, *,
            content_type: str = "application/octet-stream") -> dict[str, Any]:
        try:
            resp = self.client.put_object(
                Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType=content_type,
                ChecksumAlgorithm="SHA256", ChecksumSHA256=sha256_b64(data))
        except Exception as exc:
            raise self._failure(exc, key, "put_object", writing=True) from exc
        return {"key": self.prefix + key, "size": len(data), "etag": resp.get("ETag"),
                "checksum_sha256": resp.get("ChecksumSHA256"),
                "version_id": resp.get("VersionId")}

    def put_file(self, key: str, path: str | os.PathLike[str], *,
                 content_type: str = "application/octet-stream") -> None:
        # boto3's managed transfer: one PutObject, or a multipart upload for a large file
        try:
            self.client.upload_file(str(path), self.bucket, self.prefix + key,
                                    ExtraArgs={"ContentType": content_type})
        except Exception as exc:
            raise self._failure(exc, key, "upload_file", writing=True) from exc

    # -- reading ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket,
                                          Key=self.prefix + key)["Body"].read()
        except Exception as exc:
            if is_absent(exc):
                return None
            raise self._failure(exc, key, "get_object") from exc

    def head(self, key: str) -> ObjectInfo | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except Exception as exc:
            if is_absent(exc):
                return None
            raise self._failure(exc, key, "head_object") from exc
        return ObjectInfo(key, int(head["ContentLength"]), head.get("StorageClass") or "STANDARD",
                          restore_state(head), head["LastModified"].astimezone(UTC),
                          head.get("VersionId"), head.get("ETag"))

    def open_read(self, key: str, size: int, *, hashing: bool = False) -> S3Reader:
        return S3Reader(self.client, self.bucket, self.prefix + key, size, hashing,
                        failure=lambda exc: self._failure(exc, key, "get_object"))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=self.prefix + prefix):
                for obj in page.get("Contents", []):
                    cls = obj.get("StorageClass") or "STANDARD"
                    # a listing cannot tell whether an archived object is restored
                    restore = None if cls in ARCHIVE_CLASSES else "available"
                    yield ObjectInfo(obj["Key"][len(self.prefix):], int(obj["Size"]), cls,
                                     restore, obj["LastModified"].astimezone(UTC),
                                     etag=obj.get("ETag"))
        except Exception as exc:
            raise self._failure(exc, prefix, "list_objects_v2") from exc

    def versions(self, key: str) -> list[ObjectInfo]:
        """ListObjectVersions for `key` alone; empty when the bucket keeps no versions or
        s3:ListBucketVersions is not granted (logged)."""
        found = []
        try:
            for page in self.client.get_paginator("list_object_versions").paginate(
                    Bucket=self.bucket, Prefix=self.prefix + key):
                for v in page.get("Versions", []):
                    if v["Key"] != self.prefix + key:
                        continue
                    cls = v.get("StorageClass") or "STANDARD"
                    found.append(ObjectInfo(key, int(v["Size"]), cls,
                                            None if cls in ARCHIVE_CLASSES else "available",
                                            v["LastModified"].astimezone(UTC),
                                            v.get("VersionId"), v.get("ETag")))
        except Exception as exc:  # noqa: BLE001 - the versions only name a fallback
            log.info("could not list the versions of %s (%s)", self.where(key), exc)
            return []
        return sorted(found, key=lambda v: v.last_modified, reverse=True)

    def request_restore(self, key: str, *, tier: str, days: int) -> None:
        request = {"Days": days, "GlacierJobParameters": {"Tier": tier}}
        try:
            self.client.restore_object(Bucket=self.bucket, Key=self.prefix + key,
                                       RestoreRequest=request)
        except Exception as exc:
            if error_code(exc)[0] == "RestoreAlreadyInProgress":
                return
            raise self._failure(exc, key, "restore_object") from exc


class S3Reader(RangeReader):
    """Reads through one open-ended ranged GET while reads are sequential."""

    def __init__(self, client: Any, bucket: str, key: str, size: int, hashing: bool = False,
                 version_id: str | None = None,
                 failure: Callable[[BaseException], Exception] | None = None) -> None:
        super().__init__(size, hashing)
        self.client, self.bucket, self.key, self.version_id = client, bucket, key, version_id
        self.failure = failure  # exception -> the engine's error; None: raise as it is
        self.body: Any = None
        self.body_pos = 0
        self.requests = 0

    def _open(self, pos: int) -> None:
        self._drop()
        args = {"Bucket": self.bucket, "Key": self.key, "Range": f"bytes={pos}-"}
        if self.version_id:
            args["VersionId"] = self.version_id
        self.requests += 1
        self.body = self.client.get_object(**args)["Body"]
        self.body_pos = pos

    def _drop(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None

    def _read_at(self, pos: int, n: int) -> bytes:
        try:
            return self._read_body(pos, n)
        except Exception as exc:
            if self.failure is None:
                raise
            raise self.failure(exc) from exc

    def _read_body(self, pos: int, n: int) -> bytes:
        if (self.body is None or not 0 <= pos - self.body_pos <= GAP_FILL) and \
                not self._open_at(pos):
            return b""
        if pos > self.body_pos:  # skip forward on the open stream
            self.body.read(pos - self.body_pos)
            self.body_pos = pos
        out = bytearray()
        for attempt in range(3):
            while len(out) < n:
                chunk = self.body.read(n - len(out))
                if not chunk:
                    break
                out += chunk
                self.body_pos += len(chunk)
            if len(out) == n or self.body_pos >= self.size or attempt == 2:
                break
            if not self._open_at(self.body_pos):  # the connection ended early: carry on
                break
        return bytes(out)

    def _open_at(self, pos: int) -> bool:
        """Open the stream at `pos`; False when the object has no byte there (it is
        shorter than its size said: the reader then reports it cut short)."""
        try:
            self._open(pos)
        except Exception as exc:
            if error_code(exc)[0] == "InvalidRange":
                return False
            raise
        return True

    def close(self) -> None:
        self._drop()
        super().close()

    def __str__(self) -> str:
        return s3_url(self.bucket, self.key)


class S3Destination(Destination):
    """An archive written to s3://bucket/key by multipart upload, its sidecar by PutObject."""

    def __init__(self, bucket: str, key: str, *, part_size: int | None = None,
                 client: Any = None) -> None:
        self.bucket = bucket
        self.s3 = S3Store(bucket, purpose=Purpose.WRITE, part_size=part_size, client=client)
        super().__init__(self.s3, key, s3_url(bucket, key))

    @property
    def client(self) -> Any:
        return self.s3.client


__all__ = ["S3Destination", "S3Reader", "S3Store", "restore_state", "s3_client"]
