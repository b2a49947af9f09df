"""The run plan: what one DAG run backs up, resolved once by its first task.

One typed value instead of a dozen loose XCom keys: :meth:`RunPlan.to_xcom` gives a JSON
object (what XCom stores), :meth:`RunPlan.from_xcom` reads it back and checks it, so every
task of the run works from the same snapshot of the settings, month, runner and owners.
Keys and months come from the engine's contract (:mod:`ghvault.contract`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ghvault.contract import archive_key, check_month, check_owner, previous_month, sidecar_key

from ghvault_airflow.settings import RUNNERS, DeploymentSettings, SettingsError

PLAN_VERSION = 1


class PlanError(ValueError):
    """An XCom value is not a run plan this version can read."""


@dataclass(frozen=True)
class OwnerPlan:
    """One owner's share of the run: where its archive goes and where last month's is."""

    owner: str
    key: str
    manifest_key: str
    previous_key: str

    def as_dict(self) -> dict[str, str]:
        return {"owner": self.owner, "key": self.key, "manifest_key": self.manifest_key,
                "previous_key": self.previous_key}


@dataclass(frozen=True)
class RunPlan:
    """What a run backs up and how.

    :param settings: the deployment settings as resolved when the run started
    :param month: YYYY-MM the run covers
    :param runner: "ecs" or "local"
    :param verify: run ``ghvault verify`` on each new archive
    :param owners: the logins to back up, in order, without duplicates
    :param kinds: kinds of content to back up (empty: all)
    :param repos, exclude_repos: repository name patterns ("" when not set)
    """

    settings: DeploymentSettings
    month: str
    runner: str
    verify: bool = False
    owners: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    repos: str = ""
    exclude_repos: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)  # what a newer DAG adds

    def __post_init__(self) -> None:
        check_month(self.month)
        if self.runner not in RUNNERS:
            raise PlanError(f"run plan runner {self.runner!r} is not 'ecs' or 'local': fix the "
                            "runner param or the settings' 'runner'.")
        if not self.owners:
            raise PlanError("run plan has no owners: give 'owners' in the run's params or in "
                            "the settings.")
        for owner in self.owners:
            check_owner(owner)
        if len(set(self.owners)) != len(self.owners):
            raise PlanError(f"run plan lists an owner twice ({', '.join(self.owners)}): "
                            "list each owner once.")

    @property
    def verify_with(self) -> str:
        """The runner that verifies this run's archives, "" when verification is off."""
        return self.runner if self.verify else ""

    def key(self, owner: str) -> str:
        return archive_key(self.settings.prefix, owner, self.month)

    def for_owner(self, owner: str) -> OwnerPlan:
        key = self.key(owner)
        return OwnerPlan(owner, key, sidecar_key(key),
                         archive_key(self.settings.prefix, owner, previous_month(self.month)))

    def per_owner(self) -> list[dict[str, str]]:
        """One dict per owner, for ``expand_kwargs`` over the backup task group."""
        return [self.for_owner(owner).as_dict() for owner in self.owners]

    def to_xcom(self) -> dict[str, Any]:
        """A JSON object holding the whole plan (settings included)."""
        return {"version": PLAN_VERSION, "settings": self.settings.as_dict(),
                "month": self.month, "runner": self.runner, "verify": self.verify,
                "owners": list(self.owners), "kinds": list(self.kinds), "repos": self.repos,
                "exclude_repos": self.exclude_repos, "extra": dict(self.extra)}

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any] | str) -> RunPlan:
        """The plan from :meth:`to_xcom`'s value (or its JSON text, as a template renders it)."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise PlanError("run plan XCom is not JSON: pass the plan task's return value "
                                "unchanged.") from None
        if not isinstance(value, Mapping) or value.get("version") != PLAN_VERSION:
            found = value.get("version") if isinstance(value, Mapping) else type(value).__name__
            raise PlanError(f"run plan XCom has version {found!r}, not {PLAN_VERSION}: clear the "
                            "run so that its plan task runs again with this version.")
        try:
            settings = DeploymentSettings.from_mapping(value["settings"])
            return cls(settings=settings, month=value["month"], runner=value["runner"],
                       verify=bool(value.get("verify")), owners=tuple(value["owners"]),
                       kinds=tuple(value.get("kinds") or ()), repos=value.get("repos") or "",
                       exclude_repos=value.get("exclude_repos") or "",
                       extra=dict(value.get("extra") or {}))
        except KeyError as err:
            raise PlanError(f"run plan XCom has no {err.args[0]!r}: clear the run so that its "
                            "plan task runs again.") from None
        except SettingsError as err:
            raise PlanError(str(err)) from err
