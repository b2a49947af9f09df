"""The scheduler creates the backup pool when it starts (an Airflow listener, installed as
this package's plugin), so a deployment needs no step of its own for it.

Every backup and verification task runs in the pool the settings name (``pool``,
``pool_slots``): at most that many engines use the GitHub token at once, across runs. A
task cannot create a pool in Airflow 3 (the Task SDK has no pool API) and a task whose pool
does not exist is never scheduled, so the pool must exist before the first run. The
scheduler has the metadata database: when it starts, ``on_starting`` creates or resizes the
pool from the settings (Variable ``ghvault_settings`` and GHVAULT_* variables; defaults when
neither is set yet). ``python -m ghvault_airflow.plan pool`` does the same by hand.
"""

from __future__ import annotations

import logging
import time

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)


def ensure_pool() -> None:
    """Create or resize the pool from the settings (the caller has the metadata database)."""
    from airflow.models.pool import Pool
    from airflow.models.variable import Variable

    from ghvault_airflow.plan import POOL_DESCRIPTION, pool_settings
    from ghvault_airflow.settings import VARIABLE_NAME

    settings = pool_settings(Variable.get(VARIABLE_NAME, default_var=None))
    # include_deferred: a deferred ECS backup still uses the token while the triggerer waits
    Pool.create_or_update_pool(settings.pool, settings.pool_slots, POOL_DESCRIPTION,
                               include_deferred=True)
    log.info("ghvault: pool %s has %d slot(s) for backups", settings.pool, settings.pool_slots)


@hookimpl
def on_starting(component) -> None:
    """When an Airflow component with the metadata database starts (the scheduler, the
    triggerer, the dag-processor: their jobs are not yet typed here), make the pool. The
    write is idempotent; a concurrent writer (SQLite) gets a few tries."""
    for attempt in range(3):
        try:
            ensure_pool()
            return
        except Exception as err:  # noqa: BLE001 - never stop the component for it
            if attempt == 2:
                log.warning("ghvault: could not create the backup pool (%s): its tasks wait "
                            "until it exists; run `python -m ghvault_airflow.plan pool`", err)
            else:
                time.sleep(1 + attempt)
