"""What the sensors read from S3, and the one place S3's errors become ghvault's exceptions.

`ArchiveHook` is the amazon provider's `S3Hook` (same connection, region, `verify` and
`botocore_config` handling) with the reads the archive checks need: an archive's head
(size, SHA-256 checksum, ETag, version id, storage class), its sidecar manifest, the
bucket's lifecycle rules and an object's tags. Every `ClientError` goes through
`ArchiveHook.s3_error` once and comes out as one of the exceptions below, whose message is
one sentence naming the fix. An absent object is not an error here: it is `None`, and the
sensors wait for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from botocore.exceptions import ClientError
from ghvault.contract import sidecar_key

# S3's codes for credentials it does not accept (as opposed to permissions they lack).
CREDENTIAL_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                              "InvalidToken", "TokenRefreshRequired", "InvalidClientTokenId"})
ABSENT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class S3RequestFailed(AirflowException):
    """S3 did not answer a read the checks need (throttling, 5xx, an unexpected error):
    retried like any task failure."""

    code: str = ""


class S3ConfigurationError(S3RequestFailed, AirflowFailException):
    """S3 refused for a reason a retry will not change: fails the task at once."""


class BucketNotFound(S3ConfigurationError):
    """NoSuchBucket."""


class S3AccessDenied(S3ConfigurationError):
    """AccessDenied / a bare 403: the connection's role lacks a permission."""


class S3CredentialsRejected(S3ConfigurationError):
    """InvalidAccessKeyId, SignatureDoesNotMatch, ExpiredToken, ...: the credentials are wrong."""


class LifecycleConfigurationMissing(S3ConfigurationError):
    """NoSuchLifecycleConfiguration: the bucket has no lifecycle rules at all."""


class ObjectInColdStorage(S3ConfigurationError):
    """InvalidObjectState: the object is in Glacier and must be restored to be read."""


class ManifestUnreadable(S3ConfigurationError):
    """The sidecar manifest is not a JSON object with an "archive" record."""


@dataclass(frozen=True)
class ArchiveHead:
    """What HeadObject says of an archive."""

    size: int
    etag: str | None
    checksum_sha256: str | None  # base64; multipart objects carry a "-<parts>" suffix
    checksum_type: str | None  # FULL_OBJECT or COMPOSITE
    version_id: str | None  # None when the bucket is not versioned
    storage_class: str  # STANDARD when S3 omits it
    last_modified: datetime | None

    @classmethod
    def from_response(cls, head: dict[str, Any]) -> ArchiveHead:
        version = head.get("VersionId")
        return cls(size=int(head["ContentLength"]), etag=head.get("ETag"),
                   checksum_sha256=head.get("ChecksumSHA256"),
                   checksum_type=head.get("ChecksumType"),
                   version_id=None if version in (None, "null") else version,
                   storage_class=head.get("StorageClass") or "STANDARD",
                   last_modified=head.get("LastModified"))


class ArchiveHook(S3Hook):
    """`S3Hook` reading ghvault archives, their manifests and the bucket's lifecycle rules.

    Takes `S3Hook`'s arguments (`aws_conn_id`, `region_name`, `verify`, `config`, ...).
    """

    hook_name = "ghvault archives (S3)"

    @property
    def _who(self) -> str:
        return (f"the role of Airflow connection {self.aws_conn_id!r}" if self.aws_conn_id
                else "the worker's AWS credentials")

    def s3_error(self, exc: ClientError, action: str, bucket: str,
                 key: str | None = None) -> S3RequestFailed:
        """The exception (with its one-sentence fix) for S3's answer `exc` to `action`
        (the IAM action it needs, e.g. "s3:GetObject") on `bucket`/`key`."""
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or exc.response.get("ResponseMetadata", {})
                   .get("HTTPStatusCode", ""))
        where = f"s3://{bucket}/{key}" if key else f"bucket {bucket}"
        if code == "NoSuchBucket":
            kind, message = BucketNotFound, (
                f"The bucket {bucket} does not exist: check the deployment setting 'bucket' "
                "and the account and region of the AWS connection")
        elif code in CREDENTIAL_CODES:
            kind, message = S3CredentialsRejected, (
                f"S3 rejected the credentials of {self._who} ({code}) reading {where}: refresh "
                "them or fix the connection's keys")
        elif code in ("AccessDenied", "AllAccessDisabled", "403"):
            kind, message = S3AccessDenied, (
                f"Not allowed to read {where} ({code}): grant {action} on {bucket} to "
                f"{self._who}")
        elif code == "NoSuchLifecycleConfiguration":
            kind, message = LifecycleConfigurationMissing, (
                f"bucket {bucket} has no lifecycle configuration: deploy infra/ghvault.yaml or "
                "add a rule that moves the archives to the cold storage class and expires them")
        elif code == "InvalidObjectState":
            kind, message = ObjectInColdStorage, (
                f"{where} is in a cold storage class and cannot be read: restore it (aws s3api "
                "restore-object) before checking it")
        elif code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "301",
                      "IllegalLocationConstraintException"):
            kind, message = S3ConfigurationError, (
                f"bucket {bucket} is in another region than the AWS connection's ({code}): set "
                "the deployment setting 'region' (or the connection's region_name) to the "
                "bucket's region")
        else:
            kind, message = S3RequestFailed, (
                f"S3 answered {code or 'an error'} to {action} on {where} "
                f"({error.get('Message') or exc}): Airflow retries the task; if it keeps "
                "failing check S3's health in the AWS Health Dashboard")
        failure = kind(message + ".")
        failure.code = code
        return failure

    def archive_head(self, bucket: str, key: str) -> ArchiveHead | None:
        """The archive's head, or None when it is not there (yet)."""
        try:
            head = self.get_conn().head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ABSENT_CODES:
                self._check_bucket(bucket)  # a missing bucket will not appear by itself
                return None
            if code == "403":  # a HEAD answer carries no reason: ask a request that does
                self._explain_forbidden_head(bucket, key)
            raise self.s3_error(exc, "s3:GetObject", bucket, key) from None
        return ArchiveHead.from_response(head)

    def _check_bucket(self, bucket: str) -> None:
        try:
            self.get_conn().list_objects_v2(Bucket=bucket, MaxKeys=1)
        except ClientError as exc:
            raise self.s3_error(exc, "s3:ListBucket", bucket) from None

    def _explain_forbidden_head(self, bucket: str, key: str) -> None:
        """Raise the precise error behind a bare 403 to HeadObject: without s3:ListBucket S3
        answers 403 for a missing key, and wrong credentials look the same."""
        try:
            self.get_conn().list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        except ClientError as exc:
            raise self.s3_error(exc, "s3:GetObject and s3:ListBucket", bucket, key) from None

    def archive_manifest(self, bucket: str, key: str) -> dict[str, Any] | None:
        """The `archive` record of the sidecar manifest of the archive at `key`, or None when
        the manifest is not there (yet)."""
        manifest_key = sidecar_key(key)
        try:
            body = self.get_conn().get_object(Bucket=bucket, Key=manifest_key)["Body"].read()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in ABSENT_CODES:
                return None
            raise self.s3_error(exc, "s3:GetObject", bucket, manifest_key) from None
        try:
            record = json.loads(body)["archive"]
            if not isinstance(record, dict):
                raise TypeError(f"'archive' is {type(record).__name__}, not an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestUnreadable(
                f"The manifest s3://{bucket}/{manifest_key} is not a ghvault manifest ({exc!r}): "
                "run the backup for this month again.") from None
        return record

    def lifecycle_rules(self, bucket: str) -> dict[str, Any]:
        """The bucket's lifecycle configuration (`Rules`, and
        `TransitionDefaultMinimumObjectSize` when S3 reports it)."""
        try:
            return self.get_conn().get_bucket_lifecycle_configuration(Bucket=bucket)
        except ClientError as exc:
            raise self.s3_error(exc, "s3:GetLifecycleConfiguration", bucket) from None

    def object_tags(self, bucket: str, key: str) -> dict[str, str]:
        try:
            tag_set = self.get_conn().get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        except ClientError as exc:
            raise self.s3_error(exc, "s3:GetObjectTagging", bucket, key) from None
        return {t["Key"]: t["Value"] for t in tag_set}
