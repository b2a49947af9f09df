"""`make run`: the whole pipeline on one machine, with no AWS account, Docker or internet.

What it does:

1. starts moto's server (in this process) as AWS, stores the GitHub token as an SSM
   SecureString and deploys infra/ghvault.yaml into moto's CloudFormation, exactly the
   resources users deploy (devtools/stack.py completes what moto's CloudFormation skips): the
   archive bucket with its lifecycle rule (GLACIER after 1 day, expire after 365 days), the
   encrypted SNS topic (an SQS queue is subscribed so the messages can be shown), the ECS
   cluster and task definition, IAM, logs; the Variable is the stack's AirflowSettings
   output with the local runner, the owners and the GitHub URL of this run;
2. starts the GitHub simulator (`SIM_SIZE`, default small) over TLS as GitHub;
3. sets up Airflow under `.run/airflow` (SQLite; `airflow db migrate`), with the settings
   Variable, the `aws_default` connection pointing at moto, and this repository's `dags/`;
4. runs `airflow dags test github_backup` for the previous month with the local runner
   (`ghvault run` as a subprocess of the task), i.e. plan -> backup.backup ->
   backup.archive -> backup.glacier -> backup.verify (skipped unless asked) -> notify;
5. prints the archive key and size, the counts per kind, both sensors' verdicts and the SNS
   message read back from the queue.

Environment:
  SIM_SIZE       tiny | small | medium (default small)
  SIM_PORT       the simulator's port (default: any free port)
  GITHUB_TOKEN, GHVAULT_OWNERS
                 both set: back up these owners (comma-separated) from real GitHub with this
                 token instead of the simulator (GITHUB_API_URL for GitHub Enterprise).
  RUNNER         local (default: `ghvault run` as a subprocess of the task) or docker (the
                 engine image, built by `make image` when missing, in Docker or podman through
                 the docker runner: devtools/docker_demo.py)
  RUN_SECONDS    keep moto and the simulator serving this long after the report (default 0)
  FARGATE_RUNTIME
                 how devtools.fargate runs the ECS tasks of a run with the ecs runner:
                 `process` (default: this virtualenv's ghvault, no container engine needed)
                 or `container` (the image `make image` built, ghvault:dev, in docker or
                 podman; fails when no engine can start)

Real AWS instead of moto: this script always plays AWS with moto (it creates resources and
throws them away). Against a real account, deploy infra/ghvault.yaml (README, "Deploy to
AWS": the token parameter, the stack, the Variable from its outputs), and
run what this script runs, with the environment pointing at the account instead of moto
(AWS credentials from your shell's profile or role; the connection only names the region):

    export AIRFLOW_HOME=$PWD/.run/airflow-aws AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags \
           AIRFLOW__CORE__LOAD_EXAMPLES=False PYTHONPATH=$PWD
    export AIRFLOW_CONN_AWS_DEFAULT='aws://?region_name=eu-west-1'
    export AIRFLOW_VAR_GHVAULT_SETTINGS='{"bucket": "my-ghvault", "owners": ["my-org"],
      "runner": "local", "region": "eu-west-1",
      "sns_topic_arn": "arn:aws:sns:eu-west-1:123456789012:ghvault-notifications"}'
    airflow db migrate
    airflow dags test github_backup 2026-11-01T03:00:00+00:00    # backs up October 2026

With `"runner": "ecs"` and `cluster`, `task_definition`, `subnets`, `security_groups`,
`log_group`, the backup runs as a Fargate task instead. `.run/` is gitignored.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote_plus

from devtools.fargate import FargateEmulator

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = ROOT / ".run"
DAG_ID = "github_backup"
REGION = "us-east-1"
TOKEN_PARAMETER = "/ghvault/github-token"
LIFECYCLE_RULE = {
    "ID": "ghvault-archives-to-glacier",
    "Status": "Enabled",
    "Filter": {"Prefix": "github/"},
    "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}],
    "Expiration": {"Days": 365},
}


# -- AWS ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_server():
    """moto's server in a thread of this process; yields its endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


class Aws:
    """moto's server as AWS: boto3 clients, a process environment, an Airflow connection."""

    def __init__(self, endpoint: str, region: str = REGION) -> None:
        self.endpoint = endpoint
        self.region = region

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def env(self) -> dict[str, str]:
        """What a process (the engine, a container) needs to reach this AWS."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": self.region}

    def airflow_connection(self) -> str:
        """AIRFLOW_CONN_AWS_DEFAULT for this AWS (NOTES.md)."""
        return (f"aws://testing:testing@/?region_name={self.region}"
                f"&endpoint_url={quote(self.endpoint, safe='')}")


def provision(aws: Aws, bucket: str, token: str, *, lifecycle: bool = True,
              name: str = "ghvault") -> dict[str, str]:
    """Bucket (+ lifecycle rule), SNS topic with an SQS queue subscribed, SSM token.
    Returns {"bucket", "topic_arn", "queue_url", "token_parameter"}."""
    s3, sns, sqs, ssm = (aws.client(s) for s in ("s3", "sns", "sqs", "ssm"))
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    if lifecycle:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": [LIFECYCLE_RULE]})
    topic = sns.create_topic(Name=f"{name}-notifications")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"{name}-notifications")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    ssm.put_parameter(Name=TOKEN_PARAMETER, Value=token, Type="SecureString", Overwrite=True)
    return {"bucket": bucket, "topic_arn": topic, "queue_url": queue,
            "token_parameter": TOKEN_PARAMETER}


def provision_stack(aws: Aws, token: str, name: str = "ghvault",
                    parameters: dict[str, str] | None = None) -> dict:
    """What users deploy: the token as an SSM SecureString (README, "Deploy to AWS"), then
    infra/ghvault.yaml as a stack in moto's CloudFormation (devtools.stack), and an SQS queue
    subscribed to the stack's topic so the messages can be shown.
    Returns {"stack", "topic_arn", "queue_url", "token_parameter"}."""
    from devtools.stack import deploy

    aws.client("ssm").put_parameter(Name=TOKEN_PARAMETER, Value=token, Type="SecureString",
                                    Overwrite=True)
    stack = deploy(aws, name, {"GithubTokenParameterName": TOKEN_PARAMETER,
                               **(parameters or {})})
    topic = stack.outputs["SnsTopicArn"]
    sqs = aws.client("sqs")
    queue = sqs.create_queue(QueueName=f"{name}-notifications")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return {"stack": stack, "topic_arn": topic, "queue_url": queue,
            "token_parameter": TOKEN_PARAMETER}


def read_notifications(aws: Aws, queue_url: str, wait: int = 1) -> list[dict]:
    """SNS messages delivered to the queue since the last call: Subject, Message, attributes."""
    sqs = aws.client("sqs")
    out = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                    WaitTimeSeconds=wait).get("Messages", [])
        if not batch:
            return out
        for m in batch:
            body = json.loads(m["Body"])
            out.append({"subject": body.get("Subject"), "message": body.get("Message"),
                        "attributes": {k: v.get("Value") for k, v in
                                       (body.get("MessageAttributes") or {}).items()}})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        wait = 0


# -- GitHub ------------------------------------------------------------------------------------


@contextmanager
def simulator(size: str, port: int = 0):
    """The GitHub simulator over TLS in a child process; yields its ready-file JSON."""
    with tempfile.TemporaryDirectory(prefix="ghvault-sim-") as tmp:
        ready = Path(tmp) / "ready.json"
        proc = subprocess.Popen([sys.executable, "-m", "tests.github_sim", "--size", size,
                                 "--port", str(port), "--tls", "--ready-file", str(ready)],
                                cwd=ROOT, stdout=subprocess.DEVNULL)
        try:
            while not ready.exists():
                if proc.poll() is not None:
                    raise RuntimeError("the GitHub simulator exited before it was ready")
                time.sleep(0.2)
            yield json.loads(ready.read_text())
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


# -- Airflow -----------------------------------------------------------------------------------


def airflow_env(home: Path, aws: Aws, settings: dict, extra: dict | None = None) -> dict:
    """Environment for `airflow` commands: this repo's dags, SQLite under `home`, the
    settings Variable and the aws_default connection, both from the environment."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "GHVAULT_", "AWS_"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "AIRFLOW_CONN_AWS_DEFAULT": aws.airflow_connection(),
        "AIRFLOW_VAR_GHVAULT_SETTINGS": json.dumps(settings),
        "NO_PROXY": "*",
        **aws.env(),
    })
    env.pop("GITHUB_TOKEN", None)  # the engine gets the token from SSM, nowhere else
    env.update(extra or {})
    return env


def airflow(env: dict, *args: str, log: Path | None = None, timeout: int = 1800,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run the `airflow` CLI of this virtualenv."""
    exe = str(Path(sys.executable).with_name("airflow"))
    if log is None:
        result = subprocess.run([exe, *args], env=env, capture_output=True, text=True,
                                timeout=timeout)
    else:
        with log.open("w") as out:
            result = subprocess.run([exe, *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                    text=True, timeout=timeout)
    if check and result.returncode != 0:
        detail = log.read_text()[-3000:] if log else (result.stdout + result.stderr)[-3000:]
        raise RuntimeError(f"airflow {' '.join(args)} failed ({result.returncode}):\n{detail}")
    return result


def migrate(home: Path, env: dict) -> None:
    """Migrate the metadata DB and create the backups' pool from the settings."""
    home.mkdir(parents=True, exist_ok=True)
    airflow(env, "db", "migrate")
    result = subprocess.run([sys.executable, "-m", "ghvault_airflow.plan", "pool"], env=env,
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"creating the pool failed:\n{result.stdout}{result.stderr}")


def logical_date_for(month: str) -> str:
    """The logical date whose `airflow dags test` run backs up `month` (YYYY-MM).

    A manual run covers the last complete data interval before its logical date, and the
    DAG's intervals run from 03:00 UTC on the 1st to the next 1st: the run for October is
    the one at 2026-11-01T03:00 UTC, when October has ended (as the scheduler runs it)."""
    year, mm = (int(x) for x in month.split("-"))
    year, mm = (year + 1, 1) if mm == 12 else (year, mm + 1)
    return f"{year:04d}-{mm:02d}-01T03:00:00+00:00"


def previous_month(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now.year - 1}-12" if now.month == 1 else f"{now.year}-{now.month - 1:02d}"


class RunRecord:
    """One DAG run as the metadata DB holds it: task states and XCom return values."""

    def __init__(self, home: Path, run_id: str | None = None) -> None:
        with sqlite3.connect(home / "airflow.db") as db:
            if run_id is None:
                run_id = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id "
                                    "DESC LIMIT 1", (DAG_ID,)).fetchone()[0]
            self.run_id = run_id
            self.state, self.logical_date, self.interval_start = db.execute(
                "SELECT state, logical_date, data_interval_start FROM dag_run "
                "WHERE dag_id = ? AND run_id = ?", (DAG_ID, run_id)).fetchone()
            self.tasks = {(t, i): s for t, i, s in db.execute(
                "SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ? AND "
                "run_id = ?", (DAG_ID, run_id))}
            self.xcom = {}
            for t, i, k, v in db.execute(
                    "SELECT task_id, map_index, key, value FROM xcom WHERE dag_id = ? AND "
                    "run_id = ?", (DAG_ID, run_id)):
                self.xcom[(t, i, k)] = json.loads(v) if isinstance(v, (str, bytes)) else v

    def state_of(self, task_id: str, map_index: int = -1) -> str | None:
        return self.tasks.get((task_id, map_index))

    def states(self, task_id: str) -> list[str]:
        return [s for (t, i), s in sorted(self.tasks.items()) if t == task_id]

    def result(self, task_id: str, map_index: int = -1, key: str = "return_value"):
        return self.xcom.get((task_id, map_index, key))

    def results(self, task_id: str, key: str = "return_value") -> list:
        return [v for (t, i, k), v in sorted(self.xcom.items(), key=lambda e: e[0][1])
                if t == task_id and k == key]


# -- the embedded run --------------------------------------------------------------------------


def human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def report(record: RunRecord, aws: Aws, notifications: list[dict]) -> None:
    print(f"\nrun {record.run_id}: {record.state}")
    for (task_id, index), state in sorted(record.tasks.items(), key=lambda e: (e[0][1], e[0][0])):
        print(f"  {task_id}{f'[{index}]' if index >= 0 else ''}: {state}")
    s3 = aws.client("s3")
    for index, result in enumerate(record.results("backup.backup")):
        print(f"\n== {result['owner']} ({result['month']})")
        head = s3.head_object(Bucket=result["bucket"], Key=result["key"])
        print(f"archive   s3://{result['bucket']}/{result['key']}  "
              f"{head['ContentLength']} bytes ({human(head['ContentLength'])})")
        manifest = json.loads(s3.get_object(Bucket=result["bucket"],
                                            Key=result["manifest_key"])["Body"].read())
        counts = manifest.get("counts") or (result.get("summary") or {}).get("counts") or {}
        print("counts    " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        summary = result.get("summary") or {}
        if summary:
            print(f"engine    {summary.get('api_requests')} API requests, "
                  f"{summary.get('duration_s')} s, {len(summary.get('skipped') or [])} skipped")
        archive = record.result("backup.archive", index)
        if archive:
            print(f"archive sensor: OK - {archive['size']} bytes, storage class "
                  f"{archive['storage_class']}, checksum {archive['checksum']} agrees with "
                  f"the manifest")
        else:
            print(f"archive sensor: {record.state_of('backup.archive', index)}")
        glacier = record.result("backup.glacier", index)
        if glacier:
            previous = glacier.get("previous") or {}
            before = (f"previous month's archive {previous.get('storage_class')}"
                      if previous.get("exists") else "no previous month's archive yet")
            print(f"Glacier sensor: OK - lifecycle rule {glacier['rule_id']!r} moves the "
                  f"archive to the Glacier class {glacier['storage_class']} after "
                  f"{glacier['transition_days']} day(s) and expires it after "
                  f"{glacier['expiration_days']} days; {before}")
            for note in glacier.get("notes") or []:
                print(f"                note: {note}")
        else:
            print(f"Glacier sensor: {record.state_of('backup.glacier', index)} (see the log)")
    print(f"\nSNS notification(s) received on the subscribed SQS queue: {len(notifications)}")
    for n in notifications:
        if n["message"].startswith('{"Records"'):  # the bucket's event for a new archive
            record = json.loads(n["message"])["Records"][0]
            print(f"S3 event {record['eventName']}: s3://{record['s3']['bucket']['name']}/"
                  f"{unquote_plus(record['s3']['object']['key'])}")
            continue
        print(f"Subject: {n['subject']}")
        print("Attributes: " + ", ".join(f"{k}={v}" for k, v in sorted(n['attributes'].items())))
        print(n["message"])


def main() -> int:
    size = os.environ.get("SIM_SIZE", "small")
    port = int(os.environ.get("SIM_PORT", "0") or 0)
    real_github = bool(os.environ.get("GITHUB_TOKEN") and os.environ.get("GHVAULT_OWNERS"))
    month = previous_month()
    home = RUN_DIR / "airflow"
    t0 = time.monotonic()
    runtime = os.environ.get("FARGATE_RUNTIME", "process")
    runner = os.environ.get("RUNNER") or "local"
    with ExitStack() as stack:
        print("starting moto (AWS)", flush=True)
        aws = Aws(stack.enter_context(moto_server()))
        if real_github:
            owners = [o.strip() for o in os.environ["GHVAULT_OWNERS"].split(",") if o.strip()]
            token = os.environ["GITHUB_TOKEN"]
            api_url = os.environ.get("GITHUB_API_URL", "https://api.github.com")
            engine_env: dict[str, str] = {}
            print(f"backing up {', '.join(owners)} from {api_url}", flush=True)
        else:
            print(f"starting the GitHub simulator ({size}); the first start generates its "
                  "data and caches it", flush=True)
            sim = stack.enter_context(simulator(size, port))
            owners, token, api_url = list(sim["owners"].values()), sim["token"], sim["api_url"]
            ca = sim["ca_cert"]
            if runtime == "container" or runner == "docker":  # a copy the image's user reaches
                RUN_DIR.mkdir(exist_ok=True)
                ca = str(RUN_DIR / "sim-ca.pem")
                Path(ca).write_bytes(Path(sim["ca_cert"]).read_bytes())
                Path(ca).chmod(0o644)
            engine_env = {"SSL_CERT_FILE": ca, "GIT_SSL_CAINFO": ca, "REQUESTS_CA_BUNDLE": ca}
            print(f"simulator at {sim['root_url']} (owners {', '.join(owners)})", flush=True)
        resources = provision_stack(aws, token)
        deployed = resources["stack"]
        settings = deployed.settings(runner=runner, owners=owners, github_api_url=api_url,
                                     engine_env=engine_env)
        worker_env: dict[str, str] = {}
        if runner == "docker":
            from devtools.docker_demo import docker_runner

            docker_keys, worker_env = stack.enter_context(docker_runner(
                sorted({engine_env[k] for k in ("SSL_CERT_FILE",) if k in engine_env})))
            settings.update(docker_keys)
        print(f"runner: {runner}", flush=True)
        bucket = settings["bucket"]
        print(f"AWS: stack {deployed.name} from infra/ghvault.yaml in moto's CloudFormation "
              f"({len(deployed.resources)} resources: "
              f"{', '.join(t for t in deployed.resource_types if t)})")
        print(f"     completed where moto's CloudFormation stops short: "
              f"{'; '.join(deployed.completed)}")
        print(f"     bucket {bucket} (lifecycle: GLACIER after 1 day, expire after 365), "
              f"SNS {resources['topic_arn']} -> SQS, SSM SecureString {TOKEN_PARAMETER}")
        env = airflow_env(home, aws, settings, worker_env)
        print(f"airflow db migrate (AIRFLOW_HOME={home.relative_to(ROOT)})", flush=True)
        migrate(home, env)
        logical = logical_date_for(month)
        log = RUN_DIR / "dags-test.log"
        print(f"airflow dags test {DAG_ID} {logical}  (backs up {month}; log: "
              f"{log.relative_to(ROOT)})", flush=True)
        t1 = time.monotonic()
        # Tasks the run starts on the stack's ECS cluster (runner ecs, its verification) run by
        # devtools.fargate with the stack's task definition, as Fargate would run them.
        mounts = {p: p for p in {v for k, v in engine_env.items() if k.endswith(
            ("_CERT_FILE", "_CAINFO", "_CA_BUNDLE"))}}  # the simulator's CA, at its path
        with FargateEmulator(aws.endpoint, region=aws.region, runtime=runtime,
                             mounts=mounts if runtime == "container" else None):
            result = airflow(env, "dags", "test", DAG_ID, logical, log=log, check=False)
        print(f"dags test finished in {time.monotonic() - t1:.0f}s (exit {result.returncode})")
        record = RunRecord(home)
        report(record, aws, read_notifications(aws, resources["queue_url"]))
        print(f"\nmake run took {time.monotonic() - t0:.0f}s")
        if seconds := float(os.environ.get("RUN_SECONDS", "0") or 0):
            time.sleep(seconds)
        return 0 if record.state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
