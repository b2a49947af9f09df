"""bench/RESULTS.md: the machine, the commands, a table per measurement, the headline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bench import report_kinds
from bench.coverage import KINDS, PEER_KINDS
from bench.dagparse import DagParse
from bench.dagparse import command as dag_command
from bench.scenarios import MainResult, Plan, SecondaryResult
from bench.sizes import human
from bench.stats import (
    Machine,
    charged,
    disk,
    graphql,
    mib,
    not_modified,
    requests_total,
    rss,
    rss_main,
    secondary_hits,
    seconds,
    spread,
    wall,
)
from bench.targets import Row, markdown
from bench.tools import GHVAULT, PEER, ToolRun

TOOLS = (GHVAULT, PEER)


@dataclass
class Report:
    plan: Plan
    machine: Machine
    started: datetime
    total_s: float
    main: MainResult
    secondary: SecondaryResult | None
    dag: DagParse
    headline: list[Row]
    failures: list[str]
    load: tuple[float, float]  # 1-minute load average at the start and at the end


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def per_tool(runs: dict[str, list[ToolRun]], measures: list[tuple[str, object, object]]) -> str:
    rows = [[name] + [spread(runs[t], value).show(fmt) for t in TOOLS]
            for name, value, fmt in measures]
    return table(["", GHVAULT, PEER], rows)


def count(v: float) -> str:
    return f"{v:.0f}"


def coverage(expected: dict[str, int], runs: dict[str, list[ToolRun]]) -> str:
    rows = []
    for kind in KINDS:
        want = expected.get(kind, 0)
        cells = [kind, str(want)]
        for t in TOOLS:
            if t == PEER and kind not in PEER_KINDS:
                cells.append("not kept")
                continue
            got = sorted({r.counts.get(kind, 0) for r in runs[t]})
            cells.append("/".join(map(str, got)) + (" ✓" if got == [want] else " ✗"))
        rows.append(cells)
    return table(["kind", "simulator's counts", GHVAULT, PEER], rows)


def charged_endpoints(run: ToolRun, top: int = 15) -> str:
    paid = [(sum(n for status, n in statuses.items() if status != "304"), endpoint)
            for endpoint, statuses in run.stats["by_endpoint"].items()]
    paid = sorted((p for p in paid if p[0]), reverse=True)
    rows = [[f"`{endpoint}`", str(n)] for n, endpoint in paid[:top]]
    if len(paid) > top:
        rows.append([f"{len(paid) - top} other endpoints", str(sum(n for n, _ in paid[top:]))])
    return table(["endpoint", "requests"], rows)


def every_run(runs: list[ToolRun]) -> str:
    rows = [[r.tool, r.label, r.outcome, f"{r.measured.wall_s:.1f} s",
             str(r.stats["requests_total"]), str(r.stats["charged"]),
             str(r.stats["not_modified"]), str(secondary_hits(r)), human(r.measured.peak_rss),
             human(disk(r))] for r in runs]
    return table(["tool", "run", "outcome", "wall", "requests", "charged", "304",
                  "secondary limits met", "peak RSS", "peak disk"], rows)


def render(rep: Report) -> str:
    plan, main, m = rep.plan, rep.main, rep.machine
    cfg = plan.sim
    n_ours, n_peer = plan.runs, plan.peer_runs
    out = [
        "# Benchmarks: ghvault against python-github-backup",
        "",
        f"Written by `make bench` (`.venv/bin/python -m bench --runs {n_ours} --peer-runs "
        f"{n_peer}`) on {rep.started:%Y-%m-%d %H:%M} UTC; the whole benchmark took "
        f"{seconds(rep.total_s)}. Figures are the median over the runs with the range in "
        "brackets.",
        "",
    ]
    if rep.failures:
        out += ["**FAILED** — the benchmark exited non-zero because:", ""]
        out += [f"- {f}" for f in rep.failures] + [""]
    out += [
        "## Machine", "",
        f"- {m.cores} cores ({m.cpu}), {human(m.memory)} memory, {m.system}",
        f"- Python {m.python}, {m.git}, python-github-backup 0.65.1 (PyPI, unchanged)",
        f"- 1-minute load average {rep.load[0]:.1f} at the start, {rep.load[1]:.1f} at the end "
        "(the machine is shared: other work may have run beside the benchmark)",
        "",
        "## Dataset and setup", "",
        f"- The project's GitHub simulator, size `{cfg.size}`, seed {cfg.seed}, served over TLS "
        f"with {cfg.latency_ms} ms added to every API answer and git/LFS bandwidth capped at "
        f"{cfg.git_kbps} kbit/s per connection. One simulator process per scenario.",
        f"- Owner: `{main.owner}` ({plan.role}): " + ", ".join(
            f"{main.expected_one.get(k, 0)} {k}" for k in KINDS) + ". Largest repository: "
        f"`{main.largest_repo[0]}`, {human(main.largest_repo[1])} on the server.",
        f"- Repetitions: ghvault {n_ours}×, python-github-backup {n_peer}× per measurement "
        f"(one full peer run takes {seconds(spread(main.month_one[PEER], wall).median)} "
        "here: more peer runs would push `make bench` towards an hour on this machine).",
        f"- Rate limit lifted to {cfg.rate_limit} requests/hour in the simulator so that both "
        "tools run at their own speed: the peer's full backup needs more than GitHub's "
        "5,000/hour for one token and would otherwise sit out the rest of the hour.",
        "- Both tools get the same selection: every repository (private, forks), wikis, "
        "issues, pulls with reviews, comments, releases with assets, discussions, gists, account "
        "data. "
        "Coverage is counted from what each tool wrote (the archive's entries; the peer's "
        "JSON files), not from what it says.",
        "- The peer runs with `--incremental` in month one too: only an `--incremental` run "
        "writes the checkpoints the next month's `--incremental` run reads.",
        f"- Month two: `POST /_sim/mutate` ({_mutation(main.mutation)}), then ghvault with a "
        "copy of its month-one `--state`, the peer with `--incremental` on a copy of its "
        "month-one directory.",
        "", "## Headline", "", markdown(rep.headline), "",
        "## Commands", "", "```",
        cfg.command(),
        *main.commands,
    ]
    if rep.secondary:
        out += [rep.secondary.config.command(), *rep.secondary.commands]
    out += [dag_command(rep.dag.repeats or 6), "```", "",
            "`$API`, `$HOST` and `$TOKEN` come from the simulator's ready file; ghvault "
            "reads the token from `GITHUB_TOKEN`. The clients trust the simulator's CA "
            "through `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE` and `GIT_SSL_CAINFO`.", ""]
    out += _measurements(rep)
    return "\n".join(out) + "\n"


def _mutation(mut: dict) -> str:
    keys = ("new_issues", "edited_issues", "new_comments", "closed_issues")
    text = ", ".join(f"{mut.get(k, 0)} {k.replace('_', ' ')}" for k in keys)
    return text + f", pushes to {len(mut.get('pushed_repos', []))} repositories, one new " \
                  "and one deleted repository across both owners"


def _measurements(rep: Report) -> list[str]:
    main = rep.main
    m1, m2 = main.month_one, main.month_two
    ratio = spread(m1[GHVAULT], requests_total).median / main.floor
    out = [
        "## 1. API requests, full backup", "",
        per_tool(m1, [("API requests (REST + GraphQL)", requests_total, count),
                      ("charged to the rate limit", charged, count),
                      ("GraphQL requests", graphql, count)]), "",
        f"Floor (every list at 100 per page, GraphQL pages for reviews, one request per "
        f"release asset; `floor_requests` in devtools/floor.py): **{main.floor}**; "
        f"ghvault is at {ratio:.2f}× the floor.", "",
        *report_kinds.by_kind(m1),
        "Coverage, month one (every run):", "", coverage(main.expected_one, m1), "",
        "## 2. Rate-limited requests, month two", "",
        per_tool(m2, [("charged to the rate limit", charged, count),
                      ("304 Not Modified (free)", not_modified, count),
                      ("API requests in all", requests_total, count)]), "",
        "What ghvault's month two still pays for (first run; requests not answered 304, "
        "by endpoint):", "", charged_endpoints(m2[GHVAULT][0]), "",
        "Coverage, month two (against the counts after the month of activity):", "",
        coverage(main.expected_two, m2), "",
        "## 3. Wall time", "",
        per_tool(m1, [("full backup", wall, seconds)]), "",
        per_tool(m2, [("month two", wall, seconds)]), "",
        "## 4. Peak memory and disk", "",
        per_tool(m1, [("peak RSS, whole process tree (month one)", rss, mib),
                      ("peak RSS, the tool's own process (month one)", rss_main, mib),
                      ("peak disk, work directory (month one)", disk, mib)]), "",
        per_tool(m2, [("peak RSS, whole process tree (month two)", rss, mib),
                      ("peak RSS, the tool's own process (month two)", rss_main, mib),
                      ("peak disk, work directory (month two)", disk, mib)]), "",
        "RSS is the sum over the tool's process and all its descendants (git included), "
        "sampled at 20 Hz with psutil. Disk is what the work directory occupies, sampled "
        "continuously: ghvault's `--workdir` (its archive streams to the destination and is "
        "counted in §5), the peer's output directory (which is its backup). Month two of the "
        "peer starts from its month-one directory.", "",
        *_without_state(rep.secondary),
        "## 5. Bytes stored", "",
        table(["", "bytes"], [
            ["ghvault archive (month one)", _sizes(main.stored.ghvault_archive)],
            ["python-github-backup output directory, on disk", human(main.stored.peer_dir)],
            [f"python-github-backup output directory, `{main.stored.zip_tool}`",
             human(main.stored.peer_zip)]]), "",
    ]
    if rep.secondary:
        sec = rep.secondary
        out += [f"## 6. Secondary rate limit (`{sec.config.faults}`)", "",
                "Month one with 2% of API requests answered by GitHub's secondary rate limit "
                "(403 + `retry-after`); run i of each tool meets the same fault draws.", "",
                every_run(sec.runs[GHVAULT] + sec.runs[PEER]), ""]
    out += ["## DAG parse", "", *_dag(rep.dag), "", "## Notes", "", *_notes(rep), "",
            "## Every run", "", every_run(m1[GHVAULT] + m1[PEER] + m2[GHVAULT] + m2[PEER]), ""]
    return out


def _without_state(secondary: SecondaryResult | None) -> list[str]:
    """ghvault's memory without --state: its secondary-limit runs use none."""
    done = [r for r in (secondary.runs[GHVAULT] if secondary else []) if r.complete]
    if not done:
        return []
    return [f"ghvault runs above use `--state` (month two needs it). Its complete runs "
            f"without `--state` (the secondary-limit scenario, §6) peaked at "
            f"{spread(done, rss).show(mib)} for the process tree and "
            f"{spread(done, rss_main).show(mib)} for its own process.", ""]


def _sizes(values: list[int]) -> str:
    return ", ".join(human(v) for v in values) if values else "n/a"


def _dag(dag: DagParse) -> list[str]:
    from bench.stats import Spread

    if not dag.available:
        return [f"Not available: {dag.reason}."]
    if not dag.ok:
        return ["The file did not parse:", "", "```", *[f"{k}: {v}" for k, v in
                                                        dag.errors.items()], "```"]
    ms = lambda v: f"{v * 1000:.0f} ms"  # noqa: E731
    return [
        f"{dag.processes} fresh interpreters, each loading the file {dag.repeats} times with "
        f"`DagBag` (DAGs found: {', '.join(dag.dag_ids)}).", "",
        table(["", "median (range)"], [
            ["cold: interpreter start, `import airflow`, first DagBag load",
             Spread(dag.cold_total_s).show(ms)],
            ["`import airflow` alone", Spread(dag.import_airflow_s).show(ms)],
            ["first DagBag load after `import airflow` (pays the DAG's own imports)",
             Spread(dag.first_load_s).show(ms)],
            ["warm DagBag load (later loads in the same process)",
             Spread(dag.warm_load_s).show(ms)]]),
    ]


def _notes(rep: Report) -> list[str]:
    notes = [
        "- RSS sums the resident sets of every process in the tree, so pages shared "
        "between processes (libraries of concurrent `git` children) count more than once: "
        "an upper bound on the real footprint.",
        "- Disk is sampled by walking the directory (never faster than the walk itself), so "
        "a peak shorter than one walk can be missed; the peer's directory only grows.",
        "- One account size only: the disk target's \"whatever the account size\" is not "
        "shown by these figures.",
        "- The secondary-limit scenario counts the peer's failure as its result, not as a "
        "benchmark failure; ghvault must finish every run.",
    ]
    peer_two = rep.main.month_two[PEER]
    latest = rep.main.latest_repo_stamp
    if latest and latest <= f"{rep.started:%Y-%m-%dT%H:%M:%SZ}":
        notes.append(
            f"- The simulator's generated history lies in the past (the owner's repositories "
            f"were last updated or pushed at {latest}); `/_sim/mutate` dates the month's "
            "activity within the 25 days before it runs, after all of it, so `since=`-based "
            "incremental clients (the peer's `--incremental`) find it as they would on "
            "GitHub.")
    if any(r.missing for r in peer_two) and latest > f"{rep.started:%Y-%m-%dT%H:%M:%SZ}":
        notes.append(
            "- The peer's month two is incomplete because its `--incremental` asks each "
            "repository's issues for `since=<the repository's updated_at/pushed_at at the "
            "last run>`, and the simulator's generated timestamps run past the present "
            f"(the owner's repositories up to {latest}) while `/_sim/mutate` dates the "
            "month's activity within the past month: the new and changed issues of such "
            "repositories fall before `since`. On GitHub "
            "timestamps never lie in the future; this is a simulator artefact, and it makes "
            "the peer's month-two figures (requests, time) lower than they would be.")
    return notes
