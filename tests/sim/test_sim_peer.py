"""A real third-party client, unchanged, against the simulator: python-github-backup.

If the simulator were unfaithful (shapes, paging, auth, git transport, TLS, asset
redirects), this client would fail or write something different from the ground truth.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.github_sim.gitrepos import ref_map

PEER_FLAGS = ["--all", "--private", "--fork", "--pull-reviews", "--gists", "--wikis", "--bare",
              "--releases", "--assets"]


def run_peer(sim, owner: str, out: Path, env: dict,
             org: bool = False) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("github-backup")
    cmd = [str(exe), owner, "-H", sim.host, "-t", sim.token, "-o", str(out), *PEER_FLAGS]
    if org:
        cmd.append("--organization")
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def peer_runs(sim, tmp_path_factory):
    """Back up the tiny user and org once; the tests below read what it wrote."""
    import os

    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "HOME": str(home), "GIT_TERMINAL_PROMPT": "0", **sim.client_env()}
    results = {}
    for role, org in (("user", False), ("org", True)):
        login = sim.sim.world.owners[role]
        out = tmp_path_factory.mktemp(f"pgb-{role}")
        sim.reset()
        proc = run_peer(sim, login, out, env, org=org)
        results[role] = (proc, out, sim.stats())
    return results


@pytest.mark.parametrize("role", ["user", "org"])
def test_peer_backs_up_successfully(peer_runs, role):
    proc, out, stats = peer_runs[role]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "repositories").is_dir()
    assert stats["requests_total"] > 0
    # The peer walks every issue and pull one by one; the simulator saw all of it.
    assert stats["by_endpoint"].get("GET /repos/{owner}/{repo}/issues/{issue_number}/comments")


@pytest.mark.parametrize("role", ["user", "org"])
def test_peer_mirrors_have_the_simulators_refs(peer_runs, sim, role):
    proc, out, _ = peer_runs[role]
    login = sim.sim.world.owners[role]
    repos = sim.sim.world.repos_of(login)
    checked = 0
    for repo in repos:
        mirror = out / "repositories" / repo.name / "repository"
        assert mirror.is_dir(), f"{repo.full_name} was not cloned"
        source = sim.sim.repo_dir(repo.owner, repo.name)
        assert ref_map(mirror) == ref_map(source), repo.full_name
        checked += 1
        if repo.wiki_exists:
            wiki = out / "repositories" / repo.name / "wiki"
            assert ref_map(wiki) == ref_map(sim.sim.repo_dir(repo.owner, repo.name, True))
    assert checked == len(repos)


@pytest.mark.parametrize("role", ["user", "org"])
def test_peer_wrote_the_ground_truth_counts(peer_runs, sim, role):
    _, out, _ = peer_runs[role]
    counts = sim.sim.world.counts()[role]
    repos_dir = out / "repositories"
    issues = list(repos_dir.glob("*/issues/*.json"))
    pulls = list(repos_dir.glob("*/pulls/*.json"))
    assert len(issues) == counts["issues"]
    assert len(pulls) == counts["pulls"]
    comments = sum(len(json.loads(p.read_text()).get("comment_data", [])) for p in issues)
    comments += sum(len(json.loads(p.read_text()).get("comment_regular_data", []))
                    for p in pulls)
    assert comments == counts["comments"]
    reviews = sum(len(json.loads(p.read_text()).get("review_data", [])) for p in pulls)
    assert reviews == counts["reviews"]
    releases = list(repos_dir.glob("*/releases/*.json"))
    # The peer sees drafts too (the token owns the repositories).
    assert len(releases) == counts["releases"]
    assets = [p for p in repos_dir.glob("*/releases/*/*") if p.is_file()]
    assert len(assets) == counts["release_assets"]
    # its --all keeps discussions (GraphQL), each comment with its replies
    discussions = [json.loads(p.read_text()) for p in repos_dir.glob("*/discussions/*.json")]
    assert len(discussions) == counts["discussions"] > 0
    assert sum(1 + len(c["reply_data"]) for d in discussions
               for c in d["comment_data"]) == counts["discussion_comments"]
    if role == "user":
        gists = list((out / "gists").glob("*/gist.json"))
        assert len(gists) == counts["gists"]
        account = out / "account"
        assert len(json.loads((account / "followers.json").read_text())) == counts["followers"]
        assert len(json.loads((account / "starred.json").read_text())) == counts["starred"]


def test_peer_leaks_the_token_into_git_config(peer_runs, sim):
    """What NOTES.md says of the peer, shown on the simulator: the design we must beat."""
    _, out, _ = peer_runs["user"]
    config = (out / "repositories" / "toolbox" / "repository" / "config").read_text()
    assert sim.token in config
