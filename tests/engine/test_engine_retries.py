"""Retries on a bad day: answers cut mid-body, downloads cut short, a git server outage.

The simulator cuts answers (`cut@N`: the headers promise the whole body, half of it comes,
then the connection closes), cuts asset downloads (`download-cut=N`) and takes its git
transport down (`git-outage=S`: 503 to every git request for S seconds). A run meeting
any of them must retry and produce the archive it would have produced anyway; a fault
that outlasts the retries must end in exit 6 with a message saying how many tries were
made.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import zipfile

import pytest
import requests
from ghvault.git import Git, GitUnavailable
from ghvault.github.client import GitHubClient
from github import Auth

from tests.conftest import RunningSim
from tests.engine.helpers import run_ghvault
from tests.github_sim.faults import Faults
from tests.github_sim.gitrepos import ref_map

OWNER = "hubber"


@pytest.fixture
def clean_gh(gh: RunningSim) -> RunningSim:
    gh.sim.faults = Faults()
    gh.reset()
    yield gh
    gh.sim.faults = Faults()


@pytest.fixture
def tls_env(gh, monkeypatch):
    for key, value in gh.client_env().items():
        monkeypatch.setenv(key, value)


def backup(gh: RunningSim, moto, name: str, *args: str):
    bucket = f"retries-{name}"
    moto.client("s3").create_bucket(Bucket=bucket)
    key = f"github/{OWNER}/2026/10/{OWNER}-2026-10.zip"
    proc = run_ghvault(gh, moto, "--owner", OWNER, "--month", "2026-10",
                       "--dest", f"s3://{bucket}/{key}", *args)
    return proc, bucket, key


def archive_counts(moto, bucket: str, key: str) -> dict:
    body = moto.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return json.loads(zipfile.ZipFile(io.BytesIO(body)).read("MANIFEST.json"))["counts"]


def assert_ground_truth(gh: RunningSim, counts: dict, *kinds: str) -> None:
    truth = gh.sim.world.counts()["user"]
    for kind in kinds:
        assert counts.get(kind, 0) == truth[kind], kind


# answers cut mid-body ------------------------------------------------------------------------

def test_an_api_answer_cut_mid_body_is_retried_and_the_archive_is_whole(clean_gh, moto_server):
    clean_gh.sim.faults = Faults.parse("cut@2+4+9")
    proc, bucket, key = backup(clean_gh, moto_server, "cut")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert clean_gh.stats()["faults"].get("cut") == 3
    assert "was cut short" in proc.stderr and "try 1 of 9" in proc.stderr
    counts = archive_counts(moto_server, bucket, key)
    assert_ground_truth(clean_gh, counts, "repos", "issues", "pulls", "comments", "releases",
                        "release_assets", "empty_repos")
    assert counts["git_bundles"] + counts.get("empty_repos", 0) == counts["repos"]


def test_an_answer_cut_every_time_exits_6_saying_how_many_tries(clean_gh, moto_server):
    clean_gh.sim.faults = Faults.parse("cut:1")
    proc, _, _ = backup(clean_gh, moto_server, "cut-always", "--retries", "2")
    assert proc.returncode == 6, proc.stderr[-3000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert "cut its answer to" in error and "in 3 tries" in error, error
    assert "Traceback" not in proc.stderr
    assert clean_gh.stats()["faults"]["cut"] == 3  # three requests, not one


def test_a_release_asset_download_cut_short_is_downloaded_again(clean_gh, moto_server):
    clean_gh.sim.faults = Faults.parse("download-cut=2")
    proc, bucket, key = backup(clean_gh, moto_server, "download-cut")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert clean_gh.stats()["faults"].get("download-cut") == 2
    counts = archive_counts(moto_server, bucket, key)
    assert_ground_truth(clean_gh, counts, "release_assets")
    body = moto_server.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    z = zipfile.ZipFile(io.BytesIO(body))
    truth = sorted(hashlib.sha256(a.data).hexdigest() for r in clean_gh.sim.world.repos.values()
                   if r.owner == OWNER for rel in r.releases for a in rel.assets)
    stored = sorted(hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()
                    if "/releases/" in n and not n.endswith("/releases.json"))
    assert stored == truth


def test_a_download_cut_every_time_says_how_many_tries(clean_gh, tls_env, tmp_path):
    clean_gh.sim.faults = Faults.parse("download-cut=100")
    client = GitHubClient(clean_gh.api, Auth.Token(clean_gh.token), max_tries=1)
    repo = next(r for r in clean_gh.sim.world.repos.values()
                if r.owner == OWNER and any(rel.assets for rel in r.releases))
    asset = next(a for rel in repo.releases for a in rel.assets)
    from ghvault.errors import GitHubUnavailable

    with pytest.raises(GitHubUnavailable, match=r"cut short in each of 2 tries"):
        client.download(f"{clean_gh.api}/repos/{repo.full_name}/releases/assets/{asset.id}",
                        str(tmp_path / "asset"))
    assert clean_gh.stats()["faults"]["download-cut"] == 2


# git server outage ---------------------------------------------------------------------------

def test_a_3_second_git_outage_is_retried_and_the_archive_is_whole(clean_gh, moto_server):
    clean_gh.sim.faults = Faults.parse("git-outage=3")
    proc, bucket, key = backup(clean_gh, moto_server, "git-outage")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert clean_gh.stats()["faults"].get("git-outage", 0) >= 1
    assert re.search(r"failed \(.*503.*\); retrying in", proc.stderr), proc.stderr[-3000:]
    counts = archive_counts(moto_server, bucket, key)
    assert_ground_truth(clean_gh, counts, "repos", "wikis", "lfs_objects", "gists",
                        "empty_repos")
    assert counts["git_bundles"] + counts.get("empty_repos", 0) == counts["repos"]


def test_a_git_outage_outlasting_the_retries_says_how_many_tries(clean_gh, tls_env, tmp_path,
                                                                 caplog):
    clean_gh.sim.faults = Faults.parse("git-outage=60")
    git = Git(clean_gh.root, clean_gh.token, tmp_path / "work", 60, retries=2, backoff=0.05)
    with caplog.at_level(logging.WARNING, "ghvault.git"), pytest.raises(GitUnavailable) as e:
        git.mirror(f"{clean_gh.root}/{OWNER}/toolbox.git", tmp_path / "tb.git")
    assert "after 3 attempts" in str(e.value) and "503" in str(e.value)
    assert clean_gh.stats()["faults"]["git-outage"] == 3
    assert sum("retrying in" in r.getMessage() for r in caplog.records) == 2
    assert not (tmp_path / "tb.git").exists()


def test_a_git_outage_shorter_than_the_backoff_costs_nothing_but_time(clean_gh, tls_env,
                                                                      tmp_path):
    clean_gh.sim.faults = Faults.parse("git-outage=1")
    git = Git(clean_gh.root, clean_gh.token, tmp_path / "work", 60, retries=3, backoff=0.6)
    mirror = git.mirror(f"{clean_gh.root}/{OWNER}/toolbox.git", tmp_path / "tb.git")
    assert mirror.refs == ref_map(clean_gh.sim.repo_dir(OWNER, "toolbox"))
    assert clean_gh.stats()["faults"]["git-outage"] >= 1


def test_the_simulator_cut_fault_really_cuts(clean_gh):
    clean_gh.sim.faults = Faults.parse("cut@1")
    s = clean_gh.session(clean_gh.token)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        s.get(f"{clean_gh.api}/users/{OWNER}/repos", timeout=30)
    assert s.get(f"{clean_gh.api}/users/{OWNER}/repos", timeout=30).json()


@pytest.mark.parametrize(("spec", "says"), [("502:1", "answered 502 for"),
                                            ("drop:1", "did not answer")])
def test_an_error_after_the_retries_says_how_many_tries_were_made(clean_gh, moto_server, spec,
                                                                  says):
    clean_gh.sim.faults = Faults.parse(spec)
    proc, _, _ = backup(clean_gh, moto_server, f"tries-{spec[:3]}", "--retries", "1")
    assert proc.returncode == 6, proc.stderr[-3000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert says in error and "in 2 tries" in error, error
    assert clean_gh.stats()["requests_total"] == 2
