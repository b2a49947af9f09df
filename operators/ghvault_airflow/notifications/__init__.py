"""SNS notifications of a backup run."""
