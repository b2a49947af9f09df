"""Airflow-side code for ghvault: deployment settings, backup operators, sensors, notifications."""
