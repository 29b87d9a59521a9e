"""A remote Streamable HTTP upstream, in whichever era it speaks (detected once, then remembered).

One pooled ``httpx.AsyncClient`` per upstream. 2026-07-28 upstreams get stateless requests with
the ``_meta`` envelope, and their ``input_required`` rounds are turned into questions for our
client; 2025-era upstreams get a session, re-initialised once, transparently, when it expires
(HTTP 404). 401, 403 and 429 become errors that say what happened. Only the configured headers
are sent: a client's own token never leaves the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any, Final

import httpx
import orjson

from mcpserve.gateway.config import UpstreamSpec
from mcpserve.gateway.rpc import Ask, Exchange, UpstreamFailure, UpstreamRpcError, outcome_of
from mcpserve.gateway.session import CLIENT_CAPABILITIES, CLIENT_INFO, LEGACY_VERSION, Notify
from mcpserve.protocol.envelope import CLIENT_CAPABILITIES_KEY, CLIENT_INFO_KEY, PROTOCOL_VERSION_KEY
from mcpserve.types import JSONObject

__all__ = ["HttpSession", "MODERN_VERSION"]

MODERN_VERSION: Final = "2026-07-28"
_NAME_PARAM: Final = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_MAX_ROUNDS: Final = 10
_ACCEPT: Final = "application/json, text/event-stream"


class _Expired(Exception):
    """The upstream no longer knows our 2025-era session (HTTP 404)."""


class HttpSession:
    def __init__(self, spec: UpstreamSpec, client: httpx.AsyncClient, on_notification: Notify) -> None:
        assert spec.url is not None
        self.upstream = spec.name
        self.spec = spec
        self.url = spec.url
        self.client = client
        self.pid: int | None = None
        self.capabilities: JSONObject = {}
        self.era = "legacy"
        self.session_id: str | None = None
        self._on_notification = on_notification
        self._ids = itertools.count(1)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._notices: set[asyncio.Task[None]] = set()  # cancellations being posted

    @classmethod
    async def open(cls, spec: UpstreamSpec, headers: dict[str, str], on_notification: Notify) -> HttpSession:
        client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(spec.timeout, connect=min(spec.timeout, 10.0)),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            follow_redirects=False,
        )
        session = cls(spec, client, on_notification)
        try:
            async with asyncio.timeout(spec.start_timeout):
                await session._handshake()
        except BaseException:
            await client.aclose()
            raise
        return session

    async def _handshake(self) -> None:
        discovered = await self._discover() if self.spec.era != "2025" else None
        if discovered is None and self.spec.era == "2026":
            raise UpstreamFailure(f'Upstream {self.upstream!r} does not serve 2026-07-28 (era = "2026")')
        if discovered is not None:
            self.era = "modern"
            capabilities = discovered.get("capabilities")
            self.capabilities = capabilities if isinstance(capabilities, dict) else {}
            return
        await self._initialize()

    async def _discover(self) -> JSONObject | None:
        """``server/discover`` when the upstream speaks 2026-07-28; None for a 2025-era server."""
        try:
            result = await self._round("server/discover", {})
        except (UpstreamRpcError, UpstreamFailure):
            return None
        versions = result.get("supportedVersions")
        return result if isinstance(versions, list) and MODERN_VERSION in versions else None

    async def _initialize(self) -> None:
        self.era, self.session_id = "legacy", None
        params = {
            "protocolVersion": LEGACY_VERSION,
            "capabilities": CLIENT_CAPABILITIES,
            "clientInfo": CLIENT_INFO,
        }
        result = await self._round("initialize", params)
        capabilities = result.get("capabilities")
        self.capabilities = capabilities if isinstance(capabilities, dict) else {}
        await self._post(
            {"jsonrpc": "2.0", "method": "notifications/initialized"}, "notifications/initialized"
        )

    # -- the Session surface ------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def start(self, method: str, params: JSONObject) -> Exchange:
        exchange = Exchange(next(self._ids), method)
        self._tasks[exchange.id] = asyncio.create_task(self._run(exchange, method, params))
        return exchange

    def cancel(self, exchange: Exchange, reason: str) -> None:
        task = self._tasks.pop(exchange.id, None)
        if task is not None:
            task.cancel()  # 2026-07-28: closing the request's connection is the cancellation
            if self.era == "legacy":
                notice = {"requestId": exchange.id, "reason": reason}
                self._notices.add(asyncio.create_task(self._notify("notifications/cancelled", notice)))

    async def _notify(self, method: str, params: JSONObject) -> None:
        try:
            await self._post({"jsonrpc": "2.0", "method": method, "params": params}, method)
        except (httpx.HTTPError, UpstreamFailure):
            pass  # best effort: the upstream may already be gone
        finally:
            self._notices.discard(asyncio.current_task())

    def forget(self, exchange: Exchange) -> None:
        self._tasks.pop(exchange.id, None)

    async def call(self, method: str, params: JSONObject | None = None) -> JSONObject:
        return await outcome_of(self, method, params)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        if self.era == "legacy" and self.session_id is not None:
            with contextlib.suppress(httpx.HTTPError):
                await self.client.delete(self.url, headers={"Mcp-Session-Id": self.session_id})
        await self.client.aclose()

    # -- one request --------------------------------------------------------------------------------
    async def _run(self, exchange: Exchange, method: str, params: JSONObject) -> None:
        try:
            exchange.put("result", await self._request(exchange, method, params))
        except (UpstreamRpcError, UpstreamFailure) as exc:
            exchange.put("error", exc)
        except httpx.HTTPError as exc:
            exchange.put(
                "error", UpstreamFailure(f"Upstream {self.upstream!r} is unreachable ({type(exc).__name__})")
            )
        finally:
            self._tasks.pop(exchange.id, None)

    async def _request(self, exchange: Exchange, method: str, params: JSONObject) -> JSONObject:
        """The final result, following 2026-07-28 ``input_required`` rounds through ``exchange``."""
        for _ in range(_MAX_ROUNDS):
            try:
                result = await self._round(method, params, exchange)
            except _Expired:
                await self._initialize()  # once: a second 404 is an error like any other
                try:
                    result = await self._round(method, params, exchange)
                except _Expired:
                    raise UpstreamFailure(f"Upstream {self.upstream!r} lost its session again") from None
            if result.get("resultType") != "input_required":
                return result
            params = {**params, **await self._answers(exchange, result)}
        raise UpstreamFailure(
            f"Upstream {self.upstream!r} kept asking for input; gave up after {_MAX_ROUNDS} rounds"
        )

    async def _answers(self, exchange: Exchange, result: JSONObject) -> JSONObject:
        requests = result.get("inputRequests")
        answers: JSONObject = {}
        for key, request in (requests if isinstance(requests, dict) else {}).items():
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                continue
            ask = Ask(request["method"], request.get("params") or {})
            exchange.put("ask", ask)
            answers[key] = await ask.answer
        retry: JSONObject = {"inputResponses": answers}
        if "requestState" in result:
            retry["requestState"] = result["requestState"]
        return retry

    async def _round(self, method: str, params: JSONObject, exchange: Exchange | None = None) -> JSONObject:
        request_id = exchange.id if exchange is not None else 0
        if exchange is not None and method in _NAME_PARAM:
            meta = dict(params.get("_meta") or {})
            meta["progressToken"] = request_id
            params = {**params, "_meta": meta}
        if self.era == "modern" or method == "server/discover":
            params = {**params, "_meta": {**(params.get("_meta") or {}), **_ENVELOPE}}
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        name = params.get(_NAME_PARAM.get(method, ""))
        async with self._stream(message, method, name if isinstance(name, str) else None) as response:
            async for incoming in _messages(response):
                done = await self._incoming(incoming, request_id, exchange)
                if done is not None:
                    return done
        raise UpstreamFailure(f"Upstream {self.upstream!r} ended its response without an answer")

    async def _incoming(
        self, message: JSONObject, request_id: int, exchange: Exchange | None
    ) -> JSONObject | None:
        method = message.get("method")
        if method is None and message.get("id") == request_id:
            error = message.get("error")
            if isinstance(error, dict):
                code = error.get("code")
                raise UpstreamRpcError(
                    code if isinstance(code, int) else -32603, str(error.get("message", ""))
                )
            result = message.get("result")
            return result if isinstance(result, dict) else {}
        if not isinstance(method, str):
            return None
        params = message.get("params") or {}
        if "id" not in message:
            if method == "notifications/progress" and exchange is not None:
                exchange.put("progress", params)
            else:
                self._on_notification(method, params)
            return None
        await self._answer_request(message["id"], method, params, exchange)
        return None

    async def _answer_request(
        self, request_id: Any, method: str, params: JSONObject, exchange: Exchange | None
    ) -> None:
        """A 2025-era upstream's question on the POST stream: ask our client, POST the answer back."""
        reply: JSONObject = {"jsonrpc": "2.0", "id": request_id}
        if method == "ping":
            reply["result"] = {}
        elif exchange is None:
            reply["error"] = {"code": -32601, "message": f"No client to ask {method}"}
        else:
            ask = Ask(method, params)
            exchange.put("ask", ask)
            try:
                reply["result"] = await ask.answer
            except UpstreamRpcError as exc:
                reply["error"] = {"code": exc.code, "message": exc.message}
        await self._post(reply, None)

    async def _post(self, message: JSONObject, method: str | None) -> None:
        async with self._stream(message, method, None) as response:
            await response.aread()

    @contextlib.asynccontextmanager
    async def _stream(
        self, message: JSONObject, method: str | None, name: str | None
    ) -> AsyncIterator[httpx.Response]:
        headers = {"Accept": _ACCEPT, "Content-Type": "application/json"}
        if self.era == "modern" or method == "server/discover":
            headers["MCP-Protocol-Version"] = MODERN_VERSION
            if method is not None:
                headers["Mcp-Method"] = method
            if name is not None:
                headers["Mcp-Name"] = name
        else:
            headers["MCP-Protocol-Version"] = LEGACY_VERSION
            if self.session_id is not None:
                headers["Mcp-Session-Id"] = self.session_id
        request = self.client.build_request("POST", self.url, content=orjson.dumps(message), headers=headers)
        response = await self.client.send(request, stream=True)
        try:
            self._check_status(response, method)
            if method == "initialize" and "mcp-session-id" in response.headers:
                self.session_id = response.headers["mcp-session-id"]
            yield response
        finally:
            await response.aclose()

    def _check_status(self, response: httpx.Response, method: str | None) -> None:
        status = response.status_code
        if status < 400:
            return
        name = self.upstream
        if status == 404 and self.era == "legacy" and self.session_id is not None and method != "initialize":
            raise _Expired()
        if status == 401:
            raise UpstreamFailure(f"Upstream {name!r} rejected the gateway's credentials (HTTP 401)")
        if status == 403:
            raise UpstreamFailure(f"Upstream {name!r} refused the gateway access (HTTP 403)")
        if status == 429:
            after = response.headers.get("retry-after")
            hint = f"; retry after {after} s" if after and after.isdigit() else ""
            raise UpstreamFailure(f"Upstream {name!r} is rate limiting the gateway (HTTP 429{hint})")
        if method == "server/discover":
            raise UpstreamRpcError(-32601, f"HTTP {status}")  # a 2025-era server: not an error
        raise UpstreamFailure(f"Upstream {name!r} answered HTTP {status}")


_ENVELOPE: Final[JSONObject] = {
    PROTOCOL_VERSION_KEY: MODERN_VERSION,
    CLIENT_CAPABILITIES_KEY: CLIENT_CAPABILITIES,
    CLIENT_INFO_KEY: CLIENT_INFO,
}


async def _messages(response: httpx.Response) -> AsyncIterator[JSONObject]:
    """The JSON-RPC messages of a response: one JSON body, or SSE ``data`` events."""
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/json"):
        body = await response.aread()
        message = orjson.loads(body) if body else None
        if isinstance(message, dict):
            yield message
        return
    if not kind.startswith("text/event-stream"):
        return
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
            # Dispatched as soon as the data is a whole JSON message, not at the blank line that
            # ends the event: a line reader may hold that line until the server writes again.
            try:
                message = orjson.loads("\n".join(data))
            except orjson.JSONDecodeError:
                continue
            data = []
            if isinstance(message, dict):
                yield message
        elif not line:
            data = []
