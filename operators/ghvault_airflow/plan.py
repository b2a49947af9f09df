"""The run plan (one XCom value every task of a run reads), the catch-up policy and the pool.

`plan` (the DAG's first task) resolves the settings, the params and the month once into a
:class:`RunPlan`; the backup, sensor, verification and notify tasks read that snapshot.

Catch-up policy: the DAG keeps ``catchup=True`` and `plan` skips the scheduled runs older
than ``catchup_months`` (:func:`catchup_skip_reason`). Chosen over a custom timetable
because a timetable that clamps `earliest` must be registered as a plugin in the scheduler
*and* the dag-processor (and serialised by both), while a skip needs nothing but this
package; the skipped runs cost one short task each and say why in their log.

Pool: a task cannot create or read pools in Airflow 3 (the Task SDK's Execution API has no
pool endpoint), so the package's plugin creates it when the scheduler starts
(:mod:`ghvault_airflow.pool`); ``python -m ghvault_airflow.plan pool`` does it by hand. A
missing pool shows as Airflow's DAG warning "references non-existent pools" and the
scheduler's "Tasks using non-existent pool 'ghvault' will not be scheduled".
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ghvault.contract import check_month, check_owner

from ghvault_airflow.settings import (
    ENV_PREFIX,
    RUNNERS,
    DeploymentSettings,
    SettingsError,
    _parse_value,
    load_settings,
)
from ghvault_airflow.shards import check_count, units

POOL_DESCRIPTION = "ghvault: backups that may use the GitHub token at once (pool_slots)"


def parse_time_pool() -> str:
    """The pool name the DAG gives its tasks when the file is parsed: tasks' pools are fixed
    at parse time, when no Variable may be read, so only ``GHVAULT_POOL`` can change it."""
    return os.environ.get("GHVAULT_POOL", "").strip() or DeploymentSettings.pool


class PlanError(ValueError):
    """An XCom value is not a run plan this version can read, or a plan no task could run."""


@dataclass(frozen=True)
class RunPlan:
    """What one run does, resolved by ``plan``; pushed as one XCom value (``as_dict``),
    read back with :meth:`from_mapping`. Refuses, with the fix, what no task could run."""

    settings: dict[str, Any]
    runner: str
    month: str
    run_type: str
    taken_at: str  # the day the content is taken: an old month's archive holds today's data
    owners: list[str]
    kinds: list[str] = field(default_factory=list)
    repos: str = ""
    exclude_repos: str = ""
    verify: bool = False
    shards: dict[str, int] = field(default_factory=dict)  # owners in more than one part

    def __post_init__(self) -> None:
        check_month(self.month)
        if self.runner not in RUNNERS:
            raise PlanError(f"run plan runner {self.runner!r} is not one of "
                            f"{', '.join(RUNNERS)}: fix the runner param or the settings' "
                            "'runner'.")
        if not self.owners:
            raise PlanError("run plan has no owners: give 'owners' in the run's params or in "
                            "the settings.")
        for owner in self.owners:
            check_owner(owner)
        if len(set(self.owners)) != len(self.owners):
            raise PlanError(f"run plan lists an owner twice ({', '.join(self.owners)}): "
                            "list each owner once.")
        try:
            for owner, count in self.shards.items():
                check_count(count, f"run plan's parts of {owner}")
        except ValueError as err:
            raise PlanError(f"{err}.") from None

    # what the sensors take, from the settings (rendered into their templated fields)
    @property
    def deployment(self) -> DeploymentSettings:
        return load_settings(self.settings, env={})

    def per_owner(self) -> list[dict[str, str]]:
        """One dict per owner (per part of a sharded owner: ``shards.units``) for
        ``expand_kwargs`` over the backup task group: its archive key, last month's key (the
        Glacier check) and its `shard` ("K/N", or "")."""
        return units(self.deployment.prefix, self.owners, self.month, self.shards)

    def as_dict(self) -> dict[str, Any]:
        cfg = self.deployment
        return {**dataclasses.asdict(self), "verify_with": self.runner if self.verify else "",
                "bucket": cfg.bucket, "prefix": cfg.prefix,
                "aws_conn_id": cfg.aws_conn_id, "storage_class": cfg.glacier_storage_class,
                "transition_days": cfg.transition_days, "retention_days": cfg.retention_days}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RunPlan:
        """The plan from :meth:`as_dict`'s value; a value from another version names the fix."""
        if not isinstance(data, Mapping):
            raise PlanError(f"run plan XCom is a {type(data).__name__}, not a mapping: pass "
                            "the plan task's XCom 'plan' unchanged.")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(f.name for f in dataclasses.fields(cls)
                         if f.default is dataclasses.MISSING
                         and f.default_factory is dataclasses.MISSING and f.name not in data)
        if missing:
            raise PlanError(f"run plan XCom has no {', '.join(map(repr, missing))}: clear the "
                            "run so that its plan task runs again with this version.")
        try:
            plan = cls(**{k: v for k, v in data.items() if k in names})
            plan.deployment  # noqa: B018 - the settings inside must still be valid
        except SettingsError as err:
            raise PlanError(str(err)) from err
        return plan


def months_between(earlier: str, later: str) -> int:
    (y1, m1), (y2, m2) = ((int(x) for x in m.split("-")) for m in (earlier, later))
    return (y2 - y1) * 12 + (m2 - m1)


def catchup_skip_reason(*, month: str, run_type: str, clear_number: int, now: datetime,
                        catchup_months: int) -> str | None:
    """Why a scheduled run of `month` is too old to back up now, or None to back it up.

    Only scheduled runs the scheduler queued by catching up are skipped: a backfill, a
    manual run or a run someone cleared was asked for. Any archive holds the content of the
    day it ran, so an old month's archive would hold today's data under a false label."""
    if run_type != "scheduled" or clear_number:
        return None
    last = f"{now.year - 1}-12" if now.month == 1 else f"{now.year}-{now.month - 1:02d}"
    behind = months_between(month, last)
    if behind < catchup_months:
        return None
    return (f"Not backing up {month}: catch-up reaches back {catchup_months} month(s) before "
            f"{now:%Y-%m-%d} (setting catchup_months) and an archive made today would hold "
            f"today's content under {month}'s label. To back it up anyway: airflow backfill "
            f"create --dag-id github_backup --from-date {month}-01 --to-date {month}-28")


def pool_settings(value: Any, env: Mapping[str, str] = os.environ) -> DeploymentSettings:
    """The settings' `pool` and `pool_slots` (validated), even before the rest is configured:
    the deployment creates the pool when it sets up Airflow, maybe before the Variable."""
    keys = ("pool", "pool_slots")
    data = {k: v for k, v in _parse_value(value).items() if k in keys}
    data.update({k: env[ENV_PREFIX + k.upper()] for k in keys if env.get(ENV_PREFIX + k.upper())})
    return DeploymentSettings.from_mapping({"bucket": "unused", **data})  # the pool keys only


def main(argv: list[str] | None = None) -> int:
    """``python -m ghvault_airflow.plan pool``: create or resize the pool from the settings
    now, where the metadata database is reachable (what a starting scheduler does itself:
    :mod:`ghvault_airflow.pool`), e.g. after changing ``pool_slots``."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["pool"]:
        print("usage: python -m ghvault_airflow.plan pool", file=sys.stderr)
        return 2
    from ghvault_airflow.pool import ensure_pool

    ensure_pool()
    return 0


if __name__ == "__main__":
    sys.exit(main())
