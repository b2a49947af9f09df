"""Every bad input to `ghvault run` ends with one sentence and exit 2, before any GitHub
or S3 work: the owner and month grammar (GitHub's login rules; months from 2008-01, GitHub's
launch, to the current month), the API URL, the work directory, the state location, and a
selection of kinds that leaves nothing to back up.

The destination is an S3 key whose endpoint is a closed port: had the engine touched S3,
the run would end with another code; the simulator counts GitHub requests (none allowed).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
from datetime import UTC, datetime

import pytest
from ghvault import cli, contract
from ghvault.errors import ConfigError

from tests.conftest import TOKEN
from tests.engine.helpers import GHVAULT


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def bad_input(sim, tmp_path):
    """Runs `ghvault run ARGS` with everything else valid; asserts exit 2, one error line
    naming `mentions`, no traceback and no GitHub request."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "AWS_"))}
    env.update({**sim.client_env(), "GITHUB_TOKEN": TOKEN, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}",
                "AWS_MAX_ATTEMPTS": "1"})
    defaults = {"--owner": "hubber", "--month": "2026-10", "--api-url": sim.api,
                "--dest": "s3://vault/github/hubber-2026-10.zip", "--workdir": str(tmp_path)}

    def check(*args: str, mentions: tuple[str, ...] = ()) -> str:
        given = dict(defaults)
        rest = list(args)
        while rest and rest[0] in given:
            flag = rest.pop(0)
            given[flag] = rest.pop(0)
        argv = [a for kv in given.items() for a in kv] + rest
        sim.reset()
        proc = subprocess.run([GHVAULT, "run", *argv], env=env, capture_output=True,
                              text=True, timeout=60)
        detail = f"{argv}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
        assert proc.returncode == 2, detail
        assert "Traceback" not in proc.stderr, detail
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert re.match(r"^ghvault( run)?: error: \S", lines[-1]), detail
        assert sum(": error:" in ln for ln in lines) == 1, detail
        for text in mentions:
            assert text in lines[-1], (text, lines[-1])
        assert not proc.stdout.strip(), detail
        assert sim.stats()["requests_total"] == 0, detail
        return lines[-1]
    return check


@pytest.mark.parametrize("owner", ["a/b", "../x", "x" * 101, "a b", "", "ab:c"])
def test_an_owner_that_is_not_a_github_login_exits_2(bad_input, owner):
    bad_input("--owner", owner, mentions=("--owner",))


@pytest.mark.parametrize("month", ["0000-01", "1999-01", "2007-12", "2099-01"])
def test_a_month_before_github_or_in_the_future_exits_2(bad_input, month):
    bad_input("--month", month, mentions=("--month", month, "2008-01"))


def test_the_month_range_runs_from_github_launch_to_the_current_month():
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert contract.check_month("2008-01", now) == "2008-01"
    assert contract.check_month("2026-12", now) == "2026-12"
    for month in ("2007-12", "2027-01", "0000-01", "9999-12"):
        with pytest.raises(ValueError, match="2008-01"):
            contract.check_month(month, now)
    # a schedule in a time zone ahead of UTC may already be in the next month
    eve = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
    assert contract.check_month("2027-01", eve) == "2027-01"
    with pytest.raises(ValueError):
        contract.check_month("2027-01", datetime(2026, 12, 31, 9, 0, tzinfo=UTC))
    # keys are laid out for any well-formed month (the DAG's previous month of 2008-01)
    assert contract.archive_key("", "o", contract.previous_month("2008-01")) == \
        "o/2007/12/o-2007-12.zip"


@pytest.mark.parametrize("url", ["notaurl", "api.github.com", "ftp://host/api/v3",
                                 "https://", "https://user:secret@host/api/v3",
                                 "https://host/api/v3?x=1", "https://host:port/api/v3",
                                 "https://host/api v3"])
def test_an_api_url_that_is_not_an_http_url_exits_2(bad_input, url):
    bad_input("--api-url", url, mentions=("--api-url",))


def test_a_workdir_that_does_not_exist_or_is_a_file_exits_2(bad_input, tmp_path):
    bad_input("--workdir", str(tmp_path / "missing"), mentions=("--workdir", "missing"))
    (tmp_path / "file").write_text("x")
    bad_input("--workdir", str(tmp_path / "file"), mentions=("--workdir",))


def test_a_state_that_is_not_a_directory_exits_2_before_the_backup(bad_input, tmp_path):
    bad_input("--state", "/etc/passwd", mentions=("--state", "/etc/passwd", "directory"))
    (tmp_path / "file").write_text("x")
    bad_input("--state", str(tmp_path / "file" / "sub"), mentions=("--state", "directory"))
    bad_input("--state", "gs://bucket/state/", mentions=("--state", "s3://"))


@pytest.mark.parametrize("selection", [
    ("--include", "git", "--exclude", "git"),
    ("--exclude", ",".join(contract.KINDS)),
    ("--include", "lfs"),  # LFS objects come with the git mirror
    ("--include", "assets"),  # assets come with releases
    ("--include", "reviews"),  # reviews come with pulls
])
def test_a_selection_that_leaves_nothing_useful_exits_2(bad_input, selection):
    error = bad_input(*selection)
    assert "--include" in error or "--exclude" in error, error


def test_excluding_a_kind_leaves_out_what_comes_with_it():
    def kinds(include=None, exclude=None):
        return cli.kinds_from(argparse.Namespace(include=include, exclude=exclude))

    assert kinds(exclude="git") == frozenset(contract.KINDS) - {"git", "lfs"}
    assert kinds(exclude="releases") == frozenset(contract.KINDS) - {"releases", "assets"}
    assert kinds(include="git,lfs,releases,assets") == {"git", "lfs", "releases", "assets"}
    # what the DAG passes for "everything but git": LFS objects are left out with it
    assert kinds(include=",".join(k for k in contract.KINDS if k != "git")) == \
        frozenset(contract.KINDS) - {"git", "lfs"}
    assert kinds(include="issues,assets") == {"issues"}
    with pytest.raises(ConfigError, match="no kind"):
        kinds(include="pulls,reviews", exclude="pulls")


def test_the_api_url_check_accepts_github_and_enterprise_urls():
    for url in ("https://api.github.com", "https://ghe.example.com/api/v3",
                "http://127.0.0.1:8080/api/v3", "https://[::1]:8443/api/v3/"):
        assert cli.check_api_url(url) == url


@pytest.mark.parametrize("url", ["github.com", "ssh://git@github.com", "git://host/",
                                 "https://x-access-token:ghp_secret@github.com",
                                 "https://host/?x=1", "https://host:port"])
def test_a_git_url_that_is_not_an_http_url_exits_2(bad_input, url):
    error = bad_input("--git-url", url, mentions=("--git-url",))
    assert "ghp_secret" not in error
