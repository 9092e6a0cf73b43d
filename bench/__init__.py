"""Benchmarks: run with `python -m bench.<module>` from the project root (see bench/README.md)."""
