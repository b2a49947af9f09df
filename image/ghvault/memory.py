"""Bounds on the engine's own heap, set once at start-up before any thread exists.

glibc's malloc gives every thread that allocates its own arena (up to 8 per core) and,
once a large block is freed, raises the size above which blocks are mmap'd (up to 32 MiB):
from then on large buffers (pages of JSON, JSONL spools, zlib and HTTP buffers) come from
the arenas, and the freed holes stay resident. With a few arenas and a fixed threshold,
large blocks go back to the system when freed and the resident size stays flat however
many repositories or issues the run goes through. Python has no binding for mallopt(3),
hence ctypes; on a libc without it (musl, macOS) this does nothing.

Freed small blocks in the middle of a heap stay resident all the same (free() returns only
the top of a heap): `trim()`, after each repository, hands their whole pages back
(malloc_trim(3)), so the holes left by the large repositories at the start of a run do not
add to every later peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger("ghvault")

# mallopt(3) parameters, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

ARENAS = 2  # the main thread's and one shared by the worker threads
MMAP_THRESHOLD = 256 << 10  # larger blocks are mmap'd, so freeing them returns the memory
TRIM_THRESHOLD = 1 << 20  # free memory kept at the top of a heap before it is returned


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None)
    except OSError:
        return None


def trim() -> bool:
    """Return the free pages of every heap to the system; True when the C library can."""
    malloc_trim = getattr(_libc(), "malloc_trim", None)
    if malloc_trim is None:
        return False
    malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    malloc_trim(0)
    return True


def bound_malloc() -> bool:
    """Apply the bounds; True when the C library took them."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all(mallopt(param, value) == 1 for param, value in (
        (M_ARENA_MAX, ARENAS), (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD)))
    if not ok:
        log.debug("mallopt refused a memory bound; the C library's defaults apply")
    return ok
