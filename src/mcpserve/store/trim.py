"""Give the heap a sweep freed back to the operating system.

glibc keeps freed heap memory for reuse, so a server that dropped thousands of expired sessions
would still show their peak in its RSS (measured: +10 MB after 600 sessions with events, flat
after further rounds). ``malloc_trim`` returns what is free at once. Without glibc (musl, macOS)
there is nothing to call and the allocator keeps its own policy.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

__all__ = ["release_freed_memory"]


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # no C library to load, or not glibc
        return None
    return trim


_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Return free heap to the system (a few ms on a large heap: call it after bulk frees only)."""
    if _TRIM is not None:
        _TRIM(0)
