"""GitHub App auth and the split git host in the simulator, as GitHub behaves.

JWTs are made with PyJWT (pinned; PyGithub depends on it), the way GitHub's documentation
and PyGithub make them (RS256, iat 60 s in the past, iss the app id).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import TOKEN, start_sim
from tests.github_sim import app as ga
from tests.github_sim import openapi as oa
from tests.github_sim.routing import ROUTES

USER, ORG = "hubber", "hubworks"
TTL = 60  # seconds an installation token lives (long enough for a slow test machine)
SHORT_TTL = 5  # for the expiry test, on its own simulator


@pytest.fixture(scope="module")
def app_sim():
    running, stop = start_sim(app_token_ttl=TTL)
    yield running
    stop()


@pytest.fixture
def short_lived_sim():
    running, stop = start_sim(app_token_ttl=SHORT_TTL)
    yield running
    stop()


@pytest.fixture(scope="module")
def spec():
    return oa.load_spec()


def make_jwt(app: ga.App, *, iat: int | None = None, exp: int | None = None,
             iss: str | None = None, key=None, alg: str = "RS256") -> str:
    now = int(time.time())
    claims = {"iat": now - 60 if iat is None else iat, "exp": now + 540 if exp is None else exp,
              "iss": str(app.id) if iss is None else iss}
    if alg == "HS256":
        return jwt.encode(claims, "a shared secret of enough length here", alg)
    return jwt.encode(claims, key or app.key, alg)


def jwt_session(sim, app: ga.App):
    s = sim.session()
    s.headers["Authorization"] = f"Bearer {make_jwt(app)}"
    return s


def mint(sim, role: str = "user", body: dict | None = None) -> dict:
    app = sim.sim.app
    iid = app.ready()["installations"][role]
    r = jwt_session(sim, app).post(f"{sim.api}/app/installations/{iid}/access_tokens",
                                   json=body or {})
    assert r.status_code == 201, r.text
    return r.json()


def git_env(tmp_path: Path, sim, token: str) -> dict[str, str]:
    """git as a backup tool runs it: the token from a credential helper, no prompts."""
    helper = tmp_path / "cred.sh"
    helper.write_text(f"#!/bin/sh\necho username=x-access-token\necho password={token}\n")
    helper.chmod(0o700)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".gitconfig").write_text(f"[credential]\n\thelper = {helper}\n")
    return {**os.environ, "HOME": str(home), "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1", **sim.client_env()}


def clone(url: str, dest: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "clone", "--mirror", "-q", url, str(dest)], env=env,
                          capture_output=True, text=True, timeout=60)


# JWTs ------------------------------------------------------------------------------------

def test_valid_jwt_reads_the_app(app_sim):
    app = app_sim.sim.app
    r = jwt_session(app_sim, app).get(f"{app_sim.api}/app")
    assert r.status_code == 200
    assert r.json()["id"] == app.id and r.json()["slug"] == ga.APP_SLUG
    pem = serialization.load_pem_private_key(app.key_path.read_bytes(), None)
    assert pem.public_key().public_numbers() == app.key.public_key().public_numbers()
    assert oct(app.key_path.stat().st_mode & 0o777) == "0o600"


def _other_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("case,message", [
    ("expired", ga.JWT_EXPIRED),
    ("exp 20 minutes ahead", ga.JWT_TOO_LONG),
    ("lives 15 minutes", ga.JWT_TOO_LONG),
    ("iat in the future", ga.JWT_IAT),
    ("signed with another key", ga.JWT_UNDECODABLE),
    ("HS256", ga.JWT_UNDECODABLE),
    ("iss of no app", ga.JWT_UNKNOWN_APP),
    ("iss not a number", ga.JWT_ISS),
    ("garbage", ga.JWT_UNDECODABLE),
])
def test_bad_jwts_are_401_with_githubs_message(app_sim, case, message):
    app, now = app_sim.sim.app, int(time.time())
    token = {
        "expired": lambda: make_jwt(app, iat=now - 700, exp=now - 100),
        "exp 20 minutes ahead": lambda: make_jwt(app, iat=now, exp=now + 1200),
        "lives 15 minutes": lambda: make_jwt(app, iat=now - 330, exp=now + 570),
        "iat in the future": lambda: make_jwt(app, iat=now + 300, exp=now + 500),
        "signed with another key": lambda: make_jwt(app, key=_other_key()),
        "HS256": lambda: make_jwt(app, alg="HS256"),
        "iss of no app": lambda: make_jwt(app, iss="4"),
        "iss not a number": lambda: make_jwt(app, iss="my-app"),
        "garbage": lambda: "eyJhbGciOiJSUzI1NiJ9.bm9wZQ.c2ln",
    }[case]()
    s = app_sim.session()
    s.headers["Authorization"] = f"Bearer {token}"
    for method, path in (("get", "/app"), ("post", f"/app/installations/{min(app.installations)}"
                                                   "/access_tokens")):
        r = getattr(s, method)(f"{app_sim.api}{path}")
        assert r.status_code == 401, (case, path, r.text)
        assert r.json()["message"] == message


def test_documented_jwt_recipe_is_accepted(app_sim):
    """GitHub's docs: iat 60 s in the past (clock drift), exp at most 10 minutes ahead."""
    app, now = app_sim.sim.app, int(time.time())
    s = app_sim.session()
    for iat, exp in ((now - 60, now + 600), (now, now + 600), (now - 30, now + 60)):
        s.headers["Authorization"] = f"Bearer {make_jwt(app, iat=iat, exp=exp)}"
        assert s.get(f"{app_sim.api}/app").status_code == 200, (iat - now, exp - now)


def test_app_routes_want_the_jwt(app_sim):
    """A PAT or an installation token on the app's own routes: GitHub's JWT error."""
    inst = mint(app_sim)["token"]
    for token in (TOKEN, inst):
        r = app_sim.session(token).get(f"{app_sim.api}/app/installations")
        assert r.status_code == 401
        assert r.json()["message"] == ga.JWT_UNDECODABLE


def test_jwt_where_an_installation_token_is_needed_is_refused(app_sim):
    s = jwt_session(app_sim, app_sim.sim.app)
    for path in (f"/repos/{USER}/toolbox", "/installation/repositories", "/user"):
        r = s.get(f"{app_sim.api}{path}")
        assert r.status_code == 403, path
        assert r.json()["message"] == ga.NOT_ACCESSIBLE
    r = s.post(f"{app_sim.root}/api/graphql", json={"query": "{ viewer { login } }"})
    assert r.status_code == 403


# installations and tokens ----------------------------------------------------------------

def test_installations_of_both_owners(app_sim):
    app = app_sim.sim.app
    s = jwt_session(app_sim, app)
    listed = s.get(f"{app_sim.api}/app/installations").json()
    assert {i["account"]["login"]: i["id"] for i in listed} == {
        USER: app.ready()["installations"]["user"], ORG: app.ready()["installations"]["org"]}
    assert s.get(f"{app_sim.api}/users/{USER}/installation").json()["target_type"] == "User"
    org = s.get(f"{app_sim.api}/orgs/{ORG}/installation").json()
    assert org["target_type"] == "Organization" and org["account"]["login"] == ORG
    assert s.get(f"{app_sim.api}/orgs/{USER}/installation").status_code == 404
    assert s.get(f"{app_sim.api}/users/nobody-here/installation").status_code == 404
    assert s.post(f"{app_sim.api}/app/installations/12345/access_tokens").status_code == 404


def test_app_answers_match_githubs_openapi(app_sim, spec):
    app = app_sim.sim.app
    s = jwt_session(app_sim, app)
    iid = app.ready()["installations"]["org"]
    # GET /app/installations: the description's inline item schema types `account` as
    # allOf(simple-user, enterprise), which no account can satisfy; the `installation`
    # component (same operation family) says anyOf. Each item is checked against that.
    for item in s.get(f"{app_sim.api}/app/installations").json():
        oa.validate_component(spec, "installation", item, strict=True)
    checked = {"/app/installations"}
    for template, path in (("/app", "/app"),
                           ("/app/installations/{installation_id}", f"/app/installations/{iid}"),
                           ("/users/{username}/installation", f"/users/{USER}/installation"),
                           ("/orgs/{org}/installation", f"/orgs/{ORG}/installation")):
        r = s.get(f"{app_sim.api}{path}")
        assert r.status_code == 200, path
        oa.validate_response(spec, template, "get", 200, r.json(), strict=True)
        checked.add(template)
    token = mint(app_sim, "org", {"repositories": ["platform"]})
    oa.validate_response(spec, "/app/installations/{installation_id}/access_tokens", "post", 201,
                         token, strict=True)
    r = app_sim.session(mint(app_sim, "org")["token"]).get(
        f"{app_sim.api}/installation/repositories")
    oa.validate_response(spec, "/installation/repositories", "get", 200, r.json())
    checked.add("/installation/repositories")
    error = s.get(f"{app_sim.api}/orgs/{USER}/installation")
    oa.validate_component(spec, "basic-error", error.json())
    app_gets = {r.template for r in ROUTES if r.method == "GET"} & (
        ga.JWT_ROUTES | {"/installation/repositories"})
    assert app_gets <= checked


def test_token_exchange_answer(app_sim):
    before = app_sim.stats()["installation_tokens_issued"]
    token = mint(app_sim)
    assert token["token"].startswith("ghs_") and len(token["token"]) == 40
    assert token["repository_selection"] == "all"
    assert token["permissions"] == ga.PERMISSIONS
    expires = time.mktime(time.strptime(token["expires_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert 0 < expires - time.time() <= TTL
    assert app_sim.stats()["installation_tokens_issued"] == before + 1


def test_user_installation_sees_private_repositories_page_by_page(app_sim):
    s = app_sim.session(mint(app_sim, "user")["token"])
    world = app_sim.sim.world
    want = {r.full_name for r in world.repos_of(USER)}
    assert any(r.private for r in world.repos_of(USER))
    got, url = [], f"{app_sim.api}/installation/repositories?per_page=2"
    while url:
        r = s.get(url)
        assert r.status_code == 200
        assert r.json()["total_count"] == len(want)
        got += [x["full_name"] for x in r.json()["repositories"]]
        url = r.links.get("next", {}).get("url")
    assert sorted(got) == sorted(want)
    assert s.get(f"{app_sim.api}/repos/{USER}/dotfiles").status_code == 200
    private_org = next(r for r in world.repos_of(ORG) if r.private)
    assert s.get(f"{app_sim.api}/repos/{private_org.full_name}").status_code == 404


def test_narrowed_tokens(app_sim):
    s = jwt_session(app_sim, app_sim.sim.app)
    one = mint(app_sim, "user", {"repositories": ["toolbox"]})
    assert one["repository_selection"] == "selected"
    assert [r["name"] for r in one["repositories"]] == ["toolbox"]
    t = app_sim.session(one["token"])
    listed = t.get(f"{app_sim.api}/installation/repositories").json()
    assert [r["name"] for r in listed["repositories"]] == ["toolbox"]
    assert t.get(f"{app_sim.api}/repos/{USER}/dotfiles").status_code == 404
    issues_only = mint(app_sim, "user", {"permissions": {"issues": "read", "metadata": "read"}})
    t = app_sim.session(issues_only["token"])
    assert t.get(f"{app_sim.api}/repos/{USER}/toolbox/issues").status_code == 200
    r = t.get(f"{app_sim.api}/repos/{USER}/toolbox/pulls")
    assert r.status_code == 403 and r.json()["message"] == ga.NOT_ACCESSIBLE
    assert r.headers["X-Accepted-GitHub-Permissions"] == "pull_requests=read"
    iid = app_sim.sim.app.ready()["installations"]["user"]
    for body in ({"permissions": {"contents": "write"}}, {"repositories": ["no-such-repo"]},
                 {"repository_ids": [1]}):
        r = s.post(f"{app_sim.api}/app/installations/{iid}/access_tokens", json=body)
        assert r.status_code == 422, body


def test_installation_token_acts_for_no_user(app_sim):
    s = app_sim.session(mint(app_sim)["token"])
    for path in ("/user", "/user/repos", "/gists"):
        r = s.get(f"{app_sim.api}{path}")
        assert r.status_code == 403, path
        assert r.json()["message"] == "Resource not accessible by integration"
    ok = s.get(f"{app_sim.api}/repos/{USER}/toolbox")
    assert ok.headers["X-Accepted-GitHub-Permissions"] == "metadata=read"
    assert "X-OAuth-Scopes" not in ok.headers
    assert app_sim.session(TOKEN).get(
        f"{app_sim.api}/installation/repositories").status_code == 403


def test_org_installation_reads_members_and_teams(app_sim):
    s = app_sim.session(mint(app_sim, "org")["token"])
    acct = app_sim.sim.world.accounts[ORG]
    members = s.get(f"{app_sim.api}/orgs/{ORG}/members", params={"per_page": 100}).json()
    assert len(members) == len(acct.members)
    assert s.get(f"{app_sim.api}/orgs/{ORG}/teams").status_code == 200
    user_token = app_sim.session(mint(app_sim, "user")["token"])
    assert user_token.get(f"{app_sim.api}/orgs/{ORG}/teams").status_code == 403


def test_tokens_expire_one_by_one_everywhere(short_lived_sim, tmp_path):
    app_sim = short_lived_sim
    started = time.time()
    first = mint(app_sim, "user")["token"]
    s = app_sim.session(first)
    query = {"query": f'{{ repository(owner: "{USER}", name: "dotfiles") {{ name }} }}'}
    gql = f"{app_sim.root}/api/graphql"
    lfs = f"{app_sim.root}/{USER}/dotfiles.git/info/lfs/objects/batch"
    batch = {"operation": "download", "objects": [{"oid": "0" * 64, "size": 1}]}
    lfs_headers = {"Accept": "application/vnd.git-lfs+json",
                   "Content-Type": "application/vnd.git-lfs+json"}
    assert s.get(f"{app_sim.api}/repos/{USER}/dotfiles").status_code == 200
    assert s.post(gql, json=query).json()["data"]["repository"]["name"] == "dotfiles"
    assert s.post(lfs, json=batch, headers=lfs_headers).status_code == 200
    env = git_env(tmp_path, app_sim, first)
    done = clone(f"{app_sim.root}/{USER}/dotfiles.git", tmp_path / "a.git", env)
    assert done.returncode == 0, done.stderr
    time.sleep(max(0.0, started + SHORT_TTL / 2 - time.time()))
    second = mint(app_sim, "user")["token"]
    refused = app_sim.stats()["expired_tokens_refused"]
    time.sleep(max(0.0, started + SHORT_TTL + 0.3 - time.time()))  # first expired, not second
    r = s.get(f"{app_sim.api}/repos/{USER}/dotfiles")
    assert r.status_code == 401 and r.json()["message"] == "Bad credentials"
    assert s.post(gql, json=query).status_code == 401
    assert s.post(lfs, json=batch, headers=lfs_headers).status_code == 401
    failed = clone(f"{app_sim.root}/{USER}/dotfiles.git", tmp_path / "b.git", env)
    assert failed.returncode != 0
    assert "Authentication failed" in failed.stderr
    assert app_sim.stats()["expired_tokens_refused"] >= refused + 4
    assert app_sim.session(second).get(f"{app_sim.api}/repos/{USER}/dotfiles").status_code == 200


def test_without_the_flag_there_is_no_app(sim):
    r = sim.session(TOKEN).get(f"{sim.api}/app")
    assert r.status_code == 401 and r.json()["message"] == ga.JWT_UNDECODABLE
    assert sim.sim.app is None


# split git host --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def split_sim():
    running, stop = start_sim(split_git_host=True)
    yield running
    stop()


def test_split_host_urls_point_at_the_git_origin(split_sim):
    git = split_sim.git_root
    assert git and git != split_sim.root
    s = split_sim.session(TOKEN)
    repo = s.get(f"{split_sim.api}/repos/{USER}/toolbox").json()
    assert repo["clone_url"] == f"{git}/{USER}/toolbox.git"
    assert repo["html_url"] == f"{git}/{USER}/toolbox"
    assert repo["url"].startswith(split_sim.api)
    gist = s.get(f"{split_sim.api}/users/{USER}/gists").json()[0]
    assert gist["git_pull_url"].startswith(f"{git}/gist/")
    data = s.post(f"{split_sim.root}/api/graphql", json={
        "query": f'{{ repository(owner: "{USER}", name: "toolbox") {{ url }} }}'}).json()
    assert data["data"]["repository"]["url"] == f"{git}/{USER}/toolbox"


def test_split_host_serves_git_only_on_the_git_origin(split_sim, tmp_path):
    env = git_env(tmp_path, split_sim, TOKEN)
    git = split_sim.git_root
    done = clone(f"{git}/{USER}/dotfiles.git", tmp_path / "a.git", env)
    assert done.returncode == 0, done.stderr
    wrong = clone(f"{split_sim.root}/{USER}/dotfiles.git", tmp_path / "b.git", env)
    assert wrong.returncode != 0
    s = split_sim.session(TOKEN)
    assert s.get(f"{split_sim.root}/{USER}/toolbox.git/info/refs",
                 params={"service": "git-upload-pack"}).status_code == 404
    assert s.get(f"{git}/api/v3/repos/{USER}/toolbox").status_code == 404
    assert s.get(f"{git}/repos/{USER}/toolbox").status_code == 404
    lfs = s.post(f"{git}/{USER}/media-assets.git/info/lfs/objects/batch",
                 json={"operation": "download", "objects": [{"oid": "0" * 64, "size": 1}]},
                 headers={"Accept": "application/vnd.git-lfs+json"})
    assert lfs.status_code == 200


def test_split_host_lfs_hrefs_on_the_git_origin(split_sim):
    world = split_sim.sim.world
    store = next(p for p in (split_sim.sim.workdir / "lfs").glob("*/*") if any(p.rglob("*")))
    owner, name = store.parent.name, store.name
    obj = next(f for f in store.rglob("*") if f.is_file())
    s = split_sim.session(TOKEN)
    r = s.post(f"{split_sim.git_root}/{owner}/{name}.git/info/lfs/objects/batch",
               json={"operation": "download", "objects": [{"oid": obj.name,
                                                           "size": obj.stat().st_size}]},
               headers={"Accept": "application/vnd.git-lfs+json"})
    href = r.json()["objects"][0]["actions"]["download"]["href"]
    assert href.startswith(split_sim.git_root + "/")
    assert s.get(href).content == obj.read_bytes()
    assert f"{owner}/{name}" in world.repos


def test_ready_file_with_app_and_split_host(tmp_path):
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([sys.executable, "-m", "tests.github_sim", "--size", "tiny",
                             "--tls", "--app-token-ttl", "4", "--split-git-host",
                             "--ready-file", str(ready)], cwd=Path(__file__).parents[2],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            if ready.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert ready.exists(), proc.stderr.read().decode() if proc.poll() is not None else ""
        d = json.loads(ready.read_text())
        assert d["root_url"] != d["git_url"]
        assert d["api_url"] == d["root_url"] + "/api/v3"
        app = d["app"]
        assert isinstance(app["id"], int) and app["token_ttl"] == 4
        assert set(app["installations"]) == {"user", "org"}
        key = serialization.load_pem_private_key(Path(app["private_key"]).read_bytes(), None)
        claims = {"iat": int(time.time()) - 60, "exp": int(time.time()) + 300,
                  "iss": str(app["id"])}
        import requests

        s = requests.Session()
        s.trust_env, s.verify = False, d["ca_cert"]
        s.headers["Authorization"] = "Bearer " + jwt.encode(claims, key, "RS256")
        assert s.get(f"{d['api_url']}/app").json()["id"] == app["id"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
