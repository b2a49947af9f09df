"""Shards on the Airflow side without Airflow running: the settings and params that ask for
them, the plan's one mapped group per (owner, part), the engine arguments, and the run
summary that counts an owner only when every part succeeded."""

from __future__ import annotations

import pytest
from ghvault.contract import parse_archive_part
from ghvault_airflow.notifications.summary import gather, run_message
from ghvault_airflow.operators.engine import engine_arguments
from ghvault_airflow.plan import PlanError, RunPlan
from ghvault_airflow.settings import SettingsError, load_settings
from ghvault_airflow.shards import counts_for

from tests.airflow.test_operators_notify import XComTI

MONTH = "2026-10"


def plan(shards: dict) -> RunPlan:
    return RunPlan(settings={"bucket": "vault"}, runner="local", month=MONTH,
                   run_type="manual", taken_at="2026-11-01", owners=["hubber", "big-org"],
                   shards=shards)


def test_one_part_keeps_the_keys_and_many_parts_map_one_group_each():
    assert plan({}).per_owner() == [
        {"owner": "hubber", "key": "github/hubber/2026/10/hubber-2026-10.zip",
         "previous_key": "github/hubber/2026/09/hubber-2026-09.zip", "shard": ""},
        {"owner": "big-org", "key": "github/big-org/2026/10/big-org-2026-10.zip",
         "previous_key": "github/big-org/2026/09/big-org-2026-09.zip", "shard": ""}]
    units = plan({"big-org": 3}).per_owner()
    assert [(u["owner"], u["shard"]) for u in units] == [
        ("hubber", ""), ("big-org", "1/3"), ("big-org", "2/3"), ("big-org", "3/3")]
    for u in units[1:]:
        assert u["key"] == f"github/big-org/2026/10/big-org-2026-10.part-{u['shard'][0]}-of-3.zip"
        assert parse_archive_part(u["previous_key"]) == parse_archive_part(u["key"])
    with pytest.raises(PlanError, match="from 1 .* to 256"):
        plan({"big-org": 300})


def test_settings_and_the_param_choose_the_parts():
    cfg = load_settings({"bucket": "vault", "shards": 2, "owner_shards": {"Big-Org": 8}})
    assert counts_for(["hubber", "big-org"], cfg.shards, cfg.owner_shards) == \
        {"hubber": 2, "big-org": 8}
    assert counts_for(["hubber", "big-org"], cfg.shards, cfg.owner_shards, 4) == \
        {"hubber": 4, "big-org": 4}
    assert counts_for(["hubber"], 1, {}) == {}  # one part: today's single archive
    for bad, says in (({"shards": 0}, "'shards' is 0"),
                      ({"owner_shards": {"big-org": "many"}}, "'owner_shards' entry"),
                      ({"owner_shards": {"a/b": 2}}, "not a GitHub user")):
        with pytest.raises(SettingsError, match=says):
            load_settings({"bucket": "vault", **bad})


def test_the_engine_gets_its_part():
    cfg = load_settings({"bucket": "vault"})
    args = engine_arguments(cfg, owner="big-org", month=MONTH, shard="2/3",
                            key="github/big-org/2026/10/big-org-2026-10.part-2-of-3.zip")
    assert args[args.index("--shard") + 1] == "2/3"
    assert "--shard" not in engine_arguments(cfg, owner="o", month=MONTH, key="k.zip")


def part_result(k: int, n: int) -> dict:
    key = f"github/big-org/2026/10/big-org-2026-10.part-{k}-of-{n}.zip"
    return {"owner": "big-org", "month": MONTH, "bucket": "vault", "key": key,
            "shard": f"{k}/{n}", "summary": {"owner": "big-org", "bytes": 1024,
                                             "api_requests": 10, "counts": {"repos": 2}}}


def test_the_summary_counts_an_owner_only_when_every_part_succeeded():
    results = [part_result(k, 3) for k in (1, 2, 3)]
    glacier = [{"key": r["key"], "rule_id": "r", "storage_class": "GLACIER"} for r in results]
    ok = XComTI({("backup.backup", "return_value"): results,
                 ("backup.glacier", "return_value"): glacier})
    outcome = gather(ok, ["big-org"], verify=False, shards={"big-org": 3})[0]
    assert outcome["ok"] and [p["shard"] for p in outcome["parts"]] == ["1/3", "2/3", "3/3"]
    subject, message = run_message({"month": MONTH}, [outcome])
    assert subject == "ghvault: 1 of 1 owner succeeded for 2026-10"
    assert all(f"s3://vault/{r['key']}" in message for r in results)
    assert "30 GitHub API requests" in message
    failed = XComTI({
        ("backup.backup", "return_value"): [results[0], results[2]],
        ("backup.backup", "failure"): [{"owner": "big-org", "shard": "2/3",
                                        "task_id": "backup.backup", "reason": "Spot reclaimed"}],
        ("backup.glacier", "return_value"): [glacier[0], glacier[2]]})
    outcome = gather(failed, ["big-org"], verify=False, shards={"big-org": 3})[0]
    assert not outcome["ok"] and outcome["missing_parts"] == ["2/3"]
    subject, message = run_message({"month": MONTH}, [outcome])
    assert subject == "ghvault: 0 of 1 owner succeeded for 2026-10"
    assert "missing part 2 of 3 (part 2/3 failed at backup.backup: Spot reclaimed)" in message


def test_the_dag_plan_maps_each_part_from_the_settings_and_the_param():
    from tests.airflow.test_dag import SETTINGS, dagbag, plan

    dag = dagbag().dags["github_backup"]
    units, pushed = plan(dag, {**SETTINGS, "owner_shards": {"octo-org": 2}})
    assert [(u["owner"], u["shard"]) for u in units] == [
        ("octocat", ""), ("octo-org", "1/2"), ("octo-org", "2/2")]
    assert pushed["plan"]["shards"] == {"octo-org": 2}
    units, _ = plan(dag, SETTINGS, shards=3)
    assert [u["shard"] for u in units] == ["1/3", "2/3", "3/3"] * 2


def test_part_keys_round_trip_and_odd_ones_are_not_archives():
    from ghvault.contract import Shard, archive_key, check_shard, parse_archive_key

    key = archive_key("github", "octo-org", MONTH, Shard(2, 4))
    assert key == "github/octo-org/2026/10/octo-org-2026-10.part-2-of-4.zip"
    assert parse_archive_key(key) == ("octo-org", MONTH)
    assert parse_archive_part(key) == Shard(2, 4)
    assert archive_key("github", "o", MONTH, Shard(1, 1)) == archive_key("github", "o", MONTH)
    assert parse_archive_part(archive_key("github", "o", MONTH)) is None
    for odd in ("o/2026/10/o-2026-10.part-5-of-4.zip", "o/2026/10/o-2026-10.part-1-of-1.zip",
                "o/2026/10/o-2026-10.part-0-of-2.zip", "o/2026/10/o-2026-10.part-1-of-2.zip.x"):
        assert parse_archive_key(odd) is None and parse_archive_part(odd) is None, odd
    assert check_shard(" 3/8 ") == Shard(3, 8)
