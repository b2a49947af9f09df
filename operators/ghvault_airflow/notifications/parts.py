"""The run summary's view of an owner backed up in parts (``ghvault_airflow.shards``): the
owner succeeded only when every part did; a failed part is named ("missing part 2 of 4")
with the step it failed at and why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def sharded_outcome(owner: str, parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One owner's outcome from its parts' outcomes (each with ``shard`` "K/N")."""
    bad = [p for p in parts if not p["ok"]]
    failure = None
    if bad:
        count = len(parts)
        which = ", ".join(p["shard"].split("/")[0] for p in bad)
        reasons = "; ".join(f"part {p['shard']} failed at {p['failure'].get('task_id')}: "
                            f"{p['failure'].get('reason')}" for p in bad)
        failure = {"owner": owner, "task_id": ", ".join(sorted({str(p["failure"].get(
            "task_id")) for p in bad})), "reason": f"missing part{'s' if len(bad) > 1 else ''} "
                   f"{which} of {count} ({reasons})"}
    return {"owner": owner, "ok": not bad, "failure": failure, "parts": list(parts),
            "missing_parts": [p["shard"] for p in bad], "result": None, "glacier": None,
            "verified": None, "replaces": None}


def units_of(outcome: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The outcomes a summary lists for an owner: its parts, or itself."""
    return list(outcome.get("parts") or [outcome])
