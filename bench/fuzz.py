"""`python -m bench.fuzz`: 100,000 hostile requests over real sockets, both protocol eras.

The requests come from the strategies of tests/fuzz (hypothesis, seeded): any method, header set
and body (bytes, broken JSON, batches, deep nesting, near-valid messages with one field changed),
and near-valid messages whose headers agree with the body but for one edit, in the 2026-07-28
era and on a live 2025-era session. Each answer is counted by status and era and checked: a
documented status, no 5xx, no traceback on the wire, a JSON-RPC body (or SSE events holding
them). ``/health`` must answer 200 every 1,000 requests and at the end; every line the server
logged must be one JSON object of the expected shape. Exit status 0 only if all of that holds.
"""

from __future__ import annotations

import argparse
import json
import socket
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from tests.fuzz.strategies import (
    DOCUMENTED_STATUSES,
    VALID_SESSION,
    bodies,
    check_jsonrpc,
    header_edits,
    header_sets,
    headers_for,
    messages,
)

from bench.reliability import check_log, descriptors, healthy, reliability_server, write_report
from bench.servers import HOST, rss_kib

__all__ = ["main"]

HEALTH_EVERY = 1000
BATCH = 5000
TIMEOUT = 10.0
_TRACEBACK = (b"Traceback (most recent call last)", b'File "/')
_CLOSED = 0  # the connection closed without an answer (the server refused the bytes outright)

Request = tuple[str, str, dict[str, str | None], bytes]  # era, method, headers, body

_any_request = st.tuples(
    st.just("any"), st.sampled_from(["POST"] * 6 + ["GET", "DELETE", "PUT"]), header_sets, bodies
)


def _near_valid(message: Any, era: str, edits: list[tuple[str, str | None]], ascii_only: bool) -> Request:
    headers = headers_for(message, era)
    headers.update(edits)
    return era, "POST", headers, json.dumps(message, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


requests = st.one_of(
    _any_request,
    st.builds(
        _near_valid, messages, st.sampled_from(["modern", "modern", "legacy"]), header_edits, st.booleans()
    ),
)


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Client:
    """HTTP/1.1 over one blocking socket, kept alive while the framing is sure to stay in step."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._sock: socket.socket | None = None
        self._file: Any = None

    def close(self) -> None:
        if self._sock is not None:
            self._file.close()
            self._sock.close()
        self._sock = self._file = None

    def send(self, method: str, headers: list[tuple[bytes, bytes]], body: bytes, keep: bool) -> Answer:
        """One request; ``keep`` False closes the connection after (headers that break framing)."""
        head = [f"{method} /mcp HTTP/1.1".encode()]
        head += [name + b": " + value for name, value in headers]
        head.append(b"content-length: %d" % len(body))
        data = b"\r\n".join(head) + b"\r\n\r\n" + body
        reused = self._sock is not None
        answer = self._exchange(method, data)
        if answer.status == _CLOSED and reused:  # the server closed the idle connection meanwhile
            answer = self._exchange(method, data)
        if not keep or answer.status == _CLOSED or answer.headers.get("connection") == "close":
            self.close()
        return answer

    def _exchange(self, method: str, data: bytes) -> Answer:
        if self._sock is None:
            self._sock = socket.create_connection((HOST, self.port), timeout=TIMEOUT)
            self._file = self._sock.makefile("rb")
        try:
            self._sock.sendall(data)
            return self._read(method)
        except (OSError, ValueError):
            self.close()
            return Answer(_CLOSED)

    def _read(self, method: str) -> Answer:
        status_line = self._file.readline()
        if not status_line:
            return Answer(_CLOSED)
        answer = Answer(int(status_line.split(b" ", 2)[1]))
        while (line := self._file.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            answer.headers[name.strip().lower()] = value.strip()
        if method == "GET" and answer.headers.get("content-type", "").startswith("text/event-stream"):
            self.close()  # a GET stream stays open by design: its head is the answer
        elif answer.headers.get("transfer-encoding", "").lower() == "chunked":
            answer.body = self._chunked()
        elif "content-length" in answer.headers:
            answer.body = self._file.read(int(answer.headers["content-length"]))
        else:
            answer.body = self._file.read()
            self.close()
        return answer

    def _chunked(self) -> bytes:
        chunks = []
        while size := int(self._file.readline().split(b";")[0], 16):
            chunks.append(self._file.read(size))
            self._file.readline()
        while self._file.readline() not in (b"\r\n", b""):
            pass
        return b"".join(chunks)


@dataclass
class Tally:
    statuses: dict[str, Counter[int]] = field(
        default_factory=lambda: {"modern": Counter(), "legacy": Counter()}
    )
    failures: Counter[str] = field(default_factory=Counter)
    first_failures: list[str] = field(default_factory=list)
    health_checks: int = 0
    health_failures: int = 0

    def fail(self, kind: str, detail: str) -> None:
        self.failures[kind] += 1
        if len(self.first_failures) < 20:
            self.first_failures.append(f"{kind}: {detail[:300]}")

    @property
    def total(self) -> int:
        return sum(sum(counts.values()) for counts in self.statuses.values())


def check_answer(answer: Answer, method: str, tally: Tally) -> None:
    if answer.status == _CLOSED:
        return  # counted as status 0: refusing unparseable bytes by closing is allowed
    if answer.status >= 500:
        tally.fail("5xx", f"{answer.status} {answer.body[:200]!r}")
    elif answer.status not in DOCUMENTED_STATUSES:
        tally.fail("undocumented status", f"{answer.status} {answer.body[:200]!r}")
    if any(marker in answer.body for marker in _TRACEBACK):
        tally.fail("traceback on the wire", repr(answer.body[:300]))
    content_type = answer.headers.get("content-type", "")
    try:
        if content_type == "application/json" and answer.body:
            check_jsonrpc(orjson.loads(answer.body))
        elif content_type.startswith("text/event-stream"):
            for block in answer.body.decode().split("\n\n"):
                data = [line[6:] for line in block.split("\n") if line.startswith("data: ")]
                if data and data[0]:
                    check_jsonrpc(orjson.loads(data[0]))
    except (AssertionError, ValueError) as exc:
        tally.fail("malformed body", f"{method} {answer.status}: {exc} {answer.body[:200]!r}")


class Session:
    """The live 2025-era session near-valid legacy requests run in (re-opened once deleted)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.id: str | None = None

    def get(self) -> str:
        if self.id is None:
            init = {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "bench-fuzz", "version": "0"},
                },
            }
            headers = [
                (b"host", b"127.0.0.1"),
                (b"accept", b"application/json, text/event-stream"),
                (b"content-type", b"application/json"),
            ]
            answer = self.client.send("POST", headers, orjson.dumps(init), keep=False)
            if answer.status != 200 or "mcp-session-id" not in answer.headers:
                raise RuntimeError(f"cannot open a session: {answer.status} {answer.body[:200]!r}")
            self.id = answer.headers["mcp-session-id"]
        return self.id


def _wire(headers: dict[str, str | None], session: Session) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Header bytes as sent (non-latin-1 text as UTF-8, as clients send it), and whether the
    connection can be kept: a value with CR, LF or NUL ends the framing's certainty."""
    wire = []
    keep = True
    for name, value in headers.items():
        if value is None or name == "content-length":  # framing is the client's, not the fuzz's
            continue
        raw = (session.get() if value == VALID_SESSION else value).encode("utf-8", "surrogatepass")
        keep = keep and not any(c in raw for c in b"\r\n\x00")
        wire.append((name.encode(), raw))
    return wire, keep


def run(total: int, seed_value: int, port: int, pid: int) -> tuple[Tally, dict[str, Any]]:
    client, probe = Client(port), Client(port)
    session = Session(probe)
    tally = Tally()
    memory = {"rss_kib_start": rss_kib(pid), "fds_start": descriptors(pid)}

    def one(request: Request) -> None:
        try:
            exchange(request)
        except Exception as exc:  # a failure of the driver is a failed run, never a silent one
            tally.fail("driver", f"{type(exc).__name__}: {exc}")

    def exchange(request: Request) -> None:
        label, method, headers, body = request
        era = "legacy" if label == "legacy" or headers.get("mcp-session-id") else "modern"
        wire, keep = _wire(dict(headers), session)
        answer = client.send(method, wire, body, keep)
        tally.statuses[era][answer.status] += 1
        check_answer(answer, method, tally)
        if method == "DELETE" and answer.status == 200 and headers.get("mcp-session-id") == VALID_SESSION:
            session.id = None
        if tally.total % HEALTH_EVERY == 0:
            tally.health_checks += 1
            if not healthy(port):
                tally.fail("health", f"/health not 200 after {tally.total} requests")
                tally.health_failures += 1

    # In batches, each from its own seed: hypothesis remembers every example of one run, so a
    # single run of 100,000 would grow this process by a gigabyte.
    for batch, start in enumerate(range(0, total, BATCH)):

        @settings(
            max_examples=min(BATCH, total - start),
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(seed_value + batch)
        @given(requests)
        def drive(request: Request) -> None:
            one(request)

        drive()
    client.close()
    probe.close()
    memory |= {"rss_kib_end": rss_kib(pid), "fds_end": descriptors(pid)}
    return tally, memory


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="fuzzed requests (default 100000)")
    parser.add_argument("--seed", type=int, default=20260728, help="hypothesis seed (reproducible runs)")
    parser.add_argument("--cpu", type=int, default=0, help="CPU the server is pinned to")
    parser.add_argument("--results", type=Path, help="folder for the JSON report (default bench/results)")
    opts = parser.parse_args(argv)
    started = time.monotonic()
    # Session caps out of reach: every initialize comes from one address, and the run measures how
    # hostile requests are answered, not how many sessions one caller may hold.
    env = {
        "MCPSERVE_MAX_BODY_BYTES": "4096",
        "MCPSERVE_SESSION_IDLE_TIMEOUT": "60",
        "MCPSERVE_MAX_SESSIONS": "1000000",
        "MCPSERVE_MAX_SESSIONS_PER_PRINCIPAL": "1000000",
    }
    with reliability_server("fuzz", env, opts.cpu) as server:
        tally, memory = run(opts.requests, opts.seed, server.port, server.process.pid)
        tally.health_checks += 1
        if not healthy(server.port):
            tally.fail("health", "/health not 200 at the end")
            tally.health_failures += 1
        alive = server.alive()
        server.stop()
        log = check_log(server.log_path)
    if not alive:
        tally.fail("server", "the server process died during the run")
    if not log.ok:
        tally.fail("log shape", log.first_bad or "no log lines")
    report = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "requests": tally.total,
        "seed": opts.seed,
        "seconds": round(time.monotonic() - started, 1),
        "statuses": {era: dict(sorted(counts.items())) for era, counts in tally.statuses.items()},
        "failures": dict(tally.failures),
        "first_failures": tally.first_failures,
        "health": {"checks": tally.health_checks, "failures": tally.health_failures},
        "server": memory,
        "log": {
            "lines": log.lines,
            "bad_lines": log.bad_lines,
            "request_lines": log.request_lines,
            "errors_logged": log.errors_logged,
            "other_events": log.events,
        },
    }
    path = write_report("fuzz", report, opts.results)
    print(json.dumps(report, indent=2, sort_keys=True))
    verdict = "PASS" if not tally.failures and tally.total >= opts.requests else "FAIL"
    print(f"bench.fuzz: {verdict}: {tally.total} requests, {sum(tally.failures.values())} failures ({path})")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
