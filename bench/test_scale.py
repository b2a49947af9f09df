"""`python -m bench --scale` runs end to end on `tiny` (so the scale bench cannot rot).

About a minute on this 2-core machine (two simulators' worth of runs, moto and the Fargate
harness), so it lives beside the bench, outside `make test`'s `tests/`:
`.venv/bin/pytest -p no:cacheprovider bench`.
"""

from __future__ import annotations

import re

from bench.__main__ import main


def test_scale_bench_runs_on_tiny(tmp_path):
    results, plot = tmp_path / "SCALE.md", tmp_path / "scale.png"
    code = main(["--scale", "--sizes", "tiny", "--git-state-sizes", "tiny",
                 "--shard-size", "tiny", "--shards", "1,2", "--estimate-size", "tiny",
                 "--latency-ms", "0", "--git-kbps", "0", "--results", str(results),
                 "--plot", str(plot), "--work", str(tmp_path / "work")])
    assert code == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = results.read_text()
    assert "](scale.png)" in text  # the plot is linked relative to SCALE.md
    # month one of tiny: the owner's counts, then requests against a non-zero floor
    row = re.search(r"^\| tiny \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| ([\d.]+)× \|",
                    text, re.M)
    assert row, text
    repos, items, comments, floor, requests, ratio = row.groups()
    assert int(repos) > 0 and int(items) > 0 and int(floor) > 0
    assert float(ratio) == round(int(requests) / int(floor), 3)
    # month two, both shard counts complete, and the estimate's hours
    assert re.search(r"^\| tiny \| [\d.]+ s \| [\d.]+ s \| [\d.]+× \|", text, re.M)
    assert re.search(r"^\| 1 \| .* \| complete \|$", text, re.M)
    assert re.search(r"^\| 2 \| [\d.]+ s \| [\d.]+ s, [\d.]+ s \| .* \| complete \|$", text,
                     re.M)
    assert f"| the floor | {floor} |" in text
    assert "| requests ≤ 1.05× the floor (tiny) |" in text
    assert "## Failures" not in text
