"""What each tool actually wrote, counted from its output, against the simulator's counts.

A fast run proves nothing if it skipped work: every backup the benchmark times is counted
here and the benchmark fails when a count falls short of the ground truth.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

KINDS = ("repos", "issues", "pulls", "comments", "reviews", "releases")
# ghvault's kinds beyond those: counted from the manifest's own tally, which `ghvault
# verify` holds against the entries (discussion_comments: comments and replies).
CONTENT_KINDS = ("discussions", "discussion_comments", "projects", "project_items",
                 "attachments")
# What python-github-backup (0.65.1) is asked to keep here. It has `--discussions` and
# `--attachments` now, but its attachments are only URLs on github.com's own hosts (none
# on a simulator or an Enterprise host), and it keeps no projects (v2): the table shows
# those kinds as not kept by it.
PEER_KINDS = KINDS
ALL_KINDS = KINDS + CONTENT_KINDS


def ghvault_counts(archive: Path) -> dict[str, int]:
    """Count the archive's entries themselves (not the manifest's own tally)."""
    counts = dict.fromkeys(KINDS, 0)
    with zipfile.ZipFile(archive) as z:
        for name in z.namelist():
            parts = name.split("/")
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
    counts = dict.fromkeys(KINDS, 0)
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
    return counts


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def shortfalls(expected: dict[str, int], got: dict[str, int],
               kinds: tuple[str, ...] = KINDS) -> list[str]:
    """Each kind whose count differs from the ground truth, as 'kind got/expected'."""
    return [f"{kind} {got.get(kind, 0)}/{expected[kind]}" for kind in kinds
            if got.get(kind, 0) != expected[kind]]
