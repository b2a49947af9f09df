"""A run killed outright (SIGKILL, out of memory, a lost host) at each step of publishing.

The write order (docs/architecture.md, "Write order and crash safety"): the archive's
multipart upload completes (the archive appears at its key), then the sidecar is written,
then the state. At every instant the key's archive and sidecar either agree, or `verify`
says in one line that the sidecar was written for another archive, naming the version of
the key it describes (bucket versioning keeps it), and `list` flags the pair; the next run
rewrites both. The process is killed at well-defined points by holding the chosen S3
request in a forwarding proxy in front of moto (or, for a file, a FIFO where the sidecar's
partial file goes) and sending SIGKILL while it waits: no test-only branch in the engine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import TOKEN, RunningSim
from tests.engine.test_engine_failures import ForwardingProxy, _ProxyHandler, s3_operation

GHVAULT = str(Path(sys.executable).with_name("ghvault"))
OWNER = "hubber"  # the tiny world's user
MONTH = "2026-10"
KEY = f"github/{OWNER}/2026/10/{OWNER}-{MONTH}.zip"
SIDECAR = KEY + ".manifest.json"


def env_for(sim: RunningSim, moto, endpoint: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "GH_")) and k != "AWS_CA_BUNDLE"}
    env.update({**sim.client_env(), **moto.env(), "GITHUB_TOKEN": TOKEN})
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


def run_args(sim: RunningSim, dest: str, *extra: str) -> list[str]:
    return [GHVAULT, "run", "--api-url", sim.api, "--owner", OWNER, "--month", MONTH,
            "--dest", dest, *extra]


def backup(sim: RunningSim, moto, dest: str, *extra: str) -> None:
    proc = subprocess.run(run_args(sim, dest, *extra), env=env_for(sim, moto),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def ghvault(moto, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_TOKEN"}
    return subprocess.run([GHVAULT, *args], env={**env, **moto.env()}, capture_output=True,
                          text=True, timeout=300)


def problems(proc: subprocess.CompletedProcess) -> list[str]:
    """The problem lines `ghvault verify` printed (before its verdict and summary)."""
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    lines = proc.stdout.strip().splitlines()[:-2]
    assert summary["problems"] == len(lines), proc.stdout
    return lines


class _HeadHandler(_ProxyHandler):
    """The failure tests' proxy handler, but a HEAD answer keeps the object's
    Content-Length (S3's HeadObject says the size there)."""

    def relay(self) -> None:
        if self.command != "HEAD" or self.proxy.decide(self.command, self.path) is not None:
            return super().relay()
        conn = self.proxy.upstream_connection()
        try:
            conn.putrequest("HEAD", self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in ("connection", "keep-alive", "content-length"):
                    conn.putheader(name, value)
            conn.endheaders()
            resp = conn.getresponse()
            resp.read()
            self.send_response(resp.status, resp.reason)
            for name, value in resp.getheaders():
                if name.lower() not in ("connection", "keep-alive", "transfer-encoding"):
                    self.send_header(name, value)
            self.end_headers()
        finally:
            conn.close()


class S3Proxy(ForwardingProxy):
    def __init__(self, upstream: str, decide) -> None:
        super().__init__(upstream, decide)
        self.server.RequestHandlerClass = type("Handler", (_HeadHandler,), {"proxy": self})


class Gate:
    """Holds the first request `matches(method, target)` picks until released, then drops
    it: the engine waits on it, at a known step, for as long as the test needs."""

    def __init__(self, matches, then: str | None = "drop") -> None:
        self.matches = matches
        self.then = then  # "drop", or None: forward it once released
        self.reached = threading.Event()
        self.release = threading.Event()

    def decide(self, method: str, target: str):
        if not self.reached.is_set() and self.matches(method, target):
            self.reached.set()
            self.release.wait(120)
            return self.then
        return None


def put_of(key_suffix: str):
    def matches(method: str, target: str) -> bool:
        parts = urlsplit(target)
        return method == "PUT" and parts.path.endswith(key_suffix) and \
            "uploadId" not in parse_qs(parts.query, keep_blank_values=True)
    return matches


def complete_upload(method: str, target: str) -> bool:
    return s3_operation(method, target) == "CompleteMultipartUpload"


def killed_at(gate: Gate, sim: RunningSim, moto, dest: str, *extra: str) -> None:
    """Run a backup through a proxy holding `gate`'s request; SIGKILL it there."""
    with S3Proxy(moto.endpoint, gate.decide) as proxy:
        proc = subprocess.Popen(run_args(sim, dest, *extra),
                                env=env_for(sim, moto, proxy.url), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while not gate.reached.wait(0.1):
                if proc.poll() is not None or time.monotonic() > deadline:
                    out, err = proc.communicate()
                    pytest.fail(f"the run never reached the step (exit {proc.returncode}):\n"
                                f"{err[-3000:]}")
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            gate.release.set()
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL


@pytest.fixture
def versioned(moto_server) -> str:
    name = f"ghvault-crash-{uuid.uuid4().hex[:12]}"
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def pair(s3, bucket: str) -> tuple[str, str]:
    return (s3.head_object(Bucket=bucket, Key=KEY)["VersionId"],
            s3.head_object(Bucket=bucket, Key=SIDECAR)["VersionId"])


@pytest.mark.parametrize("step", ["before the upload completes", "before the sidecar",
                                  "before the state"])
def test_a_run_killed_at_each_step_leaves_an_agreeing_pair_or_a_named_disagreement(
        sim, moto_server, versioned, step):
    s3 = moto_server.client("s3")
    url = f"s3://{versioned}/{KEY}"
    state = ("--state", f"s3://{versioned}/state/")
    backup(sim, moto_server, url, *state)
    first_archive, first_sidecar = pair(s3, versioned)
    gate = Gate({"before the upload completes": complete_upload,
                 "before the sidecar": put_of(".zip.manifest.json"),
                 "before the state": put_of(".jsonl.gz")}[step])
    killed_at(gate, sim, moto_server, url, *state)
    archive, sidecar = pair(s3, versioned)
    checked = ghvault(moto_server, "verify", url)
    listed = json.loads(ghvault(moto_server, "list", f"s3://{versioned}/github/",
                                "--json").stdout)["archives"]
    assert len(listed) == 1
    if step == "before the upload completes":  # the key is as the last run left it
        assert (archive, sidecar) == (first_archive, first_sidecar)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert listed[0]["sidecar"] == "ok"
    elif step == "before the sidecar":  # a new archive beside the last run's sidecar
        assert archive != first_archive and sidecar == first_sidecar
        assert checked.returncode == 8, checked.stdout + checked.stderr
        [line] = problems(checked)  # one line, not one per entry
        assert f"the sidecar {url}.manifest.json was written for another archive" in line
        assert "the run that wrote this archive stopped before its sidecar" in line
        assert f"kept as version {first_archive} of the key" in line
        assert line.endswith("run the backup again to rewrite both")
        assert (listed[0]["sidecar"], listed[0]["previous_version"]) == \
            ("older", first_archive)
        table = ghvault(moto_server, "list", f"s3://{versioned}/github/").stdout
        assert f"kept as version {first_archive}" in table and " older" in table
        # the previous archive is intact where the line says
        old = s3.get_object(Bucket=versioned, Key=KEY, VersionId=first_archive)
        previous = json.loads(s3.get_object(Bucket=versioned, Key=SIDECAR)["Body"].read())
        assert old["ContentLength"] == previous["archive"]["size"]
    else:  # archive and sidecar are both the new run's; only the state is last month's
        assert archive != first_archive and sidecar != first_sidecar
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert listed[0]["sidecar"] == "ok"
    # the next run repairs whatever the killed one left
    backup(sim, moto_server, url, *state)
    again = ghvault(moto_server, "verify", url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(ghvault(moto_server, "list", f"s3://{versioned}/github/",
                              "--json").stdout)["archives"][0]["sidecar"] == "ok"


def test_a_file_backup_killed_between_archive_and_sidecar_is_told_and_repaired(
        sim, moto_server, tmp_path):
    dest = tmp_path / "vault" / KEY
    dest.parent.mkdir(parents=True)
    backup(sim, moto_server, dest.as_uri())
    first = dest.stat().st_ino
    proc = subprocess.Popen(run_args(sim, dest.as_uri()), env=env_for(sim, moto_server),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The sidecar is written to `.<name>.partial-<pid>` first: a FIFO there holds the
    # engine right after the archive was renamed into place, until nobody reads it.
    fifo = dest.parent / f".{dest.name}.manifest.json.partial-{proc.pid}"
    os.mkfifo(fifo)
    try:
        deadline = time.monotonic() + 120
        while dest.stat().st_ino == first:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(0.3)  # (it is blocked opening the FIFO)
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    checked = ghvault(moto_server, "verify", str(dest))
    assert checked.returncode == 8, checked.stdout + checked.stderr
    [line] = problems(checked)
    assert f"the sidecar {dest}.manifest.json was written for another archive" in line
    assert "no earlier version of the key is kept" in line
    listed = json.loads(ghvault(moto_server, "list", str(tmp_path / "vault"),
                                "--json").stdout)
    assert [a["sidecar"] for a in listed["archives"]] == ["older"]
    backup(sim, moto_server, dest.as_uri())  # the next run rewrites both
    assert ghvault(moto_server, "verify", str(dest)).returncode == 0
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name, dest.name +
                                                             ".manifest.json"]  # FIFO gone


def test_a_signal_while_publishing_lets_the_archive_sidecar_and_state_be_written(
        sim, moto_server, versioned):
    url = f"s3://{versioned}/{KEY}"
    gate = Gate(put_of(".zip.manifest.json"), then=None)  # a slow sidecar write
    with S3Proxy(moto_server.endpoint, gate.decide) as proxy:
        proc = subprocess.Popen(run_args(sim, url, "--state", f"s3://{versioned}/state/"),
                                env=env_for(sim, moto_server, proxy.url),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert gate.reached.wait(120), "the run never wrote its sidecar"
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
        finally:
            gate.release.set()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "SIGTERM received while the archive, its sidecar and the state are written: " \
        "letting that finish first" in err
    assert "SIGTERM came while publishing" in err
    assert json.loads(out.strip().splitlines()[-1])["owner"] == OWNER  # the summary
    s3 = moto_server.client("s3")
    assert s3.list_objects_v2(Bucket=versioned, Prefix="state/")["KeyCount"] >= 1
    checked = ghvault(moto_server, "verify", url)
    assert checked.returncode == 0, checked.stdout + checked.stderr
