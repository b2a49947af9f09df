"""Memory bounds for every git child (given through GIT_CONFIG_COUNT with the rest of its
configuration, git.py), so the process tree's memory does not grow with the repositories.

git's defaults size its caches for a workstation: pack-objects and index-pack start one
thread per core, each with its own delta window and base cache (96 MiB each), a 256 MiB
delta cache, mmap windows of 1 GiB up to 8 GiB of pack (every page touched counts as
resident), and whole-blob reads up to 512 MiB. A mirror, a fetch and a bundle (which
reuses the pack's deltas) need none of that: with these bounds one git child stays near
100 MiB whatever the repository, at a small cost in time for very large ones.
"""

GIT_MEMORY_CONFIG: tuple[tuple[str, str], ...] = (
    ("pack.threads", "1"),  # index-pack and pack-objects: one delta worker
    ("pack.windowMemory", "32m"),  # pack-objects' delta search window
    ("pack.deltaCacheSize", "16m"),  # deltas kept between search and write
    ("core.deltaBaseCacheLimit", "16m"),  # inflated delta bases kept while resolving
    # mmap windows of packs: every page of a window is resident while mapped. With 1m/16m
    # `bundle create` of a 100 MiB pack peaked at 20 MiB, 63 MiB with 16m/64m, same time
    # (devtools/memprofile.py's monitor, bench/SCALE.md's notes).
    ("core.packedGitWindowSize", "1m"),  # one mmap window of a pack
    ("core.packedGitLimit", "16m"),  # all mmap windows of packs at once
    ("core.bigFileThreshold", "16m"),  # larger blobs are streamed, never held whole
)
