"""ghvault.archive: the streaming zip writer, read back with zipfile (and unzip -t)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import threading
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from ghvault.archive import MANIFEST_NAME, ArchiveWriter, check_entry_name, choose_kind


class ListSink:
    """Write-only, like an S3 multipart stream: no seek, no tell."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(bytes(data))

    def getvalue(self) -> bytes:
        return b"".join(self.chunks)


class FileSink:
    """Write-only wrapper around a file: the archive streams to disk, not to memory."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "wb")  # noqa: SIM115

    def write(self, data: bytes) -> None:
        self._f.write(data)

    def close(self) -> None:
        self._f.close()


class FailingSink(ListSink):
    def __init__(self, fail_after: int) -> None:
        super().__init__()
        self.fail_after = fail_after

    def write(self, data: bytes) -> None:
        if sum(map(len, self.chunks)) + len(data) > self.fail_after:
            raise OSError("destination went away")
        super().write(data)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unzip_test(path: Path) -> None:
    if shutil.which("unzip") is None:
        return
    result = subprocess.run(["unzip", "-tqq", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_round_trip_manifest_last_and_compression_per_kind(tmp_path: Path) -> None:
    sink = ListSink()
    assert not hasattr(sink, "seek") and not hasattr(sink, "tell")
    archive = ArchiveWriter(sink)
    random_blob = os.urandom(300_000)
    on_disk = tmp_path / "asset.tar.gz"
    on_disk.write_bytes(random_blob)
    archive.add_bytes("repos/a/git.bundle", b"bundle bytes " * 100)
    archive.add_bytes("repos/a/lfs/objects/ab/cd/abcd1234", b"lfs object " * 100)
    archive.add_bytes("repos/a/readme.txt", "héllo wörld\n".encode() * 100)
    archive.add_bytes("repos/a/blob.bin", random_blob)  # unknown suffix, incompressible
    archive.add_bytes("repos/a/forced.png", b"x" * 1000, kind="deflated")
    archive.add_json("repos/a/repo.json", {"b": 1, "a": ["é", 2]})
    archive.add_file("repos/a/releases/asset.tar.gz", on_disk)
    with archive.jsonl("repos/a/issues.jsonl") as out:
        for n in range(1000):
            out.write({"number": n, "title": f"issue {n}"})
    assert out.count == 1000
    final = archive.close({"owner": "a", "month": "2025-01"})

    data = sink.getvalue()
    assert archive.archive_size == len(data) == archive.bytes_written
    assert archive.archive_sha256 == sha256(data)
    (tmp_path / "a.zip").write_bytes(data)
    unzip_test(tmp_path / "a.zip")

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
        assert infos[-1].filename == MANIFEST_NAME
        manifest = json.loads(zf.read(MANIFEST_NAME))
        assert manifest == final
        assert manifest["owner"] == "a" and manifest["month"] == "2025-01"
        paths = [e["path"] for e in manifest["entries"]]
        assert paths == sorted(paths) and len(paths) == len(infos) - 1
        for entry in manifest["entries"]:
            info = zf.getinfo(entry["path"])
            body = zf.read(info)
            assert len(body) == entry["size"] == info.file_size
            assert sha256(body) == entry["sha256"]
            assert entry["compressed"] == (info.compress_type == zipfile.ZIP_DEFLATED)
            assert info.flag_bits & 0x08  # data descriptor: the stream was never rewound
        kinds = {e["path"].rsplit("/", 1)[-1]: e["compressed"] for e in manifest["entries"]}
        assert kinds == {"git.bundle": False, "abcd1234": False, "readme.txt": True,
                         "blob.bin": False, "forced.png": True, "repo.json": True,
                         "asset.tar.gz": False, "issues.jsonl": True}
        assert zf.read("repos/a/repo.json").decode() == (
            '{\n  "a": [\n    "é",\n    2\n  ],\n  "b": 1\n}\n')
        lines = zf.read("repos/a/issues.jsonl").decode().splitlines()
        assert [json.loads(line)["number"] for line in lines] == list(range(1000))
        assert zf.read("repos/a/releases/asset.tar.gz") == random_blob


def test_choose_kind() -> None:
    assert choose_kind("x/y.PACK") == "stored"
    assert choose_kind("lfs/objects/00/11/0011") == "stored"
    assert choose_kind("a/issues.jsonl", os.urandom(1000)) == "deflated"
    assert choose_kind("a/thing.bin", bytes(100_000)) == "deflated"
    assert choose_kind("a/thing.bin", os.urandom(100_000)) == "stored"


def test_add_file_streams_large_file_in_bounded_memory(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    size = 50 * 1024 * 1024
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with open(big, "wb") as f:
        for i in range(size // len(block)):
            chunk = block[i % 7:] + block[: i % 7]  # not the same megabyte over and over
            f.write(chunk)
            digest.update(chunk)
    sink = FileSink(tmp_path / "out.zip")
    archive = ArchiveWriter(sink)
    tracemalloc.start()
    try:
        archive.add_file("repos/a/big.bin", big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    archive.close({})
    sink.close()
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while streaming a {size} byte file"
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        entry = json.loads(zf.read(MANIFEST_NAME))["entries"][0]
        assert entry == {"path": "repos/a/big.bin", "size": size,
                         "sha256": digest.hexdigest(), "compressed": False}
        with zf.open("repos/a/big.bin") as f:  # zipfile checks the CRC at EOF
            check = hashlib.sha256()
            while chunk := f.read(1 << 20):
                check.update(chunk)
        assert check.hexdigest() == digest.hexdigest()


def test_zip64_with_more_than_65535_entries(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "many.zip")
    archive = ArchiveWriter(sink)
    count = 65_536 + 500
    for n in range(count):
        archive.add_bytes(f"e/{n}.txt", b"%d" % n, kind="stored")
    manifest = archive.close({"count": count})
    sink.close()
    assert len(manifest["entries"]) == count
    with zipfile.ZipFile(tmp_path / "many.zip") as zf:
        names = zf.namelist()
        assert len(names) == count + 1 and names[-1] == MANIFEST_NAME
        assert zf.read("e/65535.txt") == b"65535"
        assert zf.read(f"e/{count - 1}.txt") == b"%d" % (count - 1)
    raw = (tmp_path / "many.zip").read_bytes()
    assert b"PK\x06\x06" in raw[-200:]  # the Zip64 end of central directory record
    unzip_test(tmp_path / "many.zip")


def test_stream_of_unknown_size_uses_zip64_sizes(tmp_path: Path) -> None:
    sink = ListSink()
    archive = ArchiveWriter(sink)
    payload = b"line of git bundle output\n" * 20_000
    archive.add_stream("repos/a/git.bundle", io.BytesIO(payload))  # size unknown
    archive.add_stream("repos/a/notes.txt", io.BytesIO(payload), size=len(payload))
    archive.close({})
    path = tmp_path / "s.zip"
    path.write_bytes(sink.getvalue())
    unzip_test(path)
    with zipfile.ZipFile(path) as zf:
        assert zf.read("repos/a/git.bundle") == payload
        assert zf.read("repos/a/notes.txt") == payload


@pytest.mark.skipif(not os.environ.get("GHVAULT_BIG_TESTS"),
                    reason="writes a 4.1 GiB entry (about a minute): set GHVAULT_BIG_TESTS=1")
def test_entry_larger_than_4_gib(tmp_path: Path) -> None:
    sparse = tmp_path / "huge.img"
    size = (4 << 30) + (64 << 20)
    with open(sparse, "wb") as f:
        f.truncate(size)  # a sparse file of zeros: cheap to read, deflates to almost nothing
    sink = ListSink()
    archive = ArchiveWriter(sink)
    archive.add_file("huge.img", sparse)
    archive.add_bytes("after.txt", b"still readable")
    manifest = archive.close({})
    sizes = {e["path"]: e["size"] for e in manifest["entries"]}
    assert sizes == {"after.txt": 14, "huge.img": size}
    path = tmp_path / "huge.zip"
    path.write_bytes(sink.getvalue())
    unzip_test(path)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("huge.img").file_size == size
        assert zf.read("after.txt") == b"still readable"


def test_concurrent_adds_from_threads() -> None:
    sink = ListSink()
    archive = ArchiveWriter(sink)
    start = threading.Barrier(8)

    def worker(t: int) -> None:
        start.wait()
        for n in range(150):
            archive.add_bytes(f"t{t}/{n}.txt", f"thread {t} item {n}\n".encode() * (n + 1))
            if n % 50 == 0:
                archive.add_json(f"t{t}/{n}.json", {"t": t, "n": n})
                with archive.jsonl(f"t{t}/{n}.jsonl") as out:
                    for i in range(200):
                        out.write({"t": t, "i": i})

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    manifest = archive.close({})
    assert len(manifest["entries"]) == 8 * (150 + 3 + 3)
    with zipfile.ZipFile(io.BytesIO(sink.getvalue())) as zf:
        assert zf.testzip() is None
        for entry in manifest["entries"]:
            assert sha256(zf.read(entry["path"])) == entry["sha256"]
        assert zf.read("t3/7.txt") == b"thread 3 item 7\n" * 8
        assert len(zf.read("t5/100.jsonl").splitlines()) == 200


@pytest.mark.parametrize("name", [
    "", "/etc/passwd", "../escape", "a/../../b", "a/./b", "a//b", "dir/", "a\\b",
    "C:/windows", "nul\x00byte",
])
def test_bad_entry_names_are_rejected(name: str) -> None:
    archive = ArchiveWriter(ListSink())
    with pytest.raises(ValueError):
        archive.add_bytes(name, b"x")
    with pytest.raises(ValueError):
        check_entry_name(name)
    archive.close({})


def test_duplicate_and_reserved_names_are_rejected() -> None:
    archive = ArchiveWriter(ListSink())
    archive.add_bytes("a.txt", b"1")
    with pytest.raises(ValueError, match="already added"):
        archive.add_bytes("a.txt", b"2")
    with pytest.raises(ValueError, match="already added"):
        with archive.jsonl("a.txt"):
            pass
    with pytest.raises(ValueError, match="MANIFEST.json"):
        archive.add_json(MANIFEST_NAME, {})
    assert [e["path"] for e in archive.close({})["entries"]] == ["a.txt"]


def test_failed_jsonl_and_failed_source_leave_no_entry() -> None:
    sink = ListSink()
    archive = ArchiveWriter(sink)
    with pytest.raises(KeyError):
        with archive.jsonl("x/issues.jsonl") as out:
            out.write({"n": 1})
            raise KeyError("collector failed")

    class BrokenPipe(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 3:
                raise OSError("git died")
            return b"partial data " * 1000

    with pytest.raises(OSError, match="git died"):
        archive.add_stream("x/git.bundle", BrokenPipe())
    with archive.jsonl("x/issues.jsonl") as out:  # the name is free again
        out.write({"n": 2})
    archive.add_bytes("x/git.bundle", b"the retry")
    manifest = archive.close({})
    assert [e["path"] for e in manifest["entries"]] == ["x/git.bundle", "x/issues.jsonl"]
    with zipfile.ZipFile(io.BytesIO(sink.getvalue())) as zf:
        assert zf.namelist() == ["x/issues.jsonl", "x/git.bundle", MANIFEST_NAME]
        assert zf.testzip() is None
        assert zf.read("x/git.bundle") == b"the retry"
        assert json.loads(zf.read("x/issues.jsonl")) == {"n": 2}


def test_sink_failure_makes_the_archive_unusable() -> None:
    archive = ArchiveWriter(FailingSink(fail_after=50_000))
    archive.add_bytes("small.txt", b"ok")
    with pytest.raises(OSError, match="went away"):
        archive.add_bytes("big.bin", os.urandom(100_000))
    with pytest.raises(RuntimeError, match="destination failed"):
        archive.add_bytes("more.txt", b"x")
    with pytest.raises(RuntimeError, match="destination failed"):
        archive.close({})


def test_closed_or_aborted_archive_accepts_nothing() -> None:
    sink = ListSink()
    archive = ArchiveWriter(sink)
    archive.add_bytes("a.txt", b"1")
    archive.close({})
    with pytest.raises(RuntimeError, match="closed"):
        archive.add_bytes("b.txt", b"2")
    with pytest.raises(RuntimeError, match="closed"):
        archive.close({})

    sink2 = ListSink()
    aborted = ArchiveWriter(sink2)
    aborted.add_bytes("a.txt", b"1")
    written = len(sink2.getvalue())
    aborted.abort()
    del aborted  # zipfile's finaliser must not write a central directory into the sink
    assert len(sink2.getvalue()) == written
