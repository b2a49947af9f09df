"""S3 uploads: one object as a multipart upload, published atomically on completion.

Parts carry their SHA-256 (S3 checks each one and records the object's checksum). One part
uploads in a background thread while the next fills, so memory stays at about two parts.
Any failure, or `abort()`, aborts the multipart upload: nothing appears at the key. A
process killed outright leaves an incomplete upload behind; a bucket lifecycle rule with
AbortIncompleteMultipartUpload removes those.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from ghvault.errors import DestinationError
from ghvault.storage.failures import error_code, s3_error
from ghvault.storage.location import s3_url
from ghvault.storage.store import Purpose, Sink

log = logging.getLogger(__name__)

MiB = 1 << 20
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 * 1024 * MiB  # S3's maximum part size
DEFAULT_PART_SIZE = 16 * MiB
MAX_PARTS = 10_000
PARTS_PER_SIZE_STEP = 1_000  # the part size doubles every 1,000 parts (see part_size_for)


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def composite_sha256(part_checksums: list[str]) -> str:
    """S3's checksum of a multipart object: the sha256 of the parts' raw sha256 digests
    (base64, without the "-<parts>" suffix)."""
    digests = b"".join(base64.b64decode(c) for c in part_checksums)
    return base64.b64encode(hashlib.sha256(digests).digest()).decode("ascii")


def part_size_for(number: int, base: int) -> int:
    """Size of part `number` (1-based): `base`, doubling every 1,000 parts up to 5 GiB, so
    10,000 parts reach S3's 5 TiB object limit from a 16 MiB start."""
    return min(base << ((number - 1) // PARTS_PER_SIZE_STEP), MAX_PART_SIZE)


def check_part_size(part_size: int | None) -> int:
    part_size = part_size or DEFAULT_PART_SIZE
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ValueError(f"S3 part size {part_size} must be between 5 MiB and 5 GiB")
    return part_size


class S3Sink(Sink):
    """One multipart upload. One writer at a time (ArchiveWriter serialises its writes);
    `abort()` may come from another thread (a run stopping on a signal): it waits for a
    write under way, and every write after it fails."""

    def __init__(self, client: Any, bucket: str, key: str, *,
                 part_size: int = DEFAULT_PART_SIZE, content_type: str = "application/zip",
                 purpose: Purpose = Purpose.WRITE) -> None:
        self.client = client
        self.purpose = purpose
        self.bucket = bucket
        self.key = key
        self.url = self.where = s3_url(bucket, key)
        self.part_size = part_size
        self.size = 0
        self.state = "open"  # -> completed | aborted
        self.parts: list[dict[str, Any]] = []
        self._buffer = bytearray()
        self._in_flight: Future[dict[str, Any]] | None = None
        self._uploader = ThreadPoolExecutor(1, thread_name_prefix="s3-part")
        self._result: dict[str, Any] | None = None
        self._lock = threading.RLock()  # write, complete and abort, one at a time
        try:
            resp = client.create_multipart_upload(
                Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256",
                ContentType=content_type)
        except Exception as exc:
            self._uploader.shutdown()
            self.state = "aborted"
            raise self._failure(exc, "create_multipart_upload") from exc
        self.upload_id: str = resp["UploadId"]

    # -- Sink ------------------------------------------------------------------------------

    def _write(self, data: bytes) -> int:
        with self._aborting_on_failure("upload_part"):
            self._buffer += data
            self.size += len(data)
            while len(self._buffer) >= (size := self._next_part_size()):
                with memoryview(self._buffer) as view:
                    part = view[:size].tobytes()  # one copy; the view is gone before del
                del self._buffer[:size]
                self._submit(part)
        return len(data)

    def _complete(self) -> dict[str, Any]:
        with self._aborting_on_failure("complete_multipart_upload"):
            if self._buffer or (not self.parts and self._in_flight is None):
                part, self._buffer = bytes(self._buffer), bytearray()
                self._submit(part)
            self._wait_in_flight()
            resp = self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts})
        self.state = "completed"
        self._uploader.shutdown()
        version_id = resp.get("VersionId")
        self._result = {"size": self.size, "etag": resp.get("ETag"),
                        "checksum_sha256": resp.get("ChecksumSHA256"),
                        "version_id": version_id, "parts": len(self.parts)}
        self._check_stored(self._result)
        log.info("%s complete: %d bytes in %d parts", self.url, self.size, len(self.parts))
        return self._result

    def _discard(self) -> None:
        self._buffer = bytearray()
        try:
            self._wait_in_flight()  # a part still uploading would outlive the abort
        except Exception:  # the upload is being dropped anyway
            pass
        finally:
            self._uploader.shutdown()
            self._abort_upload()

    def _abort_upload(self) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key,
                                               UploadId=self.upload_id)
        except Exception as exc:  # abort runs while handling another error
            if error_code(exc)[0] in ("NoSuchUpload", "NoSuchBucket"):
                return  # nothing left to abort
            log.warning("could not abort the multipart upload to %s (%s): a lifecycle rule "
                        "with AbortIncompleteMultipartUpload will remove it", self.url, exc)

    # -- internals -------------------------------------------------------------------------

    def _failure(self, exc: BaseException, action: str) -> Exception:
        return s3_error(exc, self.url, self.purpose, writing=True, action=action,
                        bucket=self.bucket)

    @contextmanager
    def _aborting_on_failure(self, action: str) -> Iterator[None]:
        """Abort the upload when the block fails (even on KeyboardInterrupt); S3's
        failures during `action` become the store's error."""
        try:
            yield
        except Exception as exc:
            self.abort()
            raise self._failure(exc, action) from exc
        except BaseException:
            self.abort()
            raise

    def _next_part_size(self) -> int:
        pending = len(self.parts) + (self._in_flight is not None)
        return part_size_for(pending + 1, self.part_size)

    def _submit(self, part: bytes) -> None:
        """Upload `part` in the background once the previous part is done."""
        self._wait_in_flight()
        number = len(self.parts) + 1
        if number > MAX_PARTS:
            raise DestinationError(f"The archive needs more than {MAX_PARTS} S3 parts: "
                                   "use a larger part size")
        self._in_flight = self._uploader.submit(self._upload_part, number, part)

    def _wait_in_flight(self) -> None:
        if self._in_flight is not None:
            future, self._in_flight = self._in_flight, None
            self.parts.append(future.result())

    def _upload_part(self, number: int, part: bytes) -> dict[str, Any]:
        checksum = sha256_b64(part)
        resp = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number,
            Body=part, ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum)
        return {"PartNumber": number, "ETag": resp["ETag"],
                "ChecksumSHA256": resp.get("ChecksumSHA256") or checksum}

    def _check_stored(self, result: dict[str, Any]) -> None:
        """Read back the object's size and checksum (HeadObject) and hold them against
        what was uploaded. S3 reports a SHA-256 multipart object's checksum as
        `<base64 of sha256(part digests)>-<parts>` (moto leaves out the suffix in
        CompleteMultipartUpload); the recorded value is HeadObject's, as a verifier will
        see it. Without s3:GetObject the check is skipped."""
        args = {"Bucket": self.bucket, "Key": self.key, "ChecksumMode": "ENABLED"}
        if result["version_id"] and result["version_id"] != "null":
            args["VersionId"] = result["version_id"]
        try:
            head = self.client.head_object(**args)
        except Exception as exc:  # informative only: the upload itself succeeded
            log.warning("could not read back %s (%s): size and checksum unchecked",
                        self.url, exc)
            return
        stored = head.get("ChecksumSHA256") or result["checksum_sha256"]
        result["checksum_sha256"] = stored
        expected = composite_sha256([p["ChecksumSHA256"] for p in self.parts])
        if head.get("ContentLength") != self.size or (
                stored and stored.split("-")[0] != expected):
            raise DestinationError(
                f"{self.url} does not match what was uploaded "
                f"({head.get('ContentLength')} bytes, checksum {stored}; expected "
                f"{self.size} bytes, {expected}-{len(self.parts)}): run the backup again")


__all__ = ["MIN_PART_SIZE", "S3Sink", "composite_sha256", "part_size_for", "sha256_b64"]
