"""Memory bounds: every git child gets the caches capped (gitlimits.py), and the engine's
own heap returns large freed blocks (memory.py)."""

from __future__ import annotations

import subprocess
import sys

from ghvault.git import Git
from ghvault.gitlimits import GIT_MEMORY_CONFIG
from ghvault.memory import bound_malloc


def test_every_git_child_gets_the_memory_bounds(tmp_path):
    git = Git("https://github.example", None, tmp_path / "work", 30)
    try:
        for key, value in GIT_MEMORY_CONFIG:
            result = git.run(["config", "--get", key])
            assert result.code == 0, key
            assert result.stdout.decode().strip() == value, key
    finally:
        git.close()


def test_the_memory_bounds_are_valid_git_settings(tmp_path):
    # git rejects a malformed size or number when it reads it: `--type` checks each.
    git = Git("https://github.example", None, tmp_path / "work", 30)
    try:
        for key, _ in GIT_MEMORY_CONFIG:
            result = git.run(["config", "--type=int", "--get", key])
            assert result.code == 0, (key, result.stderr)
    finally:
        git.close()


def test_bound_malloc_takes_on_glibc():
    # In a fresh interpreter, as the CLI does before any thread starts.
    code = "from ghvault.memory import bound_malloc; print(bound_malloc())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    libc = subprocess.run(["ldd", "--version"], capture_output=True, text=True)
    glibc = "GLIBC" in (libc.stdout + libc.stderr).upper() or "GNU" in libc.stdout
    assert out == ("True" if glibc else "False")
    assert isinstance(bound_malloc(), bool)  # harmless when called again, threads or not


def test_issue_texts_keep_every_issue_on_disk_until_closed(tmp_path):
    from ghvault.collect.spill import BATCH, IssueTexts

    issues = IssueTexts(tmp_path)
    n = BATCH * 2 + 7  # across several transactions, the last one still open
    for number in range(1, n + 1):
        issues[number] = f'{{"number":{number}}}'
    issues[3] = '{"number":3,"title":"edited"}'  # read again: the later copy wins
    assert issues.get(1) == '{"number":1}'
    assert issues.get(n) == f'{{"number":{n}}}'
    assert issues.get(3) == '{"number":3,"title":"edited"}'
    assert issues.get(n + 1) is None
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].stat().st_size > 0
    issues.close()
    assert list(tmp_path.iterdir()) == []


TRIM_PROBE = """
import sys
from ghvault.memory import bound_malloc, trim
bound_malloc()
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
blocks = [bytes(600) for _ in range(100_000)]  # 60 MB of blocks above pymalloc's 512 B
kept = blocks[::100]  # one in a hundred stays: free() cannot shrink the heap's top
del blocks
before = rss()
print(trim(), before - rss())
"""


def test_trim_hands_freed_pages_in_the_middle_of_the_heap_back():
    out = subprocess.run([sys.executable, "-c", TRIM_PROBE], capture_output=True, text=True,
                         check=True).stdout.split()
    if out[0] != "True":  # not glibc: nothing to hand back this way
        return
    assert int(out[1]) > 30 << 20  # most of the 60 MB (a kept block pins only its own page)
