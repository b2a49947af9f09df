"""The Airflow side as an installed provider: Airflow lists it, and the DAG file parses from
a dags folder of its own with nothing on PYTHONPATH (as in an Airflow image or MWAA with
ghvault-airflow in its requirements.txt)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ghvault_airflow

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def bare_env(home: Path, dags: Path) -> dict[str, str]:
    """The environment of a fresh deployment: no PYTHONPATH, a private AIRFLOW_HOME."""
    env = {k: v for k, v in os.environ.items()
           if k != "PYTHONPATH" and not k.startswith(("AIRFLOW_", "AIRFLOW__", "GHVAULT_"))}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    return env


def test_airflow_providers_list_shows_ghvault_airflow(tmp_path):
    proc = subprocess.run([AIRFLOW, "providers", "list", "--output", "json"],
                          env=bare_env(tmp_path / "home", tmp_path / "dags"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    start = proc.stdout.index("[")
    providers = {p["package_name"]: p for p in json.loads(proc.stdout[start:])}
    assert providers["ghvault-airflow"]["version"] == ghvault_airflow.__version__
    assert ghvault_airflow.__version__ != "0+unknown"  # installed, not a source tree on a path
    info = ghvault_airflow.get_provider_info()
    for kind in ("operators", "sensors"):
        for module in info[kind][0]["python-modules"]:
            __import__(module)
    assert info["hooks"][0]["python-modules"] == ["ghvault_airflow.hooks.archive"]


def test_the_dag_file_alone_parses_without_pythonpath(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "dags" / "github_backup.py", dags)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    code = ("import json, sys; from airflow.dag_processing.dagbag import DagBag; "
            "bag = DagBag(sys.argv[1]); "
            "print(json.dumps({'dags': sorted(bag.dag_ids), "
            "'errors': {k: str(v) for k, v in bag.import_errors.items()}}))")
    proc = subprocess.run([sys.executable, "-c", code, str(dags)],
                          env=bare_env(tmp_path / "home", dags), cwd=elsewhere,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parsed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert parsed == {"dags": ["github_backup"], "errors": {}}, parsed


def test_a_starting_airflow_component_creates_the_backup_pool_from_the_settings(tmp_path):
    """No deployment step makes the pool: the package's plugin (a listener) does when the
    scheduler (or another component with the metadata database) starts; a task whose pool
    does not exist would never be scheduled."""
    env = bare_env(tmp_path / "home", tmp_path / "dags")
    env["AIRFLOW_VAR_GHVAULT_SETTINGS"] = json.dumps({"bucket": "b", "pool_slots": 3})

    def airflow(*args: str) -> str:
        proc = subprocess.run([AIRFLOW, *args], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    airflow("db", "migrate")
    plugins = airflow("plugins", "--output", "json")
    listed = json.loads(plugins[plugins.index("["):])
    assert any(p["name"] == "ghvault" and "ghvault_airflow.pool" in str(p["listeners"])
               for p in listed), listed
    # what Job() does when the scheduler starts: the listener manager's on_starting
    code = ("from airflow.listeners.listener import get_listener_manager; "
            "get_listener_manager().hook.on_starting(component=object())")
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pools = airflow("pools", "list", "--output", "json")
    pool = {p["pool"]: p for p in json.loads(pools[pools.index("["):])}["ghvault"]
    assert str(pool["slots"]) == "3" and str(pool["include_deferred"]) in ("True", "true")
