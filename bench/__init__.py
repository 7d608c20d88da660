"""Benchmarks: `make bench` measures the bot and writes docs/PERFORMANCE.md (see bench.__main__)."""
