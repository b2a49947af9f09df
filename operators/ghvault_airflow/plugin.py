"""The Airflow plugin of ghvault: the listener that creates the backup pool (:mod:`.pool`)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from ghvault_airflow import pool


class GhvaultPlugin(AirflowPlugin):
    name = "ghvault"
    listeners = [pool]
