"""Where something is stored, as the user wrote it: the one parser of locations.

Every option that names storage goes through `parse_location`: `--dest` and ARCHIVE name an
object (an archive), `--state` and LOCATION a prefix or directory. Three forms are accepted:
`s3://bucket/key`, `file:///absolute/path` and a plain path (`~` expands, relative paths
are taken from the current directory). Anything else fails with one sentence that names the
option and the forms it accepts.

Standard library only: parsing a location must never import boto3.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from ghvault.errors import ConfigError

Kind = Literal["object", "prefix"]
FORMS: dict[Kind, str] = {
    "object": "s3://bucket/key.zip, file:///path/x.zip or a path",
    "prefix": "s3://bucket/prefix/, file:///path/ or a directory",
}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")  # two letters at least: C:\ is a path


class LocationError(ConfigError, ValueError):
    """A location this tool cannot read or write (exit code of a config error)."""


@dataclass(frozen=True)
class Location:
    """A parsed location: an S3 bucket and key, or a local path, split into the root a store
    opens (a key prefix or a directory) and the object's name under it."""

    bucket: str | None  # the S3 bucket; None for the local filesystem
    root: str  # S3: a key prefix, "" or ending in "/"; local: an absolute directory
    name: str  # the object's name under root; "" when the location is a prefix
    shown: str  # how messages name it: the s3:// URL, or the local path as written

    @property
    def is_s3(self) -> bool:
        return self.bucket is not None


def s3_url(bucket: str, key: str) -> str:
    """The s3:// URL `parse_location` reads back as `bucket` and `key`."""
    return f"s3://{bucket}/{key}"


def usage(option: str, kind: Kind) -> str:
    """What `option` accepts, as the start of every error about it."""
    return f"{option} must be {FORMS[kind]}"


def parse_location(text: str, option: str, *, kind: Kind = "object",
                   suffix: str = "") -> Location:
    """The location `text` names for `option` (`--dest`, ARCHIVE, `--state`, LOCATION).

    kind="object": an object or file, ending in `suffix` when one is given;
    kind="prefix": an S3 key prefix (a trailing "/" is implied) or a directory.
    """
    help_text = usage(option, kind)
    if not isinstance(text, str) or not text.strip():
        raise LocationError(f"{help_text} (it is empty)")
    text = text.strip()

    def fail(why: str) -> LocationError:
        return LocationError(f"{help_text}: {text!r} {why}")

    match = _SCHEME.match(text)
    scheme = match.group(1).lower() if match else ""
    if scheme == "s3" and text[3:5] == "//":
        return s3_location(text, kind, suffix, fail)
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise fail("is not a local file URL")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise fail("needs an absolute path")
    elif scheme:
        raise LocationError(f"{help_text}, not {text!r}")  # http://, gs://, s3:x, file:x
    else:
        path = os.path.expanduser(text)
    return local_location(path, kind, suffix, fail)


def s3_location(text: str, kind: Kind, suffix: str,
                fail: Callable[[str], LocationError]) -> Location:
    bucket, _, key = text[len("s3://"):].partition("/")
    if not bucket:
        raise fail("names no bucket")
    if kind == "prefix":
        key = key.strip("/")
        return Location(bucket, key + "/" if key else "", "", text)
    if not key or key.endswith("/"):
        raise fail("names no object key")
    require_suffix(key, suffix, fail)
    root, _, name = key.rpartition("/")
    return Location(bucket, root + "/" if root else "", name, text)


def local_location(path: str, kind: Kind, suffix: str,
                   fail: Callable[[str], LocationError]) -> Location:
    absolute = os.path.abspath(path)
    if kind == "prefix":
        return Location(None, absolute, "", str(Path(path)))
    if path.endswith(("/", os.sep)):
        raise fail(f"does not end in {suffix}" if suffix else "names a directory, not a file")
    require_suffix(path, suffix, fail)
    return Location(None, os.path.dirname(absolute), os.path.basename(absolute),
                    str(Path(path)))


def require_suffix(name: str, suffix: str, fail: Callable[[str], LocationError]) -> None:
    if suffix and not name.lower().endswith(suffix.lower()):
        raise fail(f"does not end in {suffix}")


__all__ = ["FORMS", "Kind", "Location", "LocationError", "parse_location", "s3_url", "usage"]
