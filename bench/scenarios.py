"""The scenarios: each starts its own simulator, runs both tools, and keeps every run."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.sim import Sim, SimConfig
from bench.sizes import disk_usage, human, zip_directory, zip_tool
from bench.stats import Stored
from bench.tools import GHVAULT, PEER, ToolRun, display, run_ghvault, run_peer

MONTH_ONE, MONTH_TWO = "2026-10", "2026-11"


@dataclass
class Plan:
    role: str  # "user" or "org": which of the simulator's owners
    runs: int  # repetitions of every ghvault measurement
    peer_runs: int  # repetitions of every peer measurement
    sim: SimConfig
    secondary_faults: str
    work: Path
    timeout: float


@dataclass
class MainResult:
    owner: str
    floor: int
    latest_repo_stamp: str  # the latest repository updated_at/pushed_at in the generated world
    largest_repo: tuple[str, int]
    expected_one: dict[str, int]
    expected_two: dict[str, int]
    mutation: dict
    month_one: dict[str, list[ToolRun]] = field(default_factory=dict)
    month_two: dict[str, list[ToolRun]] = field(default_factory=dict)
    stored: Stored = field(default_factory=Stored)
    commands: list[str] = field(default_factory=list)


@dataclass
class SecondaryResult:
    config: SimConfig
    runs: dict[str, list[ToolRun]] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def describe(run: ToolRun) -> str:
    s = run.stats
    return (f"{run.tool} {run.label}: {run.outcome}; {run.measured.wall_s:.1f} s, "
            f"{s['requests_total']} requests ({s['charged']} charged, {s['not_modified']} "
            f"not modified), peak RSS {human(run.measured.peak_rss)}, peak disk "
            f"{human(max(run.measured.peak_disk.values(), default=0))}")


def world_facts(role: str, size: str, seed: int) -> tuple[int, str]:
    """For the world the simulator serves: the request floor (devtools.floor),
    and the latest `updated_at`/`pushed_at` among the owner's repositories."""
    from devtools.floor import floor_requests
    from tests.github_sim.generate import load

    world, _ = load(size, seed)
    stamps = [t for r in world.repos_of(world.owners[role])
              for t in (r.updated_at, r.pushed_at) if t]
    return floor_requests(world, role), max(stamps, default="")


def main_scenario(plan: Plan) -> MainResult:
    """Month one (both tools), a month of activity, month two (ghvault --state, peer
    --incremental on its month-one directory)."""
    work = plan.work / "main"
    say(f"main scenario: starting the simulator ({plan.sim.command()})")
    with Sim(plan.sim, work / "sim") as sim:
        owner = sim.owner(plan.role)
        org = plan.role == "org"
        floor, latest = world_facts(plan.role, plan.sim.size, plan.sim.seed)
        result = MainResult(owner=owner, floor=floor, latest_repo_stamp=latest,
                            largest_repo=sim.largest_repo(owner),
                            expected_one=sim.counts()[plan.role], expected_two={},
                            mutation={})
        result.month_one = {GHVAULT: [], PEER: []}
        for i in range(plan.runs):
            run_dir = work / f"ghvault-m1-{i}"
            run, argv = run_ghvault(sim, owner, MONTH_ONE, run_dir, result.expected_one,
                                    run_dir / "state", plan.timeout,
                                    label=f"month 1, run {i + 1}")
            result.month_one[GHVAULT].append(run)
            say(describe(run))
        result.commands.append(display(argv, sim, plan.work))
        for i in range(plan.peer_runs):
            out = work / f"peer-m1-{i}" / "backup"
            shutil.rmtree(out, ignore_errors=True)
            run, argv = run_peer(sim, owner, out, out.parent, result.expected_one, org,
                                 plan.timeout, label=f"month 1, run {i + 1}")
            result.month_one[PEER].append(run)
            say(describe(run))
        result.commands.append(display(argv, sim, plan.work))

        stored = result.stored
        stored.ghvault_archive = [r.output.stat().st_size for r in result.month_one[GHVAULT]
                                  if r.output and r.output.exists()]
        peer_one = result.month_one[PEER][0].output
        stored.peer_dir = disk_usage(peer_one)
        stored.zip_tool = zip_tool()
        stored.peer_zip = zip_directory(peer_one, work / "peer-m1.zip")
        say(f"stored: ghvault archive {human(stored.ghvault_archive[0])}, peer directory "
            f"{human(stored.peer_dir)}, zipped {human(stored.peer_zip)}")

        result.mutation = sim.mutate()
        result.expected_two = sim.counts()[plan.role]
        gone = frozenset(r.split("/", 1)[1] for r in [result.mutation.get("deleted_repo")]
                         if r and r.startswith(owner + "/"))
        say(f"a month of activity: {result.mutation}")
        result.month_two = {GHVAULT: [], PEER: []}
        state_one = work / "ghvault-m1-0" / "state"
        for i in range(plan.runs):
            run_dir = work / f"ghvault-m2-{i}"
            state = run_dir / "state"
            shutil.rmtree(state, ignore_errors=True)
            shutil.copytree(state_one, state, symlinks=True)
            run, argv = run_ghvault(sim, owner, MONTH_TWO, run_dir, result.expected_two,
                                    state, plan.timeout, label=f"month 2, run {i + 1}")
            result.month_two[GHVAULT].append(run)
            say(describe(run))
        result.commands.append(display(argv, sim, plan.work))
        for i in range(plan.peer_runs):
            out = work / f"peer-m2-{i}" / "backup"
            shutil.rmtree(out, ignore_errors=True)
            shutil.copytree(peer_one, out, symlinks=True)
            run, argv = run_peer(sim, owner, out, out.parent, result.expected_two, org,
                                 plan.timeout, gone=gone, label=f"month 2, run {i + 1}")
            result.month_two[PEER].append(run)
            say(describe(run))
        result.commands.append(display(argv, sim, plan.work))
    return result


def secondary_scenario(plan: Plan) -> SecondaryResult:
    """Both tools, month one, with GitHub's secondary rate limit answering some requests.

    Run i of either tool meets the same fault draws (the fault seed is i + 1)."""
    work = plan.work / "secondary"
    config = replace(plan.sim, faults=plan.secondary_faults)
    result = SecondaryResult(config, {GHVAULT: [], PEER: []})
    say(f"secondary-limit scenario: starting the simulator ({config.command()})")
    with Sim(config, work / "sim") as sim:
        owner = sim.owner(plan.role)
        expected = sim.counts()[plan.role]
        for i in range(plan.runs):
            sim.set_faults(f"{plan.secondary_faults},seed={i + 1}")
            run_dir = work / f"ghvault-{i}"
            run, argv = run_ghvault(sim, owner, MONTH_ONE, run_dir, expected, None,
                                    plan.timeout, label=f"run {i + 1}")
            result.runs[GHVAULT].append(run)
            say(describe(run))
            shutil.rmtree(run_dir / "workdir", ignore_errors=True)
            run.output.unlink(missing_ok=True)
        result.commands.append(display(argv, sim, plan.work))
        for i in range(plan.peer_runs):
            sim.set_faults(f"{plan.secondary_faults},seed={i + 1}")
            out = work / f"peer-{i}" / "backup"
            run, argv = run_peer(sim, owner, out, out.parent, expected, plan.role == "org",
                                 plan.timeout, label=f"run {i + 1}")
            result.runs[PEER].append(run)
            say(describe(run))
            shutil.rmtree(out, ignore_errors=True)
        result.commands.append(display(argv, sim, plan.work))
    return result
