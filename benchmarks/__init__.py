"""Benchmarks beside the package (run from the repository root): compare_torch."""
