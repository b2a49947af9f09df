"""Repository settings and organisation administration end to end: the real `ghvault run`
against the simulator, then `verify` and `restore` on what it wrote.

Counts equal the simulator's ground truth for the user and the organisation; a token
without admin rights records each admin-only kind in `skipped` naming the permission
GitHub asked for, and the run still succeeds; a second month with --state answers the
unchanged settings with 304s.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import requests

from tests.conftest import start_sim
from tests.engine.helpers import GHVAULT, run_ghvault

SETTINGS_COUNTS = ("branch_protections", "rulesets", "collaborators", "deploy_keys",
                   "environments", "actions_variables", "actions_secret_names")
# The settings endpoints (route templates) a second month should answer with 304s. Not the
# branch list (it carries each branch's head) nor invitations (each embeds the repository,
# with its push time): a month of pushes changes both.
SETTINGS_ROUTES = ("/protection", "/rulesets", "/collaborators", "/keys",
                   "/environments", "/actions/", "/autolinks", "/pages", "/gists/starred",
                   "/gists/{gist_id}/comments")


def backup(sim, moto, owner: str, key: str, *args: str) -> tuple[dict, zipfile.ZipFile]:
    proc = run_ghvault(sim, moto, "--owner", owner, "--month", "2026-10",
                       "--dest", f"s3://vault-settings/{key}", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    body = moto.client("s3").get_object(Bucket="vault-settings", Key=key)["Body"].read()
    z = zipfile.ZipFile(io.BytesIO(body))
    return json.loads(proc.stdout.strip().splitlines()[-1]), z


@pytest.fixture(scope="module")
def bucket(moto_server):
    moto_server.client("s3").create_bucket(Bucket="vault-settings")
    return moto_server


@pytest.mark.parametrize("role", ["user", "org"])
def test_settings_counts_equal_the_ground_truth(sim, bucket, role):
    login = sim.sim.world.owners[role]
    summary, z = backup(sim, bucket, login, f"{role}.zip", "--include",
                        "settings,branch_protections,rulesets,collaborators,deploy_keys,"
                        "environments,actions,autolinks,pages,gist_comments,hooks,account")
    truth = sim.sim.world.counts()[role]
    names = ((*SETTINGS_COUNTS, "gist_comments") if role == "user" else SETTINGS_COUNTS)
    for kind in names:
        assert truth[kind] > 0, kind
        assert summary["counts"].get(kind) == truth[kind], kind
    assert summary["skipped"] == [], summary["skipped"]
    repos = sim.sim.world.repos_of(login)
    assert summary["counts"]["repo_settings"] == len(repos)
    # the full repository object, not the list form
    settings = json.loads(z.read(f"repos/{repos[0].name}/settings.json"))
    assert "allow_squash_merge" in settings and "owner" in settings
    secrets = [json.loads(z.read(n)) for n in z.namelist()
               if n.endswith("actions_secret_names.json")]
    assert secrets and all("value" not in s for group in secrets for s in group)
    variables = [v for n in z.namelist() if n.endswith("actions_variables.json")
                 for v in json.loads(z.read(n))]
    assert variables and all(v["value"] for v in variables)
    envs = [e for n in z.namelist() if n.endswith("/environments.json")
            for e in json.loads(z.read(n))]
    custom = [e for e in envs if e["deployment_branch_policy"]["custom_branch_policies"]]
    assert custom and all(e["deployment_branch_policies"] for e in custom)
    if role == "org":
        assert settings["custom_properties"]["team"]
        teams = json.loads(z.read("account/teams.json"))
        assert [t["parent"]["slug"] for t in teams if t["parent"]] == \
            [t.parent for t in sim.sim.world.accounts[login].teams if t.parent]
        for entry in ("owners", "outside_collaborators", "hooks", "rulesets",
                      "custom_properties"):
            assert f"account/{entry}.json" in z.namelist(), entry


def test_verify_and_restore_read_the_settings_back(sim, bucket, tmp_path):
    login = sim.sim.world.owners["org"]
    backup(sim, bucket, login, "org-full.zip", "--exclude", "git,lfs,wiki")
    env = {**os.environ, **bucket.env()}
    env.pop("AWS_CA_BUNDLE", None)
    url = "s3://vault-settings/org-full.zip"
    verified = subprocess.run([GHVAULT, "verify", url], env=env, capture_output=True,
                              text=True, timeout=300)
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-2000:]
    counts = json.loads(verified.stdout.strip().splitlines()[-1])["counts"]
    truth = sim.sim.world.counts()["org"]
    for kind in SETTINGS_COUNTS:
        assert counts[kind] == truth[kind], kind
    to = tmp_path / "restored"
    restored = subprocess.run([GHVAULT, "restore", url, "--to", str(to)], env=env,
                              capture_output=True, text=True, timeout=300)
    assert restored.returncode == 0, restored.stdout[-3000:] + restored.stderr[-2000:]
    protections = [p for f in Path(to, "repos").glob("*/branch_protections.json")
                   for p in json.loads(f.read_text())]
    assert len(protections) == truth["branch_protections"]
    assert json.loads((to / "account" / "rulesets.json").read_text())[0]["rules"]


def test_a_token_without_admin_rights_skips_the_admin_kinds_naming_the_permission(
        bucket, tmp_path):
    running, stop = start_sim()
    try:
        world = running.sim.world
        login = world.owners["org"]
        world.accounts[login].admins = []  # the token's user is a plain member now
        summary, z = backup(running, bucket, login, "org-member.zip")
        reasons = {s["item"]: s["reason"] for s in summary["skipped"]}
        repo = world.repos_of(login)[0].full_name
        for what, permission in (("branch_protections", "administration=read"),
                                 ("rulesets", "administration=read"),
                                 ("deploy_keys", "administration=read"),
                                 ("actions_variables", "actions_variables=read"),
                                 ("actions_secret_names", "secrets=read")):
            assert f"it needs the permission {permission}" in reasons[f"{repo} {what}"], what
        assert "organization_hooks=read" in reasons["account hooks"]
        assert "organization_administration=read" in reasons["account rulesets"]
        # what a member may read is still kept
        assert summary["counts"]["repo_settings"] == len(world.repos_of(login))
        assert summary["counts"]["environments"] == world.counts()["org"]["environments"]
        assert summary["counts"].get("rulesets", 0) == 0
        assert not [n for n in z.namelist() if n.endswith("/deploy_keys.json")]
    finally:
        stop()


def test_a_second_month_answers_unchanged_settings_with_304s(bucket):
    running, stop = start_sim()
    try:
        login = running.sim.world.owners["user"]
        state = "s3://vault-settings/state/"
        backup(running, bucket, login, "m1.zip", "--state", state, "--exclude", "git,lfs,wiki")
        before = {r.full_name for r in running.sim.world.repos_of(login)}
        requests.post(f"{running.root}/_sim/mutate", verify=str(running.ca))
        new = {r.full_name for r in running.sim.world.repos_of(login)} - before
        running.reset()
        backup(running, bucket, login, "m2.zip", "--state", state, "--exclude", "git,lfs,wiki")
        by_endpoint = running.stats()["by_endpoint"]
        settings = {e: s for e, s in by_endpoint.items()
                    if any(part in e for part in SETTINGS_ROUTES)}
        assert settings and new, sorted(by_endpoint)
        # Only the repository the month created is read in full; the rest answer 304.
        for endpoint, statuses in settings.items():
            assert set(statuses) <= {"200", "304"}, (endpoint, statuses)
            assert statuses.get("200", 0) <= len(new), (endpoint, statuses)
            assert statuses.get("304", 0) >= 1, (endpoint, statuses)
    finally:
        stop()


def test_an_app_without_administration_skips_the_admin_kinds_naming_the_permission(tmp_path):
    from tests.engine.test_engine_app_auth import app_env
    from tests.engine.test_engine_app_auth import backup as app_backup

    running, stop = start_sim(app_token_ttl=3600)
    try:
        world = running.sim.world
        login = world.owners["org"]
        proc, summary = app_backup(running, app_env(running), login, tmp_path / "app.zip",
                                   "--exclude", "git,lfs,wiki")
        assert proc.returncode == 0, proc.stderr[-3000:]
        reasons = {s["item"]: s["reason"] for s in summary["skipped"]}
        repo = world.repos_of(login)[0].full_name
        assert "the permission administration=read" in reasons[f"{repo} branch_protections"]
        assert "the permission secrets=read" in reasons[f"{repo} actions_secret_names"]
        assert "the permission organization_hooks=read" in reasons["account hooks"]
        # collaborators need only metadata, which every installation has
        truth = world.counts()["org"]
        assert summary["counts"]["collaborators"] == truth["collaborators"]
        assert summary["counts"]["environments"] == truth["environments"]
    finally:
        stop()
