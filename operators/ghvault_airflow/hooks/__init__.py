"""Hooks of the ghvault provider."""
