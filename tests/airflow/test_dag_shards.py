"""The github_backup DAG with an owner in parts, end to end (`airflow dags test`, the local
runner, moto as AWS, the simulator as GitHub; the harness of test_dag_e2e): one mapped
backup group per part, each part's archive checked by the sensors and verified, the other
owner's single archive at today's key, one summary counting the owner once."""

from __future__ import annotations

import pytest
from ghvault.contract import Shard, archive_key

from devtools.embedded import DAG_ID, Aws, airflow_env, migrate, provision
from tests.airflow.test_dag_e2e import Deployment
from tests.conftest import start_sim

pytestmark = pytest.mark.slow

BUCKET = "ghvault-shards"
MONTH = "2026-10"


class ShardDeployment(Deployment):
    def settings(self, **overrides) -> dict:
        return super().settings(**{"bucket": BUCKET, **overrides})


@pytest.fixture(scope="module")
def small():
    """The small simulator: every part of its org is over 128 KiB. (A part of the tiny one
    is not, and S3 transitions smaller objects only under a rule with a size filter, which
    the stack's rule has but moto drops: the Glacier sensor would rightly refuse it.)"""
    running, stop = start_sim("small")
    yield running
    stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, moto_server, small, container_ca) -> ShardDeployment:
    aws = Aws(moto_server.endpoint)
    resources = provision(aws, BUCKET, small.token, name="ghvault-shards")
    home = tmp_path_factory.mktemp("airflow")
    deployment = ShardDeployment(home, aws, small, resources, ("unused", "unused"), container_ca)
    migrate(home, airflow_env(home, aws, deployment.settings()))
    return deployment


def test_an_owner_in_two_parts_is_backed_up_checked_and_reported_once(deployment) -> None:
    user, org = deployment.owner, deployment.org
    settings = deployment.settings(owners=[user, org], owner_shards={org: 2}, verify=True)
    run = deployment.run(month=MONTH, settings=settings, log_name="shards")
    assert run.state == "success", run.log[-3000:]
    for step in ("backup.backup", "backup.archive", "backup.glacier", "backup.verify"):
        assert run.record.states(step) == ["success"] * 3, step
    keys = [archive_key("github", user, MONTH),  # one part: today's key
            archive_key("github", org, MONTH, Shard(1, 2)),
            archive_key("github", org, MONTH, Shard(2, 2))]
    repos: list[set[str]] = []
    for index, key in enumerate(keys):
        result = run.record.result("backup.backup", index)
        assert result["key"] == key, result
        assert run.record.result("backup.archive", index)["key"] == key
        assert run.record.result("backup.verify", index)["verified"] is True
        head, manifest, archive = deployment.archive(key, BUCKET)
        assert manifest["archive"]["size"] == head["ContentLength"]
        if index:
            assert manifest["shard"]["index"] == index and manifest["shard"]["count"] == 2
            repos.append(set(manifest["shard"]["repos"]))
        else:
            assert "shard" not in manifest
    assert not repos[0] & repos[1]
    assert repos[0] | repos[1] == {r.name for r in deployment.sim.sim.world.repos_of(org)}
    note = run.only_notification()
    assert note["subject"] == "ghvault: 2 of 2 owners succeeded for 2026-10"
    assert note["attributes"] == {"status": "success", "month": MONTH, "dag_id": DAG_ID}
    assert all(f"s3://{BUCKET}/{key}" in note["message"] for key in keys)
    # the map index names the owner and the part (the unsharded owner: its login alone)
    assert f"rendered_map_index='{org} part 2/2'" in run.log
    assert f"rendered_map_index='{user}'" in run.log
