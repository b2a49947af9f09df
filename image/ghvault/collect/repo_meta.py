"""A repository's metadata: issues, comments, events, pulls, reviews, labels, milestones,
releases and their assets, commit comments and hooks.

Requests: one paginated list per kind (100 per page) over the repository-wide streams, and
one GraphQL query per 100 pull requests for their reviews. Never one request per item,
except the release asset downloads themselves.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFound, OptionalDenied
from ..layout import release_asset_entries, repo_entry
from . import Job, scratch_file
from .reviews import collect_reviews
from .spill import IssueTexts

log = logging.getLogger("ghvault.collect")

# (kind, archive file (see layout.REPO_FILES), path under /repos/{o}/{r}, query parameters)
STREAMS = [
    ("issues", "issues.jsonl", "/issues", {"state": "all", "sort": "created", "direction": "asc"}),
    ("comments", "issue_comments.jsonl", "/issues/comments",
     {"sort": "created", "direction": "asc"}),
    ("events", "issue_events.jsonl", "/issues/events", {}),
    ("pulls", "pulls.jsonl", "/pulls", {"state": "all", "sort": "created", "direction": "asc"}),
    ("review_comments", "review_comments.jsonl", "/pulls/comments",
     {"sort": "created", "direction": "asc"}),
    ("commit_comments", "commit_comments.jsonl", "/comments", {}),
]
DOCUMENTS = [
    ("labels", "labels.json", "/labels", {}),
    ("milestones", "milestones.json", "/milestones", {"state": "all"}),
    ("hooks", "hooks.json", "/hooks", {}),
    ("advisories", "security_advisories.json", "/security-advisories", {}),
]


@dataclass
class Streamed:
    """What a caller needs of a list written to the archive: counts, and the numbers of
    the pull requests (ints) when asked. No per-item record: a repository's comments are
    tens of thousands of items, and a list of them grew with the largest repository."""

    items: int = 0
    pulls: int = 0  # items that are pull requests (the issue list holds both)
    numbers: list[int] = field(default_factory=list)


def stream_to_jsonl(job: Job, name: str, path: str, params: dict[str, Any],
                    etags: list[str] | None = None,
                    keep: IssueTexts | None = None, numbers: bool = False) -> Streamed:
    """Write every item of a list to a JSONL entry; returns its counts (and with
    `numbers`, the items' numbers). With `keep`, the items themselves are kept there by
    number as well, as compact JSON."""
    got = Streamed()
    with job.archive.jsonl(name) as out:
        for item in job.client.paginate(path, params, etags=etags):
            out.write(item)
            got.items += 1
            got.pulls += "pull_request" in item
            if numbers:
                got.numbers.append(item.get("number"))
            if keep is not None and item.get("number") is not None:
                keep[item["number"]] = json.dumps(item, separators=(",", ":"))
    return got


def events_to_jsonl(job: Job, name: str, path: str, issues: IssueTexts | None) -> int:
    """A repository's issue events (newest first; an event never changes once made).

    With --state and this run's issue list (compact JSON by number), only the events new
    since last month are read (see GitHubClient.paginate_newest_first): older ones come
    from last month's list with the issue each embeds replaced by its current version,
    and events of issues no longer in the repository left out, which is what reading the
    whole list would give.
    """
    if job.client.cache is None or issues is None:
        return stream_to_jsonl(job, name, path, {}).items

    def slim(event: dict) -> dict:  # the issue is refreshed next month anyway
        return {**event, "issue": {"number": (event.get("issue") or {}).get("number")}}

    def refresh(event: dict) -> dict | None:
        text = issues.get(event["issue"]["number"])
        return None if text is None else {**event, "issue": json.loads(text)}

    n = 0
    with job.archive.jsonl(name) as out:
        for event in job.client.paginate_newest_first(path, {}, slim=slim, refresh=refresh):
            out.write(event)
            n += 1
    return n


def collect_repo_metadata(job: Job, repo: dict[str, Any]) -> None:
    job.archive.add_json(repo_entry(repo["name"], "repo.json"), repo)
    # This run's issues by number, for refreshing last month's events (with --state).
    issues = IssueTexts(job.workdir) if job.client.cache is not None else None
    try:
        _collect_lists(job, repo, issues)
    finally:
        if issues is not None:
            issues.close()


def _collect_lists(job: Job, repo: dict[str, Any], issues: IssueTexts | None) -> None:
    full, name = repo["full_name"], repo["name"]
    base = f"/repos/{full}"
    pulls: list[int] = []
    pulls_etags: list[str] = []
    issues_read = False  # the whole issue list was read (and `issues` holds it)
    for kind, filename, path, params in STREAMS:
        if not job.wants(kind):
            continue
        try:
            if kind == "events":
                job.ledger.add(kind, events_to_jsonl(
                    job, repo_entry(name, filename), base + path,
                    issues if issues_read else None))
                continue
            got = stream_to_jsonl(job, repo_entry(name, filename), base + path, params,
                                  pulls_etags if kind == "pulls" else None,
                                  issues if kind == "issues" else None,
                                  numbers=kind == "pulls")
        except OptionalDenied as e:
            job.ledger.skip(f"{full} {kind}", str(e))
            continue
        except NotFound as e:
            if kind == "issues" and not repo.get("has_issues", True):
                continue  # issues disabled: GitHub answers 410/404, nothing to keep
            raise e
        if kind == "issues":
            issues_read = True
            job.ledger.add("issues", got.items - got.pulls)
        elif kind == "pulls":
            pulls = got.numbers
            job.ledger.add("pulls", got.items)
        else:
            job.ledger.add(kind, got.items)
    for kind, filename, path, params in DOCUMENTS:
        if not job.wants(kind) or (kind == "advisories" and repo.get("private")):
            continue  # repository advisories of private repositories need admin rights
        try:
            items = list(job.client.paginate(base + path, params))
        except (OptionalDenied, NotFound) as e:
            job.ledger.skip(f"{full} {kind}", str(e))
            continue
        job.archive.add_json(repo_entry(name, filename), items)
        job.ledger.add(kind, len(items))
    if job.wants("reviews") and pulls:
        collect_reviews(job, repo, pulls, repo_entry(name, "reviews.jsonl"),
                        pulls_etags if job.wants("pulls") else None)
    if job.wants("releases"):
        collect_releases(job, repo)


def collect_releases(job: Job, repo: dict[str, Any]) -> None:
    """releases.json (the releases as listed, each asset with its `archive_path` once it is
    in the archive) and, with `assets`, every asset under a name unique by construction
    (see layout.release_asset_entries)."""
    full = repo["full_name"]
    releases = list(job.client.paginate(f"/repos/{full}/releases"))
    job.ledger.add("releases", len(releases))
    if job.wants("assets"):
        entries = release_asset_entries(repo["name"], releases)
        releases = [{**release, "assets": [
            _archive_asset(job, full, asset, name)
            for asset, name in zip(release.get("assets") or [], names, strict=True)]}
            for release, names in zip(releases, entries, strict=True)]
    job.archive.add_json(repo_entry(repo["name"], "releases.json"), releases)


def _archive_asset(job: Job, full: str, asset: dict[str, Any], name: str) -> dict[str, Any]:
    """The asset's bytes into the archive entry `name` (from the state's copy when there is
    a good one); the asset's metadata with `archive_path`, or as listed when skipped."""
    # The release list already carries its assets: no request per release.
    doing = f"downloading asset {asset.get('id')} of {full}"
    with scratch_file(job.workdir, "asset-", doing) as tmp:
        try:
            if job.assets is None or not job.assets.fetch(asset, tmp):
                job.client.download(asset["url"], tmp)
                if job.assets is not None:
                    job.assets.keep(asset, tmp)
            job.archive.add_file(name, tmp)
            job.ledger.add("release_assets")
            return {**asset, "archive_path": name}
        except NotFound as e:
            job.ledger.skip(f"{full} asset {asset['name']}", str(e))
            return asset
