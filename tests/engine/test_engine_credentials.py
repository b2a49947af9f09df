"""Credentials without a server: where git is cloned from, which settings make which
credential, how installation tokens are renewed, and that no token escapes into a log.
(Against the simulator's GitHub App: test_engine_app_auth.py.)"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from ghvault.errors import AuthError
from ghvault.gitcred import CredentialServer
from ghvault.github import auth
from ghvault.github.auth import InstallationAuth, git_margin, make_auth, refresh_margin
from ghvault.github.urls import default_git_url
from ghvault.scrub import SCRUBBER
from github import Auth


@pytest.mark.parametrize(("api", "git"), [
    ("https://api.github.com", "https://github.com"),
    ("https://api.github.com/", "https://github.com"),
    ("https://ghe.example.com/api/v3", "https://ghe.example.com"),
    ("https://ghe.example.com:8443/api/v3/", "https://ghe.example.com:8443"),
    ("https://api.octocorp.ghe.com", "https://octocorp.ghe.com"),
    ("http://127.0.0.1:8080/api/v3", "http://127.0.0.1:8080"),
    ("https://gh-proxy.example.com/github", "https://gh-proxy.example.com"),
    ("https://api.example.com", "https://api.example.com"),
])
def test_the_git_origin_is_derived_from_the_api_url(api, git):
    assert default_git_url(api) == git


def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_a_pat_comes_first_and_nothing_at_all_names_both_ways():
    assert isinstance(make_auth("https://api.github.com", "o", {"GITHUB_TOKEN": "ghp_x"}),
                      Auth.Token)
    with pytest.raises(AuthError, match="GITHUB_TOKEN .* GITHUB_APP_ID"):
        make_auth("https://api.github.com", "o", {})


def test_app_settings_accept_pem_text_or_a_path(tmp_path):
    key = pem()
    (tmp_path / "app.pem").write_text(key)
    for value in (key, str(tmp_path / "app.pem")):
        found = make_auth("https://api.github.com", "o", {
            "GITHUB_APP_ID": "42", "GITHUB_APP_PRIVATE_KEY": value,
            "GITHUB_APP_INSTALLATION_ID": "7"})
        assert isinstance(found, InstallationAuth) and found.installation_id == 7
        assert found.app_id == "42"


@pytest.mark.parametrize(("env", "named"), [
    ({"GITHUB_APP_ID": "42"}, "GITHUB_APP_PRIVATE_KEY"),
    ({"GITHUB_APP_ID": "my-app", "GITHUB_APP_PRIVATE_KEY": "x"}, "GITHUB_APP_ID"),
    ({"GITHUB_APP_ID": "42", "GITHUB_APP_PRIVATE_KEY": "/no/such/key.pem"},
     "GITHUB_APP_PRIVATE_KEY is neither PEM text nor a readable file"),
    ({"GITHUB_APP_ID": "42", "GITHUB_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nAAAA"
      "\n-----END RSA PRIVATE KEY-----"}, "GITHUB_APP_PRIVATE_KEY is not an RSA private key"),
    ({"GITHUB_APP_ID": "42", "GITHUB_APP_PRIVATE_KEY": "PEM", "GITHUB_APP_INSTALLATION_ID":
      "org"}, "GITHUB_APP_INSTALLATION_ID"),
])
def test_app_settings_that_cannot_work_give_one_sentence(env, named):
    if env.get("GITHUB_APP_PRIVATE_KEY") == "PEM":
        env["GITHUB_APP_PRIVATE_KEY"] = pem()
    with pytest.raises(AuthError) as e:
        make_auth("https://api.github.com", "o", env)
    assert named in str(e.value) and str(e.value).count(". ") == 0


def test_the_margins_follow_the_lifetime():
    assert refresh_margin(3600) == 300 and git_margin(3600) == 600
    assert refresh_margin(4) == 1 and git_margin(4) == 2


class Minting(InstallationAuth):
    """InstallationAuth whose mint is local: each token lives `lifetime` seconds."""

    def __init__(self, lifetime: float):
        super().__init__(Auth.AppAuth("42", pem()), 7)
        self.lifetime = lifetime
        self.minted: list[str] = []

    def _get_installation_authorization(self):
        time.sleep(0.05)  # a request: other threads arrive meanwhile
        token = f"ghs_minted{len(self.minted):04d}" + "x" * 26
        self.minted.append(token)
        expires = datetime.fromtimestamp(int(time.time() + self.lifetime) + 1, UTC)
        return SimpleNamespace(token=token, expires_at=expires)


def test_installation_tokens_are_renewed_before_expiry_once_for_all_threads(caplog):
    creds = Minting(lifetime=3)
    caplog.set_level(logging.INFO, "ghvault.auth")
    seen: list[str] = []
    threads = [threading.Thread(target=lambda: seen.append(creds.token)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(creds.minted) == 1 and set(seen) == {creds.minted[0]}
    first = creds._issued
    assert first.expires - time.time() > refresh_margin(first.lifetime)
    # git needs more time left than the API: the same token until it has less than half
    time.sleep(max(0.0, first.expires - time.time() - git_margin(first.lifetime) + 0.1))
    generation = creds.generation
    assert creds.token == creds.minted[0]
    assert creds.git_token() == creds.minted[1]
    assert creds.expired_since(generation) and not creds.expired_since(creds.generation)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("installation token issued, valid until ")
    assert lines[1].startswith("installation token renewed, valid until ")
    assert not any(t in line for t in creds.minted for line in lines)
    assert SCRUBBER.scrub(f"x {creds.minted[1]} y") == "x [REDACTED] y"


def test_a_token_is_never_handed_out_with_less_than_the_margin_left():
    creds = Minting(lifetime=2)
    for _ in range(12):
        creds.token  # noqa: B018 - the property mints when due
        left = creds._issued.expires - time.time()
        assert left >= refresh_margin(creds._issued.lifetime) - 0.05
        time.sleep(0.25)
    assert 2 <= len(creds.minted) <= 6  # renewed, but not for every request


def ask(server: CredentialServer, protocol: str, host: str) -> dict:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(server.path)
        s.sendall(json.dumps({"protocol": protocol, "host": host}).encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        return json.loads(s.makefile("rb").read())


def test_the_credential_server_answers_for_the_git_origin_only():
    creds = Minting(lifetime=3600)
    server = CredentialServer(creds, ["https://git.example.com:8443"])
    try:
        assert ask(server, "https", "git.example.com:8443")["password"] == creds.token
        for protocol, host in (("http", "git.example.com:8443"), ("https", "git.example.com"),
                               ("https", "evil.example:8443"), ("https", "")):
            assert ask(server, protocol, host) == {}
    finally:
        server.close()


def test_a_403_says_which_permission_or_scope_is_missing():
    assert "needs the permission contents=read" in auth.missing_access(
        {"X-Accepted-GitHub-Permissions": "contents=read"})
    assert "needs the scope repo" in auth.missing_access({"X-Accepted-OAuth-Scopes": "repo"})
    assert auth.missing_access({}) == ""


class Lister:
    """A client whose every list is `repos`, and which records the paths asked."""

    def __init__(self, auth, repos):
        self.auth, self.repos, self.asked = auth, repos, []

    def paginate(self, path, params=None):
        self.asked.append(path)
        return iter(self.repos)


def repo(owner: str, name: str, private: bool = False) -> dict:
    return {"name": name, "full_name": f"{owner}/{name}", "owner": {"login": owner},
            "private": private}


def test_an_installation_lists_its_repositories_of_the_owner_only():
    from ghvault.collect import Ledger
    from ghvault.engine import Options
    from ghvault.listing import list_repos

    client = Lister(Minting(3600), [repo("o", "a", True), repo("other", "b", True),
                                    repo("O", "c")])
    ledger = Ledger()
    listed = list_repos(client, {"login": "o", "type": "User"}, None,
                        Options(owner="o", dest="file:///x.zip", month="2026-10"), ledger)
    assert client.asked == ["/installation/repositories"]
    assert [r["name"] for r in listed] == ["a", "c"]
    assert [s["item"] for s in ledger.skipped] == ["secret gists of o"]


def test_another_users_token_says_the_private_repositories_are_not_listed():
    from ghvault.collect import Ledger
    from ghvault.engine import Options
    from ghvault.listing import list_repos

    client = Lister(Auth.Token("ghp_x"), [repo("o", "a")])
    ledger = Ledger()
    opts = Options(owner="o", dest="file:///x.zip", month="2026-10")
    list_repos(client, {"login": "o", "type": "User"}, "someone", opts, ledger)
    assert client.asked == ["/users/o/repos"]
    [skip] = ledger.skipped
    assert skip["item"] == "private repositories of o" and "use a token of o" in skip["reason"]
    ledger = Ledger()
    list_repos(client, {"login": "o", "type": "User"}, "o", opts, ledger)  # the owner's own
    assert client.asked[-1] == "/user/repos" and ledger.skipped == []


def test_an_unreachable_github_while_finding_the_installation_is_exit_6():
    from ghvault.errors import GitHubUnavailable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends
    started = time.monotonic()
    with pytest.raises(GitHubUnavailable, match="did not answer when GitHub App 42 looked"):
        make_auth(f"http://127.0.0.1:{port}/api/v3", "o",
                  {"GITHUB_APP_ID": "42", "GITHUB_APP_PRIVATE_KEY": pem()})
    assert time.monotonic() - started < 30
