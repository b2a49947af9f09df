"""`ghvault run --shard K/N` end to end on the simulator's small user (2 parts) and org (3
parts): together the parts hold every repository once, each verifies alone, part 1 alone
holds the account, a retry assigns the same repositories, and `list`, the watchdog and
`restore` understand parts."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from ghvault.contract import Shard, archive_key, shard_of

from devtools.floor import floor_requests
from tests.conftest import TOKEN, start_sim
from tests.engine.helpers import GHVAULT

MONTH = "2026-10"
PARTS = {"user": 2, "org": 3}


def ghvault(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("GITHUB_TOKEN", "AWS_CA_BUNDLE", "GHVAULT_OWNERS")}
    return subprocess.run([GHVAULT, *args], env={**base, **(env or {})}, capture_output=True,
                          text=True, timeout=300)


def run_part(small, root: Path, login: str, k: int, n: int) -> subprocess.CompletedProcess:
    path = root / archive_key(None, login, MONTH, Shard(k, n))
    path.parent.mkdir(parents=True, exist_ok=True)
    return ghvault("run", "--api-url", small.api, "--owner", login, "--month", MONTH,
                   "--shard", f"{k}/{n}", "--dest", f"file://{path}",
                   env={**small.client_env(), "GITHUB_TOKEN": TOKEN})


@pytest.fixture(scope="module")
def small():
    running, stop = start_sim("small")
    yield running
    stop()


@pytest.fixture(scope="module")
def parts(small, tmp_path_factory):
    """Every part of the user (2) and the org (3), each with its own request count."""
    root = tmp_path_factory.mktemp("vault")
    out: dict = {"root": root}
    for role, n in PARTS.items():
        login = small.sim.world.owners[role]
        for k in range(1, n + 1):
            small.reset()
            proc = run_part(small, root, login, k, n)
            assert proc.returncode == 0, proc.stderr[-3000:]
            path = root / archive_key(None, login, MONTH, Shard(k, n))
            out[role, k] = {"path": path, "requests": small.stats()["requests_total"],
                            "zip": zipfile.ZipFile(path),
                            "sidecar": json.loads(Path(f"{path}.manifest.json").read_text())}
    return out


def repos_in(z: zipfile.ZipFile) -> set[str]:
    return {m[1] for n in z.namelist() if (m := re.match(r"repos/([^/]+)/repo\.json$", n))}


@pytest.mark.parametrize("role", PARTS)
def test_parts_hold_every_repository_exactly_once(parts, small, role):
    world, n = small.sim.world, PARTS[role]
    login = world.owners[role]
    held = [repos_in(parts[role, k]["zip"]) for k in range(1, n + 1)]
    assert sum(map(len, held)) == len(set().union(*held)), "a repository is in two parts"
    assert set().union(*held) == {r.name for r in world.repos_of(login)}
    for k, names in enumerate(held, 1):
        # by the stable key: the repository's numeric id, whatever its name
        assert names == {r.name for r in world.repos_of(login) if shard_of(r.id, n) == k}
        shard = parts[role, k]["sidecar"]["shard"]
        assert (shard["index"], shard["count"], sorted(shard["repos"])) == (k, n, sorted(names))
        assert shard["owner_repos"] == len(world.repos_of(login))


@pytest.mark.parametrize("role", PARTS)
def test_each_part_verifies_alone(parts, role):
    for k in range(1, PARTS[role] + 1):
        proc = ghvault("verify", str(parts[role, k]["path"]))
        assert proc.returncode == 0, proc.stdout[-2000:]
        assert json.loads(proc.stdout.splitlines()[-1])["ok"] is True


@pytest.mark.parametrize("role", PARTS)
def test_only_part_one_holds_the_account(parts, role):
    for k in range(1, PARTS[role] + 1):
        names = parts[role, k]["zip"].namelist()
        account = [n for n in names if n.startswith(("account/", "gists/"))]
        kinds = parts[role, k]["sidecar"]["kinds"]
        if k == 1:
            assert "account/profile.json" in names and "account" in kinds
            assert any(n.startswith("gists/") for n in names) == (role == "user")
        else:
            assert account == [] and "account" not in kinds and "gists" not in kinds


@pytest.mark.parametrize("role", PARTS)
def test_all_parts_cost_the_floor_plus_one_listing_per_extra_part(parts, small, role):
    """Each part finds the owner and lists its repositories: N - 1 more of those than the
    unsharded run, nothing else (docs/operations.md, Shards)."""
    world, n = small.sim.world, PARTS[role]
    login = world.owners[role]
    listing = math.ceil(len(world.repos_of(login)) / 100) + (1 if role == "user" else 3)
    total = sum(parts[role, k]["requests"] for k in range(1, n + 1))
    assert total <= floor_requests(world, role) + (n - 1) * listing


def test_a_retried_part_holds_the_same_repositories(parts, small, tmp_path):
    login = small.sim.world.owners["org"]
    proc = run_part(small, tmp_path, login, 2, 3)
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = zipfile.ZipFile(tmp_path / archive_key(None, login, MONTH, Shard(2, 3)))
    assert repos_in(again) == repos_in(parts["org", 2]["zip"])


@pytest.mark.parametrize("shard", ["0/2", "3/2", "1/257", "two/4", "2"])
def test_a_bad_shard_exits_2_with_one_sentence(tmp_path, shard):
    proc = ghvault("run", "--owner", "o", "--dest", f"file://{tmp_path}/x.zip", "--shard",
                   shard, env={"GITHUB_TOKEN": TOKEN})
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]  # argparse: the usage, then the sentence
    assert "1 <= K <= N <= 256" in last and last.endswith("fix it."), proc.stderr


@pytest.mark.parametrize("dest_part, shard", [(Shard(1, 2), "2/2"), (None, "1/2"),
                                              (Shard(1, 2), None)])
def test_a_dest_named_for_another_part_exits_2(tmp_path, dest_part, shard):
    dest = tmp_path / archive_key(None, "o", MONTH, dest_part)
    proc = ghvault("run", "--owner", "o", "--month", MONTH, "--dest", f"file://{dest}",
                   *(["--shard", shard] if shard else []), env={"GITHUB_TOKEN": TOKEN})
    assert proc.returncode == 2 and "names another part than" in proc.stderr, proc.stderr


def test_list_and_the_watchdog_want_every_part(parts, small, tmp_path):
    login = small.sim.world.owners["org"]
    vault = tmp_path / "vault"
    shutil.copytree(parts["root"], vault)
    listing = json.loads(ghvault("list", str(vault), "--json").stdout)
    assert listing["incomplete_parts"] == [] and listing["gaps"] == []
    assert sorted(a["part"] for a in listing["archives"] if a["owner"] == login) == \
        ["1/3", "2/3", "3/3"]
    expect = ghvault("list", str(vault), "--expect", MONTH)
    assert expect.returncode == 0, expect.stdout + expect.stderr
    assert "in 3 parts" in expect.stdout and "in 2 parts" in expect.stdout
    second = vault / archive_key(None, login, MONTH, Shard(2, 3))
    second.unlink()
    table = ghvault("list", str(vault))
    assert table.returncode == 0
    assert f"{login} {MONTH}: incomplete, missing part 2 of 3" in table.stdout
    expect = ghvault("list", str(vault), "--expect", MONTH, "--owners", login)
    assert expect.returncode == 10
    assert "INCOMPLETE" in expect.stdout and "missing part 2 of 3" in expect.stdout


def test_restore_puts_every_part_into_one_directory(parts, small, tmp_path):
    login, to = small.sim.world.owners["org"], tmp_path / "restored"
    for k in (1, 2, 3):
        proc = ghvault("restore", str(parts["org", k]["path"]), "--to", str(to))
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert (to / f"MANIFEST.part-{k}-of-3.json").is_file()
    assert {p.name for p in (to / "repos").iterdir() if p.is_dir()} >= \
        {r.name for r in small.sim.world.repos_of(login)}  # and their mirrors, NAME.git
    assert {p.name for p in (to / "repos").glob("*.git")} >= \
        {f"{r.name}.git" for r in small.sim.world.repos_of(login)}
    assert (to / "account" / "profile.json").is_file()
    again = ghvault("restore", str(parts["org", 2]["path"]), "--to", str(to))
    assert again.returncode == 2 and "already holds part 2 of 3" in again.stderr
    other = ghvault("restore", str(parts["user", 1]["path"]), "--to", str(to))
    assert other.returncode == 2 and "not a part of" in other.stderr
