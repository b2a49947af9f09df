"""Sensors that prove a month's backup is in place and will be kept cold.

`BackupArchiveSensor` waits for the archive and its `<key>.manifest.json` and holds them
against each other (size, S3 checksum or ETag). `GlacierTransitionSensor` checks that the
bucket's lifecycle configuration moves this archive to the cold storage class in time and
keeps it for the retention period, and reports whether last month's archive went cold.
Both use the amazon provider's `S3Hook`; configuration problems fail at once
(`AirflowFailException`): waiting cannot fix them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout
from botocore.exceptions import ClientError
from ghvault.contract import parse_archive_key, sidecar_key

from ghvault_airflow.lifecycle import (  # noqa: F401  (part of this module's API)
    COLD_STORAGE_CLASSES,
    DEFAULT_MIN_TRANSITION_SIZE,
    TRANSITION_GRACE_DAYS,
    Verdict,
    as_datetime,
    lifecycle_verdict,
    rules_filter_on_tags,
)


class ArchiveCheckFailed(AirflowFailException):
    """The archive cannot be verified and waiting will not change that."""


class ArchiveMismatch(ArchiveCheckFailed):
    """The archive and its manifest disagree (size, checksum, key) or the manifest is unreadable."""


class ArchiveMissing(AirflowSensorTimeout):
    """The archive or its manifest did not appear before the sensor's timeout."""


class GlacierCheckFailed(AirflowFailException):
    """The bucket's lifecycle configuration will not keep the archive as configured."""


class GlacierRuleMissing(GlacierCheckFailed):
    """The bucket has no lifecycle configuration (or no bucket at all)."""


class GlacierRuleMismatch(GlacierCheckFailed):
    """No enabled rule transitions and expires this archive as configured."""


class PreviousArchiveNotCold(GlacierCheckFailed):
    """Last month's archive is still in a warm storage class well after its transition date."""


# -- sensors ----------------------------------------------------------------------------------


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _head(client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """HeadObject with the SHA-256 checksum, or None when the object is absent; a missing
    bucket fails at once (it will not appear by itself)."""
    try:
        return client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if _status(exc) == 403:
            raise ArchiveCheckFailed(
                f"Not allowed to read s3://{bucket}/{key}: grant s3:GetObject and s3:ListBucket "
                "on the bucket to the Airflow connection's role") from None
        if _status(exc) != 404:
            raise
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if _status(exc) == 404:
            raise ArchiveCheckFailed(f"The bucket {bucket} does not exist: check the deployment "
                                     "setting `bucket` (and the AWS connection's account "
                                     "and region)") from None
        raise
    return None


def _b64_part(checksum: str | None) -> str | None:
    """`<base64>` of a checksum that may carry a multipart `-<parts>` suffix."""
    return checksum.split("-")[0] if checksum else None


def _full_object_checksum(sha256_hex: str | None) -> str | None:
    """S3's FULL_OBJECT SHA-256 checksum (what a copy of the archive reports) from the
    manifest's hex digest of the whole archive."""
    try:
        return base64.b64encode(bytes.fromhex(sha256_hex)).decode() if sha256_hex else None
    except ValueError:
        return None


class _S3Sensor(BaseSensorOperator):
    def __init__(self, *, bucket: str, key: str, aws_conn_id: str | None = "aws_default",
                 region_name: str | None = None, mode: str = "reschedule",
                 poke_interval: float = 60, timeout: float = 2 * 3600, **kwargs: Any) -> None:
        super().__init__(mode=mode, poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.bucket = bucket
        self.key = key
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    @cached_property
    def hook(self) -> S3Hook:
        return S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def github_owner(self) -> str | None:
        """The owner whose archive `key` is (None for a key not laid out as the engine lays
        archives out): what the DAG's map index shows and a failure notification names."""
        archive = parse_archive_key(self.key) if isinstance(self.key, str) else None
        return archive.owner if archive else None


class BackupArchiveSensor(_S3Sensor):
    """Wait until the archive at `key` and its manifest `<key>.manifest.json` exist, then
    check that they agree: the manifest describes this key, its size is the object's, and
    its SHA-256 checksum (compared before any multipart `-N` suffix; ETag when no checksum
    was recorded) is the one S3 reports; a full-object checksum, as S3 reports for a copy of
    the archive, is held against the manifest's SHA-256 of the whole archive.

    A missing archive or manifest is waited for (reschedule mode by default: no worker slot
    is held); on timeout `ArchiveMissing` names what is missing. A disagreement or an
    unreadable manifest fails at once (`ArchiveMismatch`). Returns (XCom) `{"bucket", "key",
    "size", "storage_class", "checksum", "etag", "sha256", "manifest_key"}`.
    Deferrable mode is not offered: reschedule mode already frees the worker between pokes.

    :param bucket: bucket of the archive (templated)
    :param key: the archive's key (templated)
    :param aws_conn_id: Airflow connection for AWS (templated); None uses boto3's defaults
    :param region_name: AWS region (templated)
    """

    template_fields: Sequence[str] = ("bucket", "key", "aws_conn_id", "region_name")
    ui_color = "#c8e6c9"

    def __init__(self, *, poke_interval: float = 60, timeout: float = 2 * 3600,
                 **kwargs: Any) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self._missing: str | None = None

    @property
    def manifest_key(self) -> str:
        return sidecar_key(self.key)

    def execute(self, context: Any) -> Any:
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            if isinstance(exc, ArchiveMissing) or not self._missing:
                raise
            raise ArchiveMissing(
                f"{self._missing} after {self.timeout:.0f} s: the backup task did not finish "
                "its upload (check its log), or wrote to another key") from exc

    def poke(self, context: Any) -> PokeReturnValue:
        client = self.hook.get_conn()
        head = _head(client, self.bucket, self.key)
        if head is None:
            return self._waiting(f"The archive {self.url} is not there yet")
        manifest_url = f"s3://{self.bucket}/{self.manifest_key}"
        try:
            body = client.get_object(Bucket=self.bucket, Key=self.manifest_key)["Body"].read()
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                return self._waiting(f"The archive {self.url} is there but its manifest "
                                     f"{manifest_url} is not")
            if _error_code(exc) == "InvalidObjectState":
                raise ArchiveCheckFailed(
                    f"The manifest {manifest_url} is in a cold storage class and cannot be "
                    "read: restore it (aws s3api restore-object) before verifying") from None
            raise
        try:
            recorded = json.loads(body)["archive"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ArchiveMismatch(f"The manifest {manifest_url} is not a ghvault manifest "
                                  f"({exc!r}): run the backup for this month again") from None
        self._compare(head, recorded, manifest_url)
        storage_class = head.get("StorageClass") or "STANDARD"
        checksum = head.get("ChecksumSHA256") or recorded.get("checksum_sha256")
        self.log.info("%s: %d bytes, %s, checksum %s, agrees with %s", self.url,
                      head["ContentLength"], storage_class, checksum, manifest_url)
        return PokeReturnValue(True, {
            "bucket": self.bucket, "key": self.key, "size": head["ContentLength"],
            "storage_class": storage_class, "checksum": checksum,
            "etag": head.get("ETag"), "sha256": recorded.get("sha256"),
            "manifest_key": self.manifest_key})

    def _waiting(self, message: str) -> PokeReturnValue:
        self._missing = message
        self.log.info("%s; checking again in %.0f s", message, self.poke_interval)
        return PokeReturnValue(False)

    def _compare(self, head: Mapping[str, Any], recorded: Mapping[str, Any],
                 manifest_url: str) -> None:
        fix = "run the backup for this month again"
        named = recorded.get("key")
        if named and named not in (self.key, self.url):
            raise ArchiveMismatch(f"The manifest {manifest_url} describes {named}, not "
                                  f"{self.url}: {fix}")
        if recorded.get("size") != head["ContentLength"]:
            raise ArchiveMismatch(
                f"{self.url} is {head['ContentLength']} bytes but its manifest records "
                f"{recorded.get('size')} bytes: the archive was replaced or truncated; {fix}")
        stored = _b64_part(head.get("ChecksumSHA256"))
        recorded_checksum = _b64_part(recorded.get("checksum_sha256"))
        full_object = _full_object_checksum(recorded.get("sha256"))
        if stored:
            if stored in (recorded_checksum, full_object):
                return
            # without a recorded S3 checksum a composite (multipart) one cannot be compared
            if recorded_checksum or head.get("ChecksumType") == "FULL_OBJECT":
                raise ArchiveMismatch(
                    f"The SHA-256 checksum of {self.url} ({head['ChecksumSHA256']}) is not the "
                    f"one its manifest records ({recorded.get('checksum_sha256')}, sha256 "
                    f"{recorded.get('sha256')}): {fix}")
        etag, recorded_etag = head.get("ETag"), recorded.get("etag")
        if etag and recorded_etag:
            if etag.strip('"') != str(recorded_etag).strip('"'):
                raise ArchiveMismatch(f"The ETag of {self.url} ({etag}) is not the one its "
                                      f"manifest records ({recorded_etag}): {fix}")
            return
        raise ArchiveMismatch(f"Neither a SHA-256 checksum nor an ETag of {self.url} can be "
                              f"compared with its manifest {manifest_url}: {fix}")


class GlacierTransitionSensor(_S3Sensor):
    """Check that the bucket's lifecycle configuration moves the archive at `key` to
    `storage_class` within `transition_days` and keeps it `retention_days` (see
    `lifecycle_verdict`), and report whether `previous_key` (last month's archive) has gone
    cold.

    Configuration problems fail at once: no lifecycle configuration (`GlacierRuleMissing`),
    no rule that does the job (`GlacierRuleMismatch`, with the reason for every rule). A
    previous archive not yet cold is reported (log and XCom); one still STANDARD more than
    `transition_days` + 2 days after it was written fails (`PreviousArchiveNotCold`). The
    sensor only waits for the archive itself when `size` is not given.

    :param bucket, key: the archive (templated)
    :param size: its size in bytes (templated; read with HeadObject when empty)
    :param storage_class: GLACIER, DEEP_ARCHIVE or GLACIER_IR (templated)
    :param transition_days: the latest acceptable transition, in days (templated)
    :param retention_days: how long the archive must be kept (templated)
    :param previous_key: last month's archive (templated, optional)
    :param prefix: the deployment's prefix, named in the fix when no configuration exists
    """

    template_fields: Sequence[str] = (
        "bucket", "key", "size", "storage_class", "transition_days", "retention_days",
        "previous_key", "prefix", "aws_conn_id", "region_name")
    ui_color = "#b3e5fc"

    def __init__(self, *, size: int | str | None = None, storage_class: str = "GLACIER",
                 transition_days: int | str = 1, retention_days: int | str = 365,
                 previous_key: str | None = None, prefix: str = "github",
                 poke_interval: float = 60, timeout: float = 30 * 60, **kwargs: Any) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.size = size
        self.storage_class = storage_class
        self.transition_days = transition_days
        self.retention_days = retention_days
        self.previous_key = previous_key
        self.prefix = prefix

    def poke(self, context: Any) -> PokeReturnValue:
        if self.storage_class not in COLD_STORAGE_CLASSES:
            raise GlacierCheckFailed(f"storage_class {self.storage_class!r} is not a cold storage "
                                     f"class: use one of {', '.join(COLD_STORAGE_CLASSES)}")
        client = self.hook.get_conn()
        size = int(self.size) if self.size not in (None, "", "None") else None
        if size is None:
            head = _head(client, self.bucket, self.key)
            if head is None:
                self.log.info("%s is not there yet; checking again in %.0f s", self.url,
                              self.poke_interval)
                return PokeReturnValue(False)
            size = int(head["ContentLength"])
        config = self._lifecycle(client)
        rules = config.get("Rules") or []
        verdict = self._verdict(client, rules, self.key, size, config)
        for note in verdict.notes:
            self.log.warning("%s", note)
        if not verdict.ok:
            raise GlacierRuleMismatch(
                f"The lifecycle configuration of bucket {self.bucket} does not keep {self.url} "
                f"as configured ({self.storage_class} within {self.transition_days} days, "
                f"kept {self.retention_days} days): " + "; ".join(verdict.reasons))
        self.log.info("Rule %r moves %s to %s within %s days and keeps it %s days", verdict.rule_id,
                      self.url, self.storage_class, self.transition_days, verdict.expiration_days)
        result = {"bucket": self.bucket, "key": self.key, "size": size,
                  "rule_id": verdict.rule_id, "storage_class": self.storage_class,
                  "transition_days": int(self.transition_days),
                  "expiration_days": verdict.expiration_days, "notes": verdict.notes,
                  "previous": self._previous(client, rules, config) if self.previous_key
                  else None}
        return PokeReturnValue(True, result)

    def _lifecycle(self, client: Any) -> dict[str, Any]:
        try:
            return client.get_bucket_lifecycle_configuration(Bucket=self.bucket)
        except ClientError as exc:
            code = _error_code(exc)
            if code == "NoSuchLifecycleConfiguration":
                prefix = self.prefix.strip("/") + "/" if self.prefix.strip("/") else ""
                raise GlacierRuleMissing(
                    f"bucket {self.bucket} has no lifecycle configuration: deploy "
                    f"infra/ghvault.yaml or add a rule transitioning {prefix or 'the bucket'} "
                    f"to {self.storage_class} after {self.transition_days} days and expiring it "
                    f"after {self.retention_days} days") from None
            if code == "NoSuchBucket":
                raise GlacierRuleMissing(f"The bucket {self.bucket} does not exist: check the "
                                         "deployment setting `bucket`") from None
            if code in ("AccessDenied", "403"):
                raise GlacierCheckFailed(
                    f"Not allowed to read the lifecycle configuration of {self.bucket}: grant "
                    "s3:GetLifecycleConfiguration to the Airflow connection's role") from None
            raise

    def _verdict(self, client: Any, rules: list[dict[str, Any]], key: str, size: int,
                 config: Mapping[str, Any]) -> Verdict:
        tags: dict[str, str] = {}
        if rules_filter_on_tags(rules):
            try:
                tag_set = client.get_object_tagging(Bucket=self.bucket, Key=key)["TagSet"]
                tags = {t["Key"]: t["Value"] for t in tag_set}
            except ClientError as exc:
                self.log.warning("Could not read the tags of s3://%s/%s (%s): tag filters are "
                                 "evaluated as if it had none", self.bucket, key, exc)
        return lifecycle_verdict(rules, key, size, self.storage_class,
                                 int(self.transition_days), int(self.retention_days), tags=tags,
                                 default_minimum_size=config.get(
                                     "TransitionDefaultMinimumObjectSize"))

    def _previous(self, client: Any, rules: list[dict[str, Any]],
                  config: Mapping[str, Any]) -> dict[str, Any]:
        url = f"s3://{self.bucket}/{self.previous_key}"
        head = _head(client, self.bucket, self.previous_key)
        if head is None:
            self.log.info("No previous archive at %s", url)
            return {"key": self.previous_key, "exists": False}
        storage_class = head.get("StorageClass") or "STANDARD"
        age = datetime.now(UTC) - as_datetime(head["LastModified"])
        report = {"key": self.previous_key, "exists": True, "storage_class": storage_class,
                  "cold": storage_class in COLD_STORAGE_CLASSES,
                  "age_days": round(age.total_seconds() / 86400, 1)}
        if report["cold"]:
            self.log.info("The previous archive %s is in %s", url, storage_class)
            if storage_class != self.storage_class:
                self.log.warning("The previous archive is in %s, not %s", storage_class,
                                 self.storage_class)
            return report
        deadline = timedelta(days=int(self.transition_days) + TRANSITION_GRACE_DAYS)
        if age <= deadline:
            report["note"] = (f"not cold yet: written {age.total_seconds() / 86400:.1f} days ago; "
                              f"S3 moves it after {self.transition_days} days plus up to "
                              f"{TRANSITION_GRACE_DAYS} days")
            self.log.info("The previous archive %s is %s, %s", url, storage_class,
                          report["note"])
            return report
        verdict = self._verdict(client, rules, self.previous_key, int(head["ContentLength"]),
                                config)
        why = ("; ".join(verdict.reasons) if not verdict.ok else
               f"rule {verdict.rule_id!r} covers it today, so it was probably added or changed "
               "after the object was written (S3 applies a rule to existing objects too: check "
               "again after the next lifecycle run)")
        raise PreviousArchiveNotCold(
            f"The previous archive {url} is still {storage_class} {age.days} days after it was "
            f"written, although it should be {self.storage_class} after "
            f"{self.transition_days} days (+{TRANSITION_GRACE_DAYS} for S3's lifecycle run): "
            f"{why}")
