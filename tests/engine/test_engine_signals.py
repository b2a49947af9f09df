"""`ghvault run` stopped by SIGTERM (ECS, Docker, Airflow on stop or timeout) or SIGINT.

The engine must stop starting work, kill its git children (their whole process groups),
abort the upload (S3 multipart abort, or the `.partial-PID` file deleted), remove its
scratch directory and exit 143 (SIGTERM) or 130 (SIGINT) within a few seconds, whatever
is still queued. The real CLI runs as a subprocess against a slowed simulator (API latency
and a git byte rate, the same data) so that there is work under way when the signal comes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import TOKEN, RunningSim, start_sim
from tests.github_sim.faults import Faults

GHVAULT = str(Path(sys.executable).with_name("ghvault"))
OWNER = "hubber"  # the tiny world's user
MONTH = "2026-10"
KEY = f"github/{OWNER}/2026/10/{OWNER}-{MONTH}.zip"
BOUND = 10.0  # seconds from the signal to the exit (the bound on `medium`)


@pytest.fixture(scope="module")
def slow_sim() -> RunningSim:
    """The tiny world answering 100 ms late, and git at 64 KiB/s: a run takes minutes."""
    running, stop = start_sim(faults=Faults.parse("", 100), git_kbps=64)
    yield running
    stop()


def engine_env(sim: RunningSim, moto) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "GH_")) and k != "AWS_CA_BUNDLE"}
    env.update({**sim.client_env(), **moto.env(), "GITHUB_TOKEN": TOKEN})
    return env


def start_engine(sim: RunningSim, moto, dest: str, workdir: Path,
                 *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [GHVAULT, "run", "--api-url", sim.api, "--owner", OWNER, "--month", MONTH,
         "--dest", dest, "--workdir", str(workdir), *args],
        env=engine_env(sim, moto), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def children(pid: int) -> dict[int, str]:
    """pid -> command name of the processes whose parent is `pid`."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        comm = stat[stat.index(b"(") + 1:stat.rindex(b")")].decode()
        if int(stat.rsplit(b")", 1)[1].split()[1]) == pid:
            found[int(name)] = comm
    return found


def processes_under(path: Path) -> list[str]:
    """Command lines of the processes whose arguments or working directory name `path`
    (git children of a run work in its scratch directory)."""
    hits = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(f"/proc/{name}/cwd")
        except OSError:
            continue
        if str(path) in cmd or cwd.startswith(str(path)):
            hits.append(f"{name}: {cmd}")
    return hits


def wait_until(condition, timeout: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}:\n{err[-3000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no {what} within {timeout} s")


def stop_with(proc: subprocess.Popen, signum: int) -> tuple[float, str, str]:
    """Send `signum`; the seconds until the process exited, its stdout and stderr."""
    sent = time.monotonic()
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"still running 60 s after {signal.Signals(signum).name}:\n{err[-3000:]}")
    return time.monotonic() - sent, out, err


def assert_stopped(proc: subprocess.Popen, took: float, out: str, err: str, code: int,
                   name: str) -> None:
    detail = f"exit {proc.returncode} after {took:.1f} s\nstderr: {err[-4000:]}"
    assert proc.returncode == code, detail
    assert took < BOUND, detail
    assert "Traceback" not in err, detail
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last.startswith(f"ghvault: error: stopped by {name} before the archive was "
                           "published"), detail
    assert "run the backup again" in last, detail
    assert f"{name} received: stopping" in err, detail
    assert not out.strip(), detail  # no summary: nothing was published
    assert TOKEN not in out + err


@pytest.fixture
def bucket(moto_server) -> str:
    name = f"ghvault-sig-{uuid.uuid4().hex[:12]}"
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def previous_backup(sim: RunningSim, moto, bucket: str, workdir: Path) -> dict:
    """A complete backup at the key, as last run left it: the archive's and sidecar's ETags."""
    proc = subprocess.run(
        [GHVAULT, "run", "--api-url", sim.api, "--owner", OWNER, "--month", MONTH,
         "--dest", f"s3://{bucket}/{KEY}", "--workdir", str(workdir)],
        env=engine_env(sim, moto), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s3 = moto.client("s3")
    return {k: s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in (KEY, KEY + ".manifest.json")}


def test_sigterm_during_an_s3_backup_aborts_the_upload_kills_git_and_keeps_the_previous_archive(
        sim, slow_sim, moto_server, bucket, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    before = previous_backup(sim, moto_server, bucket, workdir)
    s3 = moto_server.client("s3")
    proc = start_engine(slow_sim, moto_server, f"s3://{bucket}/{KEY}", workdir,
                        "--git-concurrency", "1")
    # the upload is open and git is fetching: the middle of the run
    wait_until(lambda: s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), 60,
               "multipart upload", proc)
    wait_until(lambda: "git" in children(proc.pid).values(), 60, "git child", proc)
    took, out, err = stop_with(proc, signal.SIGTERM)
    assert_stopped(proc, took, out, err, 143, "SIGTERM")
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), "upload left open"
    after = {k: s3.head_object(Bucket=bucket, Key=k)["ETag"] for k in before}
    assert after == before, "the archive or sidecar at the key changed"
    assert list(workdir.iterdir()) == [], "scratch left behind"
    assert processes_under(workdir) == [], "git children outlived the run"


def test_sigterm_during_a_file_backup_leaves_no_partial_file(slow_sim, moto_server, tmp_path):
    workdir, out_dir = tmp_path / "work", tmp_path / "out"
    workdir.mkdir()
    out_dir.mkdir()
    dest = out_dir / f"{OWNER}-{MONTH}.zip"
    proc = start_engine(slow_sim, moto_server, dest.as_uri(), workdir)
    wait_until(lambda: any(".partial-" in p.name for p in out_dir.iterdir()), 60,
               "partial file", proc)
    wait_until(lambda: "git" in children(proc.pid).values(), 60, "git child", proc)
    took, out, err = stop_with(proc, signal.SIGTERM)
    assert_stopped(proc, took, out, err, 143, "SIGTERM")
    assert list(out_dir.iterdir()) == [], "a partial file or an archive was left"
    assert list(workdir.iterdir()) == []
    assert processes_under(workdir) == []


def test_sigint_stops_promptly_not_after_the_remaining_repositories(slow_sim, moto_server,
                                                                     tmp_path):
    workdir, out_dir = tmp_path / "work", tmp_path / "out"
    workdir.mkdir()
    out_dir.mkdir()
    dest = out_dir / f"{OWNER}-{MONTH}.zip"
    proc = start_engine(slow_sim, moto_server, dest.as_uri(), workdir,
                        "--git-concurrency", "1", "--concurrency", "1")
    wait_until(lambda: any(".partial-" in p.name for p in out_dir.iterdir()), 60,
               "partial file", proc)
    wait_until(lambda: "git" in children(proc.pid).values(), 60, "git child", proc)
    took, out, err = stop_with(proc, signal.SIGINT)
    assert_stopped(proc, took, out, err, 130, "SIGINT")
    assert " done (" not in err.split("SIGINT received")[1], "it went on with repositories"
    assert list(out_dir.iterdir()) == [] and list(workdir.iterdir()) == []


def test_a_second_signal_does_not_cut_the_clean_up_short(slow_sim, moto_server, bucket,
                                                         tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    s3 = moto_server.client("s3")
    proc = start_engine(slow_sim, moto_server, f"s3://{bucket}/{KEY}", workdir)
    wait_until(lambda: s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), 60,
               "multipart upload", proc)
    # An impatient operator: the second signal follows at once (microseconds), while the
    # clean-up (aborting the upload, a request to S3) is surely still running; a pause here
    # let a fast clean-up finish first on an idle machine.
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGINT)
    took, out, err = stop_with(proc, signal.SIGTERM)
    # Signals pending together are handled lowest number first: on a busy machine SIGINT
    # can be the one that starts the stop. The run ends with the code of that first one.
    first = re.search(r"(SIGTERM|SIGINT) received: stopping", err)
    assert first, err[-3000:]
    assert_stopped(proc, took, out, err, 128 + signal.Signals[first[1]], first[1])
    assert "received: already stopping" in err, err[-3000:]
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert list(workdir.iterdir()) == []


def test_jobs_waiting_out_a_rate_limit_do_not_hold_the_exit(moto_server, bucket, tmp_path):
    import requests

    running, stop_sim = start_sim(faults=Faults.parse("", 50), git_kbps=64)
    try:
        workdir = tmp_path / "work"
        workdir.mkdir()
        s3 = moto_server.client("s3")
        proc = start_engine(running, moto_server, f"s3://{bucket}/{KEY}", workdir)
        wait_until(lambda: s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), 60,
                   "multipart upload", proc)
        # from now on every API answer is a secondary rate limit asking for a minute's wait
        requests.post(f"{running.root}/_sim/faults", data="secondary:1,retry-after=60",
                      verify=str(running.ca), timeout=30).raise_for_status()
        wait_until(lambda: running.stats().get("faults", {}).get("secondary", 0) >= 2, 30,
                   "rate-limited requests", proc)
        took, out, err = stop_with(proc, signal.SIGTERM)
        assert_stopped(proc, took, out, err, 143, "SIGTERM")
        assert "still busy" in err  # abandoned, not waited for
        assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
        assert list(workdir.iterdir()) == []
    finally:
        stop_sim()


# the pieces ---------------------------------------------------------------------------------


def test_kill_children_kills_whole_process_groups_of_git_children(tmp_path):
    from ghvault.git import kill_children

    # a git-like child leading its own group, with a helper of its own (remote-https, say)
    proc = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"], stdout=subprocess.PIPE,
                            start_new_session=True, text=True)
    helper = int(proc.stdout.readline())
    assert kill_children() >= 1
    assert proc.wait(timeout=10) == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{helper}").exists() and \
            "Z" not in Path(f"/proc/{helper}/stat").read_text().rsplit(")", 1)[1][:3]:
        time.sleep(0.05)
    assert not Path(f"/proc/{helper}").exists() or \
        "Z" in Path(f"/proc/{helper}/stat").read_text().rsplit(")", 1)[1][:3], "helper alive"
    assert os.getpgrp() == os.getpgid(0)  # and this process's own group was spared


def test_a_stopped_run_refuses_new_git_and_requests_and_frees_a_waiting_job(tmp_path):
    from ghvault.engine import DiskBudget
    from ghvault.git import Git, GitError
    from ghvault.stop import Halted, StoppableClient, StopRequest

    stop = StopRequest()
    git = Git("https://github.example", None, tmp_path, stop=stop.event)
    client = StoppableClient(type("C", (), {"paginate": lambda self, p: iter([1, 2, 3]),
                                            "get": lambda self, p: {"ok": 1}})(), stop)
    disk = DiskBudget(10, stop.event)
    assert list(client.paginate("/x")) == [1, 2, 3] and client.get("/y") == {"ok": 1}
    pages = client.paginate("/x")
    assert next(pages) == 1
    waiting: list[BaseException] = []

    def wait_for_room() -> None:
        try:
            with disk.reserve(8):
                pass
        except BaseException as e:  # noqa: BLE001 - the test looks at what it was
            waiting.append(e)

    with disk.reserve(5):
        thread = threading.Thread(target=wait_for_room)
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive()  # 5 + 8 > 10: it waits
        stop.halt()
        thread.join(5)
    assert not thread.is_alive() and isinstance(waiting[0], Halted)
    with pytest.raises(Halted):
        next(pages)
    with pytest.raises(Halted):
        client.get("/y")
    with pytest.raises(GitError, match="stopping"):
        git.run(["version"])
