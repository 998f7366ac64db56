"""Benchmarks: `python -m benchmarks` (or `make bench`) runs them all and prints a table."""
