"""ghvault's Airflow side, shaped as an Airflow provider: deployment settings, the run plan,
the archive hook (S3), the backup operators (ECS and local runners), the archive sensors,
the SNS notifications.

Installed as its own distribution (``operators/pyproject.toml``, import name
``ghvault_airflow`` so it cannot collide with another project's ``operators``); Airflow
finds :func:`get_provider_info` through the ``apache_airflow_provider`` entry point, so
``airflow providers list`` shows it.
"""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "ghvault-airflow"


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # imported from a source tree, not installed
        return "0+unknown"


__version__ = _version()


def get_provider_info() -> dict:
    """What Airflow's ProvidersManager reads (the shape of a provider's provider.yaml)."""
    return {
        "package-name": DISTRIBUTION,
        "name": "ghvault",
        "description": "Monthly, verifiable backups of GitHub accounts and organisations "
                       "into S3 Glacier, run on ECS Fargate.",
        "versions": [__version__],
        "integrations": [{"integration-name": "ghvault", "tags": ["aws", "software"]}],
        "hooks": [{"integration-name": "ghvault",
                   "python-modules": ["ghvault_airflow.hooks.archive"]}],
        "operators": [{"integration-name": "ghvault", "python-modules": [
            "ghvault_airflow.operators.backup", "ghvault_airflow.operators.local"]}],
        "sensors": [{"integration-name": "ghvault",
                     "python-modules": ["ghvault_airflow.sensors.archive"]}],
        "notifications": ["ghvault_airflow.notifications.sns.BackupSuccessNotifier",
                          "ghvault_airflow.notifications.sns.BackupFailureNotifier"],
    }
