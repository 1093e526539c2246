"""Helpers the integration tests and benchmarks share: real servers and processes."""
