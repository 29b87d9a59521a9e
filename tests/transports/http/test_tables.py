"""The session service's in-process tables: what each promises through its protocol."""

from __future__ import annotations

import anyio
import pytest

from mcpserve.errors import ToolError
from mcpserve.transports.http.tables import SessionTables

pytestmark = pytest.mark.anyio


async def test_one_get_stream_per_session_until_released() -> None:
    streams = SessionTables().get_streams
    assert await streams.claim("s1")
    assert not await streams.claim("s1")
    assert await streams.claim("s2")
    await streams.release("s1")
    assert await streams.claim("s1")


async def test_an_answer_reaches_the_waiting_request_and_nobody_else() -> None:
    waiting = SessionTables().waiting
    assert not await waiting.answer("s1", "r1", {"x": 1}, None)
    sent = anyio.Event()

    async def send() -> None:
        sent.set()

    result: dict[str, object] = {}
    async with anyio.create_task_group() as group:

        async def ask() -> None:
            result.update(await waiting.wait("s1", "r1", "elicitation/create", send))

        group.start_soon(ask)
        await sent.wait()
        assert not await waiting.answer("s2", "r1", {"x": 2}, None)  # another session's id
        assert await waiting.answer("s1", "r1", {"x": 1}, None)
    assert result == {"x": 1}


async def test_a_refused_answer_fails_the_waiting_call() -> None:
    waiting = SessionTables().waiting

    async def send() -> None:
        assert await waiting.answer("s1", "r1", None, {"code": -1, "message": "declined"})

    with pytest.raises(ToolError, match="declined"):
        await waiting.wait("s1", "r1", "sampling/createMessage", send)


class _Call:
    def __init__(self) -> None:
        self.cancelled = 0

    def cancel(self, *, shutdown: bool = False) -> bool:
        self.cancelled += 1
        return True


async def test_cancel_reaches_only_a_call_still_registered() -> None:
    calls = SessionTables().calls
    call = _Call()
    calls.add("s1", 7, call)
    await calls.cancel("s1", 8)
    await calls.cancel("s2", 7)
    assert call.cancelled == 0
    await calls.cancel("s1", 7)
    assert call.cancelled == 1
    calls.discard("s1", 7)
    await calls.cancel("s1", 7)
    assert call.cancelled == 1
