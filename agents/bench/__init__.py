"""Benchmarks (``privrec bench ...``): ours against baselines, measured in one run."""
