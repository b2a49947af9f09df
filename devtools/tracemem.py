"""Run `ghvault` under tracemalloc, writing the heap's growth by source line every few
seconds: `python -m devtools.tracemem OUT SECONDS ghvault-args...` (devtools/memprofile.py)."""

from __future__ import annotations

import sys
import threading
import time
import tracemalloc


def watch(out: str, every: float, stop: threading.Event) -> None:
    """Every `every` seconds the growth since start; at the end, what was live when the
    traced heap was at its largest (a snapshot taken whenever it rose by 1 MiB)."""
    first = tracemalloc.take_snapshot()
    started = last = time.monotonic()
    best, at_best = 0, None
    with open(out, "w") as f:
        while not stop.wait(0.1):
            current, _ = tracemalloc.get_traced_memory()
            if current > best + (1 << 20):
                best, at_best = current, (time.monotonic() - started, tracemalloc.take_snapshot())
            if time.monotonic() - last >= every:
                last = time.monotonic()
                f.write(f"--- {last - started:.0f} s: traced {current >> 20} MiB\n")
                for stat in tracemalloc.take_snapshot().compare_to(first, "lineno")[:15]:
                    f.write(f"  {stat}\n")
                f.flush()
        if at_best is not None:
            f.write(f"=== at the largest, {at_best[0]:.0f} s: {best >> 20} MiB\n")
            for stat in at_best[1].compare_to(first, "traceback")[:30]:
                f.write(f"  {stat}\n")
                for line in stat.traceback.format()[-6:]:
                    f.write(f"      {line}\n")


def main() -> int:
    out, every, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    tracemalloc.start(8)
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(out, every, stop), daemon=True)
    watcher.start()
    from ghvault.cli import main as ghvault

    sys.argv = ["ghvault", *argv]
    try:
        return ghvault()
    finally:
        stop.set()
        watcher.join()


if __name__ == "__main__":
    raise SystemExit(main())
