"""Benchmarks: `python -m benchmarks.imaging`, `python -m benchmarks.reconcile` (see README)."""
