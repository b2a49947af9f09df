"""Tests of the GitHub simulator (`tests/github_sim`): its API, shapes, git and world."""
