"""The month a DAG run backs up, read from its Airflow context in the schedule's timezone
(one place for the scheduled, backfill and manual cases)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


def _schedule_timezone(context: Mapping[str, Any]):
    dag = context.get("dag")
    timetable = getattr(dag, "timetable", None)
    tz = getattr(timetable, "timezone", None) or getattr(dag, "timezone", None)
    if isinstance(tz, str):
        import pendulum

        tz = pendulum.timezone(tz)
    return tz


def run_type(context: Mapping[str, Any]) -> str:
    """"scheduled", "backfill", "manual"... ("" when the context has no dag_run)."""
    kind = getattr(context.get("dag_run"), "run_type", None) or ""
    return str(getattr(kind, "value", kind))


def _month_before(moment: datetime) -> str:
    year, month = (moment.year - 1, 12) if moment.month == 1 else (moment.year, moment.month - 1)
    return f"{year:04d}-{month:02d}"


def run_month(context: Mapping[str, Any]) -> str:
    """The run's month, YYYY-MM, read in the schedule's timezone.

    - A manual run with a logical date covers the last complete month before that date
      (``2026-04-01`` and ``2026-04-15`` both back up March), as the UI and the REST API
      infer its data interval. Its ``data_interval_start`` is not trusted: Airflow 3.3's
      ``airflow dags trigger -l DATE`` infers the interval from the trigger *time*
      (``api/common/trigger_dag.py`` passes ``run_after`` = now to
      ``infer_manual_data_interval``), which would back up the current month under a label
      the operator did not ask for.
    - A scheduled or backfill run covers its data interval: ``data_interval_start``.
    - A run without a logical date backs up the month of ``dag_run.run_after`` (the
      current, partial month).
    """
    tz = _schedule_timezone(context)

    def local(moment: datetime) -> datetime:
        return moment.astimezone(tz) if tz is not None and moment.tzinfo is not None else moment

    dag_run = context.get("dag_run")
    logical = context.get("logical_date")
    if logical is not None and run_type(context) == "manual":
        # the month schedule's boundary is 00:00 on the 1st: the last complete month
        # before any moment of April is March (the timetable's infer_manual_data_interval)
        return _month_before(local(logical))
    moment: datetime | None = context.get("data_interval_start")
    if moment is None:
        moment = getattr(dag_run, "run_after", None)
    if moment is None:
        raise ValueError(
            "the task context has neither data_interval_start nor dag_run.run_after: pass "
            "month='YYYY-MM' to the operator."
        )
    moment = local(moment)
    return f"{moment.year:04d}-{moment.month:02d}"
