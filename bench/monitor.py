"""Run a command and watch it: wall time, peak memory of its process tree, peak disk."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.sizes import disk_usage

RSS_INTERVAL = 0.05  # 20 Hz
DISK_MIN_INTERVAL = 0.1


@dataclass
class Measured:
    returncode: int
    wall_s: float
    peak_rss: int  # bytes, the sum over the whole process tree at its largest
    peak_rss_main: int = 0  # bytes, the tool's own process alone
    peak_pss: int = 0  # bytes, the tree's proportional set size (shared pages counted once)
    peak_by_command: dict[str, int] = field(default_factory=dict)  # one process's peak, by label
    at_peak: list[tuple[str, int]] = field(default_factory=list)  # (label, rss) at the tree's peak
    peak_disk: dict[str, int] = field(default_factory=dict)  # label -> bytes
    stdout: str = ""
    stderr_tail: str = ""
    timed_out: bool = False


def tree_rss(root: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, right now."""
    return sum(rss for _, _, rss in _tree(root))


def _tree(root: psutil.Process) -> list[tuple[psutil.Process, str, int]]:
    """(process, label, rss) of the process and its descendants, right now."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    found, argvs = [], {}
    for p in procs:
        try:
            argv = argvs[p.pid] = p.cmdline()
            # A child caught between fork and exec still runs its parent's program in its
            # parent's pages (vfork shares them; a fork copies on write): counted once.
            if argv != argvs.get(p.ppid()):
                found.append((p, label(argv), p.memory_info().rss))
        except psutil.Error:
            continue
    return found


def label(argv: list[str]) -> str:
    """What a process is, for the breakdown: `git clone`, `git-remote-https`, `ghvault`."""
    if not argv:
        return "?"
    name = Path(argv[0]).name
    if name == "git":  # the subcommand: the first argument that is no option (-c takes one)
        rest = iter(argv[1:])
        for a in rest:
            if a in ("-c", "-C"):
                next(rest, None)
            elif not a.startswith("-"):
                return f"git {a}"
        return "git"
    if name.startswith("python") and len(argv) > 1:
        return Path(argv[1]).name
    return name


def pss(pid: int) -> int:
    """Proportional set size of one process (Linux; 0 elsewhere or when it has gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class _Peak:
    def __init__(self) -> None:
        self.value = 0

    def see(self, value: int) -> None:
        self.value = max(self.value, value)


class _Breakdown:
    """The peak of each process label and the tree's composition at its largest."""

    def __init__(self) -> None:
        self.by_command: dict[str, int] = {}
        self.at_peak: list[tuple[str, int]] = []
        self.pss = _Peak()


def _watch_rss(root: psutil.Process, peak: _Peak, main: _Peak, parts: _Breakdown,
               stop: threading.Event) -> None:
    while not stop.is_set():
        now = _tree(root)
        total = sum(rss for _, _, rss in now)
        if total > peak.value:
            parts.at_peak = sorted(((name, rss) for _, name, rss in now), key=lambda x: -x[1])
        peak.see(total)
        parts.pss.see(sum(pss(p.pid) for p, _, _ in now))
        for p, name, rss in now:
            parts.by_command[name] = max(parts.by_command.get(name, 0), rss)
            if p.pid == root.pid:
                main.see(rss)
        stop.wait(RSS_INTERVAL)


def _watch_disk(path: Path, peak: _Peak, stop: threading.Event) -> None:
    # A walk of a large tree costs CPU on a small machine: poll at most half the time.
    while not stop.is_set():
        started = time.perf_counter()
        peak.see(disk_usage(path))
        spent = time.perf_counter() - started
        stop.wait(max(DISK_MIN_INTERVAL, spent))


def run_measured(argv: list[str], env: dict[str, str], disk: dict[str, Path], log_dir: Path,
                 timeout: float, cwd: Path | None = None) -> Measured:
    """Run `argv` to its end, sampling RSS at ~20 Hz and each `disk` directory continuously.

    stdout and stderr go to files in `log_dir` (a chatty tool cannot block on a pipe).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / "stdout.log", log_dir / "stderr.log"
    stop = threading.Event()
    rss, rss_main, parts = _Peak(), _Peak(), _Breakdown()
    disks = {label: _Peak() for label in disk}
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, cwd=cwd)
        watchers = [threading.Thread(target=_watch_rss, args=(psutil.Process(proc.pid), rss,
                                                              rss_main, parts, stop),
                                     daemon=True)]
        watchers += [threading.Thread(target=_watch_disk, args=(path, disks[label], stop),
                                      daemon=True) for label, path in disk.items()]
        for w in watchers:
            w.start()
        timed_out = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            proc.wait()
        wall = time.perf_counter() - started
        stop.set()
        for w in watchers:
            w.join()
    for label, path in disk.items():
        disks[label].see(disk_usage(path))
    stderr = err_path.read_text(errors="replace")
    return Measured(returncode=proc.returncode, wall_s=wall, peak_rss=rss.value,
                    peak_rss_main=rss_main.value, peak_pss=parts.pss.value,
                    peak_by_command=parts.by_command, at_peak=parts.at_peak,
                    peak_disk={label: p.value for label, p in disks.items()},
                    stdout=out_path.read_text(errors="replace"), stderr_tail=stderr[-3000:],
                    timed_out=timed_out)
