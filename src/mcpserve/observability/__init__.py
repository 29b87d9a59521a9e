"""Metrics and structured logs: what operators see of a running server."""
