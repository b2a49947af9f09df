"""The GitHub simulator as its own process: one per scenario, stopped when the scenario ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SimConfig:
    size: str = "medium"
    seed: int = 7
    latency_ms: int = 50
    git_kbps: int = 20_000
    rate_limit: int = 1_000_000
    faults: str | None = None

    def argv(self, ready_file: Path) -> list[str]:
        argv = [sys.executable, "-m", "tests.github_sim", "--size", self.size,
                "--seed", str(self.seed), "--port", "0", "--tls",
                "--latency-ms", str(self.latency_ms), "--git-kbps", str(self.git_kbps),
                "--rate-limit", str(self.rate_limit), "--ready-file", str(ready_file)]
        if self.faults:
            argv += ["--faults", self.faults]
        return argv

    def command(self) -> str:
        """The command line as a reader would type it (paths shortened)."""
        return " ".join(["python"] + self.argv(Path("ready.json"))[1:])


class SimError(RuntimeError):
    pass


class Sim:
    """A running simulator; a context manager that stops it on exit."""

    def __init__(self, config: SimConfig, workdir: Path, start_timeout: float = 600.0):
        self.config = config
        workdir.mkdir(parents=True, exist_ok=True)
        ready_file = workdir / "sim-ready.json"
        ready_file.unlink(missing_ok=True)
        self.log_path = workdir / "sim.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(config.argv(ready_file), cwd=REPO_ROOT, stdout=log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + start_timeout
        while not ready_file.exists():
            if self.proc.poll() is not None:
                self.stop()
                raise SimError(f"the simulator exited with {self.proc.returncode}: see "
                               f"{self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise SimError(f"the simulator was not ready after {start_timeout:.0f} s")
            time.sleep(0.2)
        self.ready = json.loads(ready_file.read_text())
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = self.ca

    # what the ready file says -----------------------------------------------------------

    @property
    def root(self) -> str:
        return self.ready["root_url"]

    @property
    def api(self) -> str:
        return self.ready["api_url"]

    @property
    def host(self) -> str:
        return self.root.split("://", 1)[1]

    @property
    def token(self) -> str:
        return self.ready["token"]

    @property
    def ca(self) -> str:
        return self.ready["ca_cert"]

    @property
    def data_dir(self) -> Path:
        return Path(self.ready["data_dir"])

    def owner(self, role: str) -> str:
        return self.ready["owners"][role]

    def client_env(self, home: Path) -> dict[str, str]:
        """A clean environment for a client: its own HOME, trusting the simulator's CA."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GIT_"))}
        env.update({"HOME": str(home), "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
                    "SSL_CERT_FILE": self.ca, "REQUESTS_CA_BUNDLE": self.ca,
                    "GIT_SSL_CAINFO": self.ca})
        return env

    # control --------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs) -> dict:
        answer = self.http.request(method, f"{self.root}/_sim/{path}", timeout=120, **kwargs)
        answer.raise_for_status()
        return answer.json()

    def stats(self) -> dict:
        return self._call("GET", "stats")

    def reset(self) -> None:
        """Zero the request accounting and refill the rate limits."""
        self._call("POST", "reset")

    def counts(self) -> dict:
        return self._call("GET", "counts")

    def mutate(self) -> dict:
        return self._call("POST", "mutate")

    def set_faults(self, spec: str) -> dict:
        return self._call("POST", "faults", data=spec.encode(),
                          params={"latency_ms": str(self.config.latency_ms)})

    def largest_repo(self, owner: str) -> tuple[str, int]:
        """The owner's largest bare repository on the server (name, bytes on disk)."""
        from bench.sizes import disk_usage

        sizes = {p.name.removesuffix(".git"): disk_usage(p)
                 for p in (self.data_dir / "git" / owner).glob("*.git")
                 if not p.name.endswith(".wiki.git")}
        name = max(sizes, key=sizes.__getitem__)
        return name, sizes[name]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._log.close()

    def __enter__(self) -> Sim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
