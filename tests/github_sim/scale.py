"""The scale sizes `large` and `huge` (issue 17): many repositories, most of them small.

generate.SIZES holds their SizeSpec like every size's; this module holds what the small
sizes do not need, so that their generation (and so their worlds) stays exactly as it was:

- the owner under test (the user) gets `filler_repos` repositories, the organisation a
  tenth of that: the world stays a backup of one large account plus a small other one;
- items per repository follow a capped Pareto draw with mean about `filler_items` (a few
  busy repositories and a long tail of quiet ones, as in real organisations), and a share
  of repositories is empty;
- the big repositories (`big_repos` of `big_repo_mb`) are fillers of the user, not the
  special repositories the small sizes' tests know by name;
- an empty repository is a copy of one empty bare repository made once (three `git`
  processes each would cost `huge` minutes).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from . import gitrepos
from .generate import ORG_LOGIN, USER_LOGIN, WORDS, Builder
from .model import Repo


@dataclass(frozen=True)
class Shape:
    org_share: float  # the organisation's filler repositories, as a share of the user's
    empty_share: float  # filler repositories without any git content or items
    pareto_alpha: float  # tail of the items-per-repository draw (smaller: heavier)
    max_items: int  # the draw's cap: the simulator sorts a repository's stream per request


SHAPES = {
    "large": Shape(org_share=0.1, empty_share=0.05, pareto_alpha=1.6, max_items=1500),
    "huge": Shape(org_share=0.1, empty_share=0.5, pareto_alpha=1.5, max_items=2000),
}


class ScaleBuilder(Builder):
    def __init__(self, size: str, seed: int, root: Path):
        super().__init__(size, seed, root)
        self.shape = SHAPES[size]
        self._empty_template: Path | None = None

    def filler_items(self) -> int:
        """Items of one non-empty filler repository: mean about spec.filler_items."""
        a = self.shape.pareto_alpha
        draw = (self.rng.paretovariate(a) - 1) * (a - 1)  # mean 1 before the cap
        return min(self.shape.max_items, int(self.spec.filler_items * draw))

    def repositories(self) -> list[tuple[Repo, int, int]]:
        s, rng, shape = self.spec, self.rng, self.shape
        fillers: list[tuple[Repo, int, int]] = []
        for owner, count in ((USER_LOGIN, s.filler_repos),
                             (ORG_LOGIN, round(s.filler_repos * shape.org_share))):
            for i in range(count):
                name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}"
                if rng.random() < shape.empty_share:
                    fillers.append((self.repo(owner, name, empty=True, has_wiki=False), 0, 0))
                    continue
                vis = "private" if rng.random() < 0.3 else "public"
                fillers.append((self.repo(owner, name, visibility=vis,
                                          wiki=rng.random() < 0.1),
                                self.filler_items(), rng.randint(3, 12)))
        # Then Builder's special repositories (the ones tests know by name), without its
        # fillers; fillers first: Builder.build gives big histories to the first eligible.
        self.spec = replace(s, filler_repos=0)
        try:
            specials = super().repositories()
        finally:
            self.spec = s
        return fillers + specials

    def git_repo(self, repo: Repo, commits: int, notes: bool, big_mb: int) -> None:
        if not repo.empty:
            super().git_repo(repo, commits, notes, big_mb)
            return
        path = self.root / "git" / repo.owner / f"{repo.name}.git"
        if self._empty_template is None:
            self._empty_template = self.root / ".empty-template.git"
            gitrepos.init_bare(self._empty_template, repo.default_branch)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self._empty_template, path)

    def build(self):
        world = super().build()
        if self._empty_template is not None:
            shutil.rmtree(self._empty_template, ignore_errors=True)
        return world
