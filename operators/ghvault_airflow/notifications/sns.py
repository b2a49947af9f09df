"""SNS notifications for the monthly backup: one message per run on success, one per failure.

`success_message` and `failure_message` build `(subject, message)` from plain data; the
callables `notify_success(context)` / `notify_failure(context)` (and the notifier classes
wrapping them, for `on_*_callback`) read the run from the Airflow context and publish with
the amazon provider's `SnsHook`. Subjects are short ASCII lines for a mail client (SNS
allows < 100 characters); message attributes `status`, `month`, `dag_id` (and `owner` on a
failure) let subscribers filter.

The topic comes from the `target_arn` argument or, when none is given, from the deployment
settings' `sns_topic_arn` (Airflow Variable `ghvault_settings` and GHVAULT_* environment);
without a topic nothing is published and the log says so.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.amazon.aws.hooks.sns import SnsHook
from airflow.sdk import BaseNotifier

SUBJECT_LIMIT = 99  # SNS: "must be less than 100 characters", ASCII, no line breaks
MESSAGE_LIMIT = 240_000  # SNS allows 256 KiB, attributes included
SKIPPED_SHOWN = 20
BACKUP_TASK_ID = "backup"

log = logging.getLogger(__name__)


def human_size(n: int | None) -> str:
    if n is None:
        return "unknown size"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def clean_subject(text: str) -> str:
    """One printable ASCII line under SNS's 100-character limit."""
    line = re.sub(r"\s+", " ", text).strip()
    line = "".join(c if 32 <= ord(c) < 127 else "?" for c in line)
    return line if len(line) <= SUBJECT_LIMIT else line[: SUBJECT_LIMIT - 3].rstrip() + "..."


def _published_size(message: str) -> int:
    """Bytes SNS counts: SnsHook publishes `{"default": message}` as JSON."""
    return len(json.dumps({"default": message}).encode())


def _fit(message: str) -> str:
    """Cut a message at a line boundary so that it stays within SNS's size limit."""
    while _published_size(message) > MESSAGE_LIMIT:
        keep = int(len(message) * MESSAGE_LIMIT / _published_size(message) * 0.95)
        message = (message[:keep].rsplit("\n", 1)[0]
                   + "\n\n[truncated: the full summary is in the tasks' XCom]\n")
    return message


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


def _owner_lines(result: Mapping[str, Any]) -> list[str]:
    summary = result.get("summary") or {}
    bucket, key = result.get("bucket"), result.get("key")
    archive = f"s3://{bucket}/{key}" if bucket and key else (summary.get("dest") or key or "?")
    lines = [str(result.get("owner") or summary.get("owner") or "unknown owner"),
             f"  archive   {archive}"]
    if result.get("manifest_key"):
        lines.append(f"  manifest  s3://{bucket}/{result['manifest_key']}")
    if not summary:
        lines.append("  summary   not available (the engine's summary line was not captured): "
                     "see the backup task's log")
        return lines
    size = summary.get("bytes")
    sha = f", sha256 {summary['sha256']}" if summary.get("sha256") else ""
    lines.append(f"  size      {human_size(size)} ({size} bytes){sha}")
    counts = summary.get("counts") or {}
    if counts:
        lines.append("  content   " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    requests = f"  requests  {summary.get('api_requests', '?')} GitHub API requests"
    if summary.get("not_modified") is not None:
        requests += f" ({summary['not_modified']} not modified)"
    if summary.get("rate_limit_remaining") is not None:
        requests += f", rate limit remaining {summary['rate_limit_remaining']}"
    lines.append(requests)
    if summary.get("duration_s") is not None:
        lines.append(f"  duration  {summary['duration_s']} s")
    skipped = summary.get("skipped") or []
    lines.append(f"  skipped   {len(skipped) or 'nothing'}")
    for item in skipped[:SKIPPED_SHOWN]:
        if isinstance(item, Mapping):
            lines.append(f"    - {item.get('item')}: {item.get('reason')}")
        else:
            lines.append(f"    - {item}")
    if len(skipped) > SKIPPED_SHOWN:
        lines.append(f"    ... and {len(skipped) - SKIPPED_SHOWN} more (see the manifest)")
    return lines


def success_message(month: str, results: Sequence[Mapping[str, Any]], *,
                    dag_id: str | None = None, run_id: str | None = None,
                    glacier: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                    verified: Sequence[Mapping[str, Any]] | None = None,
                    ) -> tuple[str, str]:
    """Subject and plain-text body summarising every owner's backup for `month`.

    `results` are the backup task's return values (`{"owner", "month", "bucket", "key",
    "manifest_key", "summary"}`, summary being the engine's JSON summary line or None);
    `glacier` optionally the GlacierTransitionSensor's XCom value(s); `verified` the
    verification step's return values, when it ran."""
    results = [r for r in results if r]
    owners = [str(r.get("owner") or (r.get("summary") or {}).get("owner") or "?")
              for r in results]
    who = owners[0] if len(owners) == 1 else f"{len(owners)} owners"
    subject = clean_subject(f"ghvault: backup of {who} for {month} succeeded")
    summaries = [r.get("summary") or {} for r in results]
    total = sum(s.get("bytes") or 0 for s in summaries)
    repos = sum((s.get("counts") or {}).get("repos", 0) for s in summaries)
    requests = sum(s.get("api_requests") or 0 for s in summaries)
    skipped = sum(len(s.get("skipped") or []) for s in summaries)
    head = (f"ghvault backed up {_plural(len(owners), 'owner')} for {month}: "
            f"{_plural(repos, 'repository', 'repositories')}, "
            f"{human_size(total)}, {_plural(requests, 'GitHub API request')}, "
            f"{_plural(skipped, 'skipped item')}.")
    lines = [head]
    if dag_id or run_id:
        lines.append(f"DAG {dag_id or '?'}, run {run_id or '?'}.")
    for result in results:
        lines += ["", *_owner_lines(result)]
    if glacier:
        lines += ["", "Cold storage"]
        for check in [glacier] if isinstance(glacier, Mapping) else glacier:
            lines.append(_glacier_line(check))
    if verified:
        lines += ["", "Verified (ghvault verify)"]
        lines += [_verified_line(check) for check in verified]
    return subject, _fit("\n".join(lines) + "\n")


def _verified_line(check: Mapping[str, Any]) -> str:
    summary = check.get("summary") or {}
    facts = [f"{summary[name]} {name.replace('_', ' ')}" for name in
             ("entries", "bundles", "problems") if summary.get(name) is not None]
    return (f"  {check.get('owner')}: s3://{check.get('bucket')}/{check.get('key')} is intact"
            + (f" ({', '.join(facts)})" if facts else ""))


def _glacier_line(check: Mapping[str, Any]) -> str:
    line = (f"  rule {check.get('rule_id')!r} moves {check.get('key')} to "
            f"{check.get('storage_class')} within {check.get('transition_days')} days, "
            f"expires it after {check.get('expiration_days')} days")
    previous = check.get("previous")
    if previous and previous.get("exists"):
        state = ("cold" if previous.get("cold") else previous.get("note") or "not cold yet")
        line += (f"; previous archive {previous.get('key')} is {previous.get('storage_class')}"
                 f" ({state})")
    elif previous:
        line += f"; no previous archive at {previous.get('key')}"
    return line


def failure_message(dag_id: str, month: str | None, owner: str | None, task_id: str,
                    reason: str, *, details: Mapping[str, Any] | None = None,
                    ) -> tuple[str, str]:
    """Subject and body for a failed step: which owner, which task, and why."""
    month = month or "unknown month"
    what = f"backup of {owner}" if owner else f"{dag_id} run"
    subject = clean_subject(f"ghvault: {what} for {month} FAILED at {task_id}")
    rows = [("DAG", dag_id), ("month", month), ("owner", owner or "not owner-specific"),
            ("failed step", task_id), *((k, v) for k, v in (details or {}).items()
                                        if v not in (None, ""))]
    width = max(len(k) for k, _ in rows)
    lines = [f"The ghvault backup {'of ' + owner if owner else 'run'} for {month} failed.", ""]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += ["", "Reason:", reason.strip() or "(no reason given)"]
    return subject, _fit("\n".join(lines) + "\n")


# -- reading the run from the Airflow context --------------------------------------------------


def _month(context: Mapping[str, Any]) -> str | None:
    from ghvault_airflow.months import run_month

    try:
        return run_month(context)
    except Exception:  # a callback must still say what failed
        return None


def _dag_id(context: Mapping[str, Any]) -> str:
    dag = context.get("dag")
    ti = context.get("ti")
    return str(getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None) or "?")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    return [v for v in value if v is not None]


def backup_results(context: Mapping[str, Any],
                   backup_task_id: str = BACKUP_TASK_ID) -> list[dict[str, Any]]:
    """Return values of every mapped instance of the backup task in this run."""
    ti = context["ti"]
    # without map_indexes Airflow returns every map index's value (one value if only one)
    return [dict(r) for r in _as_list(ti.xcom_pull(task_ids=backup_task_id))
            if isinstance(r, Mapping)]


def failed_owner(context: Mapping[str, Any], backup_task_id: str = BACKUP_TASK_ID) -> str | None:
    """The GitHub owner the failed task worked for: the task's own `github_owner` (a backup
    operator's rendered argument, a sensor's archive owner), else the owner in the backup
    task's XCom at the same map index."""
    ti = context.get("ti")
    task = context.get("task") or getattr(ti, "task", None)
    owner = getattr(task, "github_owner", None)  # not `owner`: that is the Airflow task owner
    if isinstance(owner, str) and owner:
        return owner
    map_index = getattr(ti, "map_index", -1)
    if ti is None or map_index is None or map_index < 0:
        return None
    try:
        pulled = ti.xcom_pull(task_ids=backup_task_id, map_indexes=map_index)
    except Exception:  # no XCom backend reachable, task not in this DAG...
        return None
    return pulled.get("owner") if isinstance(pulled, Mapping) else None


def failure_reason(context: Mapping[str, Any]) -> str:
    exc = context.get("exception")
    if isinstance(exc, BaseException):
        return f"{type(exc).__name__}: {exc}"
    return str(exc or context.get("reason") or "unknown (see the task log)")


def _topic(target_arn: str | None, settings: Any, aws_conn_id: str | None,
           region_name: str | None) -> tuple[str | None, str | None, str | None]:
    """Topic, connection and region: the explicit ones, else the deployment settings'."""
    if target_arn:
        return target_arn, aws_conn_id or "aws_default", region_name
    from ghvault_airflow.settings import VARIABLE_NAME, load_settings

    if settings is None:
        from airflow.sdk import Variable

        settings = Variable.get(VARIABLE_NAME, default=None)
    try:
        resolved = load_settings(settings)
    except ValueError as exc:  # the failure being reported may be these very settings
        raw = settings if isinstance(settings, Mapping) else _json_object(settings)
        topic = raw.get("sns_topic_arn") or os.environ.get("GHVAULT_SNS_TOPIC_ARN")
        log.warning("The deployment settings are invalid (%s); notifying %s", exc, topic)
        return (topic, aws_conn_id or raw.get("aws_conn_id") or "aws_default",
                region_name or raw.get("region"))
    return (resolved.sns_topic_arn, aws_conn_id or resolved.aws_conn_id,
            region_name or resolved.region)


def _json_object(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str | bytes) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def publish(subject: str, message: str, attributes: Mapping[str, str], *,
            target_arn: str, aws_conn_id: str | None = "aws_default",
            region_name: str | None = None) -> str:
    """Publish through the provider's SnsHook; returns the SNS MessageId."""
    hook = SnsHook(aws_conn_id=aws_conn_id, region_name=region_name)
    attrs = {k: str(v) for k, v in attributes.items() if v not in (None, "")}
    response = hook.publish_to_target(target_arn=target_arn, message=message,
                                      subject=clean_subject(subject), message_attributes=attrs)
    return response["MessageId"]


def _send(subject: str, message: str, attributes: Mapping[str, str], target_arn: str | None,
          settings: Any, aws_conn_id: str | None, region_name: str | None) -> str | None:
    topic, conn, region = _topic(target_arn, settings, aws_conn_id, region_name)
    if not topic:
        log.warning("No SNS topic configured (setting sns_topic_arn): not sent: %s", subject)
        return None
    message_id = publish(subject, message, attributes, target_arn=topic, aws_conn_id=conn,
                         region_name=region)
    log.info("Sent %r to %s (message %s)", subject, topic, message_id)
    return message_id


def notify_success(context: Mapping[str, Any], *, target_arn: str | None = None,
                   settings: Any = None, aws_conn_id: str | None = None,
                   region_name: str | None = None, backup_task_id: str = BACKUP_TASK_ID,
                   glacier_task_id: str | None = None, month: str | None = None,
                   verify_task_id: str | None = None) -> str | None:
    """Publish the run's success summary (one message for every owner). Usable as a task's
    callable or as `on_success_callback`; returns the SNS message id (None without topic)."""
    month = month or _month(context) or "unknown month"
    glacier = None
    if glacier_task_id:
        glacier = _as_list(context["ti"].xcom_pull(task_ids=glacier_task_id))
    verified = backup_results(context, verify_task_id) if verify_task_id else None
    dag_run = context.get("dag_run")
    subject, message = success_message(month, backup_results(context, backup_task_id),
                                       dag_id=_dag_id(context),
                                       run_id=getattr(dag_run, "run_id", None)
                                       or context.get("run_id"), glacier=glacier,
                                       verified=verified)
    attributes = {"status": "success", "month": month, "dag_id": _dag_id(context)}
    return _send(subject, message, attributes, target_arn, settings, aws_conn_id, region_name)


def notify_failure(context: Mapping[str, Any], *, target_arn: str | None = None,
                   settings: Any = None, aws_conn_id: str | None = None,
                   region_name: str | None = None, backup_task_id: str = BACKUP_TASK_ID,
                   month: str | None = None) -> str | None:
    """Publish a failure: the owner (from the map index), the failed task and the reason.
    For `on_failure_callback` of a task or of the DAG."""
    ti = context.get("ti")
    month = month or _month(context)
    owner = failed_owner(context, backup_task_id)
    task_id = getattr(ti, "task_id", None) or "the run"
    map_index = getattr(ti, "map_index", -1)
    details = {"map index": map_index if isinstance(map_index, int) and map_index >= 0 else None,
               "try": getattr(ti, "try_number", None),
               "run": getattr(context.get("dag_run"), "run_id", None) or context.get("run_id"),
               "log": getattr(ti, "log_url", None)}
    dag_id = _dag_id(context)
    subject, message = failure_message(dag_id, month, owner, task_id, failure_reason(context),
                                       details=details)
    attributes = {"status": "failure", "month": month, "dag_id": dag_id, "owner": owner,
                  "task_id": task_id}
    return _send(subject, message, attributes, target_arn, settings, aws_conn_id, region_name)


class _BackupNotifier(BaseNotifier):
    template_fields: Sequence[str] = ("target_arn", "settings", "aws_conn_id", "region_name",
                                      "month")

    def __init__(self, *, target_arn: str | None = None, settings: Any = None,
                 aws_conn_id: str | None = None, region_name: str | None = None,
                 backup_task_id: str = BACKUP_TASK_ID, month: str | None = None) -> None:
        super().__init__()
        self.target_arn, self.settings = target_arn, settings
        self.aws_conn_id, self.region_name = aws_conn_id, region_name
        self.backup_task_id, self.month = backup_task_id, month

    def _options(self) -> dict[str, Any]:
        return {"target_arn": self.target_arn or None, "settings": self.settings or None,
                "aws_conn_id": self.aws_conn_id or None, "region_name": self.region_name or None,
                "backup_task_id": self.backup_task_id, "month": self.month or None}


class BackupSuccessNotifier(_BackupNotifier):
    """`notify_success` as a notifier (templated `target_arn`, `settings`, `month`...)."""

    def __init__(self, *, glacier_task_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.glacier_task_id = glacier_task_id

    def notify(self, context: Any) -> None:
        notify_success(context, glacier_task_id=self.glacier_task_id, **self._options())


class BackupFailureNotifier(_BackupNotifier):
    """`notify_failure` as a notifier, for `on_failure_callback`."""

    def notify(self, context: Any) -> None:
        notify_failure(context, **self._options())

