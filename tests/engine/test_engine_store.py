"""ghvault.storage: the location parser, the store interface on both backends (local files
and S3 in moto's server), and the translation of storage failures into the engine's errors."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from ghvault.errors import ArchiveUnreadable, ConfigError, DestinationError
from ghvault.storage import (
    Location,
    LocationError,
    Purpose,
    Store,
    TruncatedRead,
    open_store,
    parse_location,
)
from ghvault.storage.failures import file_error, is_absent, s3_error
from ghvault.storage.local import LocalStore
from ghvault.storage.s3 import S3Store

MiB = 1 << 20


# -- the location parser -------------------------------------------------------------------


@pytest.mark.parametrize("text,kind,expected", [
    ("s3://bkt/a/b/o-2025-01.zip", "object", Location("bkt", "a/b/", "o-2025-01.zip",
                                                      "s3://bkt/a/b/o-2025-01.zip")),
    ("  s3://bkt/x.zip ", "object", Location("bkt", "", "x.zip", "s3://bkt/x.zip")),
    ("s3://bkt/github", "prefix", Location("bkt", "github/", "", "s3://bkt/github")),
    ("s3://bkt//github/", "prefix", Location("bkt", "github/", "", "s3://bkt//github/")),
    ("s3://bkt", "prefix", Location("bkt", "", "", "s3://bkt")),
    ("S3://bkt/k.zip", "object", Location("bkt", "", "k.zip", "S3://bkt/k.zip")),
    ("file:///srv/a%20b/x.zip", "object", Location(None, "/srv/a b", "x.zip", "/srv/a b/x.zip")),
    ("file://localhost/srv/x.zip", "object", Location(None, "/srv", "x.zip", "/srv/x.zip")),
    ("file:///srv/vault/", "prefix", Location(None, "/srv/vault", "", "/srv/vault")),
    ("/srv/vault", "prefix", Location(None, "/srv/vault", "", "/srv/vault")),
])
def test_locations_that_parse(text: str, kind, expected: Location) -> None:
    assert parse_location(text, "OPTION", kind=kind) == expected


def test_plain_paths_expand_the_home_and_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    home = parse_location("~/backups/x.zip", "ARCHIVE")
    assert (home.root, home.name, home.bucket) == (str(tmp_path / "home" / "backups"),
                                                   "x.zip", None)
    assert home.shown == str(tmp_path / "home" / "backups" / "x.zip")
    relative = parse_location("out/state", "--state", kind="prefix")
    assert relative.root == str(tmp_path / "out" / "state") and relative.shown == "out/state"
    assert not relative.is_s3 and parse_location("s3://b/k", "ARCHIVE").is_s3


@pytest.mark.parametrize("option,kind,forms", [
    ("--dest", "object", "s3://bucket/key.zip, file:///path/x.zip or a path"),
    ("ARCHIVE", "object", "s3://bucket/key.zip, file:///path/x.zip or a path"),
    ("--state", "prefix", "s3://bucket/prefix/, file:///path/ or a directory"),
    ("LOCATION", "prefix", "s3://bucket/prefix/, file:///path/ or a directory"),
])
@pytest.mark.parametrize("text,why", [
    ("", "(it is empty)"),
    ("   ", "(it is empty)"),
    ("gs://bucket/x.zip", "not 'gs://bucket/x.zip'"),
    ("https://bucket.s3.amazonaws.com/x.zip", "not 'https://"),
    ("s3:bucket/x.zip", "not 's3:bucket/x.zip'"),
    ("s3:///x.zip", "names no bucket"),
    ("file://otherhost/x.zip", "is not a local file URL"),
    ("file:relative.zip", "needs an absolute path"),
    ("file:///x.zip?versionId=3", "is not a local file URL"),
])
def test_rejected_locations_name_the_option_and_the_forms(option: str, kind, forms: str,
                                                          text: str, why: str) -> None:
    with pytest.raises(LocationError) as caught:
        parse_location(text, option, kind=kind)
    message = str(caught.value)
    assert message.startswith(f"{option} must be {forms}") and why in message
    assert "\n" not in message and message.count(". ") == 0  # one sentence
    assert isinstance(caught.value, ConfigError) and caught.value.exit_code == 2


@pytest.mark.parametrize("text,why", [
    ("s3://bucket", "names no object key"),
    ("s3://bucket/", "names no object key"),
    ("s3://bucket/dir/", "names no object key"),
    ("/srv/dir/", "names a directory, not a file"),
])
def test_an_object_location_needs_an_object(text: str, why: str) -> None:
    with pytest.raises(LocationError, match=why):
        parse_location(text, "ARCHIVE")


def test_a_suffix_is_required_when_asked_for() -> None:
    assert parse_location("s3://b/x.ZIP", "--dest", suffix=".zip").name == "x.ZIP"
    for text in ("s3://b/x.tar", "/srv/x.tgz", "/srv/dir/", "file:///srv/x"):
        with pytest.raises(LocationError, match="does not end in .zip"):
            parse_location(text, "--dest", suffix=".zip")
    assert parse_location("/srv/x.tgz", "ARCHIVE").name == "x.tgz"  # no suffix asked


# -- the store interface, on both backends -------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return open_store(parse_location(str(tmp_path / "root"), "LOCATION", kind="prefix"),
                          Purpose.WRITE)
    aws = request.getfixturevalue("aws")
    bucket = f"ghvault-store-{uuid.uuid4().hex[:12]}"
    aws.client("s3").create_bucket(Bucket=bucket)
    return open_store(parse_location(f"s3://{bucket}/root/", "LOCATION", kind="prefix"),
                      Purpose.WRITE, part_size=5 * MiB)


def test_open_store_picks_the_backend(store: Store, tmp_path: Path) -> None:
    if isinstance(store, LocalStore):
        assert store.root == tmp_path / "root" and store.where("a/b") == str(
            tmp_path / "root" / "a" / "b")
    else:
        assert isinstance(store, S3Store) and store.prefix == "root/"
        assert store.where("a/b") == f"s3://{store.bucket}/root/a/b"


def test_put_get_head_and_list(store: Store) -> None:
    assert store.get("o/none.json") is None and store.head("o/none.json") is None
    stored = store.put("o/a.json", b'{"a": 1}', content_type="application/json")
    assert stored["size"] == 8
    store.put("o/deeper/b.bin", b"bb")
    store.put("other/c.bin", b"ccc")
    assert store.get("o/a.json") == b'{"a": 1}'
    info = store.head("o/a.json")
    assert info is not None and (info.key, info.size, info.restore) == ("o/a.json", 8,
                                                                        "available")
    assert info.storage_class in ("LOCAL", "STANDARD")
    assert info.last_modified.utcoffset() is not None  # aware, UTC
    assert sorted(i.key for i in store.list()) == ["o/a.json", "o/deeper/b.bin",
                                                    "other/c.bin"]
    assert sorted(i.key for i in store.list("o/")) == ["o/a.json", "o/deeper/b.bin"]
    assert sorted(i.key for i in store.list("o")) == ["o/a.json", "o/deeper/b.bin",
                                                       "other/c.bin"]
    assert {i.key: i.size for i in store.list("o/deeper/")} == {"o/deeper/b.bin": 2}
    store.put("o/a.json", b"replaced")
    assert store.get("o/a.json") == b"replaced"


def test_open_write_publishes_only_on_complete(store: Store) -> None:
    data = os.urandom(12 * MiB + 5)
    with store.open_write("o/big.zip", content_type="application/zip") as sink:
        for pos in range(0, len(data), 3 * MiB):
            sink.write(data[pos:pos + 3 * MiB])
        assert store.head("o/big.zip") is None and list(store.list()) == []
        stored = sink.complete()
    assert stored["size"] == len(data)
    assert store.head("o/big.zip").size == len(data)
    with pytest.raises(KeyError), store.open_write("o/dropped.zip") as sink:
        sink.write(b"half")
        raise KeyError("the run failed")
    assert [i.key for i in store.list()] == ["o/big.zip"]
    with store.open_read("o/big.zip", len(data), hashing=True) as reader:
        reader.seek(len(data) - 10)
        assert reader.read(10) == data[-10:]
        reader.seek(0)
        assert reader.read(1000) == data[:1000]
        assert reader.finish_sha256() == hashlib.sha256(data).hexdigest()


def test_put_file_and_read_it_back(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "state.jsonl.gz"
    source.write_bytes(os.urandom(MiB + 1))
    store.put_file("hubber/http-cache.jsonl.gz", source, content_type="application/gzip")
    info = store.head("hubber/http-cache.jsonl.gz")
    assert info is not None and info.size == MiB + 1
    with store.open_read(info.key, info.size) as raw:
        assert io.BufferedReader(raw).read() == source.read_bytes()


def test_a_reader_of_an_object_that_shrank_fails_as_truncated(store: Store) -> None:
    store.put("o/short.bin", b"0123456789")
    with store.open_read("o/short.bin", 20) as reader, pytest.raises(TruncatedRead) as caught:
        reader.read(20)
    assert isinstance(caught.value, ArchiveUnreadable)
    assert not isinstance(caught.value, EOFError)  # verify takes EOFError for a damaged entry
    assert "ended after 10 of 20 bytes" in str(caught.value)


def test_only_archived_s3_objects_can_be_restored(aws, tmp_path: Path) -> None:
    local = LocalStore(tmp_path)
    with pytest.raises(ValueError, match="not in an archive storage class"):
        local.request_restore("x.zip", tier="Bulk", days=1)
    bucket = f"ghvault-glacier-{uuid.uuid4().hex[:12]}"
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="v/o.zip", Body=b"zip", StorageClass="GLACIER")
    store = S3Store(bucket, "v/")
    assert [(i.key, i.storage_class, i.restore) for i in store.list()] == [
        ("o.zip", "GLACIER", None)]  # a listing cannot tell
    assert store.head("o.zip").restore == "archived"
    store.request_restore("o.zip", tier="Standard", days=2)
    assert store.head("o.zip").restore in ("restoring", "restored")
    store.request_restore("o.zip", tier="Standard", days=2)  # already under way: fine


# -- failures as the engine's errors -------------------------------------------------------


def client_error(code: str, status: int, operation: str = "GetObject") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


@pytest.mark.parametrize("purpose,writing,error,expected", [
    (Purpose.WRITE, True, DestinationError,
     "Access to S3 bucket 'bkt' is denied (put_object): grant s3:PutObject"),
    (Purpose.READ, False, ArchiveUnreadable,
     "access to s3://bkt/k.zip is denied: grant s3:GetObject and s3:RestoreObject"),
    (Purpose.STATE, False, ConfigError,
     "cannot read the state at s3://bkt/k.zip (AccessDenied): create the bucket or grant "
     "s3:GetObject on it, or fix --state"),
    (Purpose.STATE, True, DestinationError, "could not save state to s3://bkt/k.zip ("),
])
def test_one_denied_request_per_purpose(purpose: Purpose, writing: bool, error: type,
                                        expected: str) -> None:
    failure = s3_error(client_error("AccessDenied", 403), "s3://bkt/k.zip", purpose,
                       writing=writing, action="put_object", bucket="bkt")
    assert type(failure) is error and str(failure).startswith(expected)
    assert failure.exit_code == {DestinationError: 5, ArchiveUnreadable: 9, ConfigError: 2}[error]


def test_read_and_transport_failures_keep_their_sentences() -> None:
    where = "s3://bkt/k.zip"
    assert str(s3_error(client_error("NoSuchBucket", 404), where)) == \
        "the bucket of s3://bkt/k.zip does not exist: check the URL"
    assert str(s3_error(client_error("SlowDown", 503), where)) == \
        "S3 refused to read s3://bkt/k.zip (SlowDown): check the URL and the AWS configuration"
    unreachable = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    assert str(s3_error(unreachable, where)).startswith("cannot read s3://bkt/k.zip (")
    written = s3_error(unreachable, where, Purpose.WRITE, writing=True, bucket="bkt")
    assert isinstance(written, DestinationError) and "AWS_ENDPOINT_URL" in str(written)
    state = s3_error(unreachable, where, Purpose.STATE)
    assert isinstance(state, DestinationError) and "could not read the state" in str(state)
    already = ArchiveUnreadable("named already")
    assert s3_error(already, where, Purpose.WRITE) is already


def test_absent_objects_are_told_from_missing_buckets() -> None:
    assert is_absent(client_error("NoSuchKey", 404))
    assert is_absent(client_error("404", 404, "HeadObject"))
    assert not is_absent(client_error("NoSuchBucket", 404))
    assert not is_absent(client_error("AccessDenied", 403))
    assert not is_absent(RuntimeError("no response at all"))


def test_file_failures_name_the_option(tmp_path: Path) -> None:
    full = OSError(28, "No space left on device")
    assert str(file_error(full, tmp_path / "x.zip")).startswith("No space left on the device")
    saved = file_error(full, tmp_path / "state", Purpose.STATE)
    assert isinstance(saved, DestinationError) and "--state" in str(saved)


def test_stores_translate_their_failures_by_purpose(aws, tmp_path: Path) -> None:
    missing = f"ghvault-missing-{uuid.uuid4().hex[:12]}"
    with pytest.raises(DestinationError, match=f"S3 bucket '{missing}' does not exist"):
        S3Store(missing, purpose=Purpose.WRITE).check_writable("x.zip")
    with pytest.raises(ArchiveUnreadable, match="does not exist: check the URL"):
        S3Store(missing, purpose=Purpose.READ).get("x.zip")
    with pytest.raises(ArchiveUnreadable, match="does not exist: check the URL"):
        list(S3Store(missing, purpose=Purpose.READ).list())
    with pytest.raises(ConfigError, match="cannot read the state at .*NoSuchBucket"):
        S3Store(missing, purpose=Purpose.STATE).get("o/http-cache.jsonl.gz")
    with pytest.raises(DestinationError, match="could not save state to"):
        S3Store(missing, purpose=Purpose.STATE).put_file("o/x", __file__)
    (tmp_path / "file").write_text("a file where a directory should be")
    with pytest.raises(DestinationError, match="could not save state to .*--state"):
        LocalStore(tmp_path / "file", purpose=Purpose.STATE).put("o/x", b"x")
    with pytest.raises(NotADirectoryError):
        list(LocalStore(tmp_path / "nowhere").list())


def test_a_local_run_never_imports_boto3(tmp_path: Path) -> None:
    script = f"""
import os
import sys
from ghvault.catalog import catalog
from ghvault.github.cache import HttpCache, StateStore
from ghvault.source import open_source
from ghvault.storage import open_destination

root = {str(tmp_path)!r}
os.makedirs(root + "/vault/o/2026/01")
dest = open_destination(root + "/vault/o/2026/01/o-2026-01.zip")
dest.check()
with dest.open() as sink:
    sink.write(b"PK")
    sink.complete()
dest.put_sidecar(".manifest.json", b"{{}}")
assert open_source(dest.url).sidecar() == {{}}
assert len(catalog(root + "/vault")["archives"]) == 1
state = StateStore(root + "/state", "o")
cache = state.load(root)
state.save(cache)
assert "boto3" not in sys.modules and "botocore" not in sys.modules, "boto3 was imported"
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
