"""Storage failures as the engine's errors: one sentence with the cause and the fix.

The one place S3/botocore errors (and local file errors) are translated. What a failure
becomes depends on what was being done (`Purpose`): writing an archive gives a
DestinationError (exit 5), reading one an ArchiveUnreadable (exit 9), reading the state a
ConfigError (exit 2) and saving it a DestinationError (exit 5).

Whatever the purpose, credentials S3 rejects (InvalidAccessKeyId, SignatureDoesNotMatch,
ExpiredToken, ...) or cannot find are named as such ("refresh them or fix the AWS_*
environment"), never as a permission to grant. A HEAD request gets no error code back (S3
answers a bare 403 or 400), so a refused HeadBucket/HeadObject names both causes.

botocore is imported only when an S3 failure is translated, so a local run never loads it.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from ghvault.errors import ArchiveUnreadable, ConfigError, DestinationError, GhvaultError
from ghvault.storage.location import s3_url
from ghvault.storage.store import Purpose

CREDENTIAL_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                    "InvalidToken", "TokenRefreshRequired", "InvalidClientTokenId",
                    "UnrecognizedClientException", "AuthorizationHeaderMalformed",
                    "RequestExpired", "RequestTimeTooSkewed")
DENIED_CODES = ("AccessDenied", "403", "AllAccessDisabled")


def error_code(exc: BaseException) -> tuple[str, int]:
    """(S3 error code, HTTP status) of a botocore ClientError; ("", 0) for anything else."""
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(response.get("Error", {}).get("Code", "")), int(status or 0)


def credentials_problem(exc: BaseException, where: str) -> str | None:
    """The sentence for credentials S3 rejected or that could not be found, else None."""
    from botocore.exceptions import (
        ClientError,
        CredentialRetrievalError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, ClientError):
        code, _ = error_code(exc)
        if code in CREDENTIAL_CODES:
            return (f"S3 rejected the AWS credentials ({code}) for {where}: refresh them or "
                    "fix the AWS_* environment")
        return None
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ("No AWS credentials were found: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, a profile, or a task role")
    if isinstance(exc, CredentialRetrievalError):
        return (f"The AWS credentials could not be obtained ({exc}): refresh them or fix the "
                "AWS_* environment")
    return None


def bare_head_refusal(exc: BaseException, denied: str, grant: str) -> str | None:
    """The sentence for a HEAD request S3 refused without a reason (a bare 403 or 400),
    else None. `denied` opens the sentence (what was refused), `grant` is the permission
    fix: S3 does not say whether the credentials or the permissions are at fault."""
    code, status = error_code(exc)
    if status not in (400, 403) or code != str(status):
        return None
    if status == 400:
        return (f"{denied} (400; a HEAD answer gives no reason): expired session "
                "credentials are the usual cause: refresh them or fix the AWS_* environment")
    return (f"{denied} (403; a HEAD answer gives no reason): the AWS credentials are wrong or "
            "expired (refresh them or fix the AWS_* environment), or they lack permission: "
            f"{grant}")


def is_absent(exc: BaseException) -> bool:
    """True when S3 answered that the object does not exist (a missing bucket is not
    absent: it is a failure). HEAD answers a bare 404 for both."""
    code, status = error_code(exc)
    return code in ("NoSuchKey", "NotFound", "404") or (status == 404 and
                                                         code != "NoSuchBucket")


def s3_error(exc: BaseException, where: str, purpose: Purpose = Purpose.READ, *,
             writing: bool = False, action: str = "read", bucket: str = "") -> GhvaultError:
    """The engine's error for an S3 failure on `where` (an s3:// URL) during `action` (the
    S3 operation), for a store of `purpose`; `writing` tells a state save from a read."""
    if isinstance(exc, GhvaultError):
        return exc
    if purpose is Purpose.STATE:
        return state_error(exc, where, writing)
    if purpose is Purpose.WRITE:
        return s3_write_error(exc, where, bucket, action)
    return s3_read_error(exc, where)


def s3_write_error(exc: BaseException, where: str, bucket: str, action: str) -> DestinationError:
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    grant = ("grant s3:PutObject, s3:AbortMultipartUpload and s3:ListBucket on it to these "
             "credentials or fix --dest")
    if problem := credentials_problem(exc, f"S3 bucket '{bucket}' ({action})"):
        return DestinationError(problem)
    if isinstance(exc, ClientError):
        code, status = error_code(exc)
        if code in ("NoSuchBucket", "404") or (status == 404 and action == "head_bucket"):
            return DestinationError(f"S3 bucket '{bucket}' does not exist: create it or fix "
                                    "--dest")
        if problem := bare_head_refusal(
                exc, f"Access to S3 bucket '{bucket}' is denied ({action})", grant):
            return DestinationError(problem)
        if code in DENIED_CODES or status == 403:
            return DestinationError(
                f"Access to S3 bucket '{bucket}' is denied ({action}): {grant}")
        if code == "NoSuchUpload":
            return DestinationError(f"The multipart upload to {where} disappeared (aborted "
                                    "elsewhere or by a lifecycle rule): run the backup again")
        message = exc.response.get("Error", {}).get("Message") or code
        return DestinationError(f"S3 {action} on {where} failed ({code or status}: {message}): "
                                "check the bucket and run the backup again")
    if isinstance(exc, EndpointConnectionError):
        return DestinationError(f"S3 is unreachable ({exc}): check the network, AWS_REGION "
                                "and AWS_ENDPOINT_URL")
    if isinstance(exc, BotoCoreError):
        return DestinationError(f"S3 {action} on {where} failed ({exc}): check the network "
                                "and AWS configuration and run the backup again")
    return DestinationError(f"S3 {action} on {where} failed ({type(exc).__name__}: {exc}): "
                            "run the backup again")


def s3_read_error(exc: BaseException, where: str) -> ArchiveUnreadable:
    from botocore.exceptions import ClientError

    if problem := credentials_problem(exc, where):
        return ArchiveUnreadable(problem)
    if isinstance(exc, ClientError):
        code, _ = error_code(exc)
        if problem := bare_head_refusal(exc, f"access to {where} is denied",
                                        "grant s3:GetObject and s3:RestoreObject on it to "
                                        "these credentials"):
            return ArchiveUnreadable(problem)
        if code in ("AccessDenied", "403"):
            return ArchiveUnreadable(f"access to {where} is denied: grant s3:GetObject and "
                                     "s3:RestoreObject on it to these credentials")
        if code == "NoSuchBucket":
            return ArchiveUnreadable(f"the bucket of {where} does not exist: check the URL")
        return ArchiveUnreadable(f"S3 refused to read {where} ({code}): check the URL and "
                                 "the AWS configuration")
    return ArchiveUnreadable(f"cannot read {where} ({exc}): check the network and AWS "
                             "configuration")


def state_error(exc: BaseException, where: str, writing: bool) -> GhvaultError:
    """Saving the state fails like the destination (exit 5, retried); S3 refusing to read
    it is a configuration error (exit 2). A transport failure while reading it is retried
    like a failed save."""
    from_aws = type(exc).__module__.startswith("botocore")  # not a local file's failure
    if from_aws and (problem := credentials_problem(exc, f"the state at {where}")):
        return DestinationError(problem) if writing else ConfigError(problem)
    if writing:
        return DestinationError(f"could not save state to {where} ({exc}): check the path or "
                                "the bucket permissions for --state")
    code, _ = error_code(exc)
    if problem := bare_head_refusal(exc, f"cannot read the state at {where}",
                                    "create the bucket or grant s3:GetObject on it, or fix "
                                    "--state"):
        return ConfigError(problem)
    if code:
        return ConfigError(f"cannot read the state at {where} ({code}): create the bucket or "
                           "grant s3:GetObject on it, or fix --state")
    return DestinationError(f"could not read the state at {where} ({exc}): check the "
                            "network and AWS configuration, then run the backup again")


def notify_error(exc: BaseException, topic: str) -> DestinationError:
    """The engine's error for a failed SNS Publish to `topic` (`ghvault list --expect
    --notify-topic`): exit 5, as a destination that cannot be written (run it again)."""
    if problem := credentials_problem(exc, f"SNS topic {topic}"):
        return DestinationError(problem)
    code, status = error_code(exc)  # ("", 0) unless SNS answered (a ClientError)
    if code or status:
        message = getattr(exc, "response", {}).get("Error", {}).get("Message") or code
        if code == "NotFound" or status == 404:
            return DestinationError(f"SNS topic {topic} does not exist: create it or fix "
                                    "--notify-topic")
        if code in ("AuthorizationError", "AccessDenied", "KMSAccessDenied") or status == 403:
            return DestinationError(
                f"Publishing to SNS topic {topic} is denied ({code}: {message}): grant "
                "sns:Publish on it (and kms:GenerateDataKey and kms:Decrypt on its key, for an "
                "encrypted topic) to these credentials, or fix --notify-topic")
        return DestinationError(f"SNS refused to publish to {topic} ({code or status}: "
                                f"{message}): check the topic and run the command again")
    return DestinationError(f"Could not publish to SNS topic {topic} ({exc}): check the "
                            "network, AWS_REGION and AWS_ENDPOINT_URL, then run the command "
                            "again")


def destination_error(exc: BaseException, bucket: str, key: str,
                      action: str) -> GhvaultError:
    """`s3_error` for writing the archive at s3://bucket/key."""
    return s3_error(exc, s3_url(bucket, key), Purpose.WRITE, writing=True, action=action,
                    bucket=bucket)


def file_error(exc: OSError, path: Path, purpose: Purpose = Purpose.WRITE,
               action: str = "write", option: str = "--dest") -> GhvaultError:
    """The engine's error for a failed write of the local file `path` (`action`: create,
    write, complete, restoring): the state's for Purpose.STATE, else a destination error
    whose fix names `option` (--dest for archives, --to for restores)."""
    if purpose is Purpose.STATE:
        return state_error(exc, str(path), writing=True)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DestinationError(f"No space left on the device of '{path}' ({action}): free "
                                f"space or choose another {option}")
    if exc.errno == errno.ENAMETOOLONG:
        return DestinationError(f"Cannot write '{path}' ({action}): the path is too long for "
                                f"the filesystem: choose a shorter {option}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DestinationError(f"Permission denied writing '{path}' ({action}): fix the "
                                f"directory's permissions or choose another {option}")
    if exc.errno == errno.ENOENT:
        return DestinationError(f"Directory '{path.parent}' does not exist: create it or fix "
                                f"{option}")
    return DestinationError(f"Cannot write '{path}' ({action}: {exc.strerror or exc}): check "
                            f"the path or choose another {option}")


__all__ = ["credentials_problem", "destination_error", "error_code", "file_error",
           "is_absent", "notify_error", "s3_error"]
