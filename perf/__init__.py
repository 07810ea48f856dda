"""Load generation and the benchmark harness (see bench.py)."""
