"""Benchmarks for the gateway; run them as modules, e.g. `python -m benchmarks.gateway_overhead`."""
