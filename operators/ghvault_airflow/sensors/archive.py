"""Sensors that prove a month's backup is in place and will be kept cold.

`BackupArchiveSensor` waits for the archive and its `<key>.manifest.json` and holds them
against each other (size, S3 checksum or ETag). `GlacierTransitionSensor` checks that the
bucket's lifecycle configuration moves this archive to the cold storage class in time and
keeps it for the retention period, and reports whether last month's archive went cold.
Both are the amazon provider's `AwsBaseSensor` on `ArchiveHook` (`aws_conn_id`,
`region_name`, `verify`, `botocore_config` as in the provider's own sensors); every S3 read
and every S3 error goes through the hook. Configuration problems fail at once
(`AirflowFailException`): waiting cannot fix them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout
from ghvault.contract import parse_archive_key, parse_archive_part, sidecar_key

from ghvault_airflow.hooks.archive import (  # noqa: F401  (the S3 errors are this module's too)
    ArchiveHead,
    ArchiveHook,
    BucketNotFound,
    LifecycleConfigurationMissing,
    ManifestUnreadable,
    ObjectInColdStorage,
    S3AccessDenied,
    S3ConfigurationError,
    S3CredentialsRejected,
    S3RequestFailed,
)
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
    """The archive and its manifest disagree (size, checksum, key)."""


class ArchiveMissing(AirflowSensorTimeout):
    """The archive or its manifest did not appear before the sensor's timeout."""


class GlacierCheckFailed(AirflowFailException):
    """The bucket's lifecycle configuration will not keep the archive as configured."""


class GlacierRuleMismatch(GlacierCheckFailed):
    """No enabled rule transitions and expires this archive as configured."""


class PreviousArchiveNotCold(GlacierCheckFailed):
    """Last month's archive is still in a warm storage class well after its transition date."""


# -- sensors ----------------------------------------------------------------------------------


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


class _ArchiveSensor(AwsBaseSensor[ArchiveHook]):
    aws_hook_class = ArchiveHook

    def __init__(self, *, bucket: str, key: str, mode: str = "reschedule",
                 poke_interval: float = 60, timeout: float = 2 * 3600, **kwargs: Any) -> None:
        super().__init__(mode=mode, poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.bucket = bucket
        self.key = key

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def github_owner(self) -> str | None:
        """The owner whose archive `key` is (None for a key not laid out as the engine lays
        archives out): what the DAG's map index shows and a failure notification names."""
        archive = parse_archive_key(self.key) if isinstance(self.key, str) else None
        return archive.owner if archive else None

    @property
    def shard(self) -> str:
        """"K/N" when `key` is a part of a sharded month, else "" (the map index shows it)."""
        part = parse_archive_part(self.key) if isinstance(self.key, str) else None
        return f"{part.index}/{part.count}" if part else ""


class BackupArchiveSensor(_ArchiveSensor):
    """Wait until the archive at `key` and its manifest `<key>.manifest.json` exist, then
    check that they agree: the manifest describes this key, its size is the object's, and
    its SHA-256 checksum (compared before any multipart `-N` suffix; ETag when no checksum
    was recorded) is the one S3 reports; a full-object checksum, as S3 reports for a copy of
    the archive, is held against the manifest's SHA-256 of the whole archive.

    A missing archive or manifest is waited for (reschedule mode by default: no worker slot
    is held); on timeout `ArchiveMissing` names what is missing. A disagreement fails at once
    (`ArchiveMismatch`), so does an unreadable manifest (`ManifestUnreadable`) or an S3
    refusal (the hook's exceptions). Returns (XCom) `{"bucket", "key", "size",
    "storage_class", "checksum", "etag", "version_id", "sha256", "manifest_key"}`
    (`version_id` is None in an unversioned bucket). Deferrable mode is not offered:
    reschedule mode already frees the worker between pokes.

    :param bucket: bucket of the archive (templated)
    :param key: the archive's key (templated)
    :param aws_conn_id, region_name, verify, botocore_config: as for the amazon provider's
        sensors (the first three templated)
    """

    template_fields: Sequence[str] = aws_template_fields("bucket", "key")
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
        head = self.hook.archive_head(self.bucket, self.key)
        if head is None:
            return self._waiting(f"The archive {self.url} is not there yet")
        manifest_url = f"s3://{self.bucket}/{self.manifest_key}"
        recorded = self.hook.archive_manifest(self.bucket, self.key)
        if recorded is None:
            return self._waiting(f"The archive {self.url} is there but its manifest "
                                 f"{manifest_url} is not")
        self._compare(head, recorded, manifest_url)
        checksum = head.checksum_sha256 or recorded.get("checksum_sha256")
        self.log.info("%s: %d bytes, %s, checksum %s, version %s, agrees with %s", self.url,
                      head.size, head.storage_class, checksum, head.version_id, manifest_url)
        return PokeReturnValue(True, {
            "bucket": self.bucket, "key": self.key, "size": head.size,
            "storage_class": head.storage_class, "checksum": checksum, "etag": head.etag,
            "version_id": head.version_id, "sha256": recorded.get("sha256"),
            "manifest_key": self.manifest_key})

    def _waiting(self, message: str) -> PokeReturnValue:
        self._missing = message
        self.log.info("%s; checking again in %.0f s", message, self.poke_interval)
        return PokeReturnValue(False)

    def _compare(self, head: ArchiveHead, recorded: Mapping[str, Any],
                 manifest_url: str) -> None:
        fix = "run the backup for this month again"
        named = recorded.get("key")
        if named and named not in (self.key, self.url):
            raise ArchiveMismatch(f"The manifest {manifest_url} describes {named}, not "
                                  f"{self.url}: {fix}")
        if recorded.get("size") != head.size:
            raise ArchiveMismatch(
                f"{self.url} is {head.size} bytes but its manifest records "
                f"{recorded.get('size')} bytes: the archive was replaced or truncated; {fix}")
        stored = _b64_part(head.checksum_sha256)
        recorded_checksum = _b64_part(recorded.get("checksum_sha256"))
        full_object = _full_object_checksum(recorded.get("sha256"))
        if stored:
            if stored in (recorded_checksum, full_object):
                return
            # without a recorded S3 checksum a composite (multipart) one cannot be compared
            if recorded_checksum or head.checksum_type == "FULL_OBJECT":
                raise ArchiveMismatch(
                    f"The SHA-256 checksum of {self.url} ({head.checksum_sha256}) is not the "
                    f"one its manifest records ({recorded.get('checksum_sha256')}, sha256 "
                    f"{recorded.get('sha256')}): {fix}")
        etag, recorded_etag = head.etag, recorded.get("etag")
        if etag and recorded_etag:
            if etag.strip('"') != str(recorded_etag).strip('"'):
                raise ArchiveMismatch(f"The ETag of {self.url} ({etag}) is not the one its "
                                      f"manifest records ({recorded_etag}): {fix}")
            return
        raise ArchiveMismatch(f"Neither a SHA-256 checksum nor an ETag of {self.url} can be "
                              f"compared with its manifest {manifest_url}: {fix}")


class GlacierTransitionSensor(_ArchiveSensor):
    """Check that the bucket's lifecycle configuration moves the archive at `key` to
    `storage_class` within `transition_days` and keeps it `retention_days` (see
    `lifecycle_verdict`), and report whether `previous_key` (last month's archive) has gone
    cold.

    Configuration problems fail at once: no lifecycle configuration
    (`LifecycleConfigurationMissing`),
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

    template_fields: Sequence[str] = aws_template_fields(
        "bucket", "key", "size", "storage_class", "transition_days", "retention_days",
        "previous_key", "prefix")
    ui_color = "#b3e5fc"

    def __init__(self, *, size: int | str | None = None, storage_class: str = "GLACIER",
                 transition_days: int | str = 1, retention_days: int | str = 365,
                 previous_key: str | None = None, prefix: str = "github",
                 poke_interval: float = 60, timeout: float = 30 * 60, **kwargs: Any) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.size, self.storage_class = size, storage_class
        self.transition_days, self.retention_days = transition_days, retention_days
        self.previous_key, self.prefix = previous_key, prefix

    def poke(self, context: Any) -> PokeReturnValue:
        if self.storage_class not in COLD_STORAGE_CLASSES:
            raise GlacierCheckFailed(f"storage_class {self.storage_class!r} is not a cold storage "
                                     f"class: use one of {', '.join(COLD_STORAGE_CLASSES)}")
        size = int(self.size) if self.size not in (None, "", "None") else None
        if size is None:
            head = self.hook.archive_head(self.bucket, self.key)
            if head is None:
                self.log.info("%s is not there yet; checking again in %.0f s", self.url,
                              self.poke_interval)
                return PokeReturnValue(False)
            size = head.size
        config = self._lifecycle()
        rules = config.get("Rules") or []
        verdict = self._verdict(rules, self.key, size, config)
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
                  "previous": self._previous(rules, config) if self.previous_key
                  else None}
        return PokeReturnValue(True, result)

    def _lifecycle(self) -> dict[str, Any]:
        try:
            return self.hook.lifecycle_rules(self.bucket)
        except LifecycleConfigurationMissing as exc:
            prefix = self.prefix.strip("/") + "/" if self.prefix.strip("/") else "the bucket"
            raise LifecycleConfigurationMissing(
                f"{str(exc).rstrip('.')}: the rule must transition {prefix} to "
                f"{self.storage_class} after {self.transition_days} days and expire it after "
                f"{self.retention_days} days.") from None

    def _verdict(self, rules: list[dict[str, Any]], key: str, size: int,
                 config: Mapping[str, Any]) -> Verdict:
        tags: dict[str, str] = {}
        if rules_filter_on_tags(rules):
            tags = self.hook.object_tags(self.bucket, key)
        return lifecycle_verdict(rules, key, size, self.storage_class,
                                 int(self.transition_days), int(self.retention_days), tags=tags,
                                 default_minimum_size=config.get(
                                     "TransitionDefaultMinimumObjectSize"))

    def _previous(self, rules: list[dict[str, Any]], config: Mapping[str, Any]
                  ) -> dict[str, Any]:
        url = f"s3://{self.bucket}/{self.previous_key}"
        head = self.hook.archive_head(self.bucket, self.previous_key)
        if head is None:
            self.log.info("No previous archive at %s", url)
            return {"key": self.previous_key, "exists": False}
        storage_class = head.storage_class
        age = datetime.now(UTC) - as_datetime(head.last_modified)
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
        verdict = self._verdict(rules, self.previous_key, head.size, config)
        why = ("; ".join(verdict.reasons) if not verdict.ok else
               f"rule {verdict.rule_id!r} covers it today, so it was probably added or changed "
               "after the object was written (S3 applies a rule to existing objects too: check "
               "again after the next lifecycle run)")
        raise PreviousArchiveNotCold(
            f"The previous archive {url} is still {storage_class} {age.days} days after it was "
            f"written, although it should be {self.storage_class} after "
            f"{self.transition_days} days (+{TRANSITION_GRACE_DAYS} for S3's lifecycle run): "
            f"{why}")
