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
    peak_disk: dict[str, int] = field(default_factory=dict)  # label -> bytes
    stdout: str = ""
    stderr_tail: str = ""
    timed_out: bool = False


def tree_rss(root: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, right now."""
    total = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


class _Peak:
    def __init__(self) -> None:
        self.value = 0

    def see(self, value: int) -> None:
        self.value = max(self.value, value)


def _watch_rss(root: psutil.Process, peak: _Peak, main: _Peak, stop: threading.Event) -> None:
    while not stop.is_set():
        peak.see(tree_rss(root))
        try:
            main.see(root.memory_info().rss)
        except psutil.Error:
            pass
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
    rss, rss_main = _Peak(), _Peak()
    disks = {label: _Peak() for label in disk}
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, cwd=cwd)
        watchers = [threading.Thread(target=_watch_rss, args=(psutil.Process(proc.pid), rss,
                                                              rss_main, stop), daemon=True)]
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
                    peak_rss_main=rss_main.value,
                    peak_disk={label: p.value for label, p in disks.items()},
                    stdout=out_path.read_text(errors="replace"), stderr_tail=stderr[-3000:],
                    timed_out=timed_out)
