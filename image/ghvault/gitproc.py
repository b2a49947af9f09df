"""The git children of this process, so that a stopping run can kill them all."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

_CHILDREN: set[subprocess.Popen] = set()  # started by Git.run and not reaped yet
_CHILDREN_LOCK = threading.Lock()


def _own_group_children() -> set[int]:
    """Process groups led by a direct child of this process (how git children are started:
    `start_new_session`, here and in bundles.py), read from /proc; empty where there is
    none. A child is never reaped while listed here, so its pid cannot have been reused."""
    me, groups = os.getpid(), set()
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return groups
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        ppid, pgid = int(fields[1]), int(fields[2])
        if ppid == me and pgid == pid:
            groups.add(pgid)
    return groups


def kill_children() -> int:
    """SIGKILL the process group of every git child still running, so git's own helpers
    (remote-https, index-pack, pack-objects, git-lfs) go with it; the number of groups.
    Every git of this process leads its own group (`start_new_session`); this process's own
    group is never signalled."""
    with _CHILDREN_LOCK:
        groups = {p.pid for p in _CHILDREN if p.returncode is None}
    groups |= _own_group_children()
    groups.discard(os.getpgrp())
    killed = 0
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
            killed += 1
        except (ProcessLookupError, PermissionError):
            pass
    return killed
