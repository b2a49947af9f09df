"""GitHub App auth end to end, against the simulator's App (`app_token_ttl`): the real
`ghvault run` with GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY only (the installation found
from the owner), a run that outlives several installation tokens on a slowed simulator,
the failures a wrong key or a dead token give, a git origin apart from the API's, and a
clone URL on an unknown host that must get no token.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import TOKEN, RunningSim, start_sim
from tests.engine.helpers import GHVAULT
from tests.engine.test_engine_hostile_api import Recorder
from tests.github_sim.faults import Faults

TTL = 3  # seconds an installation token lives here (GitHub: 3600)
MONTH = "2026-10"


@pytest.fixture(scope="module")
def app_gh() -> RunningSim:
    """The tiny world with an App whose tokens live TTL s, API answers 150 ms late and git
    at 400 kbit/s: a run lasts several token lifetimes."""
    running, stop = start_sim(app_token_ttl=TTL, faults=Faults.parse("", 150), git_kbps=400)
    for repo in running.sim.world.repos.values():  # LFS behind the credential helper too
        repo.private = repo.private or bool(repo.lfs_objects)
    yield running
    stop()


@pytest.fixture(scope="module")
def split_gh() -> RunningSim:
    """git and LFS on their own origin (another port), an App with hour-long tokens."""
    running, stop = start_sim(app_token_ttl=3600, split_git_host=True)
    yield running
    stop()


def app_env(sim: RunningSim, **extra: str) -> dict[str, str]:
    app = sim.sim.app.ready()
    return {"GITHUB_APP_ID": str(app["id"]), "GITHUB_APP_PRIVATE_KEY": app["private_key"],
            **extra}


def ghvault(sim: RunningSim, cred: dict[str, str], *args: str, timeout: int = 300
            ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env.update({**sim.client_env(), **cred})
    return subprocess.run([GHVAULT, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def backup(sim: RunningSim, cred: dict[str, str], owner: str, dest: Path, *args: str
           ) -> tuple[subprocess.CompletedProcess, dict]:
    proc = ghvault(sim, cred, "run", "--owner", owner, "--month", MONTH, "--api-url", sim.api,
                   "--dest", f"file://{dest}", *args)
    summary = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    return proc, summary


def issued_tokens(sim: RunningSim) -> list[str]:
    with sim.sim.app.lock:
        return list(sim.sim.app.tokens)


def git_entries(path: Path, repo: str) -> list[str]:
    return [n for n in zipfile.ZipFile(path).namelist()
            if n in (f"repos/{repo}/git.bundle", f"repos/{repo}/git.empty.json")]


def one_error(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert sum(": error:" in ln for ln in lines) == 1, proc.stderr[-3000:]
    return lines[-1]


@pytest.mark.parametrize("role", ["user", "org"])
def test_an_app_run_longer_than_its_tokens_keeps_every_private_repository(app_gh, tmp_path,
                                                                         role):
    owner = app_gh.sim.world.owners[role]
    before = app_gh.stats()
    proc, summary = backup(app_gh, app_env(app_gh), owner, tmp_path / "a.zip")
    assert proc.returncode == 0, proc.stderr[-3000:]
    truth = app_gh.sim.world.counts()[role]
    assert summary["counts"]["repos"] == truth["repos"]
    assert summary["counts"].get("lfs_objects", 0) == truth["lfs_objects"]
    assert summary["duration_s"] > 2 * TTL, "the run must outlive several tokens"
    private = [r.name for r in app_gh.sim.world.repos_of(owner) if r.private]
    assert private, "the world has private repositories to lose"
    for name in private:
        assert git_entries(tmp_path / "a.zip", name), f"private {name} missing"
    stats = app_gh.stats()
    renewed = re.findall(r"INFO installation token renewed, valid until \d\d:\d\d:\d\d UTC",
                         proc.stderr)
    assert len(renewed) >= 2 and stats["installation_tokens_issued"] - \
        before.get("installation_tokens_issued", 0) == len(renewed) + 1
    archive = (tmp_path / "a.zip").read_bytes()
    key = Path(app_gh.sim.app.ready()["private_key"]).read_text()
    for secret in issued_tokens(app_gh) + [key.splitlines()[1]]:
        assert secret not in proc.stderr + proc.stdout
        assert secret.encode() not in archive
    verified = ghvault(app_gh, {}, "verify", str(tmp_path / "a.zip"))
    assert verified.returncode == 0, verified.stdout[-2000:]


def test_a_wrong_app_key_exits_3_naming_the_key(app_gh, tmp_path):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    proc, _ = backup(app_gh, app_env(app_gh, GITHUB_APP_PRIVATE_KEY=other), "hubworks",
                     tmp_path / "a.zip")
    assert proc.returncode == 3, proc.stderr[-3000:]
    error = one_error(proc)
    assert "refused the JWT of GitHub App" in error and "GITHUB_APP_PRIVATE_KEY" in error
    assert other.splitlines()[1] not in proc.stderr
    assert not (tmp_path / "a.zip").exists()


def test_an_expired_installation_token_given_as_the_token_exits_3(app_gh, tmp_path):
    """A `ghs_` token copied into GITHUB_TOKEN dies with its hour: said in one sentence."""
    app = app_gh.sim.app
    token, _ = app.issue(next(iter(app.installations.values())), {})
    app.tokens[token].expires = 0  # as it is once its lifetime has passed
    proc, _ = backup(app_gh, {"GITHUB_TOKEN": token}, "hubber", tmp_path / "a.zip")
    assert proc.returncode == 3, proc.stderr[-3000:]
    error = one_error(proc)
    assert "refused the token in GITHUB_TOKEN (Bad credentials)" in error
    assert "expired" in error and token not in proc.stderr


def test_an_installation_id_of_no_installation_exits_3_naming_it(app_gh, tmp_path):
    proc, _ = backup(app_gh, app_env(app_gh, GITHUB_APP_INSTALLATION_ID="12345"), "hubber",
                     tmp_path / "a.zip")
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "GITHUB_APP_INSTALLATION_ID" in one_error(proc)


def test_an_app_not_installed_on_the_owner_exits_3(app_gh, tmp_path):
    proc, _ = backup(app_gh, app_env(app_gh), "nobody-here", tmp_path / "a.zip")
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "is not installed on 'nobody-here'" in one_error(proc)


@pytest.mark.parametrize("cred", ["pat", "app"])
def test_a_git_origin_apart_from_the_api_gets_the_credential(split_gh, tmp_path, cred):
    assert split_gh.git_root and split_gh.git_root != split_gh.root
    creds = {"GITHUB_TOKEN": TOKEN} if cred == "pat" else app_env(split_gh)
    owner = "hubworks" if cred == "pat" else "hubber"
    proc, summary = backup(split_gh, creds, owner, tmp_path / "s.zip",
                           "--git-url", split_gh.git_root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    repos = split_gh.sim.world.repos_of(owner)
    assert summary["counts"]["git_bundles"] + summary["counts"].get("empty_repos", 0) == \
        len(repos)
    assert not [s for s in summary["skipped"] if s["item"].startswith("repo ")]
    verified = ghvault(split_gh, {}, "verify", str(tmp_path / "s.zip"))
    assert verified.returncode == 0, verified.stdout[-2000:]


def test_without_git_url_a_split_git_host_is_refused_not_sent_the_token(split_gh, tmp_path):
    """The default git origin is the API's here: clone URLs elsewhere are skipped, loudly."""
    proc, summary = backup(split_gh, {"GITHUB_TOKEN": TOKEN}, "hubworks", tmp_path / "s.zip")
    assert proc.returncode == 0, proc.stderr[-3000:]
    reasons = [s["reason"] for s in summary["skipped"] if s["item"].startswith("repo ")]
    assert len(reasons) == len(split_gh.sim.world.repos_of("hubworks"))
    assert all("outside the git origin" in r for r in reasons)


@pytest.fixture
def recorder():
    server = Recorder()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_clone_url_on_an_unknown_host_gets_no_installation_token(app_gh, tmp_path,
                                                                   recorder):
    world = app_gh.sim.world
    repo = next(r for r in world.repos_of("hubber") if r.private)
    before = repo.clone_url
    port = recorder.server_address[1]
    repo.clone_url = f"https://localhost:{port}/hubber/{repo.name}.git"  # unknown host
    try:
        proc, summary = backup(app_gh, app_env(app_gh), "hubber", tmp_path / "a.zip",
                               "--include", "git")
    finally:
        repo.clone_url = before
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert recorder.seen == []  # not even a request without the token
    reasons = [s["reason"] for s in summary["skipped"] if s["item"] == f"repo {repo.full_name}"]
    assert len(reasons) == 1 and "outside the git origin" in reasons[0], summary["skipped"]
    for token in issued_tokens(app_gh):
        assert token not in proc.stderr


def test_the_user_endpoint_is_never_asked_with_an_installation_token(app_gh, tmp_path):
    """GitHub answers /user with 403 to an installation: the run does not ask."""
    requests.post(f"{app_gh.root}/_sim/reset", verify=str(app_gh.ca), timeout=30)
    proc, _ = backup(app_gh, app_env(app_gh), "hubber", tmp_path / "a.zip", "--include",
                     "labels")
    assert proc.returncode == 0, proc.stderr[-3000:]
    asked = app_gh.stats()["by_endpoint"]
    assert not any(k.endswith(" /user") for k in asked), sorted(asked)
    assert "GET /installation/repositories" in asked


class Expiring:
    """A token source whose first `dead` tokens the simulator already counts as expired
    (a clone that outlived its token), then live ones."""

    name = "the installation token of GitHub App 1"

    def __init__(self, sim: RunningSim, dead: int):
        self.sim, self.dead, self.generation = sim, dead, 0

    def git_token(self) -> str:
        app = self.sim.sim.app
        token, _ = app.issue(app.installation_of("hubber"), {})
        self.generation += 1
        if self.generation <= self.dead:
            app.tokens[token].expires = 0
        return token

    def expired_since(self, generation: int) -> bool:
        return self.generation != generation


def test_git_runs_again_a_command_whose_token_expired_and_no_more(app_gh, tmp_path,
                                                                  monkeypatch, caplog):
    from ghvault.git import Git, GitAuthError

    caplog.set_level(logging.INFO, "ghvault.git")
    for key, value in app_gh.client_env().items():
        monkeypatch.setenv(key, value)
    repo = next(r for r in app_gh.sim.world.repos_of("hubber") if r.private)
    url = f"{app_gh.root}/{repo.full_name}.git"
    source = Expiring(app_gh, dead=1)
    git = Git(app_gh.root, None, tmp_path / "w", 120, retries=0, tokens=source)
    try:
        env = " ".join(git.env().values())
        assert "credential_helper.py" in env and "extraheader" not in env
        assert git.mirror(url, tmp_path / "m.git").refs
        assert source.generation == 2
        assert "refused after its token expired: running it again" in caplog.text
    finally:
        git.close()
    always = Expiring(app_gh, dead=99)
    git = Git(app_gh.root, None, tmp_path / "w2", 120, retries=0, tokens=always)
    try:
        with pytest.raises(GitAuthError, match="with the installation token of GitHub App 1"):
            git.mirror(url, tmp_path / "m2.git")
        assert always.generation == 1 + Git.AUTH_RETRIES  # bounded
    finally:
        git.close()
