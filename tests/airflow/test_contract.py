"""The contract between the Airflow side and the engine (`ghvault.contract`), seen from both.

The engine and the operators each import the contract; these tests fail when either side
drifts from it: the DAG's trigger form offers other kinds than `ghvault run` accepts, the
operators turn an exit code into the wrong exception (or retry what must not be retried),
an engine error class ends with a code the contract does not define, `ghvault run --help`
documents other codes or meanings, or a key the Airflow side builds is one the engine's
reader (`parse_archive_key`, what `ghvault list` relies on) does not recognise.
"""

from __future__ import annotations

import atexit
import inspect
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from ghvault import cli, contract, errors
from ghvault.collect import KINDS as ENGINE_KINDS
from ghvault.contract import EXIT_MEANINGS, KINDS, RETRYABLE_EXITS, Exit

ROOT = Path(__file__).resolve().parents[2]
GHVAULT = str(Path(sys.executable).with_name("ghvault"))


@pytest.fixture(scope="module")
def dag():
    """The github_backup DAG as Airflow's DagBag parses it (AIRFLOW_HOME kept temporary)."""
    if "airflow" not in sys.modules and "AIRFLOW_HOME" not in os.environ:
        os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="ghvault-airflow-")
        atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags["github_backup"]


# -- kinds ---------------------------------------------------------------------------------

def test_the_engine_accepts_exactly_the_contract_kinds():
    assert ENGINE_KINDS == KINDS
    assert len(set(KINDS)) == len(KINDS) and all(re.fullmatch(r"[a-z_]+", k) for k in KINDS)
    args = cli.build_parser().parse_args(["run", "--owner", "o", "--dest", "file:///x.zip",
                                          "--exclude", "git"])
    # LFS objects come with the git mirror: leaving out git leaves them out too
    assert cli.kinds_from(args) == frozenset(KINDS) - {"git", "lfs"}
    with pytest.raises(errors.ConfigError):
        cli.kinds_from(cli.build_parser().parse_args(
            ["run", "--owner", "o", "--dest", "file:///x.zip", "--include", "everything"]))


def test_the_trigger_form_offers_exactly_the_contract_kinds(dag):
    for name in ("include", "exclude"):
        schema = dag.params.get_param(name).schema
        assert schema["items"]["enum"] == list(KINDS), name
        assert schema["examples"] == list(KINDS), name


def test_the_trigger_form_accepts_the_owners_the_contract_accepts(dag):
    pattern = dag.params.get_param("owners").schema["items"]["pattern"]
    for owner in ("octocat", "octo-org", "a", "ent_user_shortcode", "x.y"):
        contract.check_owner(owner)
        assert re.search(pattern, owner), owner
    for owner in ("a/b", "-x", "", "../etc", "x" * 101):
        with pytest.raises(ValueError):
            contract.check_owner(owner)
        assert not re.search(pattern, owner), owner


# -- exit codes ----------------------------------------------------------------------------

def engine_error_classes() -> list[type[errors.GhvaultError]]:
    return [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, errors.GhvaultError)]


def test_every_engine_error_ends_with_a_contract_exit_code():
    classes = engine_error_classes()
    assert len(classes) >= 10
    for cls in classes:
        assert isinstance(cls.exit_code, Exit), cls
    # every failure code the contract defines is raised by some error class
    assert {cls.exit_code for cls in classes} == set(Exit) - {Exit.OK}
    named = {errors.ConfigError: Exit.CONFIG, errors.AuthError: Exit.AUTH,
             errors.OwnerNotFound: Exit.OWNER_NOT_FOUND, errors.DestinationError: Exit.DESTINATION,
             errors.GitHubUnavailable: Exit.GITHUB_UNAVAILABLE,
             errors.ArchiveNotReady: Exit.NOT_READY, errors.ArchiveInvalid: Exit.INVALID,
             errors.ArchiveUnreadable: Exit.UNREADABLE, errors.GhvaultError: Exit.INTERNAL}
    assert {cls: cls.exit_code for cls in named} == named


def test_every_exit_code_has_one_meaning():
    assert set(EXIT_MEANINGS) == set(Exit)
    assert errors.EXIT_CODES == {int(code): text for code, text in EXIT_MEANINGS.items()}
    assert len(set(EXIT_MEANINGS.values())) == len(Exit)


def test_run_help_documents_every_exit_code_with_its_meaning():
    proc = subprocess.run([GHVAULT, "run", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    epilog = proc.stdout.split("exit codes:\n", 1)[1]
    documented = dict(re.findall(r"^  (\d+)  (.+)$", epilog, flags=re.M))
    assert documented == {str(int(code)): text for code, text in EXIT_MEANINGS.items()}


@pytest.mark.parametrize("command", ["verify", "restore", "list"])
def test_archive_commands_document_only_contract_exit_codes(command):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    listed = dict(re.findall(r"^  (\d+)  (.+)$", sub.epilog, flags=re.M))
    assert {int(code) for code in listed} <= {int(code) for code in Exit}
    for code in (Exit.CONFIG, Exit.NOT_READY, Exit.INVALID, Exit.UNREADABLE):
        assert listed[str(int(code))] == EXIT_MEANINGS[code]


# The codes `ghvault run` ends with on failure (7 to 9 belong to verify, restore and list).
RUN_FAILURES = (Exit.INTERNAL, Exit.CONFIG, Exit.AUTH, Exit.OWNER_NOT_FOUND, Exit.DESTINATION,
                Exit.GITHUB_UNAVAILABLE)


def airflow_side():
    from ghvault_airflow.operators import engine

    return engine


def test_the_operators_map_every_run_exit_code_to_its_exception():
    engine = airflow_side()
    assert set(engine.EXIT_CODES) == set(RUN_FAILURES)
    assert all(isinstance(code, Exit) for code in engine.EXIT_CODES)
    expected = {Exit.INTERNAL: engine.BackupFailed, Exit.CONFIG: engine.EngineConfigError,
                Exit.AUTH: engine.EngineAuthError, Exit.OWNER_NOT_FOUND: engine.OwnerNotFound,
                Exit.DESTINATION: engine.DestinationFailed,
                Exit.GITHUB_UNAVAILABLE: engine.GitHubUnavailable}
    assert engine.EXIT_CODES == expected


@pytest.mark.parametrize("code", [int(c) for c in RUN_FAILURES] + [137, 143, -9, 42])
def test_airflow_retries_exactly_the_retryable_run_exits(code):
    """What the operators raise for a `ghvault run` exit: AirflowFailException (no retry)
    unless the contract calls the code retryable; the message names the code."""
    from airflow.sdk.exceptions import AirflowFailException
    from ghvault_airflow.settings import DeploymentSettings

    engine = airflow_side()
    error = engine.engine_error(code, owner="octocat", month="2026-10",
                                settings=DeploymentSettings(bucket="b"), key="k.zip",
                                token_source="/ghvault/token", where="the task role")
    assert error.exit_code == code
    assert isinstance(error, engine.BackupFailed)
    retryable = code not in RUN_FAILURES or code in RETRYABLE_EXITS  # signals: retried
    assert isinstance(error, AirflowFailException) is not retryable, (code, type(error))
    if code > 0:
        assert f"exit code {code}" in str(error) or f"(exit {code}" in str(error), str(error)


@pytest.mark.parametrize("code", [Exit.CONFIG, Exit.NOT_READY, Exit.INVALID, Exit.UNREADABLE,
                                  Exit.INTERNAL])
def test_verify_exits_become_named_failures(code):
    from ghvault_airflow.settings import DeploymentSettings

    engine = airflow_side()
    error = engine.verify_error(int(code), owner="octocat", month="2026-10",
                                settings=DeploymentSettings(bucket="b"), key="k.zip",
                                where="the task role")
    assert error.exit_code == code and f"exit {int(code)}" in str(error)
    expected = {Exit.CONFIG: engine.EngineConfigError, Exit.UNREADABLE: engine.DestinationFailed}
    assert type(error) is expected.get(code, engine.VerificationFailed)


# -- the archive key and its sidecar -------------------------------------------------------

def operator_key(owner: str, month: str, prefix: str) -> dict:
    """What a backup operator resolves and returns for `owner` and `month`."""
    from ghvault_airflow.operators.local import LocalBackupOperator

    op = LocalBackupOperator(task_id="backup", github_owner=owner, month=month,
                             settings={"bucket": "vault", "prefix": prefix})
    settings, resolved_month, key = op._resolve({})
    return op._result(settings, resolved_month, key, None)


@pytest.mark.parametrize("month", ["1999-01", "2007-12", "2099-01"])
def test_operator_and_engine_refuse_the_same_months(month):
    """Months from 2008-01 (GitHub's launch) to the current month, on both sides: the
    operator fails before starting the engine, with the engine's own sentence."""
    from ghvault_airflow.operators.engine import EngineConfigError

    with pytest.raises(ValueError) as engine_side:
        contract.check_month(month)
    with pytest.raises(EngineConfigError) as airflow:
        operator_key("octocat", month, "github")
    assert str(airflow.value) == str(engine_side.value) and "2008-01" in str(airflow.value)
    proc = subprocess.run([GHVAULT, "run", "--owner", "octocat", "--month", month, "--dest",
                           "s3://b/k.zip"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == Exit.CONFIG and str(engine_side.value) in proc.stderr


@pytest.mark.parametrize("owner, month, prefix", [
    ("octocat", "2026-10", "github"), ("octo-org", "2025-01", "backups/gh"),
    ("ent_user_x", "2026-12", ""), ("a.b", "2026-01", "/deep/prefix/")])
def test_operator_keys_parse_back_to_their_owner_and_month(owner, month, prefix):
    from ghvault_airflow.sensors.archive import BackupArchiveSensor

    result = operator_key(owner, month, prefix)
    key = result["key"]
    assert contract.parse_archive_key(key) == (owner, month)
    assert contract.parse_archive_key(f"s3://vault/{key}") == (owner, month)
    assert key.endswith(contract.ARCHIVE_SUFFIX) and not key.startswith("/")
    assert key.startswith(prefix.strip("/") + "/" if prefix.strip("/") else owner + "/")
    assert result["manifest_key"] == contract.sidecar_key(key) == key + contract.SIDECAR_SUFFIX
    assert contract.parse_archive_key(result["manifest_key"]) is None  # not an archive
    sensor = BackupArchiveSensor(task_id="archive", bucket="vault", key=key)
    assert sensor.manifest_key == result["manifest_key"]
    assert sensor.github_owner == owner  # what the DAG shows as map index


def test_the_plan_builds_the_keys_the_operators_build(dag):
    import json
    from datetime import UTC, datetime

    pushed: dict = {}
    ti = type("TI", (), {"xcom_push": lambda self, k, v: pushed.__setitem__(k, v)})()
    params = {"owners": ["octocat", "octo-org"], "include": None, "exclude": None,
              "repos": None, "exclude_repos": None, "verify": None, "runner": "local"}
    settings = json.dumps({"bucket": "vault", "prefix": "backups/gh"})
    owners = dag.get_task("plan").python_callable(
        settings, ti=ti, params=params,
        data_interval_start=datetime(2026, 1, 1, 3, tzinfo=UTC))
    for entry in owners:
        assert entry["key"] == operator_key(entry["owner"], "2026-01", "backups/gh")["key"]
        assert contract.parse_archive_key(entry["key"]) == (entry["owner"], "2026-01")
        assert contract.parse_archive_key(entry["previous_key"]) == (entry["owner"], "2025-12")


@pytest.mark.parametrize("prefix", ["github", "backups/gh", ""])
def test_the_run_plan_builds_the_keys_the_operators_and_the_hook_read(prefix):
    """RunPlan (what the DAG's plan hands every task) names the operators' keys, and the
    sidecar the hook reads is the contract's."""
    from ghvault_airflow.plan import RunPlan
    from ghvault_airflow.settings import DeploymentSettings

    plan = RunPlan(settings=DeploymentSettings(bucket="vault", prefix=prefix).as_dict(),
                   month="2026-01", runner="local", run_type="manual", taken_at="2026-02-03",
                   owners=["octocat", "octo-org"])
    for entry in plan.per_owner():
        result = operator_key(entry["owner"], "2026-01", prefix)
        assert entry["key"] == result["key"]
        assert result["manifest_key"] == contract.sidecar_key(entry["key"])
        assert contract.parse_archive_key(entry["previous_key"]) == (entry["owner"], "2025-12")
    from ghvault_airflow.hooks import archive

    assert archive.sidecar_key is contract.sidecar_key


def test_the_dag_names_each_mapped_task_by_its_owner(dag):
    """Each task of the mapped group renders its owner as map index, the sensors (which
    take only the key) included."""
    tasks = {t.task_id: t for t in dag.tasks if t.task_id.startswith("backup.")}
    assert len(tasks) == 4  # backup, archive, glacier, verify
    key = contract.archive_key("github", "octo-org", "2026-10")
    for task_id, mapped in tasks.items():
        # the same class, with what the mapped arguments resolve to at run time
        arguments = {"bucket": "vault", "key": key} if "key" in mapped.template_fields \
            else {"github_owner": "octo-org"}
        task = type(mapped)(task_id="t", **arguments)
        rendered = dag.get_template_env().from_string(mapped.map_index_template).render(task=task)
        assert rendered == "octo-org", task_id


def test_keys_the_engine_lists_are_exactly_the_contract_layout():
    assert contract.parse_archive_key("github/octocat/2026/10/octocat-2026-10.zip") == \
        ("octocat", "2026-10")
    for foreign in ("github/octocat/2026/10/octocat-2026-10.zip.manifest.json",
                    "github/octocat/2026/10/other-2026-10.zip",  # owner disagrees
                    "github/octocat/2026/09/octocat-2026-10.zip",  # month disagrees
                    "github/octocat/2026/13/octocat-2026-13.zip",
                    "github/octocat/2026/10/octocat-2026-10.tar.gz",
                    "state/etags.json", "octocat-2026-10.zip"):
        assert contract.parse_archive_key(foreign) is None, foreign
    with pytest.raises(ValueError):
        contract.archive_key("github", "a/b", "2026-10")


def test_ghvault_list_finds_exactly_the_archives_the_contract_names(tmp_path):
    from ghvault.catalog import catalog

    # the operators build keys with contract.archive_key (see the plan test above)
    made = {contract.archive_key("github", owner, month): (owner, month)
            for owner in ("octocat", "octo-org") for month in ("2026-09", "2026-11")}
    for key in [*made, *(contract.sidecar_key(k) for k in made),
                "github/octocat/2026/10/other-2026-10.zip", "state/octocat/x.zip"]:
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(b"PK")
    listed = catalog(str(tmp_path))
    assert {(a["owner"], a["month"]) for a in listed["archives"]} == set(made.values())
    assert all(a["manifest"] for a in listed["archives"])
    # the month between two archives of an owner is a gap, for each owner
    assert {(g["owner"], g["month"]) for g in listed["gaps"]} == \
        {("octocat", "2026-10"), ("octo-org", "2026-10")}


# -- the summary line ----------------------------------------------------------------------

def test_both_runners_read_the_summary_line_the_engine_writes():
    from ghvault_airflow.operators import backup, runner  # runner: the local and docker runners'

    assert backup.parse_summary is contract.parse_summary
    assert runner.parse_summary is contract.parse_summary
    summary = {"owner": "octocat", "month": "2026-10", "counts": {"git": 2}, "bytes": 10}
    line = contract.summary_line(summary)
    assert "\n" not in line
    assert contract.parse_summary(["log line", line, ""]) == summary


def test_the_notification_reads_only_documented_summary_fields():
    source = (ROOT / "operators" / "ghvault_airflow" / "notifications" / "sns.py").read_text()
    read = set(re.findall(r"summary(?:\.get\(|\[)['\"](\w+)['\"]", source))
    assert read, "the notification reads no summary field?"
    documented = set(contract.SUMMARY_FIELDS["run"]) | set(contract.SUMMARY_FIELDS["verify"])
    assert read <= documented, read - documented


def test_the_contract_imports_only_the_standard_library():
    code = ("import sys; import ghvault.contract; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('boto3', 'botocore', 'github', 'airflow', 'requests')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
