"""`POST /_sim/mutate`: a month of activity on a running simulator.

New and edited issues, new comments, closed issues, pushes to default branches, a new
repository and a deleted one, dated within the 25 days before the call (never in the
future, and after every generated timestamp, so `since=` finds them as on GitHub), so that
an incremental backup has something real to find and everything else stays the same.
"""

from __future__ import annotations

import random
import shutil
import time
from typing import TYPE_CHECKING

from . import generate
from .generate import Builder, Clock, iso, paragraph, person, sentence
from .gitrepos import History, disk_kb, pack
from .model import Comment, IssueEvent

if TYPE_CHECKING:
    from .server import Simulator

MONTH_START_AGO = 25 * 86400  # seconds before now that a month of activity starts
MONTH_TIME_SCALE = 0.1  # its time steps, scaled: about two weeks of activity in all


def apply_month(sim: Simulator) -> dict:
    world = sim.world
    n = getattr(world, "mutations", 0) + 1
    world.mutations = n  # type: ignore[attr-defined]
    b = Builder(world.size, world.seed, sim.workdir)
    b.world = world
    b.rng = rng = random.Random(f"mutate:{world.seed}:{n}")
    # The month's activity starts 25 days ago and, at this scale, ends days before now:
    # after everything generate.py made (whose history ends by generate.END_EPOCH).
    b.clock = Clock(rng, int(time.time()) - MONTH_START_AGO, MONTH_TIME_SCALE)
    b.ids = world.next_id
    summary = {"mutation": n, "new_issues": 0, "edited_issues": 0, "new_comments": 0,
               "closed_issues": 0, "pushed_repos": [], "new_repo": None, "deleted_repo": None}
    owners = list(world.owners.values())
    active = [r for r in world.repos.values()
              if r.owner in owners and not r.empty and not r.archived and not r.fork]
    active.sort(key=lambda r: (-len(r.issues), r.full_name))
    for repo in active[:3]:
        for _ in range(rng.randint(3, 6)):
            b.issue(repo, max((i.number for i in repo.issues), default=0) + 1, False, None)
            summary["new_issues"] += 1
        existing = [i for i in repo.issues if i.updated_at < iso(b.clock.now - 86400 * 20)]
        for issue in rng.sample(existing, min(4, len(existing))):
            t = b.clock.tick(60, 3600)
            issue.body += "\n\nEdit: " + sentence(rng)
            issue.updated_at = iso(t)
            summary["edited_issues"] += 1
        for issue in rng.sample(repo.issues, min(6, len(repo.issues))):
            t = b.clock.tick(60, 3600)
            issue.comments.append(Comment(b.new_id(), b.who(repo), paragraph(rng, 2), iso(t),
                                          iso(t)))
            issue.updated_at = iso(t)
            summary["new_comments"] += 1
        open_issues = [i for i in repo.issues if i.state == "open" and i.pull is None]
        for issue in rng.sample(open_issues, min(2, len(open_issues))):
            t = b.clock.tick(60, 3600)
            issue.state, issue.state_reason = "closed", "completed"
            issue.closed_at, issue.closed_by, issue.updated_at = iso(t), generate.USER_LOGIN, iso(t)
            issue.events.append(IssueEvent(b.new_id(), generate.USER_LOGIN, "closed", iso(t)))
            summary["closed_issues"] += 1
        push(b, repo)
        summary["pushed_repos"].append(repo.full_name)
        repo.updated_at = max([repo.updated_at] + [i.updated_at for i in repo.issues])
    new = b.repo(generate.USER_LOGIN, f"new-project-{n}")
    b.items(new, 6, busy=False)
    b.git_repo(new, 5, notes=False, big_mb=0)
    summary["new_repo"] = new.full_name
    doomed = [r for r in world.repos.values() if r.owner == generate.ORG_LOGIN
              and r.name not in ("platform",) and not r.private]
    if doomed:
        gone = sorted(doomed, key=lambda r: r.full_name)[-1]
        del world.repos[gone.full_name]
        for wiki in (False, True):
            shutil.rmtree(sim.repo_dir(gone.owner, gone.name, wiki), ignore_errors=True)
        summary["deleted_repo"] = gone.full_name
    world.next_id = max(world.next_id, b.ids)
    return summary


def push(b: Builder, repo) -> None:
    """New commits on the default branch, as a month of pushes leaves them."""
    path = b.root / "git" / repo.owner / f"{repo.name}.git"
    h = History()
    tip: int | str = repo.commit_shas[-1]
    marks = []
    t = b.clock.tick(60, 3600)
    for k in range(b.rng.randint(2, 4)):
        t += b.rng.randint(600, 7200)
        tip = h.commit(f"refs/heads/{repo.default_branch}", person(b.who(repo)), t,
                       sentence(b.rng, 3, 7),
                       {f"src/month_{k}.py": h.blob(f"# {sentence(b.rng)}\n".encode())},
                       parent=tip)
        marks.append(tip)
    sha = h.run(path)
    pack(path)
    repo.commit_shas += [sha[m] for m in marks]
    repo.pushed_at = repo.updated_at = iso(t)
    repo.size_kb = disk_kb(path)
