"""Credentials: a personal access token, or a GitHub App installation whose tokens are
renewed before they expire.

From the environment only: GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY (PEM
text or a path to a PEM file) and, optionally, GITHUB_APP_INSTALLATION_ID (found from the
owner when unset: `GET /orgs/{owner}/installation`, then `/users/{owner}/installation`).

PyGithub's `AppAuth` signs the JWTs (RS256, 5 minutes) and its `AppInstallationAuth` mints
the installation tokens (`POST /app/installations/{id}/access_tokens`). We subclass the
latter because it falls short for a long run: it renews 20 s before expiry whatever the
lifetime (a token living less than that would be minted anew for every request), it is not
thread-safe (four API threads would each mint one), it cannot be told to hand out a token
with more time left (what a git child needs, see `git_token`), and it says nothing when it
renews. Every JWT and token is registered with the scrubber as it is made.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import urllib3
from github import Auth, GithubException, GithubIntegration

from ..errors import AuthError, GitHubUnavailable
from ..scrub import register

log = logging.getLogger("ghvault.auth")
USER_AGENT = "ghvault (+https://github.com/ghvault)"
MAX_MARGIN = 300.0  # seconds: a token is renewed this long before it expires, at most
PAT_NAME = "the token in GITHUB_TOKEN"
# What a request that got no answer raises (requests' errors are OSErrors).
UNANSWERED: tuple[type[BaseException], ...] = (OSError, urllib3.exceptions.HTTPError)
NO_CREDENTIALS = ("no GitHub credentials: set GITHUB_TOKEN (a token with repo, read:org, "
                  "read:user and gist scopes) or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY "
                  "(a GitHub App installed on the owner)")


def refresh_margin(lifetime: float) -> float:
    """How long before expiry an API token is renewed: 5 minutes of GitHub's hour, a
    quarter of a short lifetime."""
    return min(MAX_MARGIN, lifetime / 4)


def git_margin(lifetime: float) -> float:
    """The time a token handed to a git child has left at least: twice the API's margin,
    at most half the lifetime. A child asks once (git's first 401) and sends its few
    requests within seconds; the pack then streams in one answer, however slowly."""
    return min(2 * MAX_MARGIN, lifetime / 2)


def tls_verify() -> bool | str:
    """The CA bundle requests should trust (the environment's, as git's is)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or True


@dataclass(frozen=True)
class AppSettings:
    app_id: str
    private_key: str  # PEM text
    installation_id: int | None


def settings_from(env: dict[str, str]) -> str | AppSettings:
    """The PAT, or the GitHub App settings; AuthError naming what is missing or wrong."""
    token = env.get("GITHUB_TOKEN", "").strip()
    if token:
        return token
    app_id = env.get("GITHUB_APP_ID", "").strip()
    key = env.get("GITHUB_APP_PRIVATE_KEY", "")
    inst = env.get("GITHUB_APP_INSTALLATION_ID", "").strip()
    if not app_id and not key.strip():
        raise AuthError(NO_CREDENTIALS)
    if not app_id.isdigit() or not key.strip():
        raise AuthError("GitHub App credentials need both GITHUB_APP_ID (the App's numeric "
                        "id) and GITHUB_APP_PRIVATE_KEY (its private key, PEM text or a "
                        "path): set the one missing")
    if inst and not inst.isdigit():
        raise AuthError("GITHUB_APP_INSTALLATION_ID must be the installation's numeric id: "
                        "fix it, or unset it to use the App's installation on --owner")
    return AppSettings(app_id, load_private_key(key), int(inst) if inst else None)


def load_private_key(value: str) -> str:
    """PEM text, from `value` itself or from the file it names; AuthError otherwise."""
    text = value.strip()
    if not text.startswith("-----BEGIN"):
        try:
            with open(os.path.expanduser(text)) as f:
                text = f.read().strip()
        except (OSError, ValueError) as e:
            reason = getattr(e, "strerror", None) or type(e).__name__
            raise AuthError(f"GITHUB_APP_PRIVATE_KEY is neither PEM text nor a readable file "
                            f"({reason}): set it to the App's private key or its path"
                            ) from None
    register(text)
    try:
        jwt.encode({"iss": "0"}, text, algorithm="RS256")
    except Exception:  # noqa: BLE001 - cryptography's errors vary with the key's defect
        raise AuthError("GITHUB_APP_PRIVATE_KEY is not an RSA private key in PEM form: set "
                        "it to the .pem file GitHub generated for the App (or its text)"
                        ) from None
    return text


def make_auth(api_url: str, owner: str, env: dict[str, str] | None = None) -> Auth.Auth:
    """A PAT (`Auth.Token`) or an `InstallationAuth` for the App's installation on `owner`."""
    found = settings_from(dict(os.environ if env is None else env))
    if isinstance(found, str):
        register(found)
        return Auth.Token(found)
    signer = Auth.AppAuth.create_jwt_sign(found.private_key, "RS256")
    app = Auth.AppAuth(found.app_id, sign_func=lambda payload: register(_text(signer(payload))))
    inst = found.installation_id or discover_installation(app, api_url, owner)
    return InstallationAuth(app, inst)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def integration(app: Auth.AppAuth, api_url: str) -> GithubIntegration:
    return GithubIntegration(auth=app, base_url=api_url.rstrip("/"), verify=tls_verify(),
                             user_agent=USER_AGENT, seconds_between_requests=None, retry=4)


def discover_installation(app: Auth.AppAuth, api_url: str, owner: str) -> int:
    """The id of the App's installation on `owner` (an organisation or a user)."""
    gi = integration(app, api_url)
    try:
        for find in (gi.get_org_installation, gi.get_user_installation):
            try:
                return int(find(owner).id)
            except GithubException as e:
                if e.status != 404:
                    raise app_error(e, app.app_id, None) from None
    except UNANSWERED as e:
        raise GitHubUnavailable(f"GitHub did not answer when GitHub App {app.app_id} looked "
                                f"for its installation on {owner!r} ({type(e).__name__}): "
                                "check connectivity and --api-url, or try later") from None
    finally:
        gi.close()
    raise AuthError(f"GitHub App {app.app_id} is not installed on {owner!r}: install it on "
                    "that account (or set GITHUB_APP_INSTALLATION_ID)")


def app_error(e: GithubException, app_id: Any, inst: int | None) -> Exception:
    """One sentence for a refusal of the App's JWT or of an installation token request."""
    message = e.data.get("message") if isinstance(e.data, dict) else str(e.data or "")
    if e.status == 401:
        return AuthError(f"GitHub refused the JWT of GitHub App {app_id} ({message}): "
                         "GITHUB_APP_PRIVATE_KEY is not a valid key of that App (or "
                         "GITHUB_APP_ID names another App): generate a private key in the "
                         "App's settings and set it")
    if e.status == 404 and inst is not None:
        return AuthError(f"GitHub App {app_id} has no installation {inst} (404): fix "
                         "GITHUB_APP_INSTALLATION_ID, or unset it to use the App's "
                         "installation on --owner")
    if e.status in (403, 404, 422):
        return AuthError(f"GitHub refused GitHub App {app_id} an installation token "
                         f"({e.status}: {message}): check that the installation is active "
                         "and grants read access to the repositories")
    return GitHubUnavailable(f"GitHub answered {e.status} when GitHub App {app_id} asked "
                             "for an installation token: try again later")


@dataclass(frozen=True)
class _Issued:
    token: str
    expires: float  # epoch seconds
    lifetime: float


class InstallationAuth(Auth.AppInstallationAuth):
    """Installation tokens, renewed `refresh_margin` before they expire (see the module)."""

    def __init__(self, app: Auth.AppAuth, installation_id: int):
        super().__init__(app, installation_id)
        self._lock = threading.Lock()
        self._issued: _Issued | None = None
        self.generation = 0  # tokens minted so far
        self.name = f"the installation token of GitHub App {app.app_id}"

    @property
    def token(self) -> str:
        return self._fresh(refresh_margin).token

    def git_token(self) -> str:
        """A token with at least `git_margin` of its lifetime left."""
        return self._fresh(git_margin).token

    def expired_since(self, generation: int) -> bool:
        """Whether a token handed out at `generation` may have expired by now."""
        issued = self._issued
        return self.generation != generation or (issued is not None
                                                 and issued.expires <= time.time())

    def _fresh(self, margin: Callable[[float], float]) -> _Issued:
        with self._lock:
            issued = self._issued
            if issued is None or issued.expires - time.time() < margin(issued.lifetime):
                self._issued = issued = self._mint(renewal=issued is not None)
            return issued

    def _mint(self, renewal: bool) -> _Issued:
        started = time.time()
        try:
            answer = self._get_installation_authorization()
        except GithubException as e:
            raise app_error(e, self.app_id, self.installation_id) from None
        except UNANSWERED as e:
            raise GitHubUnavailable(f"GitHub did not answer when GitHub App {self.app_id} "
                                    f"asked for an installation token ({type(e).__name__}): "
                                    "check connectivity, or try later") from None
        token = register(answer.token)
        # The server's expiry against our clock: GitHub's clock and ours agree within
        # seconds, and the margin is minutes on GitHub's hour.
        expires = answer.expires_at.timestamp() if answer.expires_at else started + 3600
        self.generation += 1
        log.info("installation token %s, valid until %s", "renewed" if renewal else "issued",
                 time.strftime("%H:%M:%S UTC", time.gmtime(expires)))
        return _Issued(token, expires, max(1.0, expires - started))


def credential_name(auth: Auth.Auth) -> str:
    return getattr(auth, "name", PAT_NAME)


def refused(auth: Auth.Auth, message: str) -> AuthError:
    """GitHub answered 401 to an API request: which credential, and what to do."""
    if isinstance(auth, InstallationAuth):
        return AuthError(f"GitHub refused {auth.name} ({message}): it was revoked, or the "
                         "installation was suspended or removed: check the App's "
                         "installation on the owner")
    return AuthError(f"GitHub refused {PAT_NAME} ({message}): it is expired, revoked or "
                     "mistyped: set GITHUB_TOKEN to a valid token")


def missing_access(headers: dict[str, Any]) -> str:
    """What GitHub says a 403 needed, from its headers ('' when it does not say)."""
    lower = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    perms = lower.get("x-accepted-github-permissions", "").strip()
    scopes = lower.get("x-accepted-oauth-scopes", "").strip()
    if perms:
        return f"; it needs the permission {perms}"
    if scopes:
        return f"; it needs the scope {scopes}"
    return ""
