"""Benchmarks: each prints ratios against baselines run in the same process (`make bench`)."""
