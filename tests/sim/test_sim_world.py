"""The generated accounts: deterministic, cached, and holding every case a backup meets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.github_sim import generate, mutate
from tests.github_sim.gitrepos import ref_map


def test_tiny_generates_quickly_and_deterministically(tmp_path):
    t = time.monotonic()
    w1, d1 = generate.load("tiny", 3, tmp_path / "a")
    elapsed = time.monotonic() - t
    assert elapsed < 5, f"tiny took {elapsed:.1f}s"
    w2, d2 = generate.load("tiny", 3, tmp_path / "b")
    assert w1.counts() == w2.counts()
    for name, repo in w1.repos.items():
        assert repo.commit_shas == w2.repos[name].commit_shas
        if not repo.empty:
            assert ref_map(d1 / "git" / repo.owner / f"{repo.name}.git") == \
                ref_map(d2 / "git" / repo.owner / f"{repo.name}.git")
    t = time.monotonic()
    generate.load("tiny", 3, tmp_path / "a")  # cached
    assert time.monotonic() - t < 1
    w3, _ = generate.load("tiny", 4, tmp_path / "c")
    assert w3.counts() != w1.counts()


def test_world_has_every_case_a_backup_meets(sim):
    w = sim.sim.world
    for role in ("user", "org"):
        repos = w.repos_of(w.owners[role])
        assert any(r.private for r in repos) and any(not r.private for r in repos)
    user = w.repos_of(w.owners["user"])
    assert any(r.fork and r.parent for r in user)
    assert any(r.archived for r in user)
    assert any(r.empty for r in user)
    assert any(r.has_lfs and r.lfs_objects for r in user)
    assert any(r.wiki_exists for r in user)
    assert any(r.has_wiki and not r.wiki_exists for r in user)
    assert any(r.visibility == "internal" for r in w.repos_of(w.owners["org"]))
    gists = w.gists_of(w.owners["user"])
    assert any(len(g.files) > 1 for g in gists) and any(not g.public for g in gists)
    acct = w.accounts[w.owners["user"]]
    assert acct.starred and acct.followers and acct.following
    issues = [i for r in w.repos.values() for i in r.issues]
    assert max(len(i.comments) for i in issues) > 100  # more than one page of comments
    assert max(len(r.issues) for r in w.repos.values()) > 100  # several pages of issues
    pulls = [i for i in issues if i.pull]
    assert {"open", "closed"} <= {i.state for i in issues if not i.pull}
    assert any(p.pull.merged for p in pulls) and any(p.state == "open" for p in pulls)
    assert any(p.state == "closed" and not p.pull.merged for p in pulls)
    assert any(p.pull.reviews for p in pulls) and any(p.pull.review_comments for p in pulls)
    assert any(r.commit_comments for r in w.repos.values())
    assert any(rel.assets for r in w.repos.values() for rel in r.releases)
    assert all(r.labels and r.milestones for r in w.repos.values() if len(r.issues) > 20)


def test_git_refs_match_the_pull_requests(sim):
    w = sim.sim.world
    repo = w.repos[f"{w.owners['user']}/toolbox"]
    refs = ref_map(sim.sim.repo_dir(repo.owner, repo.name))
    assert "refs/notes/commits" in refs
    assert "refs/tags/v0.1" in refs and "refs/tags/v1.0" in refs
    out = subprocess.run(["git", "cat-file", "-t", "v1.0"], cwd=sim.sim.repo_dir(
        repo.owner, repo.name), capture_output=True, text=True).stdout.strip()
    assert out == "tag"  # annotated
    for pr in repo.pulls:
        assert refs[f"refs/pull/{pr.number}/head"] == pr.pull.head_sha
        if pr.state == "open":
            assert refs[f"refs/heads/{pr.pull.head_ref}"] == pr.pull.head_sha
    assert refs["refs/heads/main"] == repo.commit_shas[-1]


def test_command_line_writes_the_ready_file(tmp_path):
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.github_sim", "--size", "tiny", "--seed", "7", "--port",
         "0", "--tls", "--token", "ghp_cliTOKEN00000000000000000000000000000",
         "--latency-ms", "1", "--faults", "502:0", "--rate-limit", "100",
         "--ready-file", str(ready)],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            if ready.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        for key in ("api_url", "git_url", "graphql_url", "owners", "token", "ca_cert", "counts"):
            assert info[key], key
        assert info["token"] == "ghp_cliTOKEN00000000000000000000000000000"
        assert info["api_url"].endswith("/api/v3")
        assert set(info["owners"]) == {"user", "org"}
        assert info["counts"]["user"]["repos"] > 0
        r = requests.get(f"{info['api_url']}/user", verify=info["ca_cert"],
                         headers={"Authorization": f"token {info['token']}"})
        assert r.status_code == 200 and r.json()["login"] == info["owners"]["user"]
        assert r.headers["x-ratelimit-limit"] == "100"
        root = info["api_url"].removesuffix("/api/v3")
        stats = requests.get(f"{root}/_sim/stats", verify=info["ca_cert"]).json()
        for key in ("requests_total", "not_modified", "rate_limited", "by_endpoint",
                    "peak_concurrency"):
            assert key in stats
        assert stats["requests_total"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    assert not Path(info["data_dir"]).exists()  # runtime copy removed on exit


def test_bad_fault_spec_is_one_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tests.github_sim", "--faults", "teapot:0.5",
                           "--ready-file", str(tmp_path / "r.json")],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
                          env={**os.environ})
    assert proc.returncode == 2
    assert "unknown fault 'teapot'" in proc.stderr


# ---------------------------------------------------------------------------------------------
# time: generated history lies in a fixed past span, a month of activity comes after it


@pytest.mark.parametrize("size", [s for s in generate.SIZES if s not in generate.SCALE_SIZES])
def test_generated_timestamps_lie_in_a_fixed_past_span(size):
    """No created/updated/pushed (or any other) stamp in the future, and all of them older
    than the activity /_sim/mutate adds, which starts 25 days before the call."""
    world, _ = generate.load(size, 7)
    stamps = dict(world.timestamps())
    assert len(stamps) > 100
    repos = world.repos.values()
    for r in repos:  # the stamps `since=`-based clients key on are among them
        assert r.created_at in stamps.values() and r.updated_at in stamps.values()
    earliest, latest = min(stamps.values()), max(stamps.values())
    mutate_start = generate.iso(int(time.time()) - mutate.MONTH_START_AGO)
    assert generate.iso(generate.BASE_EPOCH) <= earliest
    assert latest <= generate.iso(generate.END_EPOCH) < mutate_start, latest
    for r in repos:
        for stamp in (r.created_at, r.updated_at, r.pushed_at):
            assert stamp is None or stamp <= generate.iso(generate.END_EPOCH), r.full_name


def test_mutated_activity_is_dated_in_the_past_month_and_found_by_since(fresh_sim):
    w = fresh_sim.sim.world
    before = {(r.full_name, i.number): (i.updated_at, len(i.comments))
              for r in w.repos.values() for i in r.issues}
    comments_before = {c.id for r in w.repos.values() for i in r.issues for c in i.comments}
    called = time.time()
    summary = requests.post(f"{fresh_sim.root}/_sim/mutate", verify=str(fresh_sim.ca),
                            timeout=60).json()
    assert summary["new_issues"] and summary["edited_issues"] and summary["new_comments"]
    now = generate.iso(int(time.time()))
    month_start = generate.iso(int(called) - mutate.MONTH_START_AGO)
    changed: dict[str, set[int]] = {}
    new_comments: dict[str, set[int]] = {}
    for r in w.repos.values():
        for i in r.issues:
            if before.get((r.full_name, i.number), (None,))[0] != i.updated_at:
                assert month_start <= i.updated_at <= now, (r.full_name, i.number)
                changed.setdefault(r.full_name, set()).add(i.number)
            for c in i.comments:
                if c.id not in comments_before:
                    assert month_start <= c.created_at <= now
                    new_comments.setdefault(r.full_name, set()).add(c.id)
    pushed = set(summary["pushed_repos"])
    assert pushed and pushed <= set(changed)
    for name in pushed:
        assert month_start <= w.repos[name].pushed_at <= now
        assert month_start <= w.repos[name].updated_at <= now
    # what an incremental client asks: everything changed since its last run (before the
    # month began) comes back, and nothing else
    s = fresh_sim.session(fresh_sim.token)
    since = generate.iso(int(called) - mutate.MONTH_START_AGO - 86400)
    for name in pushed:
        got: set[int] = set()
        url = f"{fresh_sim.api}/repos/{name}/issues"
        params = {"state": "all", "since": since, "per_page": 100}
        while url:
            r = s.get(url, params=params, timeout=30)
            assert r.status_code == 200, r.text
            got |= {i["number"] for i in r.json()}
            url, params = r.links.get("next", {}).get("url"), None
        assert got == changed[name], name
        r = s.get(f"{fresh_sim.api}/repos/{name}/issues/comments",
                  params={"since": since, "per_page": 100}, timeout=30)
        assert r.status_code == 200
        assert {c["id"] for c in r.json()} == new_comments[name], name
