"""bench/shard_parts.py: the scale bench reads the parts' manifests and fails a sharded run
whose parts hold a repository twice, or not at all."""

from __future__ import annotations

import json
import zipfile

from bench.shard_parts import miscounts, part_problems, part_repos


def part(tmp_path, k: int, n: int, repos: list[str], owner_repos: int):
    path = tmp_path / f"o-2026-10.part-{k}-of-{n}.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("MANIFEST.json", json.dumps({"shard": {
            "index": k, "count": n, "owner_repos": owner_repos, "repos": repos}}))
    return path


def test_disjoint_parts_that_cover_the_owner_pass(tmp_path):
    held = {1: part_repos(part(tmp_path, 1, 2, ["a", "b"], 3)),
            2: part_repos(part(tmp_path, 2, 2, ["c"], 3))}
    assert held[1] == ({"a", "b"}, 3)
    assert part_problems(held, 2) == []


def test_a_repository_in_two_parts_is_named(tmp_path):
    held = {1: part_repos(part(tmp_path, 1, 3, ["a", "b"], 3)),
            2: part_repos(part(tmp_path, 2, 3, ["b"], 3)),
            3: part_repos(part(tmp_path, 3, 3, ["c"], 3))}
    assert part_problems(held, 3) == ["repository b in parts 1, 2 of 3"]


def test_a_repository_in_no_part_and_differing_listings_are_named(tmp_path):
    short = {1: ({"a"}, 3), 2: ({"c"}, 3)}
    assert part_problems(short, 2) == ["the parts hold 2 repositories of the owner's 3"]
    assert part_problems({1: ({"a"}, 3), 2: ({"b"}, 4)}, 2) == [
        "the parts saw different repository counts: [3, 4]"]


def test_an_unsharded_run_has_nothing_to_compare():
    assert part_problems({1: (set(), None)}, 1) == []


def test_a_miscount_names_each_parts_count():
    expected = {"repos": 4, "releases": 9}
    parts = [{"repos": 2, "releases": 3}, {"repos": 2, "releases": 9}]
    assert miscounts(expected, parts) == ["releases 12/9 (by part: 3, 9)"]
    assert miscounts(expected, [{"repos": 4, "releases": 9}]) == []
    assert miscounts(expected, [{"repos": 3, "releases": 9}]) == ["repos 3/4"]
