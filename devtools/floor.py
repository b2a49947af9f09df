"""The request floor: the fewest GitHub requests a complete backup of a simulated owner can
make. tests/engine/test_engine_run.py holds ghvault within 10 % of it; the benchmark
(`bench`) reports ghvault's requests against it."""

from __future__ import annotations

import math


def floor_requests(world, role: str) -> int:
    """The fewest requests a complete backup of the owner can make: every list at 100 per
    page (an empty list still costs its one request), GraphQL pages for reviews, one
    download per release asset, the single resources needed to find the owner, and the
    GraphQL pages of discussions and projects (content_floor). Attachments are downloaded
    from github.com and its storage hosts, not the API: no API request."""
    def pages(n: int) -> int:
        return max(1, math.ceil(n / 100))

    login = world.owners[role]
    acct = world.accounts[login]
    repos = world.repos_of(login)
    total = pages(len(repos))
    if role == "user":
        total += 1  # GET /user tells the token's owner
        total += pages(len(world.gists_of(login)))
        total += sum(pages(n) for n in (len(acct.followers), len(acct.following),
                                        len(acct.starred), len(acct.watching)))
    else:
        total += 3  # /user, /users/{org} (what is it?), /orgs/{org} (its full profile)
        total += pages(len(acct.members)) + pages(len(acct.teams)) + 2 * len(acct.teams)
    for r in repos:
        pulls = r.pulls
        total += pages(len(r.issues))  # issues, pulls included
        total += pages(sum(len(i.comments) for i in r.issues))
        total += pages(sum(len(i.events) for i in r.issues))
        total += pages(len(pulls))
        total += pages(sum(len(p.pull.review_comments) for p in pulls))
        total += pages(len(r.commit_comments))
        total += 4  # labels, milestones, hooks, releases (each fits a page)
        total += 0 if r.private else 1  # security advisories (public repositories)
        total += math.ceil(len(pulls) / 100)  # GraphQL: reviews of 100 pulls per query
        total += sum(len(rel.assets) for rel in r.releases)
    return total + content_floor(world, login, repos)


def content_floor(world, login: str, repos) -> int:
    """GraphQL pages for discussions (100 per page where enabled, then 100 comments with
    100 replies each per page, a longer reply thread paged on its own) and projects (one
    page of 100 per owner, then 100 items per page of each project that has any)."""
    c = world.content
    if c is None:
        return 0
    total = pages(len(c.projects.get(login, [])))
    total += sum(math.ceil(len(p.items) / 100) for p in c.projects.get(login, []))
    for r in repos:
        ds = c.discussions.get(r.full_name, [])
        total += math.ceil(len(ds) / 100)
        total += sum(math.ceil(len(d.comments) / 100) for d in ds)
        total += sum(math.ceil(len(x.replies) / 100) - 1 for d in ds for x in d.comments
                     if len(x.replies) > 100)
    return total


def pages(n: int) -> int:
    return max(1, math.ceil(n / 100))
