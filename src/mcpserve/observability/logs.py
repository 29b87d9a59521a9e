"""JSON logs on stderr: structlog for our own lines, the standard library routed through the same
renderer (uvicorn and any library that logs), one object per line.

stdout is never written: on stdio it carries the protocol, and over HTTP keeping it clean costs
nothing and avoids surprises when a deployment switches transports.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import IO, Any

import orjson
import structlog
from structlog.typing import Processor

from mcpserve.urls import MASK

__all__ = ["configure_logging", "get_logger", "mask_text", "NamedLogger", "write_event"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_generation = 0  # bumped by every configure_logging, so NamedLogger rebinds
_stderr_writer: io.BufferedWriter | None = None
_stderr_fd = -1


# Credentials that reach a log line inside free text (an exception message naming a Redis or
# database URL, a header echoed by a library) are masked before rendering.
_URL_PASSWORD = re.compile(r"(?P<keep>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@\"']*:)[^@\s\"'/]+@")
_BEARER = re.compile(r"(?i)(?P<keep>bearer\s+)[A-Za-z0-9._~+/=-]+")


def _may_hold_credentials(text: str) -> bool:
    """The cheap test before the patterns: ``@`` or the Bearer scheme in any case (``BEARER``, ``bEaReR``).

    The scheme is case-insensitive (RFC 9110), so the test is too: lowering a short field costs
    less than one search with the case-insensitive pattern.
    """
    return "@" in text or "earer" in text.lower()


def _mask(text: str) -> str:
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group("keep") + MASK + "@", text)
    if "earer" in text.lower():
        text = _BEARER.sub(lambda m: m.group("keep") + MASK, text)
    return text


def mask_text(text: str) -> str:
    """``text`` with URL passwords and bearer tokens masked, as every log line has them."""
    return _mask(text) if _may_hold_credentials(text) else text


def mask_credentials(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask URL passwords and bearer tokens in every string field."""
    for key, value in event.items():
        if isinstance(value, str) and _may_hold_credentials(value):
            event[key] = _mask(value)
    return event


def _dumps(value: Any, **_: Any) -> bytes:
    return orjson.dumps(value, default=str)


def _dumps_text(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


class _LineHandler(logging.Handler):
    """Writes each formatted standard-library record as one line to a binary stream."""

    def __init__(self, stream: IO[bytes], lock: threading.Lock) -> None:
        super().__init__()
        self._stream = stream
        self._write_lock = lock

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record).encode() + b"\n"
            with self._write_lock:
                self._stream.write(line)
                self._stream.flush()
        except Exception:  # pragma: no cover - logging must never take the server down
            self.handleError(record)


class _LockedWriter:
    """structlog's BytesLogger target: one write per line, serialised with the stdlib handler.

    Lines written on an event loop are flushed once, at the end of the loop iteration, instead of
    one system call each: under load one iteration answers dozens of requests. Lines written
    anywhere else (worker threads, no loop) are flushed at once.
    """

    def __init__(self, stream: IO[bytes], lock: threading.Lock) -> None:
        self._stream = stream
        self._lock = lock
        self._flush_scheduled = False

    def write(self, data: bytes) -> int:
        with self._lock:
            written = self._stream.write(data)
        return written

    def flush(self) -> None:
        with self._lock:
            self._flush_scheduled = False
            self._stream.flush()

    def write_line(self, data: bytes) -> None:
        with self._lock:
            self._stream.write(data)
            if self._flush_scheduled:
                return
            loop = asyncio._get_running_loop()  # None off the loop thread: no waiting there
            if loop is None:
                self._stream.flush()
                return
            self._flush_scheduled = True
        loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        _flush_quietly(self.flush)


class _Sink:
    """Where :func:`write_event` writes: set by :func:`configure_logging`, shared with structlog."""

    writer: _LockedWriter | None = None
    level = _LEVELS["info"]


# The second the cached prefix belongs to, and the prefix ("2026-01-01T00:00:00."): the
# timestamp structlog's TimeStamper writes, with the date formatted once a second.
_STAMP: list[Any] = [-1, ""]


def _timestamp() -> str:
    """ISO-8601 UTC with microseconds, as structlog's TimeStamper(fmt="iso") writes it."""
    second, micros = divmod(time.time_ns() // 1000, 1_000_000)
    if second != _STAMP[0]:
        _STAMP[1] = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        _STAMP[0] = second
    return "%s%06dZ" % (_STAMP[1], micros)  # noqa: UP031 - a third cheaper than an f-string with a spec


def write_event(
    level: str, logger: str, event: str, fields: dict[str, Any], masked: tuple[str, ...] = ()
) -> None:
    """One JSON line with the shape of a structlog call, without its processor chain.

    For the line logged per request: structlog spends ~10 us formatting it, this ~2 us. Only the
    fields named in ``masked`` (those a client can fill with free text) are masked. ``fields`` is
    consumed; its keys ``logger``, ``event``, ``level`` and ``timestamp`` are overwritten (a caller
    on a hot path lists them already, so the dict is built at its final size).
    """
    writer = _Sink.writer
    if writer is None:  # logging not configured (library use, tests): the structlog path decides
        getattr(get_logger(logger), level)(event, **fields)
        return
    if _LEVELS[level] < _Sink.level:
        return
    for key in masked:
        value = fields[key]
        # _may_hold_credentials inlined: this runs per request, a call costs more than the test.
        if value is not None and ("@" in value or "earer" in value.lower()):
            fields[key] = _mask(value)
    fields["logger"], fields["event"], fields["level"] = logger, event, level
    fields["timestamp"] = _timestamp()
    writer.write_line(orjson.dumps(fields, default=str, option=orjson.OPT_APPEND_NEWLINE))


def _buffered_stderr() -> IO[bytes]:
    """stderr as a buffered binary writer.

    ``sys.stderr.buffer`` is an unbuffered FileIO (Python 3.9+), so each line would be its own
    system call; through a buffer, the lines of one event loop iteration leave in one write (see
    :class:`_LockedWriter`). One writer per process, on its own FileIO that never closes the
    descriptor, flushed at exit. A stderr replaced by something else (a test's capture) is used
    as it is.
    """
    global _stderr_writer, _stderr_fd  # noqa: PLW0603 - one buffer per process, like stderr itself
    binary = sys.stderr.buffer
    if not isinstance(binary, io.FileIO):
        return binary
    if _stderr_writer is None or _stderr_fd != binary.fileno():
        _stderr_fd = binary.fileno()
        raw = io.FileIO(_stderr_fd, "wb", closefd=False)
        _stderr_writer = io.BufferedWriter(raw, buffer_size=64 * 1024)
        atexit.register(_flush_quietly, _stderr_writer.flush)
    return _stderr_writer


def _flush_quietly(flush: Callable[[], None]) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr closed or gone: nowhere to report it
        flush()


def configure_logging(
    level: str = "info", stream: IO[bytes] | None = None, context: Processor | None = None
) -> None:
    """Route every log line, ours and the standard library's, to ``stream`` (stderr) as JSON.

    ``context`` adds fields from the ambient context to every line (trace and span ids when
    tracing is on); without it lines cost nothing more.
    """
    global _generation  # noqa: PLW0603 - logging configuration is process-wide by nature
    if _Sink.writer is not None:  # lines still waiting for their loop iteration's flush
        _flush_quietly(_Sink.writer.flush)
    target = stream if stream is not None else _buffered_stderr()
    lock = threading.Lock()
    numeric = _LEVELS[level.lower()]
    _Sink.writer, _Sink.level = _LockedWriter(target, lock), numeric
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp")
    extra: list[Processor] = [context] if context is not None else []
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            timestamper,
            *extra,
            structlog.processors.format_exc_info,
            mask_credentials,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.BytesLoggerFactory(_Sink.writer),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    pre_chain: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
        *extra,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            mask_credentials,
            structlog.processors.JSONRenderer(serializer=_dumps_text),
        ],
    )
    handler = _LineHandler(target, lock)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _LineHandler)]:  # ours only: keep others'
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # uvicorn installs its own handlers only when given a log config; make sure none linger.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # httpx writes an info line for every request it sends: each span export, upstream call and
    # token check. mcpserve reports their failures itself (a warning for an export or a token
    # check, an upstream's health); the lines come back at debug.
    logging.getLogger("httpx").setLevel(
        numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
    )
    _generation += 1


class NamedLogger:
    """A structlog logger whose lines carry ``logger=name``.

    It binds on first use after each :func:`configure_logging`, so it can be created before
    logging is configured (at import or app build time) and still follow the configuration.
    """

    __slots__ = ("_bound", "_generation", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._bound: Any = None
        self._generation = -1

    def _logger(self) -> Any:
        if self._generation != _generation:
            self._bound = structlog.get_logger().bind(logger=self._name)
            self._generation = _generation
        return self._bound

    def debug(self, event: str, **fields: Any) -> None:
        self._logger().debug(event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._logger().info(event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._logger().warning(event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._logger().error(event, **fields)


def get_logger(name: str) -> NamedLogger:
    return NamedLogger(name)
