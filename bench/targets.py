"""Issue 6's targets, checked against the medians, and the headline table built from them."""

from __future__ import annotations

from dataclasses import dataclass

from bench.by_kind import both_keep
from bench.dagparse import DagParse
from bench.scenarios import MainResult, SecondaryResult
from bench.sizes import human
from bench.stats import (
    Spread,
    charged,
    disk,
    not_modified,
    requests_total,
    rss,
    seconds,
    spread,
    wall,
)
from bench.tools import GHVAULT, PEER

MEMORY_LIMIT = 300 * 1024 * 1024
DISK_ALLOWANCE = 32 * 1024 * 1024  # the "small constant" above the largest repository


@dataclass
class Row:
    measure: str
    ours: str
    peer: str
    versus: str = ""
    target: str = ""
    verdict: str = ""  # "met", "MISSED ...", or "" when there is no target


def fraction(ours: float, theirs: float) -> str:
    if not theirs or ours != ours or theirs != theirs:
        return "n/a"
    return f"1/{theirs / ours:.1f}" if ours and theirs >= ours else f"{ours / theirs:.2f}×"


def verdict(ok: bool, miss: str) -> str:
    return "met" if ok else f"MISSED: {miss}"


def finished(runs) -> str:
    """'2/3 finished (26.8 s); 1 failed (exit 1) after 8 s' (the reasons are in §6)."""
    if not runs:
        return "not run"
    done = [r for r in runs if r.complete]
    text = f"{len(done)}/{len(runs)} finished"
    if done:
        times = Spread([r.measured.wall_s for r in done])
        text += f" in {times.show(seconds) if len(done) > 1 else seconds(times.median)}"
    failed = [r for r in runs if not r.complete]
    if failed:
        codes = sorted({r.measured.returncode for r in failed})
        text += (f"; {len(failed)} failed (exit {'/'.join(map(str, codes))}) after "
                 + ", ".join(f"{r.measured.wall_s:.0f} s" for r in failed))
    return text


def headline(main: MainResult, secondary: SecondaryResult | None, dag: DagParse) -> list[Row]:
    m1, m2 = main.month_one, main.month_two
    rows: list[Row] = []

    req_ours = spread(m1[GHVAULT], requests_total).median
    req_peer = spread(m1[PEER], requests_total).median
    # Judged like for like: both tools' requests for the content both keep
    # (bench/by_kind.py); ghvault's total also pays for the kinds only it keeps (§1).
    both, peer_both = spread(m1[GHVAULT], both_keep).median, spread(m1[PEER], both_keep).median
    rows.append(Row("API requests, content both keep", f"{both:.0f}", f"{peer_both:.0f}",
                    fraction(both, peer_both), "≤ 1/10 of the peer's",
                    verdict(both * 10 <= peer_both, f"{both:.0f} > {peer_both / 10:.0f}")))
    rows.append(Row("API requests, full backup (with the kinds only ghvault keeps)",
                    f"{req_ours:.0f}", f"{req_peer:.0f}", fraction(req_ours, req_peer)))
    rows.append(Row(f"… against the floor ({main.floor})", f"{req_ours / main.floor:.2f}×",
                    f"{req_peer / main.floor:.2f}×", "", "≤ 1.2× the floor",
                    verdict(req_ours <= 1.2 * main.floor,
                            f"{req_ours / main.floor:.2f}× > 1.2×")))

    one = spread(m1[GHVAULT], charged).median
    two = spread(m2[GHVAULT], charged).median
    peer_two = spread(m2[PEER], charged).median
    rows.append(Row("Rate-limited requests, month two (304s not counted)",
                    f"{two:.0f} (+{spread(m2[GHVAULT], not_modified).median:.0f} free 304s)",
                    f"{peer_two:.0f}", fraction(two, peer_two),
                    f"≤ 1/10 of ghvault's month one ({one / 10:.0f})",
                    verdict(two * 10 <= one, f"{two:.0f} = {100 * two / one:.1f}% of month "
                            f"one, {two - one / 10:.0f} over")))

    w_ours, w_peer = spread(m1[GHVAULT], wall).median, spread(m1[PEER], wall).median
    rows.append(Row("Wall time, full backup", seconds(w_ours),
                    f"{seconds(w_peer)} ({w_peer / 60:.1f} min)",
                    fraction(w_ours, w_peer), "≤ 1/5 of the peer's",
                    verdict(w_ours * 5 <= w_peer, f"{w_ours:.0f} s > {w_peer / 5:.0f} s")))
    w2_ours, w2_peer = spread(m2[GHVAULT], wall).median, spread(m2[PEER], wall).median
    rows.append(Row("Wall time, month two", seconds(w2_ours), seconds(w2_peer),
                    fraction(w2_ours, w2_peer)))

    mem = max(spread(m1[GHVAULT], rss).median, spread(m2[GHVAULT], rss).median)
    rows.append(Row("Peak memory, whole process tree (ghvault with --state)", human(mem),
                    human(spread(m1[PEER], rss).median), "", "< 300 MiB",
                    verdict(mem < MEMORY_LIMIT, f"{human(mem)}")))

    name, largest = main.largest_repo
    peak = spread(m1[GHVAULT], disk).median
    rows.append(Row("Peak disk, work directory", human(peak),
                    human(spread(m1[PEER], disk).median), fraction(peak, spread(m1[PEER],
                                                                                disk).median),
                    f"≈ largest repo ({name}, {human(largest)}) + a small constant "
                    f"(≤ {human(DISK_ALLOWANCE)} taken here)",
                    verdict(peak <= largest + DISK_ALLOWANCE,
                            f"{human(peak - largest)} above the largest repository")))

    stored = main.stored
    ours = Spread([float(v) for v in stored.ghvault_archive]).median
    rows.append(Row("Bytes stored, one month", human(ours),
                    f"{human(stored.peer_zip)} (`{stored.zip_tool}` of the output directory)",
                    fraction(ours, stored.peer_zip)))

    if secondary is not None:
        ours_ok = all(r.complete for r in secondary.runs[GHVAULT])
        rows.append(Row(f"Secondary rate limit ({secondary.config.faults})",
                        finished(secondary.runs[GHVAULT]), finished(secondary.runs[PEER]),
                        "", "the backup finishes",
                        verdict(ours_ok, "ghvault did not finish every run")))

    if dag.ok:
        rows.append(Row("DAG parse (dags/github_backup.py)",
                        f"{Spread(dag.warm_load_s).median * 1000:.0f} ms warm DagBag load; "
                        f"{Spread(dag.cold_total_s).median:.1f} s cold with `import airflow`",
                        "—"))
    else:
        rows.append(Row("DAG parse (dags/github_backup.py)",
                        "not available: " + (dag.reason or "parse failed"), "—"))
    return rows


def markdown(rows: list[Row]) -> str:
    lines = ["| Measure | ghvault | python-github-backup | ghvault vs peer | Target | |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.measure} | {r.ours} | {r.peer} | {r.versus} | {r.target} | "
                     f"{r.verdict} |")
    return "\n".join(lines)
