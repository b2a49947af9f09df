"""`ghvault run` failing: every failure is loud, specific and leaves nothing behind.

Each failure must end with its documented exit code, one line on stderr that names the
cause and the fix (no traceback), no token anywhere in the output, and nothing published
at the final key (no object, no manifest, no multipart upload left open). The real CLI
runs as a subprocess against the GitHub simulator and moto's S3 server; where a failure
has to happen mid-run (S3 failing during the upload, a repository deleted right after
discovery) a small forwarding proxy sits between the engine and the real service and
answers the chosen requests itself.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError

from tests.conftest import TOKEN, RunningSim
from tests.github_sim.generate import cache_root
from tests.github_sim.tls import ensure_certs, server_context

GHVAULT = str(Path(sys.executable).with_name("ghvault"))
OWNER = "hubber"  # the tiny world's user
MONTH = "2026-10"
# GitHub's 5xx retry budget in the engine (GitHubClient: GithubRetry(total=8,
# backoff_factor=0.5, backoff_max=60)): 9 attempts, sleeping 0+1+2+4+8+16+32+60 s.


# running the CLI ---------------------------------------------------------------------------

def run_cli(api_url: str, sim: RunningSim, moto, *args: str, token: str | None = TOKEN,
            extra_env: dict[str, str] | None = None, timeout: int = 300,
            command: tuple[str, ...] = (GHVAULT,)) -> tuple[subprocess.CompletedProcess, float]:
    """`ghvault run` as a subprocess; `token=None` runs with no GitHub credentials at all;
    `command` replaces the `ghvault` executable (same arguments after it)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "GH_")) and k != "AWS_CA_BUNDLE"}
    env.update({**sim.client_env(), **moto.env(), **(extra_env or {})})
    if token is not None:
        env["GITHUB_TOKEN"] = token
    started = time.monotonic()
    proc = subprocess.run([*command, "run", "--api-url", api_url, *args], env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc, time.monotonic() - started


def secret_forms(token: str) -> list[str]:
    """The token as it could leak: itself, URL-quoted, and in Basic auth (git, PyGithub)."""
    forms = {token, quote(token, safe="")}
    for raw in (f"x-access-token:{token}", f"{token}:x-oauth-basic", f"{token}:"):
        forms.add(base64.b64encode(raw.encode()).decode().rstrip("="))
    return sorted(forms)


def assert_loud_failure(proc: subprocess.CompletedProcess, code: int, *mentions: str,
                        token: str = TOKEN) -> str:
    """Exit `code`, one readable error line last on stderr naming every `mentions`, no
    traceback, no summary on stdout, no token anywhere. Returns the error line."""
    detail = f"exit {proc.returncode}\nstdout: {proc.stdout[-1500:]}\nstderr: {proc.stderr[-3000:]}"
    assert proc.returncode == code, detail
    assert "Traceback" not in proc.stderr, detail
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines, detail
    error = lines[-1]
    assert re.match(r"^ghvault( run)?: error: \S", error), detail
    assert sum(": error:" in line for line in lines) == 1, detail
    for text in mentions:
        assert text in error, (text, error)
    assert not proc.stdout.strip(), detail  # no summary: nothing was published
    for form in secret_forms(token):
        assert form not in proc.stdout and form not in proc.stderr, "the token leaked"
    return error


def assert_nothing_published(moto, bucket: str, key: str) -> None:
    s3 = moto.client("s3")
    for name in (key, key + ".manifest.json"):
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket=bucket, Key=name)
        assert e.value.response["Error"]["Code"] in ("404", "NoSuchKey"), name
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), "upload left open"


# fixtures ----------------------------------------------------------------------------------

@pytest.fixture
def clean_gh(gh: RunningSim) -> RunningSim:
    set_faults(gh, "")
    gh.reset()
    yield gh
    set_faults(gh, "")


def set_faults(sim: RunningSim, spec: str, latency_ms: int = 0) -> None:
    r = requests.post(f"{sim.root}/_sim/faults", params={"latency_ms": latency_ms},
                      data=spec, verify=str(sim.ca), timeout=30)
    r.raise_for_status()


@pytest.fixture
def bucket(moto_server) -> str:
    name = f"ghvault-fail-{uuid.uuid4().hex[:12]}"
    moto_server.client("s3").create_bucket(Bucket=name)
    return name


def dest_key(bucket: str) -> tuple[str, str]:
    key = f"github/{OWNER}/2026/10/{OWNER}-{MONTH}.zip"
    return key, f"s3://{bucket}/{key}"


# 1. credentials ----------------------------------------------------------------------------

def test_a_token_github_refuses_exits_3(clean_gh, moto_server, bucket):
    bad = "ghp_REFUSEDt0kenAbCdEf0123456789abcdefXY"
    key, dest = dest_key(bucket)
    proc, _ = run_cli(clean_gh.api, clean_gh, moto_server, "--owner", OWNER, "--month", MONTH,
                      "--dest", dest, token=bad)
    assert_loud_failure(proc, 3, "GITHUB_TOKEN", token=bad)
    assert clean_gh.stats()["by_status"].get("401"), clean_gh.stats()["by_status"]
    assert_nothing_published(moto_server, bucket, key)


def test_no_token_at_all_exits_3_naming_github_token(clean_gh, moto_server, bucket):
    key, dest = dest_key(bucket)
    proc, _ = run_cli(clean_gh.api, clean_gh, moto_server, "--owner", OWNER, "--month", MONTH,
                      "--dest", dest, token=None)
    assert_loud_failure(proc, 3, "GITHUB_TOKEN")
    assert clean_gh.stats()["requests_total"] == 0
    assert_nothing_published(moto_server, bucket, key)


# 2. owner ----------------------------------------------------------------------------------

def test_an_owner_that_does_not_exist_exits_4(clean_gh, moto_server, bucket):
    key, dest = dest_key(bucket)
    proc, _ = run_cli(clean_gh.api, clean_gh, moto_server, "--owner", "no-such-owner-4711",
                      "--month", MONTH, "--dest", dest)
    assert_loud_failure(proc, 4, "no-such-owner-4711", "--owner")
    assert clean_gh.stats()["requests_total"] <= 3  # /user, /users/{owner}
    assert_nothing_published(moto_server, bucket, key)


# 3. destination and arguments ---------------------------------------------------------------

def test_a_missing_bucket_exits_5_before_any_github_request(clean_gh, moto_server):
    missing = f"ghvault-missing-{uuid.uuid4().hex[:12]}"
    proc, elapsed = run_cli(clean_gh.api, clean_gh, moto_server, "--owner", OWNER,
                            "--month", MONTH, "--dest", f"s3://{missing}/x/{OWNER}.zip")
    assert_loud_failure(proc, 5, missing, "--dest")
    assert clean_gh.stats()["requests_total"] == 0
    assert elapsed < 30, elapsed
    with pytest.raises(ClientError):  # and it was not created on the way
        moto_server.client("s3").head_bucket(Bucket=missing)


@pytest.mark.parametrize("dest", [
    "gs://{bucket}/x.zip",                      # not s3:// or file://
    "https://{bucket}.s3.amazonaws.com/x.zip",  # an S3 URL, but not s3://
    "s3://{bucket}/github/x.tar.gz",            # not .zip
    "s3://{bucket}",                            # no key
    "s3://{bucket}/github/",                    # a prefix, not a key
    "file://relative/x.zip",                    # not an absolute local path
    "file:///tmp/ghvault-failures/x.tgz",       # not .zip
])
def test_a_dest_that_is_not_a_zip_url_exits_2(clean_gh, moto_server, bucket, dest):
    proc, _ = run_cli(clean_gh.api, clean_gh, moto_server, "--owner", OWNER, "--month", MONTH,
                      "--dest", dest.format(bucket=bucket))
    assert_loud_failure(proc, 2, "--dest", ".zip")
    assert clean_gh.stats()["requests_total"] == 0
    assert not moto_server.client("s3").list_objects_v2(Bucket=bucket).get("Contents")


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-10", "2026/10", "october"])
def test_a_bad_month_exits_2(clean_gh, moto_server, bucket, month):
    key, dest = dest_key(bucket)
    proc, _ = run_cli(clean_gh.api, clean_gh, moto_server, "--owner", OWNER, "--month", month,
                      "--dest", dest)
    assert_loud_failure(proc, 2, "--month", month, "YYYY-MM")
    assert clean_gh.stats()["requests_total"] == 0
    assert_nothing_published(moto_server, bucket, key)


@pytest.mark.parametrize("flag", ["--repos", "--exclude-repos"])
def test_a_bad_repos_regex_exits_2(clean_gh, moto_server, bucket, flag):
    key, dest = dest_key(bucket)
    proc, _ = run_cli(clean_gh.api, clean_gh, moto_server, "--owner", OWNER, "--month", MONTH,
                      "--dest", dest, flag, "web-(site|app")
    assert_loud_failure(proc, 2, flag, "regex")
    assert clean_gh.stats()["requests_total"] == 0
    assert_nothing_published(moto_server, bucket, key)


@pytest.mark.parametrize("flag", ["--include", "--exclude"])
def test_an_unknown_kind_exits_2(clean_gh, moto_server, bucket, flag):
    key, dest = dest_key(bucket)
    proc, _ = run_cli(clean_gh.api, clean_gh, moto_server, "--owner", OWNER, "--month", MONTH,
                      "--dest", dest, flag, "issues,packages")
    error = assert_loud_failure(proc, 2, "packages")
    # the fix: the kinds there are to choose from
    assert "choose from" in error and "issues" in error.split("choose from", 1)[1], error
    assert clean_gh.stats()["requests_total"] == 0
    assert_nothing_published(moto_server, bucket, key)


# 4. GitHub unavailable ---------------------------------------------------------------------

def test_github_rate_limiting_every_request_exits_6_in_bounded_time(clean_gh, moto_server,
                                                                    bucket):
    """Secondary rate limits on every request (retry-after 1 s): the bounded retries run
    out and the run fails with exit 6, promptly and without publishing."""
    set_faults(clean_gh, "secondary:1.0,retry-after=1")
    key, dest = dest_key(bucket)
    proc, elapsed = run_cli(clean_gh.api, clean_gh, moto_server, "--owner", OWNER,
                            "--month", MONTH, "--dest", dest)
    error = assert_loud_failure(proc, 6, "rate limit")
    print(f"secondary:1.0 -> exit {proc.returncode} in {elapsed:.1f} s: {error}")
    st = clean_gh.stats()
    assert st["secondary_rate_limited"] == st["requests_total"] <= 10, st["by_status"]
    assert elapsed < 30, elapsed
    assert_nothing_published(moto_server, bucket, key)


def test_github_answering_502_to_everything_exits_6(clean_gh, moto_server, bucket):
    """With --retries 2 the bounded budget is spent in seconds (the default 8 takes about
    two minutes of exponential backoff), and the error names GitHub's answer."""
    set_faults(clean_gh, "502:1.0")
    key, dest = dest_key(bucket)
    proc, elapsed = run_cli(clean_gh.api, clean_gh, moto_server, "--owner", OWNER,
                            "--month", MONTH, "--dest", dest, "--retries", "2")
    error = assert_loud_failure(proc, 6, "later")
    assert "502" in error, error
    print(f"502:1.0 -> exit {proc.returncode} in {elapsed:.1f} s: {error}")
    st = clean_gh.stats()
    assert st["faults"].get("502") == st["requests_total"] == 3, st
    assert elapsed < 30, elapsed
    assert_nothing_published(moto_server, bucket, key)


# 7. secrets in failing runs -----------------------------------------------------------------

@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_a_failing_run_never_prints_the_token(clean_gh, moto_server, bucket, verbose):
    key, dest = dest_key(bucket)
    args = ["--owner", "no-such-owner-4711", "--month", MONTH, "--dest", dest]
    proc, _ = run_cli(clean_gh.api, clean_gh, moto_server, *args, *(["-v"] if verbose else []))
    assert proc.returncode == 4, proc.stderr[-2000:]
    for form in secret_forms(TOKEN):
        assert form not in proc.stdout and form not in proc.stderr
    if verbose:  # debug logging of the HTTP layers was really on
        assert len(proc.stderr.splitlines()) > 2, proc.stderr
    else:
        assert_loud_failure(proc, 4, "--owner")
    assert_nothing_published(moto_server, bucket, key)


def test_a_token_in_a_run_github_fails_is_never_printed(clean_gh, moto_server, bucket):
    """5xx on the first request, then secondary limits: the distinctive token (sent on
    every request) appears in no output, verbose included."""
    distinctive = TOKEN  # the only one the simulator accepts; distinctive enough to find
    set_faults(clean_gh, "502@1,secondary:1.0,retry-after=1")
    key, dest = dest_key(bucket)
    proc, _ = run_cli(clean_gh.api, clean_gh, moto_server, "--owner", OWNER, "--month", MONTH,
                      "--dest", dest, "-v", token=distinctive)
    assert proc.returncode == 6, proc.stderr[-2000:]
    for form in secret_forms(distinctive):
        assert form not in proc.stdout and form not in proc.stderr
    assert_nothing_published(moto_server, bucket, key)


# 8. bugs -----------------------------------------------------------------------------------

# `ghvault` with a programming error where the client calls PyGithub's requester (inside the
# client's error handling for network failures), its message carrying the token.
WITH_A_BUG = """
import os, sys
from github.Requester import Requester

def broken(self, verb, url, *args, **kwargs):
    raise TypeError("cannot build the headers from " + os.environ["GITHUB_TOKEN"])

Requester.requestJson = broken
from ghvault.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_bug_is_an_internal_error_with_its_traceback_once(clean_gh, moto_server, bucket):
    """Not "GitHub unavailable" (exit 6, which Airflow retries): exit 1, the scrubbed
    traceback once in the log, then one line naming the error; no token anywhere."""
    key, dest = dest_key(bucket)
    proc, _ = run_cli(clean_gh.api, clean_gh, moto_server, "--owner", OWNER, "--month", MONTH,
                      "--dest", dest, command=(sys.executable, "-c", WITH_A_BUG))
    detail = f"exit {proc.returncode}\nstdout: {proc.stdout[-1500:]}\nstderr: {proc.stderr[-3000:]}"
    assert proc.returncode == 1, detail
    assert proc.stderr.count("Traceback (most recent call last):") == 1, detail
    assert "in broken" in proc.stderr, detail  # the frame that raised is shown
    assert "TypeError: cannot build the headers from [REDACTED]" in proc.stderr, detail
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1] == "ghvault: internal error: TypeError: cannot build the headers from " \
                        "[REDACTED]", detail
    assert "unavailable" not in proc.stderr.lower(), detail
    for form in secret_forms(TOKEN):
        assert form not in proc.stdout and form not in proc.stderr, "the token leaked"
    assert not proc.stdout.strip(), detail
    assert_nothing_published(moto_server, bucket, key)


# a forwarding proxy for failures in mid-run -----------------------------------------------

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "transfer-encoding", "upgrade", "expect", "content-length"}
Answer = tuple[int, list[tuple[str, str]], bytes]
Decide = Callable[[str, str], "Answer | str | None"]  # None: forward; "drop": close


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def finish_request(self, request, client_address) -> None:
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: ForwardingProxy

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        self.relay()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def relay(self) -> None:
        body = self.read_body()
        answer = self.proxy.decide(self.command, self.path, body) if self.proxy.with_body \
            else self.proxy.decide(self.command, self.path)
        if answer == "drop":
            self.proxy.record(self.command, self.path, "drop")
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if answer is not None:
            status, headers, payload = answer
            self.proxy.record(self.command, self.path, status)
            return self.reply(status, headers, payload)
        conn = self.proxy.upstream_connection()
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():  # Host included: URLs stay the proxy's
                if name.lower() not in HOP_BY_HOP:
                    conn.putheader(name, value)
            if body or self.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            payload = resp.read()
            headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            self.proxy.record(self.command, self.path, resp.status)
            self.reply(resp.status, headers, payload, resp.reason)
        finally:
            conn.close()

    def reply(self, status: int, headers: list[tuple[str, str]], payload: bytes,
              reason: str | None = None) -> None:
        self.send_response(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(0 if status in (204, 304) else len(payload)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(payload)


class ForwardingProxy:
    """Forwards every request to `upstream` as it came (method, path and query, headers,
    body) unless `decide(method, target)` answers it: an (status, headers, body) answer,
    or "drop" to close the connection without one. `seen` records what happened.
    `with_body`: `decide(method, target, body)` (GraphQL requests differ by body only)."""

    def __init__(self, upstream: str, decide: Decide, *, tls: ssl.SSLContext | None = None,
                 cafile: str | None = None, with_body: bool = False):
        self.with_body = with_body
        parts = urlsplit(upstream)
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.client_tls = ssl.create_default_context(cafile=cafile) if cafile else None
        self.decide = decide
        self.seen: list[tuple[str, str, int | str]] = []
        self.lock = threading.Lock()
        handler = type("Handler", (_ProxyHandler,), {"proxy": self})
        self.server = _ProxyServer(("127.0.0.1", 0), handler)
        self.server.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"

    def upstream_connection(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=120,
                                               context=self.client_tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=120)

    def record(self, method: str, target: str, outcome: int | str) -> None:
        with self.lock:
            self.seen.append((method, target, outcome))

    def __enter__(self) -> ForwardingProxy:
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# 5. the destination failing mid-upload ---------------------------------------------------

S3_INTERNAL_ERROR: Answer = (500, [("Content-Type", "application/xml")], (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message>"
    b"<RequestId>4442587FB7D0A2F9</RequestId></Error>"))


def s3_operation(method: str, target: str) -> str:
    query = parse_qs(urlsplit(target).query, keep_blank_values=True)
    if method == "PUT" and "partNumber" in query and "uploadId" in query:
        return "UploadPart"
    if method == "POST" and "uploadId" in query:
        return "CompleteMultipartUpload"
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    return f"{method} other"


@pytest.mark.parametrize("operation,failure", [
    ("UploadPart", "500"), ("UploadPart", "drop"),
    ("CompleteMultipartUpload", "500"), ("CompleteMultipartUpload", "drop"),
])
def test_s3_failing_mid_upload_keeps_the_previous_archive(clean_gh, moto_server, bucket,
                                                          operation, failure):
    key, dest = dest_key(bucket)
    s3 = moto_server.client("s3")
    previous = b"PK\x05\x06" + b"\x00" * 18 + b"the previous good archive"
    previous_manifest = b'{"archive": {"sha256": "previous"}}'
    s3.put_object(Bucket=bucket, Key=key, Body=previous)
    s3.put_object(Bucket=bucket, Key=key + ".manifest.json", Body=previous_manifest)
    etags = {k: s3.head_object(Bucket=bucket, Key=k)["ETag"]
             for k in (key, key + ".manifest.json")}

    def decide(method: str, target: str) -> Answer | str | None:
        if s3_operation(method, target) == operation:
            return "drop" if failure == "drop" else S3_INTERNAL_ERROR
        return None

    with ForwardingProxy(moto_server.endpoint, decide) as proxy:
        # botocore retries 5xx and dropped connections; two attempts keep the test quick
        proc, elapsed = run_cli(clean_gh.api, clean_gh, moto_server, "--owner", OWNER,
                                "--month", MONTH, "--dest", dest,
                                extra_env={"AWS_ENDPOINT_URL": proxy.url,
                                           "AWS_MAX_ATTEMPTS": "2"})
    error = assert_loud_failure(proc, 5, f"s3://{bucket}/{key}", "again")
    print(f"{operation} {failure} -> exit {proc.returncode} in {elapsed:.1f} s: {error}")
    ops = [(s3_operation(m, t), outcome) for m, t, outcome in proxy.seen]
    failed = [o for o in ops if o[0] == operation]
    # AWS_MAX_ATTEMPTS=2 means two attempts in all; the engine passes it to botocore as
    # Config(retries={"max_attempts"}), which counts retries, so today it makes three
    assert 2 <= len(failed) <= 3 and all(o[1] in ("drop", 500) for o in failed), ops
    assert ("AbortMultipartUpload", 204) in ops, ops  # the engine aborted the upload
    assert not any(m == "PUT" and ".manifest.json" in t for m, t, _ in proxy.seen), ops
    # the previous archive and its manifest are untouched, and no upload is left open
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == previous
    assert s3.get_object(Bucket=bucket, Key=key + ".manifest.json")["Body"].read() == \
        previous_manifest
    for k, etag in etags.items():
        assert s3.head_object(Bucket=bucket, Key=k)["ETag"] == etag, k
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


# 6. a repository deleted during the run ---------------------------------------------------

def test_a_repository_deleted_after_discovery_is_skipped(clean_gh, moto_server, bucket):
    """The proxy lets the repository list through, then answers 404 for everything of
    hubber/old-site (API and git), as GitHub does once a repository is deleted."""
    gone = "old-site"
    api_prefix = f"/api/v3/repos/{OWNER}/{gone}"
    git_prefixes = (f"/{OWNER}/{gone}.git", f"/{OWNER}/{gone}.wiki.git")
    listed = threading.Event()

    def decide(method: str, target: str, body: bytes) -> Answer | None:
        path = urlsplit(target).path
        if path in (f"/api/v3/users/{OWNER}/repos", "/api/v3/user/repos"):
            listed.set()
            return None
        if not listed.is_set():
            return None
        if path == "/api/graphql" and json.loads(body).get("variables", {}).get("name") == gone:
            return (200, [("Content-Type", "application/json; charset=utf-8")], json.dumps({
                "data": {"repository": None}, "errors": [{
                    "type": "NOT_FOUND", "path": ["repository"],
                    "locations": [{"line": 2, "column": 3}],
                    "message": f"Could not resolve to a Repository with the name "
                               f"'{OWNER}/{gone}'."}]}).encode())
        if path == api_prefix or path.startswith(api_prefix + "/"):
            return (404, [("Content-Type", "application/json; charset=utf-8")], json.dumps({
                "message": "Not Found", "status": "404",
                "documentation_url": "https://docs.github.com/rest"}).encode())
        if path.startswith(git_prefixes):
            return 404, [("Content-Type", "text/plain; charset=utf-8")], \
                b"Repository not found.\n"
        return None

    _, cert, tls_key = ensure_certs(cache_root() / "tls")
    key, dest = dest_key(bucket)
    with ForwardingProxy(clean_gh.root, decide, tls=server_context(cert, tls_key),
                         cafile=str(clean_gh.ca), with_body=True) as proxy:
        proc, elapsed = run_cli(f"{proxy.url}/api/v3", clean_gh, moto_server, "--owner", OWNER,
                                "--month", MONTH, "--dest", dest)
    print(f"deleted repository -> exit {proc.returncode} in {elapsed:.1f} s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    denied = [(t, o) for _, t, o in proxy.seen if gone in t]
    assert any(t.startswith(api_prefix) and o == 404 for t, o in denied), denied
    assert any(t.startswith(git_prefixes) and o == 404 for t, o in denied), denied

    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["skipped"], summary
    assert all(f"{OWNER}/{gone}" in s["item"] for s in summary["skipped"]), summary["skipped"]

    s3 = moto_server.client("s3")
    z = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    names = set(z.namelist())
    inner = json.loads(z.read("MANIFEST.json"))
    assert inner["skipped"] == summary["skipped"]
    assert not any(n.startswith(f"repos/{gone}/") and n.endswith((".bundle", ".jsonl"))
                   for n in names), sorted(n for n in names if gone in n)
    world = clean_gh.sim.world
    others = [r for r in world.repos_of(OWNER) if r.name != gone]
    assert len(others) >= 4
    for repo in others:
        assert f"repos/{repo.name}/repo.json" in names, repo.name
        assert f"repos/{repo.name}/issues.jsonl" in names, repo.name
        marker = "git.empty.json" if repo.empty else "git.bundle"
        assert f"repos/{repo.name}/{marker}" in names, repo.name
    sidecar = json.loads(s3.get_object(Bucket=bucket, Key=key + ".manifest.json")["Body"].read())
    assert sidecar["skipped"] == summary["skipped"]
