"""One SNS summary per run: every owner, succeeded with its figures or failed with its reason.

The DAG's `notify` task runs whatever happened upstream (trigger rule ALL_DONE) and calls
:func:`notify_run`. Each step of an owner records why it failed (:func:`record_failure`, its
`on_failure_callback`: XCom ``failure``), the backup records the archive it replaced (XCom
``replaces``, see ``BackupContract.note_replaced``); the summary reads those and the steps'
return values. The subject says "N of M owners succeeded".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ghvault.contract import previous_month

from ghvault_airflow.notifications.parts import sharded_outcome, units_of
from ghvault_airflow.notifications.sns import (
    _as_list,
    _dag_id,
    _fit,
    _glacier_line,
    _owner_lines,
    _plural,
    _send,
    _verified_line,
    clean_subject,
    failed_owner,
    failure_reason,
    human_size,
)
from ghvault_airflow.shards import part_of

# The steps of one owner, in order; the first that failed is the owner's reason.
STEPS = ("backup.backup", "backup.archive", "backup.glacier", "backup.verify")
BACKUP, ARCHIVE, GLACIER, VERIFY = STEPS


def record_failure(context: Mapping[str, Any]) -> None:
    """on_failure_callback of an owner's steps: keep the reason for the run's summary."""
    ti = context["ti"]
    task = context.get("task") or getattr(ti, "task", None)
    shard = getattr(task, "shard", "") or ""  # a part of a sharded owner: "K/N"
    ti.xcom_push("failure", {"owner": failed_owner(context, BACKUP) or "",
                             "task_id": ti.task_id, "reason": failure_reason(context),
                             **({"shard": shard} if isinstance(shard, str) and shard else {})})


def _owner_of(value: Mapping[str, Any]) -> str | None:
    if value.get("owner"):
        return str(value["owner"])
    key = str(value.get("key") or "")  # PREFIX/OWNER/YYYY/MM/OWNER-YYYY-MM.zip
    parts = key.split("/")
    return parts[-4] if len(parts) >= 4 else None


def gather(ti: Any, owners: Sequence[str], verify: bool,
           shards: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """Each owner's outcome from the run's XComs: ``{"owner", "ok", "failure", "result",
    "glacier", "verified", "replaces"}``; an owner in N > 1 parts (`shards`) has ``parts``
    instead, one such outcome per part (with ``shard``), and is ok only when all are."""
    def by_unit(task_id: str, key: str = "return_value") -> dict[tuple[str, str], dict]:
        values = _as_list(ti.xcom_pull(task_ids=task_id, key=key))
        return {(o, part_of(v)): dict(v) for v in values
                if isinstance(v, Mapping) and (o := _owner_of(v))}

    failures: dict[tuple[str, str], dict] = {}
    for step in STEPS:
        for unit, failure in by_unit(step, "failure").items():
            failures.setdefault(unit, failure)
    results, glacier, verified = by_unit(BACKUP), by_unit(GLACIER), by_unit(VERIFY)
    replaces = by_unit(BACKUP, "replaces")
    outcomes = []
    for owner in owners:
        n = int((shards or {}).get(owner, 1))
        parts = []
        for unit in ((owner, f"{k}/{n}" if n > 1 else "") for k in range(1, n + 1)):
            failure = failures.get(unit)
            finished = unit in results and unit in glacier and (unit in verified or not verify)
            if failure is None and not finished:
                failure = {"owner": owner, "task_id": "?", "reason": (
                    "did not finish and recorded no failure (the task was killed or timed out, "
                    "or the run was stopped): see the tasks' logs")}
            parts.append({"owner": owner, "ok": failure is None, "failure": failure,
                          "result": results.get(unit), "glacier": glacier.get(unit),
                          "verified": verified.get(unit), "replaces": replaces.get(unit),
                          "shard": unit[1]})
        outcomes.append(parts[0] if n == 1 else sharded_outcome(owner, parts))
    return outcomes


def _replaced_line(replaced: Mapping[str, Any]) -> str:
    when = replaced.get("last_modified") or "an earlier run"
    if replaced.get("kept"):
        return (f"  replaced  the archive of {when}; it stays in the bucket as version "
                f"{replaced.get('version_id') or 'null'} (bucket versioning)")
    if replaced.get("kept") is False:
        return (f"  replaced  the archive of {when}; the bucket has no versioning, so that "
                "archive is gone")
    return f"  replaced  the archive of {when} (whether the bucket keeps it is unknown)"


def run_message(plan: Mapping[str, Any], outcomes: Sequence[Mapping[str, Any]], *,
                dag_id: str | None = None, run_id: str | None = None) -> tuple[str, str]:
    """Subject and plain-text body of the run's summary."""
    month, taken = plan["month"], str(plan.get("taken_at") or "")
    good = [o for o in outcomes if o["ok"]]
    subject = clean_subject(f"ghvault: {len(good)} of {_plural(len(outcomes), 'owner')} "
                            f"succeeded for {month}")
    summaries = [(u["result"] or {}).get("summary") or {} for o in good for u in units_of(o)]
    requests = sum(s.get("api_requests") or 0 for s in summaries)
    lines = [f"ghvault backed up {len(good)} of {_plural(len(outcomes), 'owner')} for {month}: "
             f"{human_size(sum(s.get('bytes') or 0 for s in summaries))}, "
             f"{_plural(requests, 'GitHub API request')}."]
    if dag_id or run_id:
        lines.append(f"DAG {dag_id or '?'}, run {run_id or '?'} ({plan.get('run_type') or '?'}).")
    if taken:
        lines.append(f"Content as of {taken} (the day it was taken; the label is {month}).")
        if month < previous_month(taken[:7]):
            lines.append(f"{month} ended before this run: the archives hold GitHub as it was on "
                         f"{taken}, not at the end of {month} (the manifests say so: month vs "
                         "taken_at).")
    if good:
        lines += ["", "Succeeded"]
        for unit in (u for o in good for u in units_of(o)):
            lines += ["", *_owner_lines(unit["result"] or {"owner": unit["owner"]})]
            if unit["replaces"]:
                lines.append(_replaced_line(unit["replaces"]))
    failed = [o for o in outcomes if not o["ok"]]
    if failed:
        lines += ["", "Failed"]
        for outcome in failed:
            failure = outcome["failure"]
            lines += ["", outcome["owner"],
                      f"  failed at {failure.get('task_id')}: {failure.get('reason')}"]
    checks = [u["glacier"] for o in good for u in units_of(o) if u["glacier"]]
    if checks:
        lines += ["", "Cold storage", *(_glacier_line(c) for c in checks)]
    verified = [u["verified"] for o in good for u in units_of(o) if u["verified"]]
    if verified:
        lines += ["", "Verified (ghvault verify)", *(_verified_line(c) for c in verified)]
    return subject, _fit("\n".join(lines) + "\n")


def notify_run(context: Mapping[str, Any], plan: Mapping[str, Any]) -> dict[str, Any]:
    """Publish the run's summary; return ``{"message_id", "succeeded", "failed"}``."""
    outcomes = gather(context["ti"], plan["owners"], bool(plan.get("verify")),
                      plan.get("shards") or {})
    dag_run = context.get("dag_run")
    dag_id = _dag_id(context)
    subject, message = run_message(plan, outcomes, dag_id=dag_id,
                                   run_id=getattr(dag_run, "run_id", None))
    failed = [o["owner"] for o in outcomes if not o["ok"]]
    attributes = {"status": "failure" if failed else "success", "month": plan["month"],
                  "dag_id": dag_id}
    message_id = _send(subject, message, attributes, None, plan["settings"], None, None)
    return {"message_id": message_id, "failed": failed,
            "succeeded": [o["owner"] for o in outcomes if o["ok"]]}
