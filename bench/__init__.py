"""Benchmarks: each module writes machine-readable results under ``bench/results/``."""
