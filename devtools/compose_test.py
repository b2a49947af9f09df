"""`make compose-test`: docker-compose.yaml brought up for real, one DAG run, torn down.

1. the engine: Docker where it runs; otherwise podman (installed and configured as
   `make image` does it) serving the Docker API on a private socket for docker-compose
   (Debian's `docker-compose` 1.29, installed with apt-get when missing);
2. the images (devtools/compose_images.py): the official bases, or local stand-ins;
3. `docker-compose --profile github-sim up -d`: postgres, moto, aws-init (the stack and
   the token in moto), airflow-init, api-server, scheduler, dag-processor, triggerer and
   the GitHub simulator, each waiting for its dependencies' health checks;
4. through the api-server's REST API (v2, a JWT from the simple auth manager): wait for
   the DAG, unpause it, trigger one run and wait for it to succeed; then the archive is
   read back from moto's S3;
5. `docker-compose down --volumes`, whatever happened. Timings are printed.

podman runs health checks from systemd timers, which containers here lack: `HealthTicker`
runs `podman healthcheck run` at each container's interval instead, as the timer would.

Environment: COMPOSE_TEST_TIMEOUT (seconds for the run, default 900), RUNNER (the
settings' runner, default local).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time

import boto3
import requests

from devtools import compose_images, image
from devtools.containers import podman_service
from devtools.embedded import DAG_ID, free_port

ROOT = image.ROOT
PROJECT = "ghvault-compose-test"
OWNER = "hubber"  # the simulator's user (tests/github_sim)


def say(msg: str) -> None:
    print(f"compose-test: {msg}", flush=True)


class Timer:
    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []
        self.last = self.start = time.monotonic()

    def mark(self, what: str) -> None:
        now = time.monotonic()
        self.marks.append((what, now - self.last))
        say(f"{what}: {now - self.last:.0f} s")
        self.last = now

    def report(self) -> str:
        return ", ".join(f"{w} {s:.0f} s" for w, s in self.marks) + \
            f"; total {time.monotonic() - self.start:.0f} s"


class HealthTicker(threading.Thread):
    """`podman healthcheck run` for every container of the project whose health is not
    yet `healthy`, at the interval its health check declares."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopped = threading.Event()
        self.last: dict[str, float] = {}
        self.intervals: dict[str, float] = {}

    def interval(self, cid: str) -> float:
        if cid not in self.intervals:
            out = subprocess.run(["podman", "inspect", "--format",
                                  "{{.Config.Healthcheck.Interval}}", cid],
                                 capture_output=True, text=True).stdout.strip()
            try:  # nanoseconds, as the Docker API stores it
                self.intervals[cid] = max(int(out) / 1e9, 1.0)
            except ValueError:
                self.intervals[cid] = 30.0
        return self.intervals[cid]

    def run(self) -> None:
        while not self.stopped.wait(1):
            ids = subprocess.run(
                ["podman", "ps", "--filter", f"label=com.docker.compose.project={PROJECT}",
                 "--filter", "health=starting", "--filter", "health=unhealthy",
                 "--format", "{{.ID}}"], capture_output=True, text=True).stdout.split()
            now = time.monotonic()
            for cid in ids:  # as Docker: the first check one interval after the start
                if now - self.last.setdefault(cid, now) >= self.interval(cid):
                    self.last[cid] = now
                    subprocess.run(["podman", "healthcheck", "run", cid],
                                   capture_output=True)

    def stop(self) -> None:
        self.stopped.set()


class Api:
    """The api-server's REST API v2 with a token from the simple auth manager."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.trust_env = False  # straight to the published port, no proxy

    def login(self) -> None:
        # every user is admin in this stack (AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS)
        answer = self.http.get(f"{self.url}/auth/token", timeout=30)
        answer.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs):
        answer = self.http.request(method, self.url + path, timeout=60, **kwargs)
        if answer.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:800]}")
        return answer.json() if answer.content else None

    def answers(self, path: str) -> bool:
        try:
            return self.http.get(self.url + path, timeout=10).status_code > 0
        except requests.RequestException:
            return False

    def ok(self, path: str) -> bool:
        try:
            return self.http.get(self.url + path, timeout=10).status_code == 200
        except requests.RequestException:
            return False


def wait(condition, timeout: float, what: str, interval: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Stack:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def compose(self, *args: str, check: bool = True, **kwargs):
        cmd = ["docker-compose", "-p", PROJECT, "-f", str(ROOT / "docker-compose.yaml"),
               "--profile", "github-sim", *args]
        result = subprocess.run(cmd, env=self.env, cwd=ROOT, **kwargs)
        if check and result.returncode != 0:
            raise RuntimeError(f"`docker-compose {' '.join(args)}` failed with exit "
                               f"{result.returncode} (its output is above)")
        return result

    def logs(self, *services: str, tail: int = 40) -> None:
        self.compose("logs", "--no-color", f"--tail={tail}", *services, check=False)


def run_dag(api: Api, timeout: float) -> dict:
    api.call("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns",
                   json={"dag_run_id": f"compose-test-{int(time.time())}",
                         "logical_date": None})
    run_id, seen = run["dag_run_id"], {}
    say(f"triggered {run_id}")
    deadline = time.monotonic() + timeout
    while True:
        run = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        tis = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances"
                              "?limit=100")["task_instances"]
        for ti in tis:
            key = ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
            if ti["state"] and seen.get(key) != ti["state"]:
                seen[key] = ti["state"]
                say(f"  {key}: {ti['state']}")
        if run["state"] in ("success", "failed"):
            run["task_instances"] = tis
            return run
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} still {run['state']} after {timeout:.0f} s")
        time.sleep(3)


def task_log(api: Api, run: dict, ti: dict) -> list[str]:
    """The task instance's log lines (its last try), through the REST API."""
    path = (f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/"
            f"{ti['task_id']}/logs/{max(ti['try_number'], 1)}?full_content=true"
            + (f"&map_index={ti['map_index']}" if ti["map_index"] >= 0 else ""))
    content = api.call("GET", path, headers={"Accept": "application/json"})
    return [e.get("event", "") if isinstance(e, dict) else str(e)
            for e in content.get("content", [])]


def failed_task_log(api: Api, run: dict) -> str:
    for ti in run["task_instances"]:
        if ti["state"] == "failed":
            try:
                lines = task_log(api, run, ti)
            except RuntimeError as exc:
                return str(exc)
            return f"{ti['task_id']}:\n" + "\n".join(lines[-40:])
    return "no task failed"


def check_runner(api: Api, run: dict, runner: str) -> list[str]:
    """The log lines that show the runner used: plan names it; the docker runner's backup
    task names its container on this stack's network."""
    tis = {ti["task_id"]: ti for ti in run["task_instances"]}
    evidence = {"plan": f"with the {runner} runner",
                "backup.backup": f"(network {PROJECT})" if runner == "docker" else None}
    found = []
    for task, needle in evidence.items():
        if needle is None:
            continue
        lines = task_log(api, run, tis[task])
        hits = [line for line in lines if needle in line]
        if not hits:
            raise RuntimeError(f"the {task} task's log ({len(lines)} lines) never says "
                               f"{needle!r}: " + " | ".join(lines[-12:])[:2000])
        found.append(f"{task}: {hits[0]}")
    return found


def archives(api: Api, moto_url: str) -> list[dict]:
    settings = json.loads(api.call("GET", "/api/v2/variables/ghvault_settings")["value"])
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    listed = s3.list_objects_v2(Bucket=settings["bucket"]).get("Contents", [])
    return [o for o in listed if o["Key"].endswith(".zip")]


def main() -> int:
    timer = Timer()
    cli = compose_images.engine()
    image.apt_install(["docker-compose"])
    runner = os.environ.get("RUNNER", "local")
    with contextlib.ExitStack() as stack:
        env = {**os.environ}
        ticker = None
        if cli == "docker":
            env.setdefault("DOCKER_GID", str(os.stat("/var/run/docker.sock").st_gid))
        if cli == "podman":
            env["DOCKER_HOST"] = stack.enter_context(podman_service())
            socket = env["DOCKER_HOST"].removeprefix("unix://")
            # the worker runs as 50000:0, so the group (root's here, docker's with Docker)
            # may use the socket, as Docker's own socket allows its group
            os.chmod(socket, 0o660)
            env.update({"DOCKER_SOCKET": socket, "DOCKER_GID": "0"})
            ticker = HealthTicker()
            ticker.start()
            stack.callback(ticker.stop)
        timer.mark("engine ready")
        env.update(compose_images.build_all(cli))
        timer.mark("images built")
        ports = {"AIRFLOW_PORT": free_port(), "MOTO_PORT": free_port(),
                 "SIM_PORT": free_port()}
        env.update({k: str(v) for k, v in ports.items()})
        env.update({"GHVAULT_GITHUB_API_URL": "http://github-sim:8765/api/v3",
                    "GHVAULT_OWNERS": OWNER, "GHVAULT_RUNNER": runner,
                    "COMPOSE_NETWORK": PROJECT,
                    "COMPOSE_HTTP_TIMEOUT": "300"})
        compose = Stack(env)
        compose.compose("down", "--volumes", "--remove-orphans", check=False,
                        capture_output=True)  # what an interrupted run left
        stack.callback(lambda: (say("tearing down"),
                                compose.compose("down", "--volumes", "--remove-orphans",
                                                check=False)))
        try:
            compose.compose("up", "--detach", "--no-build")
            timer.mark("stack up (docker-compose up)")
            sim = Api(f"http://127.0.0.1:{ports['SIM_PORT']}")
            wait(lambda: sim.answers("/api/v3/rate_limit"), 120, "the GitHub simulator")
            api = Api(f"http://127.0.0.1:{ports['AIRFLOW_PORT']}")
            wait(lambda: api.ok("/api/v2/version"), 300, "the api-server")
            api.login()
            wait(lambda: api.ok(f"/api/v2/dags/{DAG_ID}") or
                 bool(api.call("GET", "/api/v2/importErrors")["import_errors"]) and
                 _raise(api.call("GET", "/api/v2/importErrors")), 300,
                 f"the dag-processor to parse {DAG_ID}")
            timer.mark("DAG parsed")
            run = run_dag(api, float(os.environ.get("COMPOSE_TEST_TIMEOUT", "900")))
            timer.mark(f"DAG run {run['state']}")
            if run["state"] != "success":
                say(failed_task_log(api, run))
                compose.logs("airflow-scheduler", "aws-init", "airflow-init")
                raise RuntimeError(f"the DAG run {run['dag_run_id']} failed (see above)")
            for line in check_runner(api, run, runner):
                say(line)
            found = archives(api, f"http://127.0.0.1:{ports['MOTO_PORT']}")
            if not found:
                raise RuntimeError("the run succeeded but left no archive in moto's S3")
            for obj in found:
                say(f"archive s3://…/{obj['Key']} ({obj['Size']} bytes)")
        except Exception:
            compose.logs(tail=15)
            raise
    timer.mark("torn down")
    say(f"passed with runner {runner}: {timer.report()}")
    return 0


def _raise(errors: dict) -> bool:
    raise RuntimeError(f"the DAG files do not import: {json.dumps(errors)[:1500]}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as exc:
        print(f"compose-test: error: {exc}", file=sys.stderr)
        sys.exit(1)
