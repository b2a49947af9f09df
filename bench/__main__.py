"""`python -m bench`: run every measurement of issue 6 and write bench/RESULTS.md.
(`python -m bench --scale`: the cost curve of issue 17, bench/scale.py.)

Exits non-zero when either tool's backup is incomplete in the main scenario, when ghvault
does not finish under the secondary rate limit, or when the DAG file does not parse: a fast
result can never come from skipped work. Missed targets are reported, not fatal.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import dagparse
from bench.report import Report, render
from bench.scenarios import MainResult, Plan, SecondaryResult, main_scenario, say
from bench.scenarios import secondary_scenario as run_secondary
from bench.sim import SimConfig
from bench.stats import machine
from bench.targets import headline, markdown
from bench.tools import GHVAULT, PEER

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="repetitions of each ghvault run")
    p.add_argument("--peer-runs", type=int, default=2,
                   help="repetitions of each python-github-backup run (~10 min each on medium)")
    p.add_argument("--role", choices=["user", "org"], default="user",
                   help="which of the simulator's owners to back up")
    p.add_argument("--size", default="medium", help="simulator size (tiny, small, medium)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--latency-ms", type=int, default=50)
    p.add_argument("--git-kbps", type=int, default=20_000,
                   help="git/LFS bandwidth cap per connection, kbit/s (0: none)")
    p.add_argument("--secondary-faults", default="secondary:0.02,retry-after=1")
    p.add_argument("--no-secondary", action="store_true", help="skip measurement 6")
    p.add_argument("--timeout", type=float, default=2400, help="seconds allowed per tool run")
    p.add_argument("--work", type=Path, default=None,
                   help="scratch directory (default: a temporary one, removed at the end)")
    p.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    args = p.parse_args(argv)
    if args.runs < 1 or args.peer_runs < 1:
        p.error("--runs and --peer-runs must be at least 1")
    return args


def failures(main: MainResult, secondary: SecondaryResult | None,
             dag: dagparse.DagParse) -> list[str]:
    found = []
    for month, runs in (("month one", main.month_one), ("month two", main.month_two)):
        for tool in (GHVAULT, PEER):
            found += [f"{tool}, {month} ({r.label}): {r.outcome}" for r in runs[tool]
                      if not r.complete]
    if secondary is not None:
        found += [f"{GHVAULT} under the secondary rate limit ({r.label}): {r.outcome}"
                  for r in secondary.runs[GHVAULT] if not r.complete]
    if dag.available and not dag.ok:
        found.append("dags/github_backup.py did not parse: " + "; ".join(
            f"{k}: {v.strip().splitlines()[-1] if v.strip() else v}"
            for k, v in dag.errors.items()))
    return found


def main(argv: list[str] | None = None) -> int:
    if "--scale" in (sys.argv[1:] if argv is None else argv):  # issue 17: bench/scale.py
        from bench.scale import main as scale_main

        return scale_main(argv)
    args = parse_args(argv)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    work = args.work or Path(tempfile.mkdtemp(prefix="ghvault-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    plan = Plan(role=args.role, runs=args.runs, peer_runs=args.peer_runs,
                sim=SimConfig(size=args.size, seed=args.seed, latency_ms=args.latency_ms,
                              git_kbps=args.git_kbps),
                secondary_faults=args.secondary_faults, work=work, timeout=args.timeout)
    try:
        say(f"work directory {work}")
        main_result = main_scenario(plan)
        secondary = None if args.no_secondary else run_secondary(plan)
        say("DAG parse")
        dag = dagparse.measure()
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    found = failures(main_result, secondary, dag)
    rows = headline(main_result, secondary, dag)
    report = Report(plan=plan, machine=machine(), started=started_at,
                    total_s=time.perf_counter() - started, main=main_result,
                    secondary=secondary, dag=dag, headline=rows, failures=found,
                    load=(load_start, os.getloadavg()[0]))
    args.results.write_text(render(report))
    print(markdown(rows))
    print(f"\nbench wall time {report.total_s / 60:.1f} min; results in {args.results}")
    if found:
        print("\nFAILED:\n" + "\n".join(f"- {f}" for f in found), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
