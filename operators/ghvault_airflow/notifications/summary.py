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

# The steps of one owner, in order; the first that failed is the owner's reason.
STEPS = ("backup.backup", "backup.archive", "backup.glacier", "backup.verify")
BACKUP, ARCHIVE, GLACIER, VERIFY = STEPS


def record_failure(context: Mapping[str, Any]) -> None:
    """on_failure_callback of an owner's steps: keep the reason for the run's summary."""
    ti = context["ti"]
    ti.xcom_push("failure", {"owner": failed_owner(context, BACKUP) or "",
                             "task_id": ti.task_id, "reason": failure_reason(context)})


def _owner_of(value: Mapping[str, Any]) -> str | None:
    if value.get("owner"):
        return str(value["owner"])
    key = str(value.get("key") or "")  # PREFIX/OWNER/YYYY/MM/OWNER-YYYY-MM.zip
    parts = key.split("/")
    return parts[-4] if len(parts) >= 4 else None


def gather(ti: Any, owners: Sequence[str], verify: bool) -> list[dict[str, Any]]:
    """Each owner's outcome from the run's XComs: ``{"owner", "ok", "failure", "result",
    "glacier", "verified", "replaces"}``."""
    def by_owner(task_id: str, key: str = "return_value") -> dict[str, dict]:
        values = _as_list(ti.xcom_pull(task_ids=task_id, key=key))
        return {o: dict(v) for v in values if isinstance(v, Mapping) and (o := _owner_of(v))}

    failures: dict[str, dict] = {}
    for step in STEPS:
        for owner, failure in by_owner(step, "failure").items():
            failures.setdefault(owner, failure)
    results, glacier, verified = by_owner(BACKUP), by_owner(GLACIER), by_owner(VERIFY)
    replaces = by_owner(BACKUP, "replaces")
    outcomes = []
    for owner in owners:
        failure = failures.get(owner)
        finished = owner in results and owner in glacier and (owner in verified or not verify)
        if failure is None and not finished:
            failure = {"owner": owner, "task_id": "?", "reason": (
                "did not finish and recorded no failure (the task was killed or timed out, or "
                "the run was stopped): see the tasks' logs")}
        outcomes.append({"owner": owner, "ok": failure is None, "failure": failure,
                         "result": results.get(owner), "glacier": glacier.get(owner),
                         "verified": verified.get(owner), "replaces": replaces.get(owner)})
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
    summaries = [(o["result"] or {}).get("summary") or {} for o in good]
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
        for outcome in good:
            lines += ["", *_owner_lines(outcome["result"] or {"owner": outcome["owner"]})]
            if outcome["replaces"]:
                lines.append(_replaced_line(outcome["replaces"]))
    failed = [o for o in outcomes if not o["ok"]]
    if failed:
        lines += ["", "Failed"]
        for outcome in failed:
            failure = outcome["failure"]
            lines += ["", outcome["owner"],
                      f"  failed at {failure.get('task_id')}: {failure.get('reason')}"]
    checks = [o["glacier"] for o in good if o["glacier"]]
    if checks:
        lines += ["", "Cold storage", *(_glacier_line(c) for c in checks)]
    verified = [o["verified"] for o in good if o["verified"]]
    if verified:
        lines += ["", "Verified (ghvault verify)", *(_verified_line(c) for c in verified)]
    return subject, _fit("\n".join(lines) + "\n")


def notify_run(context: Mapping[str, Any], plan: Mapping[str, Any]) -> dict[str, Any]:
    """Publish the run's summary; return ``{"message_id", "succeeded", "failed"}``."""
    outcomes = gather(context["ti"], plan["owners"], bool(plan.get("verify")))
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
