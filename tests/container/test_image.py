"""The built engine image, run by a real container engine (docker, or podman here).

The container backs up the simulator (TLS, its CA mounted) on the host network into a
mounted directory and into moto's S3, and the host's `ghvault verify` accepts the result;
it runs as a non-root user, on a read-only root filesystem with a volume at the workdir;
`stop` (SIGTERM) ends a backup against a slowed simulator promptly with the upload aborted;
and the image holds no token, test tool or compiler.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import IMAGE, TOKEN, Engine, RunningSim, start_sim
from tests.github_sim.faults import Faults

pytestmark = pytest.mark.slow

GHVAULT = str(Path(sys.executable).with_name("ghvault"))
MONTH = "2026-10"
STOP_BOUND = 15.0  # seconds from `stop` to the container's exit (the engine's own bound is 10)
TOKEN_LIKE = re.compile(rb"gh[pousr]_[A-Za-z0-9]{36}")


def shared_dir(path: Path) -> Path:
    """A host directory the container's user (UID 10001) can write."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


@pytest.fixture(scope="module")
def ca(sim: RunningSim, tmp_path_factory) -> Path:
    """The simulator's CA, readable by the container's user."""
    copy = tmp_path_factory.mktemp("ca") / "ca.pem"
    shutil.copy(sim.ca, copy)
    copy.chmod(0o644)
    return copy


def container_env(moto=None, token: str = TOKEN) -> dict[str, str]:
    """What the container gets: the token, trust in the simulator's CA, moto as AWS."""
    env = {"GITHUB_TOKEN": token, "SSL_CERT_FILE": "/ca.pem", "REQUESTS_CA_BUNDLE": "/ca.pem",
           "GIT_SSL_CAINFO": "/ca.pem"}
    return {**env, **(moto.env() if moto else {})}


def start(engine: Engine, sim: RunningSim, ca: Path, owner: str, dest: str, *, moto=None,
          volumes: dict | None = None, **kwargs):
    mounts = {str(ca): {"bind": "/ca.pem", "mode": "ro"}, **(volumes or {})}
    return engine.client.containers.run(
        IMAGE, ["run", "--api-url", sim.api, "--owner", owner, "--month", MONTH,
                "--dest", dest], environment=container_env(moto), network_mode="host",
        volumes=mounts, detach=True, **kwargs)


def finish(container, timeout: float = 300) -> tuple[int, str, str]:
    """Wait for the container; its exit code, stdout and stderr; then remove it."""
    try:
        code = container.wait(timeout=timeout)["StatusCode"]
        out = container.logs(stdout=True, stderr=False).decode(errors="replace")
        err = container.logs(stdout=False, stderr=True).decode(errors="replace")
        return code, out, err
    finally:
        container.remove(force=True)


def exec_in_image(engine: Engine, script: str, **kwargs) -> tuple[int, str]:
    """`sh -c script` in a throwaway container of the image: (exit code, output)."""
    container = engine.client.containers.run(IMAGE, ["-c", script], entrypoint=["sh"],
                                             detach=True, **kwargs)
    code, out, err = finish(container, timeout=120)
    return code, out + err


def verify_on_host(archive: str, env: dict[str, str] | None = None) -> None:
    base = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    proc = subprocess.run([GHVAULT, "verify", archive], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"ghvault verify {archive}: {proc.stderr[-3000:]}"


def assert_no_token(*texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        assert TOKEN.encode() not in data, "the token is in the container's output or archive"


@pytest.mark.parametrize("role", ["user", "org"])
def test_the_container_backs_up_into_a_mounted_directory_and_the_host_verifies_it(
        engine, sim, ca, tmp_path, role):
    owner = sim.sim.world.owners[role]
    out = shared_dir(tmp_path / "out")
    sim.reset()
    code, stdout, stderr = finish(start(engine, sim, ca, owner, f"file:///out/{owner}.zip",
                                        volumes={str(out): {"bind": "/out", "mode": "rw"}}))
    assert code == 0, stderr[-3000:]
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["counts"]["repos"] > 0 and summary["bytes"] > 0
    archive = out / f"{owner}.zip"
    verify_on_host(str(archive))
    assert_no_token(stdout, stderr, archive.read_bytes())


def test_the_container_backs_up_into_moto_s3_and_the_host_verifies_it(engine, sim, ca,
                                                                       moto_server):
    owner = sim.sim.world.owners["org"]
    bucket = f"ghvault-img-{uuid.uuid4().hex[:12]}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/github/{owner}/2026/10/{owner}-{MONTH}.zip"
    sim.reset()
    code, stdout, stderr = finish(start(engine, sim, ca, owner, url, moto=moto_server))
    assert code == 0, stderr[-3000:]
    assert json.loads(stdout.strip().splitlines()[-1])["dest"] == url
    verify_on_host(url, moto_server.env())
    assert_no_token(stdout, stderr)


def test_the_image_runs_as_a_non_root_user(engine):
    out = engine.client.containers.run(IMAGE, ["-u"], entrypoint=["id"], remove=True)
    assert out.decode().strip() not in ("", "0"), out


def test_a_read_only_root_filesystem_with_a_volume_at_the_workdir_is_enough(
        engine, sim, ca, tmp_path):
    owner = sim.sim.world.owners["user"]
    out, work = shared_dir(tmp_path / "out"), shared_dir(tmp_path / "work")
    code, text = exec_in_image(engine, "touch /opt/ghvault/probe", read_only=True)
    assert code != 0 and "Read-only file system" in text, text
    sim.reset()
    code, stdout, stderr = finish(start(
        engine, sim, ca, owner, f"file:///out/{owner}.zip", read_only=True,
        volumes={str(out): {"bind": "/out", "mode": "rw"},
                 str(work): {"bind": "/tmp/ghvault", "mode": "rw"}}))
    assert code == 0, stderr[-3000:]
    verify_on_host(str(out / f"{owner}.zip"))
    assert list(work.iterdir()) == [], "the run left scratch in the workdir volume"


@pytest.fixture(scope="module")
def slow_sim() -> RunningSim:
    """The tiny world answering 100 ms late, and git at 64 KiB/s: a run takes minutes."""
    running, stop = start_sim(faults=Faults.parse("", 100), git_kbps=64)
    yield running
    stop()


def test_stop_during_a_backup_ends_it_promptly_and_aborts_the_upload(engine, slow_sim, ca,
                                                                    moto_server):
    owner = slow_sim.sim.world.owners["user"]
    bucket = f"ghvault-img-{uuid.uuid4().hex[:12]}"
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket)
    container = start(engine, slow_sim, ca, owner,
                      f"s3://{bucket}/github/{owner}/2026/10/{owner}-{MONTH}.zip",
                      moto=moto_server)
    try:
        deadline = time.monotonic() + 90
        while not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"):
            container.reload()
            assert container.status == "running", container.logs().decode()[-3000:]
            assert time.monotonic() < deadline, "no multipart upload within 90 s"
            time.sleep(0.2)
        time.sleep(1)  # the run is under way: git is fetching at 64 KiB/s
        sent = time.monotonic()
        container.stop(timeout=30)  # SIGTERM, then SIGKILL after 30 s
        took = time.monotonic() - sent
    except BaseException:
        container.remove(force=True)
        raise
    code, stdout, stderr = finish(container, timeout=60)
    print(f"`{engine.cli} stop` ended the backup in {took:.1f} s")
    detail = f"exit {code} after {took:.1f} s\n{stderr[-3000:]}"
    assert code == 143, detail
    assert took < STOP_BOUND, detail
    assert "SIGTERM received: stopping" in stderr, detail
    assert not stdout.strip(), detail  # nothing was published
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), "upload left open"
    assert_no_token(stdout, stderr)


def test_the_image_holds_no_compiler_and_no_test_tool(engine):
    code, text = exec_in_image(engine, """
        for tool in gcc cc c++ g++ clang make pytest moto_server; do
            command -v "$tool" && exit 1
        done
        python3 -c 'import importlib.util as u, sys
        sys.exit([m for m in ("pytest", "moto", "_pytest") if u.find_spec(m)] or 0)'
    """.replace("\n        ", "\n"))
    assert code == 0, f"found in the image: {text}"


def test_the_image_holds_no_token(engine):
    image = engine.client.images.get(IMAGE)
    config = image.attrs["Config"]
    for var in config.get("Env") or []:
        name, _, value = var.partition("=")
        assert not re.search(r"TOKEN|SECRET|PASSWORD|KEY", name, re.I), var
        assert not TOKEN_LIKE.search(value.encode()), var
    history = json.dumps(image.history()).encode()
    assert not TOKEN_LIKE.search(history)
    container = engine.client.containers.create(IMAGE)
    try:
        tail, names = b"", 0
        for chunk in container.export():  # the whole filesystem as one tar stream
            data = tail + chunk
            match = TOKEN_LIKE.search(data)
            assert not match, f"a token-like string in the image: {match[0][:8]!r}..."
            assert b"run/secrets/pip_cert" not in data, "the build secret stayed in the image"
            names += len(chunk)
            tail = data[-64:]
        assert names > 10_000_000, "the export looks empty"
    finally:
        container.remove(force=True)
