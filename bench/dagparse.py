"""How long the scheduler's dag-processor takes to parse dags/github_backup.py.

Each sample is a fresh interpreter (so nothing is cached between samples) that imports
Airflow, then loads the file with `DagBag` several times: the first load pays for the DAG's
own imports (operators, the amazon provider), the later ones are what a warm dag-processor
pays on each re-parse.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.sim import REPO_ROOT

DAG_FILE = REPO_ROOT / "dags" / "github_backup.py"

CHILD = r"""
import json, sys, time
started = time.perf_counter()
import airflow  # noqa: F401
from airflow.dag_processing.dagbag import DagBag
imported = time.perf_counter()
path, repeats = sys.argv[1], int(sys.argv[2])
loads, errors, dag_ids = [], {}, []
for _ in range(repeats):
    t = time.perf_counter()
    bag = DagBag(dag_folder=path, safe_mode=False)
    loads.append(time.perf_counter() - t)
    errors = {str(k): str(v)[-800:] for k, v in bag.import_errors.items()}
    dag_ids = sorted(bag.dag_ids)
print(json.dumps({"import_airflow_s": imported - started, "loads_s": loads,
                  "errors": errors, "dag_ids": dag_ids}))
"""


@dataclass
class DagParse:
    available: bool
    reason: str = ""
    processes: int = 0
    repeats: int = 0
    cold_total_s: list[float] = field(default_factory=list)  # interpreter start to first bag
    import_airflow_s: list[float] = field(default_factory=list)
    first_load_s: list[float] = field(default_factory=list)
    warm_load_s: list[float] = field(default_factory=list)
    dag_ids: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.available and not self.errors and bool(self.dag_ids)


def command(repeats: int) -> str:
    return (f"python -c '<import airflow; DagBag(dag_folder=\"dags/github_backup.py\", "
            f"safe_mode=False)> x{repeats}' (see bench/dagparse.py)")


def measure(processes: int = 5, repeats: int = 6, timeout: float = 300.0) -> DagParse:
    if not DAG_FILE.exists():
        return DagParse(False, reason=f"{DAG_FILE.relative_to(REPO_ROOT)} does not exist")
    result = DagParse(True, processes=processes, repeats=repeats)
    with tempfile.TemporaryDirectory(prefix="bench-airflow-") as home:
        env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
               "HOME": home, "AIRFLOW_HOME": home, "PYTHONPATH": str(REPO_ROOT),
               "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
               "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FILE.parent),
               "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"}
        for _ in range(processes):
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", CHILD, str(DAG_FILE), str(repeats)],
                                  env=env, cwd=home, capture_output=True, text=True,
                                  timeout=timeout)
            total = time.perf_counter() - started
            if proc.returncode != 0:
                result.errors = {"process": proc.stderr[-1500:]}
                return result
            sample = json.loads(proc.stdout.strip().splitlines()[-1])
            loads = sample["loads_s"]
            # started..first bag: everything but the later loads and the exit
            result.cold_total_s.append(total - sum(loads[1:]))
            result.import_airflow_s.append(sample["import_airflow_s"])
            result.first_load_s.append(loads[0])
            result.warm_load_s.append(statistics.median(loads[1:]) if len(loads) > 1
                                      else loads[0])
            result.dag_ids, result.errors = sample["dag_ids"], sample["errors"]
            if result.errors:
                return result
    return result
