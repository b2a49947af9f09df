"""github_backup under a real Airflow scheduler, deployed as an operator deploys it.

`SchedulerStack` starts, in a private AIRFLOW_HOME:

- the metadata DB on a private PostgreSQL cluster (`tests.airflow.postgres`), migrated with
  `airflow db migrate`;
- AWS in moto's server (the session's, in this process so that `devtools.fargate` can run
  the ECS tasks): `infra/ghvault.yaml` deployed into moto's CloudFormation
  (`devtools.stack`), the GitHub token in SSM, an SQS queue subscribed to the stack's topic
  so the SNS messages can be read back; the Airflow connection `aws_default` is the only
  place the daemons learn moto's address;
- GitHub as the session's tiny simulator (TLS; the engine trusts its CA via `engine_env`);
- the daemons `api-server` (the workers' Execution API, the REST API v2, the UI),
  `scheduler` (LocalExecutor), `dag-processor` (over this repository's `dags/`) and
  `triggerer`, each in its own process group; the `ghvault_settings` Variable from the
  stack's `AirflowSettings` output, and the backup pool.

Helpers: `rest` (REST API v2; Airflow's simple auth manager with every user an admin),
`airflow` (the CLI, as an operator types it), `trigger`, `backfill`, `unpause`, `runs`,
`wait_runs` (failing with the first task error from the task logs), `task_instances`,
`notifications` (SNS via SQS), `archives` / `versions` (S3). `stop` ends every process
group and descendant, then the cluster. Timeouts are generous and bounded; a dead daemon
fails the wait at once with the tail of its log.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import requests

from devtools.embedded import DAG_ID, TOKEN_PARAMETER, Aws, free_port, read_notifications
from devtools.stack import deploy
from tests.airflow.postgres import PrivatePostgres

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STACK = "ghvault-sched"
DAEMONS = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED = ("success", "failed")


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class StackError(AssertionError):
    """The stack or a run did not do what the test waits for (the message says what)."""


class SchedulerStack:
    def __init__(self, home: Path, aws: Aws, sim, owners: list[str],
                 settings: dict | None = None) -> None:
        self.home, self.aws, self.sim, self.owners = home, aws, sim, owners
        self.extra_settings = settings or {}
        self.pg = PrivatePostgres()
        self.procs: dict[str, subprocess.Popen] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self.http.trust_env = False  # no proxy between the tests and the api-server
        self.messages: list[dict] = []  # every SNS message read so far
        self.settings: dict = {}
        self.stack = None
        self.queue_url = ""

    # -- set-up -------------------------------------------------------------------------

    def start(self) -> SchedulerStack:
        t0 = time.monotonic()
        self.pg.start()
        self._provision()
        self.env = self._env()
        self.airflow("db", "migrate", timeout=300)
        for name in DAEMONS:
            self._daemon(name)
        self._wait_up()
        self.set_settings(**self.extra_settings)
        self._create_pool()
        self.started_in = time.monotonic() - t0
        return self

    def _provision(self) -> None:
        self.aws.client("ssm").put_parameter(Name=TOKEN_PARAMETER, Value=self.sim.token,
                                             Type="SecureString", Overwrite=True)
        self.stack = deploy(self.aws, STACK, {"GithubTokenParameterName": TOKEN_PARAMETER,
                                              "RepositoryName": STACK,
                                              "Owners": ",".join(self.owners),
                                              "GithubApiUrl": self.sim.api})
        sqs = self.aws.client("sqs")
        self.queue_url = sqs.create_queue(QueueName=f"{STACK}-notifications")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self.aws.client("sns").subscribe(TopicArn=self.stack.outputs["SnsTopicArn"],
                                         Protocol="sqs", Endpoint=arn)
        self.bucket = self.stack.outputs["Bucket"]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AIRFLOW", "AWS_", "GHVAULT_"))
               and k not in ("GITHUB_TOKEN", "PYTHONPATH")}  # the DAG file must parse alone
        logs = self.home / "logs"
        env.update({
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "NO_PROXY": "*", "no_proxy": "*", "PYTHONDONTWRITEBYTECODE": "1",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.pg.url,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(logs),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # fast loops: the tests wait on the scheduler, not on wall-clock minutes
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "120",
            "AIRFLOW_CONN_AWS_DEFAULT": self.aws.airflow_connection(),
        })
        return env

    def _daemon(self, name: str) -> None:
        args = [name] + (["--host", "127.0.0.1", "--port", str(self.port)]
                         if name == "api-server" else [])
        log = (self.home / f"{name}.log").open("w")
        self.procs[name] = subprocess.Popen(
            [str(BIN / "airflow"), *args], env=self.env, cwd=self.home, stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def _wait_up(self, timeout: float = 180) -> None:
        self.wait_for(lambda: self._get_ok("/api/v2/monitor/health"), timeout,
                      "the api-server to answer /api/v2/monitor/health")

        def parsed() -> bool:
            errors = self.rest("GET", "/api/v2/importErrors")["import_errors"]
            if errors:
                raise StackError(f"{errors[0]['filename']} does not import: "
                                 f"{errors[0]['stack_trace'].strip().splitlines()[-1]}")
            return self._get_ok(f"/api/v2/dags/{DAG_ID}")

        self.wait_for(parsed, timeout, f"the dag-processor to parse {DAG_ID}")

    def _get_ok(self, path: str) -> bool:
        try:
            return self.http.get(self.url + path, timeout=10).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or busy parsing
            return False

    def set_settings(self, **overrides) -> dict:
        """The Variable ghvault_settings: the stack's output as the README deploys it, the
        local runner, the simulator's CA for the engine, and `overrides`."""
        self.settings = self.stack.settings(
            runner="local", owners=self.owners, engine_env=self.sim.client_env(),
            **{k: v for k, v in overrides.items()})
        body = {"key": "ghvault_settings", "value": json.dumps(self.settings)}
        if self._get_ok("/api/v2/variables/ghvault_settings"):
            self.rest("PATCH", "/api/v2/variables/ghvault_settings", json=body)
        else:
            self.rest("POST", "/api/v2/variables", json=body)
        return self.settings

    def _create_pool(self) -> None:
        """The backup pool as a deployment gets it: the scheduler made it from the defaults
        when it started (the package's listener; the Variable did not exist yet), and
        ``python -m ghvault_airflow.plan pool`` resizes it to the settings now."""
        from ghvault_airflow.settings import load_settings

        self.pool = load_settings(self.settings, env={}).pool
        self.wait_for(lambda: self._get_ok(f"/api/v2/pools/{self.pool}"), 60,
                      f"the scheduler to create pool {self.pool}")
        subprocess.run([str(BIN / "python"), "-m", "ghvault_airflow.plan", "pool"],
                       env=self.env, cwd=self.home, check=True, capture_output=True,
                       timeout=300)

    # -- tear-down ----------------------------------------------------------------------

    def stop(self) -> None:
        """TERM every daemon's process group and every descendant, KILL what stays."""
        procs = []
        for proc in self.procs.values():
            try:
                parent = psutil.Process(proc.pid)
                procs += [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for proc in self.procs.values():
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
            for proc in procs:
                try:
                    proc.send_signal(sig)
                except psutil.NoSuchProcess:
                    pass
            _, alive = psutil.wait_procs(procs, timeout=5)
            if not alive:
                break
        for proc in self.procs.values():
            proc.wait(timeout=10)
        self.procs.clear()
        self.pg.stop()

    # -- Airflow ------------------------------------------------------------------------

    def airflow(self, *args: str, timeout: float = 180) -> str:
        """The Airflow CLI against this deployment; its output, or StackError."""
        result = subprocess.run([str(BIN / "airflow"), *args], env=self.env, cwd=self.home,
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise StackError(f"airflow {' '.join(args)} failed ({result.returncode}): "
                             f"{(result.stderr or result.stdout).strip()[-1500:]}")
        return result.stdout

    def rest(self, method: str, path: str, **kwargs):
        answer = self.http.request(method, self.url + path, timeout=60, **kwargs)
        if answer.status_code >= 400:
            raise StackError(f"{method} {path}: {answer.status_code} {answer.text[:1000]}")
        return answer.json() if answer.content else None

    def paused(self) -> bool:
        return self.rest("GET", f"/api/v2/dags/{DAG_ID}")["is_paused"]

    def unpause(self) -> None:
        self.rest("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})

    def unpause_and_catch_up(self, timeout: float = 300) -> list[dict]:
        """Unpause (the DAG is deployed paused) and wait for the scheduled runs the scheduler
        then queues, up to the last complete month; they are returned, finished."""
        self.unpause()
        month_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0,
                                                microsecond=0)
        runs: list[dict] = []

        def caught_up() -> bool:
            nonlocal runs
            runs = self.runs("scheduled")
            return (any(_when(r["data_interval_end"]) >= month_start for r in runs)
                    and all(r["state"] in FINISHED for r in runs))

        self.wait_for(caught_up, timeout, lambda: "the catch-up runs to finish; now: " + (
            ", ".join(f"{r['dag_run_id']} {r['state']}" for r in runs) or "none"))
        return runs

    def trigger(self, run_id: str, logical_date: str | None = None,
                conf: dict | None = None) -> str:
        """`airflow dags trigger` as an operator types it; the run's id."""
        args = ["dags", "trigger", DAG_ID, "-r", run_id]
        if logical_date:
            args += ["-l", logical_date]
        if conf:
            args += ["-c", json.dumps(conf)]
        self.airflow(*args)
        return run_id

    def backfill(self, from_date: str, to_date: str, *extra: str) -> str:
        return self.airflow("backfill", "create", "--dag-id", DAG_ID, "--from-date",
                            from_date, "--to-date", to_date, *extra)

    def clear(self, run_id: str) -> None:
        self.rest("POST", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/clear",
                  json={"dry_run": False})

    def runs(self, run_type: str | None = None) -> list[dict]:
        query = "?limit=100&order_by=logical_date" + (f"&run_type={run_type}" if run_type
                                                      else "")
        return self.rest("GET", f"/api/v2/dags/{DAG_ID}/dagRuns{query}")["dag_runs"]

    def run(self, run_id: str) -> dict:
        return self.rest("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")

    def task_instances(self, run_id: str = "~", task_id: str | None = None) -> list[dict]:
        """Task instances of a run ("~": every run), mapped ones included."""
        out, offset = [], 0
        while True:
            page = self.rest("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances"
                                    f"?limit=100&offset={offset}"
                                    + (f"&task_id={task_id}" if task_id else ""))
            out += page["task_instances"]
            offset += 100
            if offset >= page["total_entries"]:
                return out

    def wait_runs(self, select, count: int, timeout: float = 240,
                  expect: str | None = "success") -> list[dict]:
        """Wait until `count` runs chosen by `select(run)` exist and have finished; with
        `expect`, fail naming each run in another state and its first task error."""
        found: list[dict] = []

        def finished() -> bool:
            nonlocal found
            found = [r for r in self.runs() if select(r)]
            return len(found) >= count and all(r["state"] in FINISHED for r in found)

        self.wait_for(finished, timeout, lambda: f"{count} run(s) to finish; now: " + (
            ", ".join(f"{r['dag_run_id']} {r['state']}" for r in found) or "none"))
        bad = [r for r in found if expect and r["state"] != expect]
        if bad:
            raise StackError("; ".join(f"run {r['dag_run_id']} is {r['state']}, not {expect}: "
                                       f"{self.first_error(r['dag_run_id'])}" for r in bad))
        return found

    def first_error(self, run_id: str) -> str:
        """The first error any task of the run logged (its task logs, JSON lines)."""
        base = self.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
        hits = []
        for path in base.rglob("*.log") if base.exists() else []:
            for line in path.read_text(errors="replace").splitlines():
                if '"level":"error"' not in line:
                    continue
                entry = json.loads(line)
                detail = (entry.get("error_detail") or [{}])[-1]
                text = (f"{detail['exc_type']}: {detail.get('exc_value', '')}"
                        if detail.get("exc_type") else entry.get("event", ""))
                task = str(path.relative_to(base)).replace("task_id=", "").rsplit("/", 1)[0]
                hits.append((entry.get("timestamp", ""), f"{task}: {text.splitlines()[0][:400]}"
                             if text else task))
                break
        return min(hits)[1] if hits else "no task logged an error"

    def wait_for(self, condition, timeout: float, what, interval: float = 1.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.check_daemons()
            if time.monotonic() > deadline:
                raise StackError(f"timed out after {timeout:.0f} s waiting for "
                                 f"{what() if callable(what) else what}")
            time.sleep(interval)

    def check_daemons(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.home / f"{name}.log").read_text(errors="replace")[-1500:]
                raise StackError(f"airflow {name} exited ({proc.returncode}): {tail}")

    # -- AWS ----------------------------------------------------------------------------

    def notifications(self, **attributes: str) -> list[dict]:
        """ghvault's SNS messages so far (S3's own events left out), with these attributes."""
        self.messages += [m for m in read_notifications(self.aws, self.queue_url, wait=0)
                          if (m["subject"] or "").startswith("ghvault")]
        return [m for m in self.messages
                if all(m["attributes"].get(k) == v for k, v in attributes.items())]

    def archives(self, owner: str | None = None) -> dict[str, dict]:
        """Archive and manifest objects under the prefix: key -> head fields."""
        prefix = f"{self.settings['prefix']}/" + (f"{owner}/" if owner else "")
        pages = self.aws.client("s3").get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        return {o["Key"]: o for page in pages for o in page.get("Contents", [])}

    def versions(self, key: str) -> list[dict]:
        """Every version of the key, newest first (the bucket is versioned)."""
        listed = self.aws.client("s3").list_object_versions(Bucket=self.bucket, Prefix=key)
        return [v for v in listed.get("Versions", []) if v["Key"] == key]

    def read(self, key: str, version: str | None = None) -> bytes:
        extra = {"VersionId": version} if version else {}
        return self.aws.client("s3").get_object(Bucket=self.bucket, Key=key,
                                                **extra)["Body"].read()
