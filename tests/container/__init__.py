"""Tests of the engine image run by a real container engine (docker or podman)."""
