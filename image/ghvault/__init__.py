"""ghvault: back up a whole GitHub owner into one verifiable archive."""

__version__ = "0.1.0"
