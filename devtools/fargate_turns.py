"""Bounded concurrency for the Fargate harness (devtools/fargate.py, `max_running`).

On Fargate every task has its own vCPUs; the harness runs tasks on this machine's shared
cores, so a measurement of each task's own wall time runs them a few at a time. Tasks take
their turn in the order moto received them: a threading.Semaphore would let any waiter in.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable


class Turns:
    """At most `limit` holders at once (None: no limit), first queued, first served."""

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"max_running must be at least 1 or None, not {limit!r}")
        self.limit = limit
        self._queue: deque[str] = deque()
        self._running = 0
        self._cond = threading.Condition()

    def enqueue(self, key: str) -> None:
        """Queue `key` (the watcher, in moto's order, before the task's thread starts)."""
        if self.limit:
            with self._cond:
                self._queue.append(key)

    def take(self, key: str, give_up: Callable[[], bool], poll: float) -> bool:
        """Wait for `key`'s turn; False (its place given up) once `give_up()` is true."""
        if not self.limit:
            return True
        with self._cond:
            while not (self._queue and self._queue[0] == key and self._running < self.limit):
                if give_up():
                    self.leave(key)
                    return False
                self._cond.wait(poll)
            self._queue.popleft()
            self._running += 1
            self._cond.notify_all()
        return True

    def leave(self, key: str) -> None:
        """`key` will not run (a start failure, a stop): the tasks behind it move up."""
        with self._cond:
            if key in self._queue:
                self._queue.remove(key)
                self._cond.notify_all()

    def release(self) -> None:
        """A task that took its turn has ended."""
        if self.limit:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()
