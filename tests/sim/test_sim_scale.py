"""The scale sizes' builder (tests/github_sim/scale.py) on a miniature of `large`: the shape
`large` and `huge` have, in seconds. (`large` itself takes a minute or more to build cold and
`huge` several: `make test` never builds them; `python -m bench --scale` does, once.)"""

from __future__ import annotations

import pytest

from tests.github_sim import generate, scale
from tests.github_sim.generate import SizeSpec
from tests.github_sim.gitrepos import git, ref_map

MINI = SizeSpec(filler_repos=30, main_items=40, filler_items=12, pr_share=0.35,
                comment_weights=(1, 2, 1), busy_comments=5, main_commits=6, big_repos=1,
                big_repo_mb=2, gists=2, time_scale=0.5)


def build(root):
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(generate.SIZES, "mini", MINI)
        mp.setitem(scale.SHAPES, "mini", scale.Shape(org_share=0.1, empty_share=0.3,
                                                     pareto_alpha=1.5, max_items=60))
        return scale.ScaleBuilder("mini", 7, root).build(), root


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return build(tmp_path_factory.mktemp("mini"))


def test_the_scale_builder_gives_the_user_many_mostly_small_repositories(mini):
    world, root = mini
    user, org = world.owners["user"], world.owners["org"]
    users, orgs = world.repos_of(user), world.repos_of(org)
    specials = {"toolbox", "dotfiles", "fastlib", "old-site", "scratch", "media-assets"}
    assert specials <= {r.name for r in users}  # the names the small sizes' tests know
    assert len(users) == MINI.filler_repos + len(specials)
    assert len(orgs) == 4 + 3  # a tenth of the fillers, plus platform, infra, ...
    fillers = [r for r in users if r.name not in specials]
    empty = [r for r in fillers if r.empty]
    assert 0 < len(empty) < len(fillers)
    for r in empty:  # copies of one empty repository: served like any other
        path = root / "git" / user / f"{r.name}.git"
        assert ref_map(path) == {}
        assert git(["config", "http.receivepack"], cwd=path).strip() == b"true"
    assert not (root / ".empty-template.git").exists()
    items = sorted(len(r.issues) for r in fillers if not r.empty)
    assert items[len(items) // 2] < max(items) <= 60  # a long tail, capped
    big = [r for r in users if r.size_kb >= 2 * 1024]
    assert [r.name for r in big] != [] and all(r.name not in specials for r in big)
    stamps = [s for _, s in world.timestamps()]
    assert max(stamps) <= generate.iso(generate.END_EPOCH)


def test_the_scale_builder_is_deterministic(mini, tmp_path):
    one, _ = mini
    two, _ = build(tmp_path)
    assert one.counts() == two.counts()
    assert {n: r.commit_shas for n, r in one.repos.items()} == \
        {n: r.commit_shas for n, r in two.repos.items()}
