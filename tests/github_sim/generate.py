"""Deterministic accounts for the simulator, cached on disk by size and seed.

`load(size, seed)` returns the World and the directory holding its git repositories
(`git/{owner}/{repo}.git`, `git/{owner}/{repo}.wiki.git`, `git/gist/{id}.git`) and LFS
objects (`lfs/{owner}/{repo}/...`). The first call for a (size, seed) builds them; later
calls read the cache. Bump GENERATOR_VERSION whenever the output would change.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import gitrepos
from .generate_content import add_content
from .generate_settings import build_settings
from .gitrepos import History, Person
from .model import (
    Account,
    Comment,
    CommitComment,
    Gist,
    Issue,
    IssueEvent,
    Label,
    Milestone,
    PullInfo,
    Release,
    ReleaseAsset,
    Repo,
    Review,
    ReviewComment,
    Team,
    World,
)

GENERATOR_VERSION = 170  # content and settings joined
USER_LOGIN = "hubber"
ORG_LOGIN = "hubworks"
UPSTREAM_LOGIN = "upstream-dev"
# Every generated timestamp lies in this fixed past span (the same for every seed and
# whatever today's date): each size's `time_scale` shrinks the generator's time steps so
# that its whole history fits, and the build fails loudly if it ever would not. The span
# ends long before any month of activity `/_sim/mutate` adds (it dates that activity in
# the 25 days before the moment it runs), so `since=` queries behave as on GitHub.
BASE_EPOCH = 1_609_495_200  # 2021-01-01T10:00:00Z
END_EPOCH = 1_751_328_000  # 2025-07-01T00:00:00Z

OTHER_LOGINS = [
    "alice-k", "bmiller", "chen-wei", "dkowalski", "e-rossi", "fatima-z", "gsato", "hnguyen",
    "ivan-p", "jmorales", "kaveh", "lucia-dev", "mo-ahmed", "nkim", "olu-ade", "priya-r",
    "qzhang", "rsmith", "sofia-l", "tomasz-b", "uma-s", "vlad-i", "wen-li", "yusuf-k",
]
WORDS = (
    "cache build deploy pipeline retry timeout config parser token schema index queue worker "
    "release backup archive mirror bundle stream upload region bucket policy lifecycle glacier "
    "manifest checksum verify restore label milestone review comment issue branch tag merge "
    "docs test flaky slow memory leak crash error warning upgrade dependency security audit"
).split()
LABELS = [
    ("bug", "d73a4a", "Something isn't working"), ("enhancement", "a2eeef", "New feature"),
    ("documentation", "0075ca", "Improvements or additions to documentation"),
    ("good first issue", "7057ff", "Good for newcomers"), ("question", "d876e3", "Further info"),
    ("wontfix", "ffffff", "This will not be worked on"), ("performance", "fbca04", "Speed"),
]


@dataclass(frozen=True)
class SizeSpec:
    filler_repos: int  # per owner, on top of the special repositories
    main_items: int  # issues + pulls in each owner's main repository
    filler_items: int  # issues + pulls per filler repository (on average)
    pr_share: float
    comment_weights: tuple[int, ...]  # relative odds of 0, 1, 2, ... comments on an item
    busy_comments: int  # comments on the busiest item (more than one page)
    main_commits: int
    big_repos: int  # repositories with a large history
    big_repo_mb: int
    gists: int
    time_scale: float  # generated time steps are multiplied by this (see BASE_EPOCH)


SIZES = {
    "tiny": SizeSpec(0, 110, 0, 0.35, (5, 4, 3, 2, 1), 105, 12, 0, 0, 3, 1.0),
    "small": SizeSpec(5, 260, 50, 0.35, (3, 4, 4, 3, 2, 1, 1), 130, 30, 1, 3, 5, 0.8),
    "medium": SizeSpec(18, 800, 92, 0.34, (1, 3, 4, 4, 3, 2, 2, 1, 1, 1), 160, 60, 2, 24, 8,
                       0.18),
}


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock:
    """Monotonic generated time: every event happens a little after the previous one."""

    def __init__(self, rng: random.Random, start: int = BASE_EPOCH, scale: float = 1.0):
        self.rng = rng
        self.now = start
        self.scale = scale

    def step(self, lo: int, hi: int) -> int:
        """A random time step between lo and hi seconds, times the clock's scale."""
        return max(1, round(self.rng.randint(lo, hi) * self.scale))

    def tick(self, lo: int = 60, hi: int = 36_000) -> int:
        self.now += self.step(lo, hi)
        return self.now


def sentence(rng: random.Random, lo: int = 4, hi: int = 10) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))).capitalize()


def paragraph(rng: random.Random, n: int = 3) -> str:
    return " ".join(sentence(rng) + "." for _ in range(n))


def person(login: str) -> Person:
    return Person(login, f"{login}@users.noreply.example.com")


class Builder:
    def __init__(self, size: str, seed: int, root: Path):
        self.spec = SIZES[size]
        self.size = size
        self.rng = random.Random(f"{size}:{seed}")
        self.root = root
        self.clock = Clock(self.rng, BASE_EPOCH, self.spec.time_scale)
        self.world = World(seed=seed, size=size,
                           owners={"user": USER_LOGIN, "org": ORG_LOGIN},
                           accounts={}, repos={}, gists={})
        self.ids = 1000

    def new_id(self, step: int = 1) -> int:
        self.ids += self.rng.randint(1, 9) * step
        return self.ids

    # accounts ---------------------------------------------------------------------------

    def accounts(self) -> None:
        w, rng = self.world, self.rng
        for login in OTHER_LOGINS + [UPSTREAM_LOGIN]:
            t = self.clock.tick()
            w.accounts[login] = Account(login, self.new_id(), "User",
                                        login.replace("-", " ").title(), iso(t), iso(t),
                                        bio=sentence(rng))
        t = self.clock.tick()
        user = Account(USER_LOGIN, self.new_id(), "User", "Hubber McVault", iso(t), iso(t),
                       bio="Keeps backups of everything.", company="@" + ORG_LOGIN,
                       location="Lisbon", email=f"{USER_LOGIN}@example.com",
                       blog="https://hubber.example.com")
        user.followers = sorted(rng.sample(OTHER_LOGINS, 9))
        user.following = sorted(rng.sample(OTHER_LOGINS, 6))
        org = Account(ORG_LOGIN, self.new_id(), "Organization", "Hub Works", iso(t), iso(t),
                      bio="We build things that last.", location="Remote",
                      blog="https://hubworks.example.com")
        org.members = sorted([USER_LOGIN] + rng.sample(OTHER_LOGINS, 8))
        org.admins = [USER_LOGIN]
        w.accounts[USER_LOGIN] = user
        w.accounts[ORG_LOGIN] = org

    # repositories -----------------------------------------------------------------------

    def repo(self, owner: str, name: str, *, visibility: str = "public", fork: bool = False,
             archived: bool = False, has_wiki: bool = True, wiki: bool = False,
             lfs: bool = False, empty: bool = False, parent: str | None = None) -> Repo:
        rng = self.rng
        t = self.clock.tick()
        repo = Repo(
            id=self.new_id(100), owner=owner, name=name, description=sentence(rng, 3, 8),
            private=visibility != "public", visibility=visibility, fork=fork,
            archived=archived, has_issues=True, has_wiki=has_wiki, wiki_exists=wiki,
            has_lfs=lfs, empty=empty,
            language=None if empty else rng.choice(["Python", "Go", "TypeScript", "Shell"]),
            topics=sorted(rng.sample(WORDS, rng.randint(0, 3))), default_branch="main",
            created_at=iso(t), updated_at=iso(t), pushed_at=None if empty else iso(t),
            license=None if empty else rng.choice(["MIT", "Apache-2.0", None]), parent=parent,
            stargazers=rng.randint(0, 40), watchers=rng.randint(1, 9),
            forks_count=rng.randint(0, 5))
        if not empty:
            repo.labels = [Label(self.new_id(), n, c, d, default=True) for n, c, d in LABELS]
        self.world.repos[repo.full_name] = repo
        return repo

    def repositories(self) -> list[tuple[Repo, int, int]]:
        """Create every repository; returns (repo, items, commits) to fill in."""
        s, rng = self.spec, self.rng
        out: list[tuple[Repo, int, int]] = []
        upstream = self.repo(UPSTREAM_LOGIN, "fastlib")
        out.append((upstream, 6, 6))
        u, o = USER_LOGIN, ORG_LOGIN
        out.append((self.repo(u, "toolbox", wiki=True), s.main_items, s.main_commits))
        out.append((self.repo(u, "dotfiles", visibility="private", has_wiki=True), 8, 5))
        out.append((self.repo(u, "fastlib", fork=True, parent=upstream.full_name,
                              has_wiki=False), 0, 0))
        out.append((self.repo(u, "old-site", archived=True, wiki=True), 5, 4))
        out.append((self.repo(u, "scratch", empty=True, has_wiki=False), 0, 0))
        out.append((self.repo(u, "media-assets", lfs=True, has_wiki=False), 4, 4))
        out.append((self.repo(o, "platform", wiki=True), s.main_items, s.main_commits))
        out.append((self.repo(o, "infra", visibility="private", has_wiki=False), 12, 6))
        out.append((self.repo(o, "internal-tools", visibility="internal", has_wiki=False), 6, 4))
        out.append((self.repo(o, "handbook", wiki=True), 3, 3))
        for owner in (u, o):
            for i in range(s.filler_repos):
                name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}"
                vis = "private" if rng.random() < 0.3 else "public"
                items = max(0, int(rng.gauss(s.filler_items, s.filler_items / 3)))
                out.append((self.repo(owner, name, visibility=vis, wiki=rng.random() < 0.2),
                            items, rng.randint(5, 20)))
        return out

    # issues and pulls -------------------------------------------------------------------

    def items(self, repo: Repo, n: int, busy: bool) -> None:
        rng, s = self.rng, self.spec
        if n == 0:
            return
        repo.milestones = []
        for k in range(1, 3 if n < 20 else 5):
            t = self.clock.tick()
            closed = k == 1
            repo.milestones.append(Milestone(
                self.new_id(), k, f"v{k}.0", sentence(rng), "closed" if closed else "open",
                repo.owner if repo.owner != ORG_LOGIN else USER_LOGIN, iso(t), iso(t),
                iso(t) if closed else None, iso(t + 30 * 86400)))
        busy_number = rng.randint(1, n) if busy else -1
        for number in range(1, n + 1):
            is_pr = rng.random() < s.pr_share
            self.issue(repo, number, is_pr, s.busy_comments if number == busy_number else None)

    def who(self, repo: Repo) -> str:
        pool = OTHER_LOGINS[:12] + [USER_LOGIN] * 4
        return self.rng.choice(pool)

    def issue(self, repo: Repo, number: int, is_pr: bool, comments: int | None) -> None:
        rng = self.rng
        created = self.clock.tick()
        author = self.who(repo)
        if is_pr:
            state = rng.choices(["open", "merged", "closed"], [25, 55, 20])[0]
        else:
            state = rng.choices(["open", "closed"], [30, 70])[0]
        labels = sorted({rng.choice(repo.labels).name for _ in range(rng.randint(0, 2))})
        assignees = sorted(set(rng.sample(OTHER_LOGINS[:12], rng.randint(0, 2))))
        milestone = rng.choice([None, None] + [m.number for m in repo.milestones])
        title = sentence(rng, 3, 9)
        issue = Issue(
            id=self.new_id(), number=number, title=title, body=paragraph(rng, rng.randint(1, 4)),
            user=author, state="open" if state == "open" else "closed",
            state_reason=None if state == "open" else ("completed" if not is_pr else None),
            created_at=iso(created), updated_at=iso(created), closed_at=None, closed_by=None,
            labels=labels, assignees=assignees, milestone=milestone,
            locked=rng.random() < 0.03)
        t = created
        n_comments = comments if comments is not None else rng.choices(
            range(len(self.spec.comment_weights)), self.spec.comment_weights)[0]
        for _ in range(n_comments):
            t += self.clock.step(60, 20_000)
            issue.comments.append(Comment(self.new_id(), self.who(repo), paragraph(rng, 2),
                                          iso(t), iso(t)))
        for label in labels:
            t += self.clock.step(5, 600)
            issue.events.append(IssueEvent(self.new_id(), author, "labeled", iso(t), label=label))
        for a in assignees:
            t += self.clock.step(5, 600)
            issue.events.append(IssueEvent(self.new_id(), USER_LOGIN, "assigned", iso(t),
                                           assignee=a))
        if milestone is not None:
            t += self.clock.step(5, 600)
            issue.events.append(IssueEvent(self.new_id(), USER_LOGIN, "milestoned", iso(t),
                                           milestone=f"v{milestone}.0"))
        if rng.random() < 0.1:
            t += self.clock.step(5, 600)
            new_title = sentence(rng, 3, 9)
            issue.events.append(IssueEvent(self.new_id(), author, "renamed", iso(t),
                                           rename_from=title, rename_to=new_title))
            issue.title = new_title
        if is_pr:
            issue.pull = PullInfo(head_ref=f"pr-{number}", head_sha="", base_ref="main",
                                  base_sha="", commits=[], merged=state == "merged",
                                  merged_at=None, merged_by=None, merge_commit_sha=None,
                                  draft=state == "open" and rng.random() < 0.2,
                                  additions=rng.randint(1, 400), deletions=rng.randint(0, 200),
                                  changed_files=rng.randint(1, 12))
            for _ in range(rng.choices([0, 1, 2, 3], [3, 4, 2, 1])[0]):
                t += self.clock.step(60, 20_000)
                review = Review(self.new_id(), rng.choice(OTHER_LOGINS[:12]),
                                rng.choice(["", paragraph(rng, 1)]),
                                rng.choice(["APPROVED", "CHANGES_REQUESTED", "COMMENTED"]),
                                iso(t), "")
                issue.pull.reviews.append(review)
                previous: int | None = None
                for _ in range(rng.choices([0, 1, 2, 3], [4, 3, 2, 1])[0]):
                    t += self.clock.step(5, 900)
                    rc = ReviewComment(self.new_id(), review.id, review.user, sentence(rng),
                                       f"src/module_{rng.randint(0, 4)}.py",
                                       rng.randint(1, 40), "", iso(t), iso(t),
                                       in_reply_to_id=previous if rng.random() < 0.3 else None)
                    previous = rc.id
                    issue.pull.review_comments.append(rc)
        if state != "open":
            t += self.clock.step(600, 200_000)
            closer = USER_LOGIN if rng.random() < 0.7 else author
            issue.closed_at = iso(t)
            issue.closed_by = closer
            if state == "merged":
                issue.pull.merged_at = iso(t)
                issue.pull.merged_by = closer
                issue.events.append(IssueEvent(self.new_id(), closer, "merged", iso(t)))
            issue.events.append(IssueEvent(self.new_id(), closer, "closed", iso(t)))
            if rng.random() < 0.08:
                t += self.clock.step(600, 9_000)
                issue.events.append(IssueEvent(self.new_id(), author, "reopened", iso(t)))
                issue.state, issue.closed_at, issue.closed_by = "open", None, None
                issue.state_reason = "reopened"
                if issue.pull:
                    issue.pull.merged, issue.pull.merged_at, issue.pull.merged_by = (
                        False, None, None)
        issue.updated_at = iso(max(t, created))
        self.clock.now = max(self.clock.now, t)
        repo.issues.append(issue)

    # git --------------------------------------------------------------------------------

    def git_repo(self, repo: Repo, commits: int, notes: bool, big_mb: int) -> None:
        rng = self.rng
        path = self.root / "git" / repo.owner / f"{repo.name}.git"
        gitrepos.init_bare(path, repo.default_branch)
        if repo.empty:
            return
        h = History()
        owner = person(repo.owner if repo.owner != ORG_LOGIN else USER_LOGIN)
        t = gitrepos_epoch(repo.created_at)
        main: list[int] = []
        files = {"README.md": h.blob(f"# {repo.name}\n\n{repo.description}\n".encode())}
        if repo.has_lfs:
            files[".gitattributes"] = h.blob(b"*.bin filter=lfs diff=lfs merge=lfs -text\n")
        main.append(h.commit("refs/heads/main", owner, t, "Initial commit", files))
        for i in range(1, commits):
            t += self.clock.step(600, 90_000)
            change = {f"src/module_{i % 5}.py":
                      h.blob(f"# {sentence(rng)}\n\n\ndef f{i}():\n    return {i}\n".encode())}
            if big_mb and i <= big_mb:
                change[f"data/blob_{i % 3}.bin"] = h.blob(rng.randbytes(1024 * 1024))
            if repo.has_lfs:
                content = f"lfs object {repo.full_name} {i} ".encode() * (300 * i)
                oid = hashlib.sha256(content).hexdigest()
                self.store_lfs(repo, oid, content)
                change[f"media/asset_{i}.bin"] = h.blob(
                    f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\n"
                    f"size {len(content)}\n".encode())
            main.append(h.commit("refs/heads/main", person(self.who(repo)), t,
                                 sentence(rng, 3, 7), change, parent=main[-1]))
        if len(main) >= 3:
            h.ref("refs/tags/v0.1", main[1])
            h.annotated_tag("v0.9", main[len(main) // 2], owner, t, "Release candidate")
            h.annotated_tag("v1.0", main[-1], owner, t, "First stable release")
            h.ref("refs/heads/develop", main[-2])
        if notes:
            h.note(main[0], "Reviewed-by: alice-k", owner, t)
        pr_heads: dict[int, int] = {}
        pr_commits: dict[int, list[int]] = {}
        base_of: dict[int, int] = {}
        for issue in repo.pulls:
            base = rng.randrange(len(main))
            base_of[issue.number] = main[base]
            parent = main[base]
            marks = []
            for k in range(rng.randint(1, 3)):
                parent = h.commit(f"refs/pull/{issue.number}/head", person(issue.user), t + k,
                                  f"{issue.title} ({k + 1})",
                                  {f"src/pr_{issue.number}.py":
                                   h.blob(f"# PR {issue.number} step {k}\n".encode())},
                                  parent=parent)
                marks.append(parent)
            pr_heads[issue.number] = parent
            pr_commits[issue.number] = marks
            if issue.state == "open":
                h.ref(f"refs/heads/{issue.pull.head_ref}", parent)
        merge_marks: dict[int, int] = {}
        tip = main[-1]
        for issue in repo.pulls:
            if issue.pull.merged:
                tip = h.commit("refs/heads/main", person(issue.pull.merged_by or USER_LOGIN),
                               gitrepos_epoch(issue.pull.merged_at),
                               f"Merge pull request #{issue.number} from {issue.pull.head_ref}",
                               {}, parent=tip, merge=pr_heads[issue.number])
                merge_marks[issue.number] = tip
        if tip != main[-1]:
            main.append(tip)
        sha = h.run(path)
        gitrepos.pack(path)
        repo.commit_shas = [sha[m] for m in main]
        for issue in repo.pulls:
            p = issue.pull
            p.head_sha = sha[pr_heads[issue.number]]
            p.base_sha = sha[base_of[issue.number]]
            p.commits = [sha[m] for m in pr_commits[issue.number]]
            if issue.number in merge_marks:
                p.merge_commit_sha = sha[merge_marks[issue.number]]
            for r in p.reviews:
                r.commit_id = p.head_sha
            for rc in p.review_comments:
                rc.commit_id = p.head_sha
            for e in issue.events:
                if e.event in ("merged", "closed") and p.merge_commit_sha:
                    e.commit_id = p.merge_commit_sha
        repo.size_kb = gitrepos.disk_kb(path)
        for i in range(min(len(repo.commit_shas), 3 if len(repo.issues) > 20 else 1)):
            t2 = self.clock.tick()
            repo.commit_comments.append(CommitComment(
                self.new_id(), self.who(repo), sentence(rng), repo.commit_shas[i],
                "README.md" if i % 2 else None, 1 if i % 2 else None, iso(t2), iso(t2)))

    def store_lfs(self, repo: Repo, oid: str, content: bytes) -> None:
        store = self.root / "lfs" / repo.owner / repo.name
        target = store / oid[0:2] / oid[2:4] / oid
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        repo.lfs_objects.append(oid)

    def wiki(self, repo: Repo) -> None:
        path = self.root / "git" / repo.owner / f"{repo.name}.wiki.git"
        gitrepos.init_bare(path, "master")
        h = History()
        t = gitrepos_epoch(repo.created_at)
        tip = h.commit("refs/heads/master", person(USER_LOGIN), t, "Initial Home page",
                       {"Home.md": h.blob(f"Welcome to the {repo.name} wiki!\n".encode())})
        for page in ("Getting-Started", "FAQ"):
            t += 3600
            tip = h.commit("refs/heads/master", person(self.who(repo)), t, f"Created {page}",
                           {f"{page}.md": h.blob(paragraph(self.rng, 3).encode())}, parent=tip)
        h.run(path)
        gitrepos.pack(path)

    def releases(self, repo: Repo) -> None:
        rng = self.rng
        if len(repo.commit_shas) < 3:
            return
        for tag, pre in (("v0.9", True), ("v1.0", False)):
            t = self.clock.tick()
            rel = Release(self.new_id(), tag, "main", f"{repo.name} {tag}", paragraph(rng, 2),
                          False, pre, USER_LOGIN, iso(t), iso(t))
            for name, ctype, data in (
                (f"{repo.name}-{tag}.tar.gz", "application/gzip", rng.randbytes(rng.randint(
                    2_000, 60_000))),
                ("SHA256SUMS.txt", "text/plain", f"{hashlib.sha256(tag.encode()).hexdigest()}"
                 f"  {repo.name}-{tag}.tar.gz\n".encode()),
            ):
                rel.assets.append(ReleaseAsset(self.new_id(), name, ctype, data, USER_LOGIN,
                                               iso(t), rng.randint(0, 500)))
            repo.releases.append(rel)
        t = self.clock.tick()
        repo.releases.append(Release(self.new_id(), "v2.0-draft", "main", "Next", "Draft notes",
                                     True, False, USER_LOGIN, iso(t), None))

    def gists(self) -> None:
        rng = self.rng
        for k in range(self.spec.gists):
            gid = hashlib.md5(f"{self.world.seed}:{self.size}:gist:{k}".encode()).hexdigest()
            t = self.clock.tick()
            if k == 0:
                files = {"setup.sh": "#!/bin/sh\necho setup\n", "README.md": "# Setup\n",
                         "config.json": '{"retries": 3}\n'}
            else:
                files = {f"snippet_{k}.py": f"print({k})  # {sentence(rng)}\n"}
            g = Gist(gid, USER_LOGIN, sentence(rng, 2, 5), public=k != 1, files=files,
                     created_at=iso(t), updated_at=iso(t), comments=rng.randint(0, 3))
            self.world.gists[gid] = g
            path = self.root / "git" / "gist" / f"{gid}.git"
            gitrepos.init_bare(path, "main")
            h = History()
            tip = h.commit("refs/heads/main", person(USER_LOGIN), gitrepos_epoch(g.created_at),
                           "", {n: h.blob(c.encode()) for n, c in files.items()})
            if k == 0:
                h.commit("refs/heads/main", person(USER_LOGIN), gitrepos_epoch(g.created_at) + 60,
                         "", {"setup.sh": h.blob(b"#!/bin/sh\nset -eu\necho setup\n")},
                         parent=tip)
            h.run(path)
            gitrepos.pack(path)

    def social(self) -> None:
        rng = self.rng
        user = self.world.accounts[USER_LOGIN]
        candidates = [r for r in self.world.repos.values()
                      if not r.private and r.owner != USER_LOGIN]
        picks = rng.sample(candidates, min(len(candidates), 4))
        user.starred = [(r.full_name, iso(self.clock.tick())) for r in picks]
        user.watching = [r.full_name for r in self.world.repos_of(USER_LOGIN)][:3]
        org = self.world.accounts[ORG_LOGIN]
        org_repos = [r.name for r in self.world.repos_of(ORG_LOGIN)]
        org.teams = [
            Team(self.new_id(), "Core", "core", "Maintainers", org.members[:4], org_repos[:2]),
            Team(self.new_id(), "Docs", "docs", "Writers", org.members[3:7], org_repos[-1:]),
        ]

    def build(self) -> World:
        self.accounts()
        plan = self.repositories()
        big_left = self.spec.big_repos
        for repo, items, commits in plan:
            main = repo.name in ("toolbox", "platform")
            self.items(repo, items, busy=main)
            big = 0
            if (big_left and not main and not repo.empty and not repo.private and items
                    and repo.owner in self.world.owners.values()):
                big, big_left = self.spec.big_repo_mb, big_left - 1
                commits = max(commits, big + 2)  # one megabyte of new history per commit
            if repo.fork:
                self.fork_git(repo)
            else:
                self.git_repo(repo, max(commits, 3 if items else commits) if not repo.empty
                              else 0, notes=main, big_mb=big)
            if repo.wiki_exists:
                self.wiki(repo)
            if main or (items and self.rng.random() < 0.5):
                self.releases(repo)
            stamps = [repo.updated_at] + [i.updated_at for i in repo.issues]
            repo.updated_at = max(stamps)
        self.gists()
        self.social()
        build_settings(self.world, self.rng, lambda: iso(self.clock.tick()))
        add_content(self.world)
        latest = max(stamp for _, stamp in self.world.timestamps())
        if latest > iso(END_EPOCH):
            raise AssertionError(f"{self.size} seed {self.world.seed}: generated time runs to "
                                 f"{latest}, past {iso(END_EPOCH)}: lower its time_scale")
        return self.world

    def fork_git(self, repo: Repo) -> None:
        parent = self.world.repos[repo.parent]
        src = self.root / "git" / parent.owner / f"{parent.name}.git"
        dst = self.root / "git" / repo.owner / f"{repo.name}.git"
        dst.parent.mkdir(parents=True, exist_ok=True)
        gitrepos.git(["clone", "--quiet", "--bare", "--no-local", str(src), str(dst)])
        gitrepos.git(["config", "http.receivepack", "true"], cwd=dst)
        gitrepos.git(["remote", "remove", "origin"], cwd=dst)
        repo.commit_shas = list(parent.commit_shas)
        repo.size_kb = gitrepos.disk_kb(dst)


def gitrepos_epoch(stamp: str) -> int:
    return int(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
               .replace(tzinfo=UTC).timestamp())


def cache_root() -> Path:
    env = os.environ.get("GHVAULT_SIM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ghvault-sim"


def load(size: str, seed: int, root: Path | None = None) -> tuple[World, Path]:
    """The world for (size, seed) and its data directory, built on first use."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}: choose one of {', '.join(SIZES)}")
    root = root or cache_root()
    final = root / f"{size}-seed{seed}-v{GENERATOR_VERSION}"
    world_file = final / "world.pickle"
    if not world_file.exists():
        tmp = root / f".{final.name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        world = Builder(size, seed, tmp).build()
        (tmp / "world.pickle").write_bytes(pickle.dumps(world))
        try:
            tmp.rename(final)
        except OSError:  # another process finished first: use its copy
            shutil.rmtree(tmp, ignore_errors=True)
    return pickle.loads(world_file.read_bytes()), final
