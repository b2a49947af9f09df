"""Where a backup's memory goes, by account size: `python -m devtools.memprofile --size small`.

Starts the simulator of one size, runs month one with `--state --git-state` under the
bench's monitor (bench/monitor.py: the process tree sampled at 20 Hz), then a month of
activity and month two from month one's state. Prints, per month: wall time, the tree's
peak RSS and PSS, the engine's own peak, each process label's peak (`git clone`,
`git index-pack`, ...) and the tree's composition at its peak. `--trace SECONDS` runs the
engine under tracemalloc (devtools/tracemem.py) and writes its growth by source line every
SECONDS to the run's logs (slow: for finding causes, not for timing).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from bench.monitor import Measured, run_measured
from bench.scenarios import MONTH_ONE, MONTH_TWO
from bench.sim import Sim, SimConfig
from bench.tools import ghvault_argv

MIB = 1 << 20


def run_month(sim: Sim, owner: str, month: str, run_dir: Path, state: Path,
              trace: float) -> Measured:
    archive, workdir, home = run_dir / f"{owner}-{month}.zip", run_dir / "workdir", run_dir / "home"
    workdir.mkdir(parents=True, exist_ok=True)
    home.mkdir(exist_ok=True)
    argv = ghvault_argv(sim, owner, month, archive, workdir, state, ("--git-state",))
    if trace:
        argv = [sys.executable, "-m", "devtools.tracemem", str(run_dir / "logs" / "trace.txt"),
                str(trace), *argv[1:]]
    env = {**sim.client_env(home), "GITHUB_TOKEN": sim.token}
    sim.reset()
    m = run_measured(argv, env, {"workdir": workdir}, run_dir / "logs", 7200,
                     cwd=Path(__file__).resolve().parent.parent)
    if m.returncode:
        raise SystemExit(f"{month} failed (exit {m.returncode}): {m.stderr_tail[-800:]}")
    return m


def summary(label: str, m: Measured) -> dict:
    return {"run": label, "wall_s": round(m.wall_s, 1), "tree_rss_mib": round(m.peak_rss / MIB, 1),
            "tree_pss_mib": round(m.peak_pss / MIB, 1),
            "engine_mib": round(m.peak_rss_main / MIB, 1),
            "by_command_mib": {k: round(v / MIB, 1) for k, v in
                               sorted(m.peak_by_command.items(), key=lambda x: -x[1])},
            "at_peak_mib": [(k, round(v / MIB, 1)) for k, v in m.at_peak]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="small")
    p.add_argument("--months", type=int, default=2, choices=(1, 2))
    p.add_argument("--trace", type=float, default=0.0)
    p.add_argument("--keep", type=Path, default=None, help="work directory to keep")
    p.add_argument("--json", type=Path, default=None, help="append the results here")
    args = p.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="ghvault-mem-"))
    results = []
    try:
        with Sim(SimConfig(size=args.size), work / "sim") as sim:
            owner = sim.owner("user")
            state = work / "m1" / "state"
            results.append(summary(f"{args.size} month 1",
                                   run_month(sim, owner, MONTH_ONE, work / "m1", state,
                                             args.trace)))
            print(json.dumps(results[-1]), flush=True)
            if args.months == 2:
                sim.mutate()
                state_two = work / "m2" / "state"
                shutil.copytree(state, state_two, symlinks=True)
                shutil.rmtree(work / "m1" / "workdir", ignore_errors=True)
                results.append(summary(f"{args.size} month 2",
                                       run_month(sim, owner, MONTH_TWO, work / "m2",
                                                 state_two, args.trace)))
                print(json.dumps(results[-1]), flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with args.json.open("a") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
