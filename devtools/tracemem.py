"""Run `ghvault` under tracemalloc, writing the heap's growth by source line every few
seconds: `python -m devtools.tracemem OUT SECONDS ghvault-args...` (devtools/memprofile.py)."""

from __future__ import annotations

import sys
import threading
import time
import tracemalloc


def watch(out: str, every: float, stop: threading.Event) -> None:
    first = tracemalloc.take_snapshot()
    started = time.monotonic()
    with open(out, "w") as f:
        while not stop.wait(every):
            snap = tracemalloc.take_snapshot()
            current, peak = tracemalloc.get_traced_memory()
            f.write(f"--- {time.monotonic() - started:.0f} s: traced {current >> 20} MiB "
                    f"(peak {peak >> 20} MiB)\n")
            for stat in snap.compare_to(first, "lineno")[:25]:
                f.write(f"  {stat}\n")
            f.flush()


def main() -> int:
    out, every, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    tracemalloc.start(1)
    stop = threading.Event()
    threading.Thread(target=watch, args=(out, every, stop), daemon=True).start()
    from ghvault.cli import main as ghvault

    sys.argv = ["ghvault", *argv]
    try:
        return ghvault()
    finally:
        stop.set()


if __name__ == "__main__":
    raise SystemExit(main())
