"""Servers the benchmark compares; each serves `echo(text: str) -> str` on 127.0.0.1 at /mcp."""
