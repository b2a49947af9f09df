"""A GitHub App installed on both owners: JWTs, installation tokens, GitHub's answers.

Switched on by `--app-token-ttl SECONDS`. The app has one RSA key (its PEM is written to
the simulator's data directory) and two installations, one on the user owner and one on
the organisation, each with access to all of the account's repositories. JWTs are checked
the way api.github.com checks them (RS256, `iss` names the app, `exp` at most ten minutes
ahead); installation tokens (`ghs_...`) live `ttl` seconds each and are then unknown:
"Bad credentials" on REST and GraphQL, an authentication failure for git and LFS.

PyJWT (pinned, PyGithub depends on it) reads and verifies the JWTs.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .model import Repo, World
from .routing import DOCS, ApiError

APP_SLUG = "ghvault-sim"
CREATED = "2024-03-01T12:00:00Z"
# What the app asks for: read access to everything a backup reads.
PERMISSIONS = {"contents": "read", "metadata": "read", "issues": "read",
               "pull_requests": "read", "members": "read"}
JWT_MAX_LIFETIME = 600  # GitHub: exp at most 10 minutes ahead
CLOCK_DRIFT = 60  # GitHub's documented allowance: iat may be set 60 s in the past
DOCS_APP = "https://docs.github.com/rest"
NOT_ACCESSIBLE = "Resource not accessible by integration"

# JWT error messages, as api.github.com words them.
JWT_UNDECODABLE = "A JSON web token could not be decoded"
JWT_EXPIRED = ("'Expiration time' claim ('exp') must be a numeric value representing the "
               "future time at which the assertion expires")
JWT_TOO_LONG = "'Expiration time' claim ('exp') is too far in the future"
JWT_IAT = ("'Issued at' claim ('iat') must be an Integer representing the time that the "
           "assertion was issued")
JWT_ISS = "'Issuer' claim ('iss') must be an Integer"
JWT_UNKNOWN_APP = "Integration not found"

# Routes only a JWT may call (everything else wants an installation token or a PAT).
JWT_ROUTES = {"/app", "/app/installations", "/app/installations/{installation_id}",
              "/app/installations/{installation_id}/access_tokens",
              "/users/{username}/installation", "/orgs/{org}/installation"}
# The permission an installation token needs for a route (X-Accepted-GitHub-Permissions).
ROUTE_PERMISSIONS = (
    ("/repos/{owner}/{repo}/pulls", "pull_requests=read"),
    ("/repos/{owner}/{repo}/issues", "issues=read"),
    ("/repos/{owner}/{repo}/labels", "issues=read; pull_requests=read"),
    ("/repos/{owner}/{repo}/milestones", "issues=read; pull_requests=read"),
    ("/repos/{owner}/{repo}/releases", "contents=read"),
    ("/repos/{owner}/{repo}/comments", "contents=read"),
    ("/repos/{owner}/{repo}/hooks", "repository_hooks=read"),
    ("/repos/{owner}/{repo}/security-advisories", "repository_advisories=read"),
    ("/repos/{owner}/{repo}", "metadata=read"),
    ("/orgs/{org}/members", "members=read"),
    ("/orgs/{org}/teams", "members=read"),
)
LEVELS = {"read": 1, "write": 2, "admin": 3}


def accepted_permissions(template: str) -> str | None:
    """The X-Accepted-GitHub-Permissions value for a route (None: no permission applies)."""
    for prefix, need in ROUTE_PERMISSIONS:
        if template == prefix or template.startswith(prefix + "/"):
            return need
    return None


@dataclass
class Installation:
    id: int
    account: str  # login


@dataclass
class Grant:
    """What one installation token may do, until `expires` (epoch seconds)."""

    installation: Installation
    expires: float
    permissions: dict[str, str]
    repos: frozenset[str] | None  # repository names of the account; None: all of them

    def covers(self, repo: Repo) -> bool:
        return repo.owner.lower() == self.installation.account.lower() and (
            self.repos is None or repo.name in self.repos)

    def allows(self, accepted: str) -> bool:
        """`accepted` is "a=read; b=read": any one alternative is enough."""
        for alt in accepted.split(";"):
            name, _, level = alt.strip().partition("=")
            if LEVELS.get(self.permissions.get(name, ""), 0) >= LEVELS.get(level, 1):
                return True
        return False


@dataclass
class App:
    world: World
    ttl: int
    key_dir: Path
    id: int = 0
    installations: dict[int, Installation] = field(default_factory=dict)
    tokens: dict[str, Grant] = field(default_factory=dict)
    issued: int = 0

    def __post_init__(self) -> None:
        self.id = 100_000 + self.world.seed
        self.client_id = f"Iv23li{hashlib.sha256(str(self.id).encode()).hexdigest()[:14]}"
        self.lock = threading.Lock()
        for n, role in enumerate(("user", "org")):
            iid = 50_000_000 + self.world.seed * 10 + n
            self.installations[iid] = Installation(iid, self.world.owners[role])
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_path = self.key_dir / "app-private-key.pem"
        self.key_path.write_bytes(self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))
        os.chmod(self.key_path, 0o600)

    @property
    def bot_login(self) -> str:
        return f"{APP_SLUG}[bot]"

    def ready(self) -> dict:
        """The ready file's `app` block."""
        by_login = {i.account: i.id for i in self.installations.values()}
        return {"id": self.id, "slug": APP_SLUG, "client_id": self.client_id,
                "private_key": str(self.key_path), "token_ttl": self.ttl,
                "installations": {role: by_login[login]
                                  for role, login in self.world.owners.items()}}

    # JWTs -------------------------------------------------------------------------------

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        return token.startswith("eyJ") and token.count(".") == 2

    def check_jwt(self, token: str) -> None:
        """Raise ApiError(401) with GitHub's message unless `token` is a valid app JWT."""
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise ApiError(401, JWT_UNDECODABLE, DOCS_APP) from None
        iss = claims.get("iss")
        if isinstance(iss, str) and iss.isdigit():
            iss = int(iss)
        if iss != self.client_id and not isinstance(iss, int):
            raise ApiError(401, JWT_ISS, DOCS_APP)
        if iss not in (self.id, self.client_id):
            raise ApiError(401, JWT_UNKNOWN_APP, DOCS_APP)
        if header.get("alg") != "RS256":
            raise ApiError(401, JWT_UNDECODABLE, DOCS_APP)
        try:
            jwt.decode(token, self.key.public_key(), algorithms=["RS256"],
                       options={"verify_exp": False, "verify_iat": False,
                                "verify_nbf": False, "verify_aud": False})
        except jwt.PyJWTError:
            raise ApiError(401, JWT_UNDECODABLE, DOCS_APP) from None
        iat, exp, now = claims.get("iat"), claims.get("exp"), time.time()
        if not isinstance(iat, int) or iat > now + CLOCK_DRIFT:
            raise ApiError(401, JWT_IAT, DOCS_APP)
        if not isinstance(exp, int) or exp <= now:
            raise ApiError(401, JWT_EXPIRED, DOCS_APP)
        if exp > now + JWT_MAX_LIFETIME + 1 or exp - iat > JWT_MAX_LIFETIME + CLOCK_DRIFT:
            raise ApiError(401, JWT_TOO_LONG, DOCS_APP)

    # installation tokens ----------------------------------------------------------------

    def installation(self, installation_id: str | int) -> Installation:
        inst = self.installations.get(int(installation_id)) if str(
            installation_id).isdigit() else None
        if inst is None:
            raise ApiError(404, "Not Found", "https://docs.github.com/rest/apps/apps#create-an-"
                                             "installation-access-token-for-an-app")
        return inst

    def installation_of(self, login: str) -> Installation:
        for inst in self.installations.values():
            if inst.account.lower() == login.lower():
                return inst
        raise ApiError(404, "Not Found", DOCS)

    def issue(self, inst: Installation, body: dict) -> tuple[str, Grant]:
        """A new token for `inst`, narrowed by the request body (GitHub's 422s otherwise)."""
        perms = dict(PERMISSIONS)
        wanted = body.get("permissions")
        if wanted is not None and wanted != {}:  # GitHub: {} grants all the installation's
            if not isinstance(wanted, dict) or any(
                    LEVELS.get(perms.get(k, ""), 0) < LEVELS.get(v, 9) for k, v in wanted.items()):
                raise ApiError(422, "The permissions requested are not granted to this "
                                    "installation.", DOCS)
            perms = dict(wanted)
        repos: set[str] | None = None
        own = {r.name: r for r in self.world.repos_of(inst.account)}
        names, ids = body.get("repositories"), body.get("repository_ids")
        if names is not None or ids is not None:
            by_id = {r.id: r.name for r in own.values()}
            repos = set()
            for name in names or []:
                if name not in own:
                    raise ApiError(422, "There is at least one repository that does not exist "
                                        "or is not accessible to the parent installation.", DOCS)
                repos.add(name)
            for rid in ids or []:
                if rid not in by_id:
                    raise ApiError(422, "There is at least one repository that does not exist "
                                        "or is not accessible to the parent installation.", DOCS)
                repos.add(by_id[rid])
        alphabet = string.ascii_letters + string.digits
        token = "ghs_" + "".join(secrets.choice(alphabet) for _ in range(36))
        grant = Grant(inst, time.time() + self.ttl, perms,
                      frozenset(repos) if repos is not None else None)
        with self.lock:  # expired tokens stay known, so their use is counted as such
            self.tokens[token] = grant
            self.issued += 1
        return token, grant

    def grant_for(self, token: str) -> tuple[Grant | None, bool]:
        """(the live grant of an installation token or None, whether it is one that expired)."""
        with self.lock:
            grant = self.tokens.get(token)
        if grant is None:
            return None, False
        if grant.expires <= time.time():
            return None, True
        return grant, False


# who is asking -------------------------------------------------------------------------

@dataclass
class Identity:
    """The credential behind a request. `viewer` is the login access checks use (a PAT's
    user, an installation token's bot, None otherwise); `error` is GitHub's 401 message for
    a credential that was sent but is not good; `expired`: an installation token that was."""

    viewer: str | None = None
    rate_key: str | None = None
    grant: Grant | None = None
    app_jwt: bool = False
    error: str | None = None
    expired: bool = False


def identify(token: str | None, tokens: list[str], login: str, app: App | None) -> Identity:
    """Who `token` (from Authorization) is: one of the PATs `tokens` (they act as `login`),
    else one of the app's installation tokens or a JWT. None: anonymous; "" or unknown:
    Bad credentials."""
    if token is None:
        return Identity()
    if token and any(secrets.compare_digest(token, t) for t in tokens):
        return Identity(viewer=login, rate_key=token)
    if app is not None and token:
        grant, expired = app.grant_for(token)
        if grant is not None:
            return Identity(viewer=app.bot_login, rate_key=f"installation:{grant.installation.id}",
                            grant=grant)
        if expired:
            return Identity(error="Bad credentials", expired=True)
        if App.looks_like_jwt(token):
            try:
                app.check_jwt(token)
            except ApiError as e:
                return Identity(error=e.body["message"])
            return Identity(rate_key=f"app:{app.id}", app_jwt=True)
    return Identity(error="Bad credentials")


def check_credential_kind(template: str, who: Identity, headers: dict[str, str]) -> None:
    """Raise GitHub's error when the credential does not suit the route: the app's routes
    want its JWT, every other route an installation token or a PAT, and an installation
    token the route's permission (named in X-Accepted-GitHub-Permissions, which GitHub
    sends on every answer to a fine-grained token: added to `headers`)."""
    if template in JWT_ROUTES:
        if not who.app_jwt:
            raise ApiError(401, JWT_UNDECODABLE)
        return
    if who.app_jwt:
        raise ApiError(403, NOT_ACCESSIBLE)
    need = accepted_permissions(template) if who.grant is not None else None
    if need and who.grant is not None:
        headers["X-Accepted-GitHub-Permissions"] = need
        if not who.grant.allows(need):
            raise ApiError(403, NOT_ACCESSIBLE, headers=dict(headers))
