"""`make run`: the embedded run, on one machine, with no AWS account and no GitHub.

Today it starts the GitHub simulator (the `small` account, over TLS), checks that it
answers, and prints how to point a client at it. Once the engine and the DAG exist it
grows into the whole pipeline: moto as AWS (bucket + lifecycle rule, SNS topic, SSM
token), the simulator as GitHub, `airflow dags test github_backup` with the local runner,
and a report of the archive, the sensors' verdicts and the SNS message.

Environment: SIM_SIZE (default small), SIM_PORT (default 8765), RUN_SECONDS (serve that
long, then stop; default: until Ctrl-C).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]

PLAN = """\
What the embedded run does (the steps marked * arrive with the engine and the DAG):
  1.  GitHub simulator ({size}) on {root}  (owners: {owners})
  2.* moto server as AWS: backup bucket with the Glacier lifecycle rule, SNS topic with an
      SQS subscription, SSM SecureString with the token
  3.* airflow dags test github_backup, local runner: ghvault run for each owner into S3
  4.* sensors: archive + manifest present and intact; lifecycle rule moves it to Glacier
  5.* the SNS message that was sent, the archive key and size, the counts per kind
"""


def main() -> int:
    size = os.environ.get("SIM_SIZE", "small")
    port = os.environ.get("SIM_PORT", "8765")
    seconds = float(os.environ.get("RUN_SECONDS", "0") or 0)
    with tempfile.TemporaryDirectory(prefix="ghvault-run-") as tmp:
        ready = Path(tmp) / "ready.json"
        print(f"starting the GitHub simulator ({size}); the first start generates the data "
              "and caches it", flush=True)
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "tests.github_sim", "--size", size,
                                 "--port", port, "--tls", "--ready-file", str(ready)], cwd=ROOT)
        try:
            while not ready.exists():
                if proc.poll() is not None:
                    print("the simulator exited before it was ready", file=sys.stderr)
                    return 1
                time.sleep(0.2)
            info = json.loads(ready.read_text())
            me = requests.get(f"{info['api_url']}/user", verify=info["ca_cert"], timeout=30,
                              headers={"Authorization": f"token {info['token']}"})
            me.raise_for_status()
            print(f"ready in {time.monotonic() - t0:.1f}s; GET /user answers {me.json()['login']}")
            print(PLAN.format(size=size, root=info["root_url"],
                              owners=", ".join(info["owners"].values())))
            print("ground truth (counts):")
            for role, counts in info["counts"].items():
                print(f"  {role:5} {info['owners'][role]}: " + ", ".join(
                    f"{k}={v}" for k, v in counts.items()))
            print(f"\ntry it:\n  export SSL_CERT_FILE={info['ca_cert']} "
                  f"GIT_SSL_CAINFO={info['ca_cert']}\n"
                  f"  curl -s --cacert {info['ca_cert']} -H 'Authorization: token "
                  f"{info['token']}' {info['api_url']}/user/repos\n"
                  f"  github-backup {info['owners']['user']} -H "
                  f"{info['root_url'].split('://')[1]} -t {info['token']} -o /tmp/pgb --all\n"
                  f"  curl -s --cacert {info['ca_cert']} {info['root_url']}/_sim/stats\n")
            if seconds:
                time.sleep(seconds)
            else:
                print("serving until Ctrl-C", flush=True)
                signal.signal(signal.SIGTERM, signal.default_int_handler)
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
