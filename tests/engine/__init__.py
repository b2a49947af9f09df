"""Tests of the engine (`image/ghvault`): the CLI end to end, archives, storage, git, restore."""
