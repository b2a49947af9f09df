"""Hostile API answers: the token goes to the API origin and the git origin, nowhere else.

GitHub's answers name URLs the engine then requests: a release asset's `url`, a
repository's `clone_url`, a gist's `git_pull_url`, the storage redirect of a download.
An answer that points elsewhere (another host or port, plain http where the API is https)
must become a skipped item with its reason, never a request carrying the token; the
storage redirect GitHub answers for a download must be followed without it. The tests
serve such answers from the simulator and run a listener that records every request.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ghvault.git import Git, RemoteElsewhere
from ghvault.github.client import GitHubClient, UntrustedLocation
from github import Auth

from tests.engine.helpers import run_ghvault
from tests.github_sim.model import ReleaseAsset

OWNER = "hubber"
ASSET_ENDPOINT = "GET /repos/{owner}/{repo}/releases/assets/{asset_id}"


class Recorder(ThreadingHTTPServer):
    """A plain HTTP listener that records each request's method, path and headers, and
    answers 200 with a few bytes (or a redirect to `redirect_to`, when set)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.redirect_to = ""

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Recorder

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        self.server.seen.append((self.command, self.path, dict(self.headers.items())))
        if self.server.redirect_to:
            self.send_response(301)
            self.send_header("Location", self.server.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"stolen")

    do_POST = do_GET


@pytest.fixture
def recorder():
    server = Recorder()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def tls_env(sim, monkeypatch):
    for key, value in sim.client_env().items():
        monkeypatch.setenv(key, value)


def authorization_seen(recorder: Recorder) -> list[str]:
    return [f"{method} {path}" for method, path, headers in recorder.seen
            if any(k.lower() == "authorization" for k in headers)]


# release assets ------------------------------------------------------------------------------

def test_an_asset_url_outside_the_api_origin_is_skipped_and_never_gets_the_token(
        fresh_sim, moto_server, recorder):
    world = fresh_sim.sim.world
    repo = next(r for r in world.repos.values()
                if r.owner == OWNER and any(rel.assets for rel in r.releases))
    release = next(rel for rel in repo.releases if rel.assets)
    real = release.assets[0]
    # the token is the owner's: drafts and their assets are visible too
    legit = sum(len(rel.assets) for r in world.repos.values() if r.owner == OWNER
                for rel in r.releases)
    port = fresh_sim.root.rsplit(":", 1)[1]
    hostile = {
        "other-port.bin": f"{recorder.root}/steal/other-port",
        "plain-http.bin": f"http://127.0.0.1:{port}/api/v3/repos/{repo.full_name}/releases/"
                          f"assets/{real.id}",
        "other-host.bin": f"https://localhost:{port}/api/v3/repos/{repo.full_name}/releases/"
                          f"assets/{real.id}",
    }
    for n, (name, url) in enumerate(hostile.items()):
        release.assets.append(ReleaseAsset(990_000 + n, name, "application/octet-stream",
                                           b"hostile", real.uploader, real.created_at, 0,
                                           url=url))
    moto_server.client("s3").create_bucket(Bucket="hostile-assets")
    key = f"github/{OWNER}/2026/10/{OWNER}-2026-10.zip"
    proc = run_ghvault(fresh_sim, moto_server, "--owner", OWNER, "--month", "2026-10",
                       "--dest", f"s3://hostile-assets/{key}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert recorder.seen == []  # not even a request without the token
    stats = fresh_sim.stats()
    # The API's own asset address was asked once per legitimate asset, never by `localhost`
    # or over plain http (which the TLS port would have refused after reading the header).
    assert sum(stats["by_endpoint"][ASSET_ENDPOINT].values()) == legit
    body = moto_server.client("s3").get_object(Bucket="hostile-assets", Key=key)["Body"].read()
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(body)).read("MANIFEST.json"))
    skipped = {s["item"].rsplit(" ", 1)[-1]: s["reason"] for s in manifest["skipped"]}
    for name in hostile:
        assert "outside the API origin" in skipped[name], manifest["skipped"]
        assert "token is not sent there" in skipped[name]
    assert manifest["counts"]["release_assets"] == legit
    assert fresh_sim.token not in proc.stderr + proc.stdout



def test_a_clone_url_outside_the_git_origin_skips_the_repository(fresh_sim, moto_server,
                                                                 recorder):
    world = fresh_sim.sim.world
    repo = world.repos[f"{OWNER}/toolbox"]
    repo.clone_url = f"{recorder.root}/{OWNER}/toolbox.git"
    moto_server.client("s3").create_bucket(Bucket="hostile-clone")
    key = f"github/{OWNER}/2026/10/{OWNER}-2026-10.zip"
    proc = run_ghvault(fresh_sim, moto_server, "--owner", OWNER, "--month", "2026-10",
                       "--dest", f"s3://hostile-clone/{key}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert recorder.seen == []
    body = moto_server.client("s3").get_object(Bucket="hostile-clone", Key=key)["Body"].read()
    z = zipfile.ZipFile(io.BytesIO(body))
    manifest = json.loads(z.read("MANIFEST.json"))
    reasons = [s["reason"] for s in manifest["skipped"] if s["item"] == f"repo {OWNER}/toolbox"]
    assert len(reasons) == 1 and "outside the git origin" in reasons[0], manifest["skipped"]
    assert "token is not sent there" in reasons[0]
    assert not [n for n in z.namelist() if n.startswith("repos/toolbox/git")]
    others = [r for r in world.repos.values() if r.owner == OWNER and r.name != "toolbox"]
    assert manifest["counts"]["git_bundles"] + manifest["counts"].get("empty_repos", 0) == \
        len(others)

def test_the_storage_redirect_is_followed_without_the_token(sim, tls_env, tmp_path):
    """GitHub answers an asset request with 302 to signed storage on another host; the
    simulator's storage (host `localhost`) refuses any Authorization header with 400."""
    repo = next(r for r in sim.sim.world.repos.values()
                if r.owner == OWNER and any(rel.assets for rel in r.releases))
    asset = next(a for rel in repo.releases for a in rel.assets)
    client = GitHubClient(sim.api, Auth.Token(sim.token))
    before = sim.stats()["downloads"]
    client.download(f"{sim.api}/repos/{repo.full_name}/releases/assets/{asset.id}",
                    str(tmp_path / "asset"))
    assert (tmp_path / "asset").read_bytes() == asset.data
    assert sim.stats()["downloads"] == before + 1


def test_a_storage_redirect_to_plain_http_elsewhere_carries_no_token(sim, tls_env, tmp_path,
                                                                     recorder):
    """Even a redirect to a plain-http listener gets no header (it is storage's to sign)."""
    recorder_url = f"{recorder.root}/bucket/object"

    class Redirecting(GitHubClient):
        def _asset_request(self, url):  # the API's 302, as GitHub sends it
            resp = super()._asset_request(url)
            resp.headers["Location"] = recorder_url
            return resp

    repo = next(r for r in sim.sim.world.repos.values()
                if r.owner == OWNER and any(rel.assets for rel in r.releases))
    asset = next(a for rel in repo.releases for a in rel.assets)
    client = Redirecting(sim.api, Auth.Token(sim.token))
    client.download(f"{sim.api}/repos/{repo.full_name}/releases/assets/{asset.id}",
                    str(tmp_path / "asset"))
    assert (tmp_path / "asset").read_bytes() == b"stolen"
    assert len(recorder.seen) == 1 and authorization_seen(recorder) == []


@pytest.mark.parametrize("api", ["https://ghe.example.com/api/v3", "https://api.github.com"])
def test_asset_locations_outside_the_api_origin_are_refused_unrequested(api):
    client = GitHubClient(api, Auth.Token("ghp_" + "a" * 36))
    host = api.split("/")[2]
    client.check_location(f"https://{host}/repos/o/r/releases/assets/1")
    client.check_location(f"https://{host}:443/repos/o/r/releases/assets/1")
    for url in (f"http://{host}/repos/o/r/releases/assets/1",
                f"https://{host}:8443/repos/o/r/releases/assets/1",
                f"https://{host}.evil.example/repos/o/r/releases/assets/1",
                "https://objects.githubusercontent.com/x",
                f"ftp://{host}/x", "/relative/only", "javascript:alert(1)"):
        with pytest.raises(UntrustedLocation, match="outside the API origin"):
            client.check_location(url)


def test_a_plain_http_api_may_name_plain_http_assets_on_itself():
    client = GitHubClient("http://127.0.0.1:8080/api/v3", Auth.Token("ghp_" + "a" * 36))
    client.check_location("http://127.0.0.1:8080/api/v3/repos/o/r/releases/assets/1")
    with pytest.raises(UntrustedLocation):
        client.check_location("https://127.0.0.1:8081/api/v3/repos/o/r/releases/assets/1")


# git ---------------------------------------------------------------------------------------

def test_git_does_not_follow_a_redirect_that_would_carry_the_token(sim, tls_env, tmp_path,
                                                                   recorder):
    """git follows a redirect of its first request and then sends every later request of
    the clone, with the configured header, to the new origin: redirects are refused."""
    second = Recorder()
    threading.Thread(target=second.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        recorder.redirect_to = second.root
        git = Git(recorder.root, sim.token, tmp_path / "work", 60, retries=0)
        with pytest.raises(RemoteElsewhere, match="redirects elsewhere"):
            git.mirror(f"{recorder.root}/{OWNER}/toolbox.git", tmp_path / "tb.git")
        assert second.seen == [] and authorization_seen(second) == []
        assert not (tmp_path / "tb.git").exists()
    finally:
        second.shutdown()
        second.server_close()


@pytest.mark.parametrize("where", ["other-port", "plain-http", "other-host", "credentials",
                                   "file"])
def test_a_clone_url_outside_the_git_origin_is_not_fetched(sim, tls_env, tmp_path, recorder,
                                                           where):
    port = sim.root.rsplit(":", 1)[1]
    url = {"other-port": f"{recorder.root}/{OWNER}/toolbox.git",
           "plain-http": f"http://127.0.0.1:{port}/{OWNER}/toolbox.git",
           "other-host": f"https://localhost:{port}/{OWNER}/toolbox.git",
           "credentials": f"https://x:y@127.0.0.1:{port}/{OWNER}/toolbox.git",
           "file": f"file://{sim.sim.repo_dir(OWNER, 'toolbox')}"}[where]
    git = Git(sim.root, sim.token, tmp_path / "work", 60, retries=0)
    with pytest.raises(RemoteElsewhere) as e:
        git.mirror(url, tmp_path / "tb.git")
    assert "token is not sent there" in str(e.value)
    assert git.exists(url) is False  # a wiki probe: logged, not asked
    assert recorder.seen == []
    assert sim.token not in str(e.value)


def test_gists_of_github_com_are_fetched_from_their_own_origin(tmp_path):
    git = Git("https://github.com", "ghp_" + "a" * 36, tmp_path / "work")
    assert git._check_remote("https://gist.github.com/abc123.git")
    assert git._check_remote("https://github.com/o/r.git")
    env = git.env()
    headers = [k for k, v in env.items() if v.startswith("http.") and "extraheader" in v]
    assert [env[k] for k in headers] == ["http.https://github.com/.extraheader"]
    with pytest.raises(RemoteElsewhere):
        git._check_remote("https://gist.github.com.evil.example/abc.git")

