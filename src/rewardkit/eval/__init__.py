"""Evaluation: pairwise metrics, intervals and baselines; benchmark rules live in benchmarks/."""
