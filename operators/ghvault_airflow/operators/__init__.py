"""Operators: one owner, one month, one archive (ECS and local runners)."""
