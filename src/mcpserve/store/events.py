"""Event ids and replay, shared by the event store backends.

An id is ``<stream>/<seq>``: ``seq`` counts the session's events, so ids are unique within the
session and increase within each stream. The stream id may itself contain ``/``.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpserve.types import JSONObject

__all__ = ["event_id", "parse_event_id", "replay_from"]


def event_id(stream_id: str, seq: int) -> str:
    return f"{stream_id}/{seq}"


def parse_event_id(last_event_id: str) -> tuple[str, int] | None:
    stream_id, _, seq = last_event_id.rpartition("/")
    if not stream_id or not seq.isdigit():
        return None
    return stream_id, int(seq)


def replay_from(
    last: tuple[str, int], events: Iterable[tuple[int, str, JSONObject]]
) -> tuple[str, list[tuple[str, JSONObject]]] | None:
    """The events of ``last``'s stream after it, from a session's retained ``(seq, stream,
    message)`` in order. None when the stream is unknown: neither the event ``last`` names nor a
    later one of its stream is retained (never written, forgotten, or pushed out by the bound)."""
    stream_id, after = last
    known = False
    found: list[tuple[str, JSONObject]] = []
    for seq, stream, message in events:
        if stream != stream_id or seq < after:
            continue
        known = True
        if seq > after:
            found.append((event_id(stream, seq), message))
    return (stream_id, found) if known else None
