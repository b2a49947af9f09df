"""Benchmarks: ghvault against python-github-backup on the same simulated account (issue 6).

`python -m bench` (or `make bench`) starts the project's GitHub simulator (medium size, TLS,
50 ms of latency per API request, a git bandwidth cap) once per scenario, runs both tools
against it, checks that each wrote everything, and writes bench/RESULTS.md.
"""
