"""Measured comparisons of pai-sweep: overhead, throughput, search quality, start-up (docs/benchmarks.md)."""
