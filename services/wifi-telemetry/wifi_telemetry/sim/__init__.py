"""Simulators and scenarios (demos, tests, benchmarks)."""
