"""ghvault.storage: S3 multipart destination against moto's server, and local files."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from ghvault.archive import MANIFEST_NAME, ArchiveWriter
from ghvault.errors import ConfigError, DestinationError
from ghvault.storage import URL_HELP, open_destination
from ghvault.storage.failures import destination_error
from ghvault.storage.local import LocalDestination
from ghvault.storage.s3 import S3Destination
from ghvault.storage.s3_upload import MIN_PART_SIZE, composite_sha256, part_size_for
from moto.server import ThreadedMotoServer

MiB = 1 << 20


@pytest.fixture(scope="module")
def moto_endpoint() -> str:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, tmp_path: Path) -> str:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return moto_endpoint


@pytest.fixture
def s3(aws_env: str):
    return boto3.client("s3")


@pytest.fixture
def bucket(s3) -> str:
    name = f"ghvault-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def keys(s3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def pending_uploads(s3, bucket: str) -> list[dict]:
    return s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def chunks_of(data: bytes, sizes: tuple[int, ...] = (1 * MiB + 7, 3 * MiB, 333, 2 * MiB)):
    pos, n = 0, 0
    while pos < len(data):
        size = sizes[n % len(sizes)]
        yield data[pos:pos + size]
        pos, n = pos + size, n + 1


# -- S3 ----------------------------------------------------------------------------------


def test_multipart_upload_lands_complete_with_checksum(s3, bucket: str) -> None:
    data = os.urandom(40 * 1000 * 1000)
    dest = open_destination(f"s3://{bucket}/backups/o/2025/01/o-2025-01.zip",
                            part_size=MIN_PART_SIZE)
    dest.check()
    sink = dest.open()
    biggest_buffer = 0
    for chunk in chunks_of(data):
        sink.write(chunk)
        biggest_buffer = max(biggest_buffer, len(sink._buffer))
        assert keys(s3, bucket) == []  # nothing visible before complete()
    assert biggest_buffer < MIN_PART_SIZE  # full parts leave the buffer at once
    stored = sink.complete()

    parts = -(-len(data) // MIN_PART_SIZE)
    assert stored["size"] == len(data) and stored["parts"] == parts == 8
    part_digests = [base64.b64encode(hashlib.sha256(data[i:i + MIN_PART_SIZE]).digest())
                    .decode() for i in range(0, len(data), MIN_PART_SIZE)]
    assert stored["checksum_sha256"].split("-")[0] == composite_sha256(part_digests)
    assert stored["etag"].strip('"').endswith(f"-{parts}")
    obj = s3.get_object(Bucket=bucket, Key="backups/o/2025/01/o-2025-01.zip",
                        ChecksumMode="ENABLED")
    assert obj["Body"].read() == data
    assert obj["ContentType"] == "application/zip"
    assert obj["ChecksumSHA256"].split("-")[0] == stored["checksum_sha256"].split("-")[0]
    assert pending_uploads(s3, bucket) == []
    assert sink.complete() == stored  # idempotent
    sink.abort()  # a no-op once complete
    assert keys(s3, bucket) == ["backups/o/2025/01/o-2025-01.zip"]


def test_archive_and_sidecar_end_to_end(s3, bucket: str) -> None:
    dest = open_destination(f"s3://{bucket}/o/o-2025-02.zip")
    dest.check()
    sink = dest.open()
    archive = ArchiveWriter(sink)
    archive.add_json("o/repo.json", {"name": "r"})
    with archive.jsonl("o/issues.jsonl") as out:
        out.write({"number": 1})
    final = archive.close({"owner": "o"})
    stored = sink.complete()
    assert stored["parts"] == 1 and stored["size"] == archive.archive_size
    sidecar = {**final, "archive": {"size": archive.archive_size,
                                    "sha256": archive.archive_sha256, **stored}}
    written = dest.put_sidecar(".manifest.json", json.dumps(sidecar).encode())
    assert written["key"] == "o/o-2025-02.zip.manifest.json"

    body = s3.get_object(Bucket=bucket, Key="o/o-2025-02.zip")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == archive.archive_sha256
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert json.loads(zf.read(MANIFEST_NAME)) == final
    side = s3.get_object(Bucket=bucket, Key="o/o-2025-02.zip.manifest.json",
                         ChecksumMode="ENABLED")
    raw = side["Body"].read()
    assert json.loads(raw)["archive"]["sha256"] == archive.archive_sha256
    assert side["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(raw).digest()).decode()


def test_failure_mid_upload_leaves_nothing(s3, bucket: str) -> None:
    dest = S3Destination(bucket, "o/fail.zip", part_size=MIN_PART_SIZE)
    calls = []

    def fail_third_part(**kwargs) -> None:
        calls.append(kwargs["params"]["PartNumber"])  # the API call's parameters
        if len(calls) > 2:
            raise ConnectionResetError("network dropped")

    dest.client.meta.events.register("before-parameter-build.s3.UploadPart", fail_third_part)
    sink = dest.open()
    with pytest.raises(DestinationError, match="fail.zip") as caught:
        for chunk in chunks_of(os.urandom(40 * MiB)):
            sink.write(chunk)
        sink.complete()
    assert "run the backup again" in str(caught.value)
    assert calls == [1, 2, 3]
    assert keys(s3, bucket) == []
    assert pending_uploads(s3, bucket) == []
    with pytest.raises(DestinationError, match="aborted"):
        sink.write(b"more")


def test_failure_inside_archive_writer_propagates_destination_error(s3, bucket: str) -> None:
    dest = S3Destination(bucket, "o/fail2.zip", part_size=MIN_PART_SIZE)

    def fail(**kwargs) -> None:
        raise ConnectionResetError("network dropped")

    dest.client.meta.events.register("before-call.s3.UploadPart", fail)
    with pytest.raises(DestinationError), dest.open() as sink:
        archive = ArchiveWriter(sink)
        for n in range(4):
            archive.add_bytes(f"blob{n}.bin", os.urandom(4 * MiB))
        archive.close({})
        sink.complete()
    assert keys(s3, bucket) == [] and pending_uploads(s3, bucket) == []


def test_abort_leaves_nothing(s3, bucket: str) -> None:
    sink = open_destination(f"s3://{bucket}/o/aborted.zip", part_size=MIN_PART_SIZE).open()
    for chunk in chunks_of(os.urandom(12 * MiB)):
        sink.write(chunk)
    assert len(pending_uploads(s3, bucket)) == 1
    sink.abort()
    sink.abort()
    assert keys(s3, bucket) == [] and pending_uploads(s3, bucket) == []
    with pytest.raises(DestinationError):
        sink.complete()


def test_context_manager_aborts_on_error(s3, bucket: str) -> None:
    with pytest.raises(KeyError), open_destination(f"s3://{bucket}/o/ctx.zip").open() as sink:
        sink.write(b"some bytes")
        raise KeyError("collector failed")
    assert keys(s3, bucket) == [] and pending_uploads(s3, bucket) == []


def test_missing_bucket_fails_early_with_the_fix(aws_env: str) -> None:
    dest = open_destination("s3://ghvault-no-such-bucket/o/x.zip")
    with pytest.raises(DestinationError) as caught:
        dest.check()
    assert str(caught.value) == ("S3 bucket 'ghvault-no-such-bucket' does not exist: create "
                                 "it or fix --dest")
    with pytest.raises(DestinationError, match="does not exist"):
        dest.open()


def test_missing_credentials_and_unreachable_endpoint(aws_env: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(DestinationError, match="No AWS credentials"):
        open_destination("s3://some-bucket/x.zip").check()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(DestinationError, match="unreachable.*AWS_ENDPOINT_URL"):
        open_destination("s3://some-bucket/x.zip").check()


def test_access_denied_message_names_the_permission() -> None:
    denied = ClientError({"Error": {"Code": "403", "Message": "Forbidden"},
                          "ResponseMetadata": {"HTTPStatusCode": 403}}, "HeadBucket")
    message = str(destination_error(denied, "bkt", "k.zip", "head_bucket"))
    assert message.startswith("Access to S3 bucket 'bkt' is denied")
    assert "grant s3:PutObject" in message and message.endswith("or fix --dest")


def test_part_sizes() -> None:
    assert part_size_for(1, 16 * MiB) == part_size_for(1000, 16 * MiB) == 16 * MiB
    assert part_size_for(1001, 16 * MiB) == 32 * MiB
    assert part_size_for(10_000, 16 * MiB) == 5 * 1024 * MiB
    total = sum(part_size_for(n, 16 * MiB) for n in range(1, 10_001))
    assert total > 5 * (1 << 40)  # S3's largest object fits in 10,000 parts
    with pytest.raises(ValueError, match="5 MiB"):
        S3Destination("b", "k.zip", part_size=MiB)


# -- URLs ----------------------------------------------------------------------------------


def test_open_destination_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s3dest = open_destination("s3://my-bucket/a/b/o-2025-01.zip")
    assert isinstance(s3dest, S3Destination)
    assert (s3dest.bucket, s3dest.key) == ("my-bucket", "a/b/o-2025-01.zip")
    local = open_destination(f"file://{tmp_path}/x%20y.zip")
    assert isinstance(local, LocalDestination) and local.path == tmp_path / "x y.zip"
    monkeypatch.chdir(tmp_path)
    assert open_destination("out/x.zip").path == tmp_path / "out" / "x.zip"
    assert open_destination(str(tmp_path / "y.zip")).path == tmp_path / "y.zip"


@pytest.mark.parametrize("url", [
    "", "http://example.com/x.zip", "s3://bucket", "s3://bucket/", "s3://bucket/dir/",
    "s3:///key.zip", "s3://bucket/x.tar", "file://otherhost/x.zip", "file:relative.zip",
    "gs://bucket/x.zip", "/tmp/dir/",
])
def test_bad_urls_say_what_dest_must_be(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        open_destination(url)
    assert URL_HELP in str(caught.value)
    assert isinstance(caught.value, ConfigError)


# -- local ---------------------------------------------------------------------------------


def test_local_sink_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "o-2025-01.zip"
    dest = open_destination(f"file://{target}")
    dest.check()
    sink = dest.open()
    partial = tmp_path / f".o-2025-01.zip.partial-{os.getpid()}"
    data = os.urandom(3 * MiB)
    for chunk in chunks_of(data):
        sink.write(chunk)
    assert partial.exists() and not target.exists()
    stored = sink.complete()
    assert stored == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert target.read_bytes() == data and not partial.exists()
    sidecar = dest.put_sidecar(".manifest.json", b'{"ok": true}')
    assert (tmp_path / "o-2025-01.zip.manifest.json").read_bytes() == b'{"ok": true}'
    assert sidecar["size"] == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "o-2025-01.zip", "o-2025-01.zip.manifest.json"]


def test_local_abort_removes_partial_and_keeps_previous_archive(tmp_path: Path) -> None:
    target = tmp_path / "o.zip"
    target.write_bytes(b"last month's good archive")
    with pytest.raises(RuntimeError), open_destination(str(target)).open() as sink:
        sink.write(b"half an archive")
        raise RuntimeError("run failed")
    assert target.read_bytes() == b"last month's good archive"
    assert [p.name for p in tmp_path.iterdir()] == ["o.zip"]
    with pytest.raises(DestinationError, match="aborted"):
        sink.complete()


def test_local_check_fails_early(tmp_path: Path) -> None:
    with pytest.raises(DestinationError, match="does not exist: create it or fix --dest"):
        open_destination(str(tmp_path / "missing" / "x.zip")).check()
    (tmp_path / "d.zip").mkdir()
    with pytest.raises(DestinationError, match="is a directory"):
        open_destination(str(tmp_path / "d.zip")).check()
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(DestinationError, match="not writable"):
            open_destination(str(locked / "x.zip")).check()
