"""The two tools under test, each run once under the monitor against a running simulator."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.by_kind import Count, UnmappedRequests, by_kind
from bench.coverage import KINDS, PEER_KINDS, ghvault_counts, peer_counts, shortfalls
from bench.monitor import Measured, run_measured
from bench.sim import Sim

BIN = Path(sys.executable).parent
GHVAULT = "ghvault"
PEER = "python-github-backup"
PEER_FLAGS = ["--all", "--private", "--fork", "--pull-reviews", "--gists", "--wikis", "--bare",
              "--releases", "--assets"]


@dataclass
class ToolRun:
    tool: str
    label: str  # e.g. "month 1, run 2"
    measured: Measured
    stats: dict  # the simulator's accounting of this run alone
    counts: dict[str, int]
    missing: list[str] = field(default_factory=list)  # shortfalls against the ground truth
    output: Path | None = None  # the archive (ghvault) or the output directory (peer)
    kinds: dict[str, Count] = field(default_factory=dict)  # its requests by kind

    @property
    def complete(self) -> bool:
        return self.measured.returncode == 0 and not self.measured.timed_out and not self.missing

    @property
    def outcome(self) -> str:
        m = self.measured
        if m.timed_out:
            return "timed out"
        if m.returncode != 0:
            lines = [ln for ln in m.stderr_tail.splitlines() if ln.strip()]
            last = f": {lines[-1].strip()[:160]}" if lines else ""
            return f"failed (exit {m.returncode}{last})"
        if self.missing:
            return "exit 0 but incomplete: " + ", ".join(self.missing)
        return "complete"


def ghvault_argv(sim: Sim, owner: str, month: str, archive: Path, workdir: Path,
                 state: Path | None, extra: tuple[str, ...] = ()) -> list[str]:
    argv = [str(BIN / "ghvault"), "run", "--owner", owner, "--month", month,
            "--api-url", sim.api, "--dest", archive.as_uri(), "--workdir", str(workdir)]
    if state is not None:
        argv += ["--state", str(state)]
    return argv + list(extra)


def peer_argv(sim: Sim, owner: str, out: Path, org: bool, incremental: bool) -> list[str]:
    argv = [str(BIN / "github-backup"), owner, "-H", sim.host, "-t", sim.token, "-o", str(out),
            *PEER_FLAGS]
    if org:
        argv.append("-O")
    if incremental:
        argv.append("--incremental")
    return argv


def display(argv: list[str], sim: Sim, work: Path) -> str:
    """A command line fit for RESULTS.md: no token, no machine-specific paths."""
    shown = ["$TOKEN" if a == sim.token else a for a in argv]
    shown[0] = Path(shown[0]).name
    text = " ".join(shown)
    return (text.replace(sim.api, "$API").replace(sim.host, "$HOST")
            .replace(str(work), "$WORK"))


def run_ghvault(sim: Sim, owner: str, month: str, run_dir: Path, expected: dict[str, int],
                state: Path | None, timeout: float, label: str = "",
                extra: tuple[str, ...] = ()) -> tuple[ToolRun, list[str]]:
    archive = run_dir / f"{owner}-{month}.zip"
    workdir = run_dir / "workdir"
    workdir.mkdir(parents=True, exist_ok=True)
    home = run_dir / "home"
    home.mkdir(exist_ok=True)
    argv = ghvault_argv(sim, owner, month, archive, workdir, state, extra)
    env = {**sim.client_env(home), "GITHUB_TOKEN": sim.token}
    sim.reset()
    measured = run_measured(argv, env, {"workdir": workdir}, run_dir / "logs", timeout)
    stats = sim.stats()
    counts = ghvault_counts(archive) if measured.returncode == 0 and archive.exists() else {}
    run = ToolRun(GHVAULT, label or month, measured, stats, counts, output=archive)
    run.missing = shortfalls(expected, counts, KINDS) if counts else ["no archive"]
    try:
        run.kinds = by_kind(stats)
    except UnmappedRequests as e:  # the like-for-like count would be wrong: fail the run
        run.missing.append(str(e))
    if measured.returncode == 0:
        summary = json.loads(measured.stdout.strip().splitlines()[-1])
        if summary.get("skipped"):
            run.missing.append(f"skipped: {summary['skipped']}")
    return run, argv


def run_peer(sim: Sim, owner: str, out: Path, run_dir: Path, expected: dict[str, int],
             org: bool, timeout: float, gone: frozenset[str] = frozenset(),
             label: str = "") -> tuple[ToolRun, list[str]]:
    home = run_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    # --incremental on every run: only an --incremental run writes the checkpoints that the
    # next month's --incremental run reads (without them it starts from scratch).
    argv = peer_argv(sim, owner, out, org, incremental=True)
    sim.reset()
    measured = run_measured(argv, sim.client_env(home), {"output": out}, run_dir / "logs",
                            timeout)
    stats = sim.stats()
    counts = peer_counts(out, gone)
    run = ToolRun(PEER, label, measured, stats, counts, output=out)
    run.missing = shortfalls(expected, counts, PEER_KINDS)  # judged on what it can keep
    try:
        run.kinds = by_kind(stats)
    except UnmappedRequests as e:
        run.missing.append(str(e))
    return run, argv
