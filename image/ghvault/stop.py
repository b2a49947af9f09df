"""How a backup stops: on SIGTERM or SIGINT, or when one of its jobs fails.

ECS, Docker and Airflow stop a task with SIGTERM and kill it after a grace period (Fargate's
`stopTimeout`, set to 120 s in infra/ghvault.yaml). A stopping run starts no more work, makes
its jobs give up at their next GitHub request or git command, kills its git children, and
leaves nothing published; the engine then exits 128 + the signal (143 or 130).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .git import kill_children

if TYPE_CHECKING:
    from .github.client import GitHubClient

log = logging.getLogger("ghvault")
STOP_GRACE = 5.0  # seconds a stopping run gives its running jobs to give up


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT stopped the run: nothing was published. Exit code 128 + the
    signal's number (143 for SIGTERM, 130 for SIGINT), as for a process a signal ends.

    A KeyboardInterrupt, as Python makes of SIGINT itself: no `except Exception` on the way
    swallows it, and every `finally` runs."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {signal_name(signum)} before the archive was "
                         "published: nothing was written to --dest (an archive already there "
                         "is unchanged): run the backup again")


class Halted(BaseException):
    """Raised in a job (collector or git) once the run is stopping, at its next request or
    git command. A BaseException, so that no collector's `except Exception` swallows it."""


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopRequest:
    """How a run stops: on a signal, or when one of its jobs fails.

    The first SIGTERM or SIGINT raises Interrupted in the main thread at once (even in the
    middle of a request or a sleep; while the jobs run, at its next look at them, within a
    quarter of a second), unless the main thread is in a `held` step: starting the upload,
    publishing, cleaning up. Those finish first; then `held(then_stop=True)`
    raises, the others let the run carry on to its end. The way out (`Backup.run`) aborts
    the upload and removes the scratch directory; `halt()` sets the event that jobs check
    before each request and git command, and kills the git children. Later signals are
    logged and otherwise ignored: the stop is under way."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._held: list[str] = []  # the main thread's steps that a signal lets finish

    def check(self) -> None:
        """In a job: raise Halted once the run is stopping."""
        if self.event.is_set():
            raise Halted()

    def halt(self) -> None:
        """Stop the jobs: the event they check, and their git children killed."""
        self.event.set()
        killed = kill_children()
        if killed:
            log.info("killed %d git process group(s)", killed)

    def on_signal(self, signum: int, frame: Any = None) -> None:
        name = signal_name(signum)
        if self.signum is not None:
            log.warning("%s received: already stopping", name)
            return
        self.signum = signum
        if self._held and self._held[-1] is not None:
            log.warning("%s received while %s: letting that finish first", name,
                        self._held[-1])
            return
        log.warning("%s received: stopping (killing git, aborting the upload, removing the "
                    "scratch directory)", name)
        if not self._held:
            raise Interrupted(signum)  # else at the end of the `held()` block, in a moment

    @contextmanager
    def held(self, step: str | None = None, then_stop: bool = True) -> Iterator[None]:
        """A step a signal does not cut short. With `then_stop`, a signal that came during
        it raises Interrupted once it is done. A step without a name is a short one (a
        wait with a timeout): the signal is logged as stopping the run at once."""
        self._held.append(step)
        try:
            yield
        finally:
            self._held.pop()
        if then_stop and self.signum is not None and not self._held:
            raise Interrupted(self.signum)

    @contextmanager
    def handling_signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT handled by `on_signal` for the block (main thread only: the
        only one Python delivers signals to)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class StoppableClient:
    """The GitHub client as the jobs see it: each request first checks the stop."""

    def __init__(self, client: GitHubClient, stop: StopRequest) -> None:
        self._client = client
        self._stop = stop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self._stop.check()
        return self._client.get(*args, **kwargs)

    def graphql(self, *args: Any, **kwargs: Any) -> Any:
        self._stop.check()
        return self._client.graphql(*args, **kwargs)

    def download(self, *args: Any, **kwargs: Any) -> Any:
        self._stop.check()
        return self._client.download(*args, **kwargs)

    def paginate(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return self._checked(self._client.paginate(*args, **kwargs))

    def paginate_newest_first(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return self._checked(self._client.paginate_newest_first(*args, **kwargs))

    def _checked(self, items: Iterable[Any]) -> Iterator[Any]:
        """The items, the stop checked before each (so before each page's request)."""
        it = iter(items)
        while True:
            self._stop.check()
            try:
                item = next(it)
            except StopIteration:
                return
            yield item


__all__ = ["STOP_GRACE", "Halted", "Interrupted", "StopRequest", "StoppableClient",
           "signal_name"]
