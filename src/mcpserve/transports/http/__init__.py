"""Streamable HTTP transport for both protocol eras."""
