"""Repeated measurements: median and spread, and the shapes the report prints them in."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.sizes import human
from bench.tools import ToolRun


@dataclass
class Spread:
    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def show(self, fmt: Callable[[float], str] = lambda v: f"{v:.0f}") -> str:
        if not self.values:
            return "n/a"
        if len(self.values) == 1:
            return f"{fmt(self.values[0])} (1 run)"
        lo, hi = min(self.values), max(self.values)
        if fmt(lo) == fmt(hi):
            return f"{fmt(self.median)} (all {len(self.values)} runs)"
        return f"{fmt(self.median)} ({fmt(lo)}–{fmt(hi)})"


def spread(runs: Sequence[ToolRun], value: Callable[[ToolRun], float]) -> Spread:
    return Spread([value(r) for r in runs])


def seconds(v: float) -> str:
    return f"{v:.1f} s" if v < 100 else f"{v:.0f} s"


def mib(v: float) -> str:
    return human(v)


def requests_total(r: ToolRun) -> float:
    return r.stats["requests_total"]


def charged(r: ToolRun) -> float:
    return r.stats["charged"]


def not_modified(r: ToolRun) -> float:
    return r.stats["not_modified"]


def graphql(r: ToolRun) -> float:
    return r.stats["graphql_requests"]


def wall(r: ToolRun) -> float:
    return r.measured.wall_s


def rss(r: ToolRun) -> float:
    return r.measured.peak_rss


def rss_main(r: ToolRun) -> float:
    return r.measured.peak_rss_main


def disk(r: ToolRun) -> float:
    return max(r.measured.peak_disk.values(), default=0)


def secondary_hits(r: ToolRun) -> float:
    return r.stats.get("secondary_rate_limited") or r.stats.get("faults", {}).get("secondary", 0)


@dataclass
class Stored:
    ghvault_archive: list[int] = field(default_factory=list)  # bytes of each month-one archive
    peer_dir: int = 0  # the peer's month-one output directory on disk
    peer_zip: int = 0  # that directory zipped
    zip_tool: str = ""


@dataclass
class Machine:
    cores: int
    memory: int
    cpu: str
    system: str
    python: str
    git: str


def machine() -> Machine:
    import os
    import platform
    import subprocess
    import sys

    import psutil

    cpu = platform.processor() or ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return Machine(cores=os.cpu_count() or 0, memory=psutil.virtual_memory().total, cpu=cpu,
                   system=f"{platform.system()} {platform.release()}",
                   python=sys.version.split()[0], git=git)
