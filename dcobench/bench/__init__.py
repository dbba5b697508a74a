"""Benchmarks: training step, sampling and merge timings / memory (App. D.5)."""
