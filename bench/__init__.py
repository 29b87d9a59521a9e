"""Benchmark harness: mcpserve vs the official Python SDK vs a bare uvicorn ceiling (see README.md)."""
