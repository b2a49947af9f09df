"""The bench's monitor: what it calls each process, and that the tree's figures are real."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.monitor import label, pss, run_measured


def test_labels_name_the_git_subcommand_past_its_options():
    assert label(["git", "-c", "pack.threads=1", "-C", "x", "clone", "--mirror"]) == "git clone"
    assert label(["/usr/lib/git-core/git", "index-pack", "--stdin"]) == "git index-pack"
    assert label(["/usr/lib/git-core/git-remote-https", "origin", "u"]) == "git-remote-https"
    assert label(["/v/bin/python", "/v/bin/ghvault", "run"]) == "ghvault"
    assert label([]) == "?"


def test_pss_of_a_live_process_and_of_none():
    assert 0 < pss(os.getpid())
    assert pss(2 ** 22 + 1) == 0  # no such process


def test_a_child_holding_memory_shows_in_the_tree_and_under_its_label(tmp_path):
    # The parent sleeps small; its child holds 64 MiB it has written to (resident).
    child = "import time; b = bytearray(64 << 20); b[::4096] = b'x' * (len(b) // 4096); " \
            "time.sleep(1.5)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    m = run_measured([sys.executable, "-c", parent], dict(os.environ), {}, tmp_path / "logs",
                     60, cwd=Path(tmp_path))
    assert m.returncode == 0
    assert m.peak_rss > m.peak_rss_main + (60 << 20)
    assert m.peak_pss > 60 << 20
    assert max(m.peak_by_command.values()) > 60 << 20
    assert sum(rss for _, rss in m.at_peak) == m.peak_rss
