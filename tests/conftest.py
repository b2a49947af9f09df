"""Shared fixtures: one GitHub simulator per session (servers are shared, not restarted),
moto's server, and the engine image with this machine's container engine."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.github_sim.generate import cache_root
from tests.github_sim.server import Simulator, make_git_server, make_server
from tests.github_sim.tls import ensure_certs, server_context
from tests.parallel import (  # noqa: F401 (hooks: how xdist splits the suite)
    pytest_collection_modifyitems,
    pytest_xdist_make_scheduler,
)

TOKEN = "ghp_testTOKENc0ffee0123456789abcdef012345"
OTHER_TOKEN = "ghp_wrongTOKEN000000000000000000000000000"


@dataclass
class RunningSim:
    sim: Simulator
    root: str
    ca: Path
    token: str
    git_root: str | None = None  # the git origin of a split-git-host simulator

    @property
    def api(self) -> str:
        return f"{self.root}/api/v3"

    @property
    def host(self) -> str:
        return self.root.split("://", 1)[1]

    def session(self, token: str | None = None) -> requests.Session:
        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would beat s.verify
        s.verify = str(self.ca)
        if token:
            s.headers["Authorization"] = f"token {token}"
        return s

    def stats(self) -> dict:
        return requests.get(f"{self.root}/_sim/stats", verify=str(self.ca), timeout=30).json()

    def reset(self) -> None:
        requests.post(f"{self.root}/_sim/reset", verify=str(self.ca), timeout=30)

    def client_env(self) -> dict[str, str]:
        """Environment a TLS client needs to trust the simulator."""
        return {"SSL_CERT_FILE": str(self.ca), "REQUESTS_CA_BUNDLE": str(self.ca),
                "GIT_SSL_CAINFO": str(self.ca)}


def start_sim(size: str = "tiny", seed: int = 7, split_git_host: bool = False,
              **kwargs) -> tuple[RunningSim, callable]:
    sim = Simulator(size, seed, tokens=[TOKEN], **kwargs)
    ca, cert, key = ensure_certs(cache_root() / "tls")
    server = make_server(sim, 0, tls=server_context(cert, key))
    servers = [server] + ([make_git_server(sim, server)] if split_git_host else [])
    for s in servers:
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()
    running = RunningSim(sim, f"https://127.0.0.1:{server.server_address[1]}", ca, TOKEN,
                         git_root=sim.git_root)

    def stop() -> None:
        for s in servers:
            s.shutdown()
            s.server_close()
        sim.close()

    return running, stop


@pytest.fixture(scope="session")
def sim() -> RunningSim:
    """The shared tiny simulator. Tests that change its faults put them back."""
    running, stop = start_sim()
    yield running
    stop()


@pytest.fixture
def fresh_sim() -> RunningSim:
    """A private tiny simulator for tests that mutate the world or spend the rate limit."""
    running, stop = start_sim()
    yield running
    stop()


@pytest.fixture
def git_env(tmp_path, sim) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {**os.environ, "HOME": str(home), "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1", **sim.client_env()}


@dataclass
class Moto:
    endpoint: str

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="session")
def moto_server():
    """moto's server in a thread, shared by the session (state persists: use fresh buckets)."""
    from moto.server import ThreadedMotoServer

    # port 0: the kernel picks a free port, which no other xdist worker can take meanwhile
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    yield Moto(f"http://127.0.0.1:{port}")
    server.stop()


@pytest.fixture
def aws(moto_server, monkeypatch) -> Moto:
    """moto as AWS for code under test in this process (boto3 reads the environment)."""
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(key, raising=False)
    return moto_server


# -- the engine image and the container engine -------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "ghvault:dev"


@dataclass
class Engine:
    client: object  # docker.DockerClient
    cli: str  # "docker" or "podman"
    build_seconds: float


@contextlib.contextmanager
def build_lock():
    """One image build at a time on this machine: the xdist workers each start `engine`, and
    two podman builds of one tag (or two debootstraps of the base) must not interleave; the
    second then finds the layers cached."""
    import fcntl
    import tempfile

    with open(Path(tempfile.gettempdir()) / "ghvault-image-build.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def engine() -> Engine:
    """`make image`'s build (a no-op on a warm layer cache), then an SDK client.

    No skip: where no container engine can start, every test using it fails with the
    reason (CI must run them)."""
    from devtools.containers import EngineError, docker_client

    started = time.monotonic()
    with build_lock():
        build = subprocess.run([sys.executable, "-m", "devtools.image", "--tag", IMAGE],
                               cwd=ROOT, capture_output=True, text=True, timeout=1500)
    took = time.monotonic() - started
    if build.returncode != 0:
        pytest.fail(f"`make image` failed, so no container test can run:\n"
                    f"{(build.stdout + build.stderr)[-3000:]}", pytrace=False)
    with contextlib.ExitStack() as stack:
        try:
            client, cli = stack.enter_context(docker_client())
        except (EngineError, OSError) as exc:
            pytest.fail(f"the container engine cannot start: {exc}", pytrace=False)
        except Exception as exc:  # docker.errors.DockerException: the API did not answer
            pytest.fail(f"the container engine's API does not answer: {exc}", pytrace=False)
        yield Engine(client, cli, took)



@pytest.fixture(scope="session")
def container_ca(sim, tmp_path_factory) -> Path:
    """The simulator's CA at a path the image's user (UID 10001) can reach when the file is
    bound there in a container (the cached one lives under /root, which it cannot enter)."""
    import shutil

    copy = tmp_path_factory.mktemp("ca") / "ca.pem"
    shutil.copy(sim.ca, copy)
    copy.chmod(0o644)
    return copy


def ca_env(ca: Path) -> dict[str, str]:
    """Environment a TLS client needs to trust the CA at this path."""
    return {"SSL_CERT_FILE": str(ca), "REQUESTS_CA_BUNDLE": str(ca), "GIT_SSL_CAINFO": str(ca)}
