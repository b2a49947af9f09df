"""What each tool actually wrote, counted from its output, against the simulator's counts.

A fast run proves nothing if it skipped work: every backup the benchmark times is counted
here and the benchmark fails when a count falls short of the ground truth.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

# Every kind of content ghvault keeps: the contract's kinds (image/ghvault/contract.py),
# "owner" (finding the owner and listing its repositories, which every backup needs) and the
# parts of `account` and `hooks` that the peer does not keep with PEER_FLAGS while it keeps
# the rest. For each, the python-github-backup 0.65.1 option (of tools.PEER_FLAGS) that
# keeps it too, or None. This is the one statement of which kinds both tools keep: the
# counted kinds below and the request breakdown (bench/by_kind.py) derive from it.
PEER_KEEPS: dict[str, str | None] = {
    "owner": "(every backup)", "git": "--all", "wiki": "--wikis", "lfs": None,
    "issues": "--all", "comments": "--all", "events": "--all", "pulls": "--all",
    "reviews": "--pull-reviews", "review_comments": "--all", "commit_comments": None,
    "labels": "--all", "milestones": "--all", "releases": "--releases", "assets": "--assets",
    "hooks": "--all", "advisories": "--all (public repositories)", "gists": "--gists",
    "account": "--all (followers, following, starred, watched)",
    "account: starred gists": None,  # --starred-gists, not part of --all
    "account: organisation": None,  # members, owners, teams, custom property schema
    "hooks: organisation": None,
    "discussions": "--all", "projects": None, "attachments": None,  # --attachments: [*]
    "settings": None, "branch_protections": None, "rulesets": None, "collaborators": None,
    "deploy_keys": None, "environments": None, "actions": None, "autolinks": None,
    "pages": None, "gist_comments": None,
}
# The kinds the benchmark counts in both tools' output, each with the kind of PEER_KEEPS
# it belongs to (discussion_comments: comments and replies).
COUNTED: dict[str, str] = {
    "repos": "git", "issues": "issues", "pulls": "pulls", "comments": "comments",
    "reviews": "reviews", "releases": "releases", "discussions": "discussions",
    "discussion_comments": "discussions",
    "branch_protections": "branch_protections", "rulesets": "rulesets",
    "collaborators": "collaborators", "deploy_keys": "deploy_keys",
    "environments": "environments", "actions_variables": "actions",
    "actions_secret_names": "actions", "gist_comments": "gist_comments",
    "projects": "projects", "project_items": "projects", "attachments": "attachments",
}
KINDS = tuple(COUNTED)
PEER_KINDS = tuple(k for k in KINDS if PEER_KEEPS[COUNTED[k]])
# ghvault's counts of these JSON entries, per item: repos/<repo>/<file>, account/<file> and
# gists/<gist>/<file>.
GHVAULT_ONLY = {
    "branch_protections": ("branch_protections.json",),
    "rulesets": ("rulesets.json",),
    "collaborators": ("collaborators.json",),
    "deploy_keys": ("deploy_keys.json",),
    "environments": ("environments.json",),
    "actions_variables": ("actions_variables.json",),
    "actions_secret_names": ("actions_secret_names.json",),
    "gist_comments": ("comments.json",),
}
_BY_FILE = {file: kind for kind, files in GHVAULT_ONLY.items() for file in files}
# ghvault's content kinds, counted from the manifest's own tally, which `ghvault verify`
# holds against the entries. python-github-backup keeps discussions with --all (its
# `--attachments` keeps only files on github.com's own hosts, none on a simulator or an
# Enterprise host; it keeps no projects v2).
CONTENT_KINDS = ("discussions", "discussion_comments", "projects", "project_items",
                 "attachments")


def ghvault_counts(archive: Path) -> dict[str, int]:
    """Count the archive's entries themselves (not the manifest's own tally)."""
    counts = dict.fromkeys(KINDS, 0)
    with zipfile.ZipFile(archive) as z:
        for name in z.namelist():
            parts = name.split("/")
            if parts[0] in ("account", "repos", "gists") and parts[-1] in _BY_FILE \
                    and len(parts) == (2 if parts[0] == "account" else 3):
                counts[_BY_FILE[parts[-1]]] += len(json.loads(z.read(name)))
                continue
            if len(parts) != 3 or parts[0] != "repos":
                continue
            leaf = parts[2]
            if leaf == "repo.json":
                counts["repos"] += 1
            elif leaf == "issues.jsonl":
                for line in z.read(name).splitlines():
                    if line.strip() and "pull_request" not in json.loads(line):
                        counts["issues"] += 1
            elif leaf == "pulls.jsonl":
                counts["pulls"] += _lines(z.read(name))
            elif leaf == "issue_comments.jsonl":
                counts["comments"] += _lines(z.read(name))
            elif leaf == "reviews.jsonl":
                counts["reviews"] += _lines(z.read(name))
            elif leaf == "releases.json":
                counts["releases"] += len(json.loads(z.read(name)))
        tally = json.loads(z.read("MANIFEST.json")).get("counts", {})
        counts.update({k: tally.get(k, 0) for k in CONTENT_KINDS})
    return counts


def _lines(data: bytes) -> int:
    return sum(1 for line in data.splitlines() if line.strip())


def peer_counts(out: Path, gone: frozenset[str] = frozenset()) -> dict[str, int]:
    """Count python-github-backup's output directory, as tests/sim/test_sim_peer.py does.

    `gone`: repositories deleted on the server since an earlier run into the same directory
    (the peer keeps their files; they are not part of this month's ground truth).
    """
    counts = dict.fromkeys(PEER_KINDS, 0)
    repos = out / "repositories"
    if not repos.is_dir():
        return counts
    for repo in sorted(p for p in repos.iterdir() if p.is_dir() and p.name not in gone):
        if (repo / "repository").is_dir():
            counts["repos"] += 1
        for issue in (repo / "issues").glob("*.json"):
            counts["issues"] += 1
            counts["comments"] += len(_read(issue).get("comment_data") or [])
        for pull in (repo / "pulls").glob("*.json"):
            data = _read(pull)
            counts["pulls"] += 1
            counts["comments"] += len(data.get("comment_regular_data") or [])
            counts["reviews"] += len(data.get("review_data") or [])
        counts["releases"] += len(list((repo / "releases").glob("*.json")))
        for discussion in (repo / "discussions").glob("*.json"):
            counts["discussions"] += 1
            counts["discussion_comments"] += sum(
                1 + len(c.get("reply_data") or []) for c in
                _read(discussion).get("comment_data") or [] if isinstance(c, dict))
    return counts


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def shortfalls(expected: dict[str, int], got: dict[str, int],
               kinds: tuple[str, ...] = KINDS) -> list[str]:
    """Each of `kinds` whose count differs from the ground truth, as 'kind got/expected'
    (a kind the simulator has none of for this owner, gist comments of an organisation,
    is expected at 0)."""
    return [f"{kind} {got.get(kind, 0)}/{expected.get(kind, 0)}" for kind in kinds
            if got.get(kind, 0) != expected.get(kind, 0)]
