"""The ASGI ``send`` of one endpoint request, as the adapter wraps it."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from mcpserve.observability.requests import RequestObserver, RequestRecord
from mcpserve.transports.http import sse
from mcpserve.transports.http.stream import Send

__all__ = ["Exchange"]

_SSE_CONTENT_TYPE = sse.SSE_HEADERS[0]


class Exchange:
    """The ASGI ``send`` of one request: it adds the headers every answer carries (CORS, the
    request id), remembers how far the response got, and tells the request's record the status
    and whether the response streams."""

    __slots__ = ("_extra", "_observer", "detached", "ended", "record", "server_send", "started")

    def __init__(
        self,
        send: Send,
        extra: list[tuple[bytes, bytes]],
        record: RequestRecord,
        observer: RequestObserver | None,
    ) -> None:
        self.server_send = send
        self._extra = extra
        self.record = record
        self._observer = observer
        self.started = False
        self.ended = False
        self.detached = False  # the response went on without the request's task (detached.py)

    def __call__(self, message: dict[str, Any]) -> Awaitable[None]:
        # A plain function returning the server's own send: no coroutine of ours per message.
        if message["type"] == "http.response.start":
            self.started = True
            headers = message["headers"]
            self.record.status = message["status"]
            # Every stream this endpoint opens starts with sse.SSE_HEADERS (ResponseStream): one
            # comparison instead of a search for Content-Type on every JSON answer.
            if headers and headers[0] == _SSE_CONTENT_TYPE and self._observer is not None:
                self.record.sse = True
                self._observer.sse_open += 1
            message["headers"] = headers + self._extra
        elif not message.get("more_body"):
            self.ended = True
            if self.record.sse:  # tested here: a call per response only for the rare stream
                self.stream_ended()
        return self.server_send(message)  # type: ignore[no-any-return]

    def detach(self) -> None:
        """The response went on without the request's task (detached.py): let go of the ASGI
        server's send and of everything of the request but its record."""
        self.detached = True
        self.server_send = None
        self._extra = []

    def stream_ended(self) -> None:
        if self.record.sse and self._observer is not None:
            self.record.sse = False
            self._observer.sse_open -= 1
