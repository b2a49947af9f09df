"""Sensors that prove an archive is in S3, intact, and bound for Glacier."""
