"""Run the ghvault engine as a subprocess of the Airflow worker (the `local` runner).

For Airflow deployments without ECS, and for the embedded run (`make run`). Same arguments,
XCom and exceptions as the ECS runner (`.backup.GithubBackupOperator`); the token or the
GitHub App's private key is read from SSM or Secrets Manager at run time into the child's
environment only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from ghvault_airflow.operators.engine import (
    BackupContract,
    EngineConfigError,
    VerifyContract,
)
from ghvault_airflow.operators.runner import (  # noqa: F401  (this module's API before .runner)
    CREDENTIAL_ENV,
    EngineRunner,
    _no_wire_logging,
    secret_fragments,
)
from ghvault_airflow.settings import DeploymentSettings


class LocalRunner(EngineRunner):
    """Runs the engine of one backup (or verification) operator as a subprocess of the worker.

    The runner of :class:`LocalBackupOperator`, and of :class:`~.backup.GithubBackupOperator`
    when the run's runner is ``local`` (:class:`~.runner.EngineRunner` says what it shares
    with the docker runner). The token (or the GitHub App's private key) is read from the SSM
    parameter or Secrets Manager secret the settings name, at run time, and handed to the
    child process in its environment only. AWS credentials, region and endpoint come from the
    settings' Airflow connection when it defines them, else from the worker's environment.
    """

    name = "local"

    def __init__(self, operator: BackupContract, engine_command: list[str] | None = None) -> None:
        super().__init__(operator, engine_command)
        self._process: subprocess.Popen | None = None

    def environment(self, settings: DeploymentSettings) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if name not in CREDENTIAL_ENV}
        env.update(self.aws_environment(settings))
        env.update(settings.engine_env)
        return env

    def command(self, argv: list[str]) -> list[str]:
        return self._command() + argv

    def run(self, argv, env, secrets, settings):
        return self._run(argv, env, secrets)

    def _command(self) -> list[str]:
        if self.engine_command:
            return list(self.engine_command)
        beside = Path(sys.executable).parent / "ghvault"
        found = str(beside) if beside.exists() else shutil.which("ghvault")
        if found:
            return [found]
        return [sys.executable, "-c", "import sys; from ghvault.cli import main; sys.exit(main())"]

    def _run(self, argv: list[str], env: dict[str, str], secrets: Sequence[str] = ()):
        """Run the engine; stream stderr into the task log; return (code, stdout, stderr tail)."""
        stdout: deque[str] = deque(maxlen=200)
        stderr: deque[str] = deque(maxlen=200)

        def pump_stderr(stream) -> None:
            for line in stream:
                stderr.append(self.log_line(line, secrets))

        try:
            self._process = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
        except OSError as err:
            raise EngineConfigError(
                f"cannot start the engine ({argv[0]}: {err.strerror}): install ghvault on the "
                "worker (pip install ./image) or use runner 'ecs'.") from err
        reader = threading.Thread(target=pump_stderr, args=(self._process.stderr,), daemon=True)
        reader.start()
        try:
            for line in self._process.stdout:
                stdout.append(self.log_line(line, secrets))
            code = self._process.wait()
            reader.join(timeout=30)
        finally:
            self._stop()
        return code, list(stdout), list(stderr)

    def _stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop(self) -> None:
        self._stop()


class LocalBackupOperator(BackupContract):
    """Back up one GitHub owner for one month by running ``ghvault run`` on the worker
    (:class:`LocalRunner`).

    Same arguments (:class:`~.engine.BackupContract`'s), XCom and exceptions as
    :class:`GithubBackupOperator`, which runs this same code when the run's runner is
    ``local``.

    :param engine_command: how to start the engine (default: the ``ghvault`` executable
        installed beside this Python, or on PATH).
    """

    template_fields: Sequence[str] = BackupContract.backup_fields
    template_fields_renderers = {"settings": "json"}
    ui_color = "#dae8fc"

    def __init__(self, *, engine_command: list[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.engine_command = engine_command
        self._runner: LocalRunner | None = None

    def execute(self, context):
        self._runner = LocalRunner(self, self.engine_command)
        return self._runner.execute(context)

    def read_credentials(self, settings: DeploymentSettings) -> dict[str, str]:
        return LocalRunner(self).read_credentials(settings)

    aws_environment = staticmethod(LocalRunner.aws_environment)

    def on_kill(self) -> None:
        if self._runner is not None:
            self._runner.stop()


class LocalVerifyOperator(VerifyContract, LocalBackupOperator):
    """Run ``ghvault verify`` on the month's archive on the worker (the optional verification
    step of the local runner). Same arguments as :class:`LocalBackupOperator` plus
    ``verify_with``; no token."""

    template_fields: Sequence[str] = (*LocalBackupOperator.template_fields, "verify_with")
    runner_kind = "local"
