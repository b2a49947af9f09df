"""`python -m bench --scale`: how the cost of one backup grows with the account (issue 17).

For each size (tiny, small, medium, large by default) one simulator serves the user owner:
month one with `--state --git-state` (requests against the floor, wall time, peak RSS of the
process tree, peak disk of the work directory, archive size), then a month of activity and
month two from month one's state (sizes in --git-state-sizes). On one size (large) the
owner is also backed up in 1, 2 and 4 shards, each shard a task of the Fargate harness
(bench/scale_shards.py). Last, for `huge`, the hours GitHub's 5,000 requests per hour
imply for one token, computed from its floor (not run). Results: bench/SCALE.md and a plot.

Exits non-zero when a timed backup fails or is incomplete; missed targets are reported.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.scenarios import MONTH_ONE, MONTH_TWO, describe, say
from bench.sim import Sim, SimConfig
from bench.tools import ToolRun, run_ghvault

HERE = Path(__file__).resolve().parent
RATE_LIMIT_PER_HOUR = 5000  # GitHub's primary limit for one personal access token


@dataclass
class SizeResult:
    size: str
    owner: str
    repos: int  # the owner's, as the simulator counts them
    items: int  # issues and pull requests
    comments: int
    floor: int
    largest_repo: tuple[str, int]
    sim_start_s: float  # the simulator's start: generation when its cache was cold
    sim_rss: int = 0  # the simulator's peak RSS while it served this size
    archive_bytes: int = 0  # month one's archive
    month_one: ToolRun | None = None
    month_two: ToolRun | None = None


@dataclass
class ShardResult:
    shards: int
    walls: list[float]  # per shard, from run_task to the task's exit
    exit_codes: list[int | None]
    requests: int
    archive_bytes: int
    problems: list[str] = field(default_factory=list)
    part_bytes: list[int] = field(default_factory=list)  # each part's archive

    @property
    def complete(self) -> bool:
        return not self.problems


@dataclass
class Estimate:
    size: str
    repos: int
    items: int
    floor: int
    load_s: float  # building (cold) or reading (warm) its world
    measured_ratio: float  # requests / floor measured at the largest size run
    month_two_ratio: float  # month two's rate-limited requests / month one's, same size
    ratio_size: str

    @property
    def hours_floor(self) -> float:
        return self.floor / RATE_LIMIT_PER_HOUR

    @property
    def hours_measured(self) -> float:
        return self.floor * self.measured_ratio / RATE_LIMIT_PER_HOUR

    @property
    def hours_month_two(self) -> float:
        return self.hours_measured * self.month_two_ratio


@dataclass
class ScaleReport:
    config: SimConfig
    started: datetime
    total_s: float
    sizes: list[SizeResult]
    shards: list[ShardResult]
    shard_size: str
    estimate: Estimate | None
    machine: object
    load: tuple[float, float]
    failures: list[str]


def git_bytes(stats: dict) -> int:
    """Git (and LFS) bytes the simulator sent: `git_bytes_sent` where it counts them apart."""
    return int(stats.get("git_bytes_sent", stats.get("git_bytes", 0)))


class PeakRss:
    """The peak RSS of one process (the simulator), sampled in a thread."""

    def __init__(self, pid: int, interval: float = 0.25):
        self.proc, self.interval, self.value = psutil.Process(pid), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.value = max(self.value, self.proc.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def owner_facts(size: str, seed: int, role: str = "user") -> tuple[int, int, int, int]:
    """(repositories, issues and pulls, comments, request floor) of the owner of `size`."""
    from devtools.floor import floor_requests
    from tests.github_sim.generate import load

    world, _ = load(size, seed)
    repos = world.repos_of(world.owners[role])
    return (len(repos), sum(len(r.issues) for r in repos),
            sum(len(i.comments) for r in repos for i in r.issues), floor_requests(world, role))


def measure_size(size: str, args: argparse.Namespace, work: Path, sizes: list[SizeResult],
                 publish: Callable[[], None]) -> None:
    """Month one (and two) of `size`, and its shards; `publish` after each step, so that
    a run cut short still leaves its figures so far."""
    config = sim_config(args, size)
    say(f"{size}: starting the simulator ({config.command()})")
    started = time.perf_counter()
    with Sim(config, work / "sim", start_timeout=args.timeout) as sim, \
            PeakRss(sim.proc.pid) as sim_rss:
        start_s = time.perf_counter() - started
        owner = sim.owner("user")
        repos, items, comments, floor = owner_facts(size, args.seed)
        result = SizeResult(size, owner, repos, items, comments, floor,
                            sim.largest_repo(owner), start_s)
        sizes.append(result)
        state = work / "m1" / "state"
        expected = sim.counts()["user"]
        result.month_one, _ = run_ghvault(sim, owner, MONTH_ONE, work / "m1", expected, state,
                                          args.timeout, f"{size}, month 1",
                                          extra=("--git-state",))
        say(describe(result.month_one))
        archive = result.month_one.output
        result.archive_bytes = archive.stat().st_size if archive and archive.exists() else 0
        result.sim_rss = sim_rss.value
        publish()
        if size in args.git_state_sizes and result.month_one.complete:
            sim.mutate()
            state_two = work / "m2" / "state"
            shutil.copytree(state, state_two, symlinks=True)
            result.month_two, _ = run_ghvault(sim, owner, MONTH_TWO, work / "m2",
                                              sim.counts()["user"], state_two, args.timeout,
                                              f"{size}, month 2", extra=("--git-state",))
            say(describe(result.month_two))
            result.sim_rss = sim_rss.value
            publish()
        shutil.rmtree(work / "m1", ignore_errors=True)  # large's archives: gigabytes
        shutil.rmtree(work / "m2", ignore_errors=True)
        if size == args.shard_size and args.shards:
            from bench.scale_shards import sharded_runs

            sharded_runs(sim, owner, sim.counts()["user"], work / "shards", args.shards,
                         args.timeout, args.shard_results, publish)
        result.sim_rss = sim_rss.value
    shutil.rmtree(work, ignore_errors=True)


def estimate(size: str, seed: int, measured: list[SizeResult]) -> Estimate:
    """The request floor of `size` (its world built or read from the cache, not served),
    scaled by what the largest measured size needed against its own floor."""
    say(f"{size}: the world's request floor (building it if its cache is cold)")
    started = time.perf_counter()
    repos, items, _, floor = owner_facts(size, seed)
    load_s = time.perf_counter() - started
    done = [s for s in measured if s.month_one and s.month_one.complete]
    base = max(done, key=lambda s: s.floor) if done else None
    ratio = base.month_one.stats["requests_total"] / base.floor if base else 1.0
    two = base.month_two if base and base.month_two and base.month_two.complete else None
    two_ratio = (two.stats["charged"] / base.month_one.stats["requests_total"]) if two else 1.0
    return Estimate(size, repos, items, floor, load_s, ratio, two_ratio,
                    base.size if base else "none")


def sim_config(args: argparse.Namespace, size: str) -> SimConfig:
    return SimConfig(size=size, seed=args.seed, latency_ms=args.latency_ms,
                     git_kbps=args.git_kbps)


def failures(sizes: list[SizeResult], shards: list) -> list[str]:
    found = []
    for s in sizes:
        for run in (s.month_one, s.month_two):
            if run is not None and not run.complete:
                found.append(f"{run.label}: {run.outcome}")
    found += [f"{r.shards} shard(s): {'; '.join(r.problems)}" for r in shards if r.problems]
    return found


def csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench --scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", action="store_true", help="(how `python -m bench` gets here)")
    p.add_argument("--sizes", type=csv, default=["tiny", "small", "medium", "large"])
    p.add_argument("--git-state-sizes", type=csv, default=["medium", "large"],
                   help="sizes that also run month two with --state --git-state")
    p.add_argument("--shard-size", default="large", help="the size backed up in shards")
    p.add_argument("--shards", type=lambda t: [int(n) for n in csv(t)], default=[1, 2, 4],
                   help="shard counts, each run as that many parallel Fargate tasks")
    p.add_argument("--estimate-size", default="huge",
                   help="the size whose rate-limit hours are computed, not run ('' skips)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--latency-ms", type=int, default=50)
    p.add_argument("--git-kbps", type=int, default=20_000,
                   help="git/LFS bandwidth cap per connection, kbit/s (0: none)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds allowed per run")
    p.add_argument("--work", type=Path, default=None,
                   help="scratch directory (default: a temporary one, removed at the end)")
    p.add_argument("--results", type=Path, default=HERE / "SCALE.md")
    p.add_argument("--plot", type=Path, default=HERE / "scale.png")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from bench.scale_report import render, write_plot
    from bench.stats import machine

    args = parse_args(argv)
    args.shard_results = []
    started_at, started = datetime.now(UTC), time.perf_counter()
    load_start = psutil.getloadavg()[0]
    work = args.work or Path(tempfile.mkdtemp(prefix="ghvault-scale-"))
    sizes: list[SizeResult] = []
    est: Estimate | None = None
    host = machine()
    report = None

    def publish(errors: list[str] = ()) -> None:
        nonlocal report
        report = ScaleReport(sim_config(args, "*"), started_at, time.perf_counter() - started,
                             sizes, args.shard_results, args.shard_size, est, host,
                             (load_start, psutil.getloadavg()[0]),
                             failures(sizes, args.shard_results) + list(errors))
        write_plot(report, args.plot)
        args.results.write_text(render(report, args.plot.relative_to(args.results.parent)
                                       if args.plot.parent == args.results.parent
                                       else args.plot))

    errors: list[str] = []
    try:
        for size in args.sizes:
            try:
                measure_size(size, args, work / size, sizes, publish)
            except Exception as e:  # the other sizes still run; the report names it
                errors.append(f"{size}: {type(e).__name__}: {e}")
                say(errors[-1])
        if args.estimate_size:
            est = estimate(args.estimate_size, args.seed, sizes)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    publish(errors)
    print(f"scale bench: {report.total_s / 60:.1f} min; results in {args.results}, "
          f"plot {args.plot}")
    if report.failures:
        print("\nFAILED:\n" + "\n".join(f"- {f}" for f in report.failures), file=sys.stderr)
        return 1
    return 0
