"""Git mirrors, bundles and LFS objects, with the token only in each git child's environment.

Every git (and git-lfs) child gets a fresh environment: a private HOME with no config, no
system config, no prompts (GIT_TERMINAL_PROMPT=0, GIT_ASKPASS=false), the caller's TLS and
proxy settings, and the credential as `http.<base-url>/.extraheader` through
GIT_CONFIG_COUNT (a GitHub App's installation tokens, which expire, come from a credential
helper instead: see gitcred.py). git and git-lfs both match that key against each
request's URL, so the header goes to the GitHub server only (never to LFS storage on
another origin), and it is never written to argv, a URL, a config file, FETCH_HEAD, a log
or a bundle. Redirects are
not followed (git would send the header on to the new origin for the rest of a clone), and
a remote outside the git origin is not fetched at all (`RemoteElsewhere`, a skipped item).
Messages are scrubbed of the token and its base64 forms before they are raised or logged.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from .errors import ConfigError
from .gitcred import CredentialServer, TokenSource
from .gitfail import (
    _LFS_MISSING,
    GitAuthError,
    GitError,
    GitUnavailable,
    RemoteElsewhere,
    RepoNotFound,
    _cause,
    classify_failure,
)
from .github.urls import origin
from .gitlimits import GIT_MEMORY_CONFIG
from .gitproc import _CHILDREN, _CHILDREN_LOCK, kill_children
from .layout import LFS_OID
from .scrub import SCRUBBER

log = logging.getLogger(__name__)

# Caller settings a git child keeps: where to find programs, TLS trust, proxies.
PASS_ENV = (
    "PATH", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH",
    "CURL_CA_BUNDLE", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
    "ALL_PROXY", "no_proxy", "NO_PROXY",
)
# What `git lfs install` would put in ~/.gitconfig.
LFS_FILTER = (
    ("filter.lfs.clean", "git-lfs clean -- %f"),
    ("filter.lfs.smudge", "git-lfs smudge -- %f"),
    ("filter.lfs.process", "git-lfs filter-process"),
    ("filter.lfs.required", "true"),
)

# Where a git server's gists live when not under the server itself (GitHub Enterprise
# serves them at /gist/<id>.git): fetched without the token, which they do not need.
# Keyed by normalised origin (urls.origin), so GitHub.com or github.com:443 find it too.
GIST_ORIGINS = {origin("https://github.com"): "https://gist.github.com"}


@dataclass(frozen=True)
class Mirror:
    path: Path
    refs: dict[str, str]
    empty: bool
    url: str = ""


@dataclass(frozen=True)
class LfsObject:
    oid: str
    size: int
    path: Path


@dataclass(frozen=True)
class _Result:
    code: int
    stdout: bytes
    stderr: str
    mark: int = 0  # the credential server's answers before the command started


class Git:
    """Runs git for one GitHub server (`base_url`, e.g. https://github.com) with `token`, or
    with the tokens of `tokens` (renewed during the run) through the credential helper."""

    AUTH_RETRIES = 2  # runs again of a command refused because its token expired meanwhile

    def __init__(self, base_url: str, token: str | None, workdir: Path, timeout: float = 3600.0,
                 *, retries: int = 3, backoff: float = 2.0,
                 extra_auth_urls: Sequence[str] = (), stop: threading.Event | None = None,
                 tokens: TokenSource | None = None):
        self.auth_urls = [self._check_url(u) for u in (base_url, *extra_auth_urls)]
        self.tokens = tokens
        self.creds = CredentialServer(tokens, self.auth_urls) if tokens is not None else None
        self.credential = tokens.name if tokens is not None else "the token"
        self.fetch_urls = self.auth_urls + [
            GIST_ORIGINS[origin(u)] for u in self.auth_urls
            if origin(u) in GIST_ORIGINS and not urlsplit(u).path.strip("/")]
        if token is not None and (not token or re.search(r"\s", token)):
            raise ConfigError("the GitHub token is empty or contains whitespace: set "
                              "GITHUB_TOKEN to the token alone")
        self.token = token
        self.workdir = Path(workdir)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.stop = stop  # once set: no new git child, no retry (the run is stopping)
        self.home = self.workdir / ".git-home"
        (self.home / ".config").mkdir(parents=True, exist_ok=True)
        self._secrets: list[str] = []
        if token:
            basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
            self._header = f"AUTHORIZATION: basic {basic}"
            self._secrets = [basic, token, quote(token, safe=""),
                             base64.b64encode(token.encode()).decode().rstrip("=")]

    @staticmethod
    def _check_url(url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname or "@" in parts.netloc:
            shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
            raise ConfigError(f"git URL {shown!r} must be http(s)://host[:port]/... without "
                              "credentials in it: pass the token separately")
        return url.rstrip("/")

    # environment and processes -------------------------------------------------------------

    @property
    def authenticated(self) -> bool:
        return bool(self.token or self.creds)

    def close(self) -> None:
        if self.creds is not None:
            self.creds.close()

    def scrub(self, text: str) -> str:
        """`text` with the token and its encoded forms replaced by ***, and every secret
        the run registered (installation tokens, say) by [REDACTED]."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return SCRUBBER.scrub(text)

    def env(self, lfs: bool = False) -> dict[str, str]:
        """The whole environment of a git child (credentials included, so keep it private)."""
        env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
        false = shutil.which("false") or "/bin/false"
        env.update({
            "HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config"),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": false, "SSH_ASKPASS": false,
            "GCM_INTERACTIVE": "never", "GIT_LFS_SKIP_SMUDGE": "1", "LC_ALL": "C",
        })
        config: list[tuple[str, str]] = [
            ("credential.helper", ""),
            ("protocol.allow", "never"), ("protocol.https.allow", "always"),
            ("protocol.http.allow", "always"),
            ("http.followRedirects", "false"),  # the header would follow a redirect
            ("http.lowSpeedLimit", "1"), ("http.lowSpeedTime", "300"),
            *GIT_MEMORY_CONFIG,
        ]
        if self.token:
            config += [(f"http.{url}/.extraheader", self._header) for url in self.auth_urls]
        if self.creds is not None:
            config += self.creds.config(self.auth_urls)
            env.update(self.creds.env())
        if lfs:
            config += LFS_FILTER
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for i, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
        return env

    def run(self, args: Sequence[str], cwd: Path | None = None, *, lfs: bool = False,
            stdin: bytes | None = None, timeout: float | None = None) -> _Result:
        """One git command: no shell, no terminal, a timeout, stderr captured and scrubbed."""
        timeout = self.timeout if timeout is None else timeout
        argv = ["git", *args]
        log.debug("running %s", " ".join(argv))
        self._check_stop(args)
        mark = self.creds.mark() if self.creds is not None else 0
        try:
            proc = subprocess.Popen(
                argv, cwd=cwd or self.workdir, env=self.env(lfs),
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except FileNotFoundError:
            raise GitError("git is not on PATH: install git (2.39 or later)") from None
        with _CHILDREN_LOCK:
            _CHILDREN.add(proc)
        try:
            if self.stop is not None and self.stop.is_set():  # stopped while it started
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # git's own helpers (remote-https, lfs) too
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise GitError(f"`git {args[0]}` did not finish within {timeout:.0f} s: raise the "
                           "git timeout or check the network") from None
        finally:
            with _CHILDREN_LOCK:
                _CHILDREN.discard(proc)
        self._check_stop(args)  # killed because the run is stopping: not a git failure
        return _Result(proc.returncode, out, self.scrub(err.decode("utf-8", "replace")),
                       mark)

    def _check_stop(self, args: Sequence[str]) -> None:
        if self.stop is not None and self.stop.is_set():
            raise GitError(f"`git {args[0]}` was stopped: the backup is stopping")

    def _retrying(self, args: Sequence[str], url: str, what: str, cwd: Path | None = None,
                  cleanup: Path | None = None, lfs: bool = False) -> _Result:
        """Run until success or a non-transient failure; GitUnavailable after the retries.
        A command refused authentication after its token expired is run again (a slow
        clone may hold a token longer than its margin): that is not the token's fault."""
        refused = 0
        for attempt in range(self.retries + 1):
            generation = self.tokens.generation if self.tokens is not None else 0
            result = self.run(args, cwd, lfs=lfs)
            while result.code and classify_failure(result.stderr) == "auth" and \
                    self.tokens is not None and refused < self.AUTH_RETRIES and \
                    self.tokens.expired_since(generation):
                refused += 1
                log.info("%s of %s was refused after its token expired: running it again "
                         "with a new one", what, url)
                if cleanup is not None and cleanup.exists():
                    shutil.rmtree(cleanup)
                generation = self.tokens.generation
                result = self.run(args, cwd, lfs=lfs)
            if result.code == 0 or classify_failure(result.stderr) != "transient":
                return result
            if attempt < self.retries:
                delay = self.backoff * 2 ** attempt
                log.warning("%s of %s failed (%s); retrying in %.1f s", what, url,
                            _cause(result.stderr), delay)
                if cleanup is not None and cleanup.exists():
                    shutil.rmtree(cleanup)
                if self.stop is not None:
                    self.stop.wait(delay)  # a stopping run does not wait out the backoff
                else:
                    time.sleep(delay)
        raise GitUnavailable(f"{what} of {url} kept failing after {self.retries + 1} attempts "
                             f"({_cause(result.stderr)}): GitHub or the network is unwell, run "
                             "the backup again later")

    def _raise(self, result: _Result, url: str, what: str) -> None:
        kind = classify_failure(result.stderr)
        if kind == "redirect":
            raise RemoteElsewhere(f"{url} redirects elsewhere: not followed, so the token is "
                                  "not sent there (a moved repository is backed up under its "
                                  "new name by the next run)")
        if kind == "not_found":
            raise RepoNotFound(f"repository {url} was not found: check the name, or that the "
                               "token can see it")
        if kind == "auth":
            failure = self.creds.failure_since(result.mark) if self.creds else None
            if failure is not None:
                raise failure  # the token could not be had: GitHub said why
            if self.creds is not None:
                raise GitAuthError(f"authentication failed for {url} with {self.credential}: "
                                   "check that the App's installation grants the Contents "
                                   "permission (read) on the repository")
            if self.token:
                raise GitAuthError(f"authentication failed for {url}: check that the token is "
                                   "valid, has the `repo` scope and is authorized for the "
                                   "organization's SSO")
            raise GitAuthError(f"authentication required for {url} (private repositories "
                               "answer 401 without credentials): set GITHUB_TOKEN to a token "
                               "with the `repo` scope")
        raise GitError(f"{what} of {url} failed: {_cause(result.stderr)}")

    # operations -----------------------------------------------------------------------------

    def refs(self, repo: Path) -> dict[str, str]:
        """Every ref of a local repository -> the object it points at."""
        result = self.run(["for-each-ref", "--format=%(objectname) %(refname)"], repo)
        if result.code:
            raise GitError(f"cannot list the refs of {repo}: {_cause(result.stderr)}")
        pairs = (line.split(" ", 1) for line in result.stdout.decode().splitlines() if line)
        return {ref: sha for sha, ref in pairs}

    def _check_remote(self, url: str) -> str:
        """`url`, checked to lie under the git origin or its gists' (RemoteElsewhere if
        not)."""
        try:
            url = self._check_url(url)
        except ConfigError:  # credentials in it, or not http(s): the API's word, not ours
            raise RemoteElsewhere("the API named a git URL that is not a plain http(s) URL "
                                  "without credentials in it: not fetched, so "
                                  "the token is not sent there") from None
        parts = urlsplit(url)
        for base in self.fetch_urls:
            b = urlsplit(base)
            # origin() maps a malformed port (the API's word) to -1: matches no base.
            if origin(url) == origin(base) and not origin(url).endswith(":-1") and \
                    (parts.path + "/").startswith(b.path.rstrip("/") + "/"):
                return url
        raise RemoteElsewhere(f"the API named {url}, outside the git origin "
                              f"{self.auth_urls[0]}: not fetched, so the token is not sent "
                              "there")

    def mirror(self, url: str, dest: Path) -> Mirror:
        """`git clone --mirror` of `url` into `dest` (all refs, including refs/pull/*)."""
        url = self._check_remote(url)
        dest = Path(dest).absolute()
        if dest.exists() and any(dest.iterdir()):
            raise GitError(f"cannot mirror {url} into {dest}: the directory is not empty")
        try:
            result = self._retrying(["clone", "--mirror", "--", url, str(dest)], url,
                                    "git clone", cleanup=dest)
            if result.code:
                self._raise(result, url, "git clone")
        except GitError:
            if dest.exists():  # a killed or failed clone leaves a partial directory
                shutil.rmtree(dest)
            raise
        refs = self.refs(dest)
        return Mirror(dest, refs, empty=not refs, url=url)

    def exists(self, url: str) -> bool:
        """Whether the repository answers `git ls-remote` (wikis exist once a page was made).

        False for 404 and for an anonymous 401; GitAuthError when the token is refused.
        False too (logged, not asked) for a URL outside the git origin.
        """
        try:
            url = self._check_remote(url)
        except RemoteElsewhere as e:
            log.warning("%s", e)
            return False
        result = self._retrying(["ls-remote", "--", url], url, "git ls-remote")
        if result.code == 0:
            return True
        kind = classify_failure(result.stderr)
        if kind == "not_found" or (kind == "auth" and not self.authenticated):
            return False
        self._raise(result, url, "git ls-remote")
        return False  # unreachable: _raise raises

    def bundle(self, mirror: Mirror, out: Path) -> bool:
        """`git bundle create out --all`, verified; False (and no file) for an empty repo."""
        out = Path(out).absolute()
        if mirror.empty:
            out.unlink(missing_ok=True)
            return False
        result = self.run(["bundle", "create", str(out), "--all"], mirror.path)
        problem = f"`git bundle create` failed: {_cause(result.stderr)}" if result.code else ""
        if not problem:  # verify needs a repository: the mirror holds every prerequisite
            result = self.run(["bundle", "verify", "--quiet", str(out)], mirror.path)
            problem = f"`git bundle verify` failed: {_cause(result.stderr)}" if result.code else ""
        if not problem:
            result = self.run(["bundle", "list-heads", str(out)], mirror.path)
            pairs = (line.split(" ", 1) for line in result.stdout.decode().splitlines() if line)
            heads = {ref: sha for sha, ref in pairs}
            heads.pop("HEAD", None)
            if result.code or heads != self.refs(mirror.path):
                problem = (f"the bundle lists {len(heads)} refs where the mirror has "
                           f"{len(mirror.refs)}")
        if problem:
            out.unlink(missing_ok=True)
            raise GitError(f"bundle of {mirror.url or mirror.path} is not sound ({problem}): "
                           "check the disk and run the backup again")
        return True

    def uses_lfs(self, mirror: Mirror) -> bool:
        """Whether a `.gitattributes` at the root of any ref's tree mentions filter=lfs.

        One `git cat-file --batch` over the distinct ref targets: cheap even with thousands of
        refs. (A `.gitattributes` only in a subdirectory, or only in older commits, is missed.)
        """
        targets = sorted(set(mirror.refs.values()))
        if not targets:
            return False
        query = "".join(f"{sha}:.gitattributes\n" for sha in targets).encode()
        result = self.run(["cat-file", "--batch"], mirror.path, stdin=query)
        if result.code:
            raise GitError(f"cannot read .gitattributes in {mirror.path}: "
                           f"{_cause(result.stderr)}")
        data, pos = result.stdout, 0
        while pos < len(data):
            end = data.index(b"\n", pos)
            header = data[pos:end].split()
            pos = end + 1
            if len(header) == 3 and header[2].isdigit():  # "<oid> <type> <size>", then data
                size = int(header[2])
                if header[1] == b"blob" and b"filter=lfs" in data[pos:pos + size]:
                    return True
                pos += size + 1
        return False

    def lfs_fetch(self, mirror: Mirror, detect: bool = True,
                  missing: list[str] | None = None) -> list[LfsObject]:
        """`git lfs fetch --all` in the mirror, then every object under lfs/objects.

        With `detect`, repositories without LFS (see `uses_lfs`) cost one `cat-file` and no
        request. Objects the server no longer has (404) are logged, left out and, when
        `missing` is given, their oids appended to it.
        """
        if mirror.empty or (detect and not self.uses_lfs(mirror)):
            return []
        url = mirror.url or str(mirror.path)
        result = self._retrying(["lfs", "fetch", "--all", "origin"], url, "git lfs fetch",
                                cwd=mirror.path, lfs=True)
        if result.code:
            if "not a git command" in result.stderr:
                raise GitError("git-lfs is not installed: install git-lfs (apt-get install "
                               "git-lfs) to back up LFS objects")
            lost = sorted(set(_LFS_MISSING.findall(result.stderr)))
            if not lost or classify_failure(result.stderr) in ("auth", "transient"):
                self._raise(result, url, "git lfs fetch")
            log.warning("%d LFS object(s) of %s are missing on the server: %s", len(lost), url,
                        ", ".join(lost))
            if missing is not None:
                missing.extend(lost)
        store = mirror.path / "lfs" / "objects"
        found = [LfsObject(p.name, p.stat().st_size, p) for p in store.glob("??/??/*")
                 if p.is_file() and LFS_OID.fullmatch(p.name)] if store.is_dir() else []
        return sorted(found, key=lambda o: o.oid)


__all__ = ["Git", "GitAuthError", "GitError", "GitUnavailable", "LfsObject", "Mirror",
           "RemoteElsewhere", "RepoNotFound", "classify_failure", "kill_children"]
