"""A private redis-server for the Redis-backed mcpserve: its memory is ours alone to measure.

Started on a free loopback port, pinned to one CPU, no persistence; stopped by its PID.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import redis

from bench.servers import HOST, free_port

__all__ = ["BenchRedis", "start_redis"]


@dataclass
class BenchRedis:
    port: int
    process: subprocess.Popen[bytes]
    folder: tempfile.TemporaryDirectory[str]

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port)

    def used_memory(self) -> int:
        """Bytes Redis has allocated for data (``INFO memory`` ``used_memory``)."""
        with self.client() as client:
            info: dict[str, Any] = client.info("memory")
        return int(info["used_memory"])

    def session_key_bytes(self, prefix: str) -> dict[str, float]:
        """``MEMORY USAGE`` of one session's keys (its hash and, if any, its events) and of the
        shared index per session, for sessions under ``prefix``."""
        with self.client() as client:
            sample = next(client.scan_iter(match=f"{prefix}{{*}}:s", count=1000), None)
            if sample is None:
                return {}
            found = {"session_hash": float(client.memory_usage(sample, samples=0) or 0)}
            events = sample[:-1] + b"e"
            found["session_events"] = float(client.memory_usage(events, samples=0) or 0)
            index = f"{prefix}{{index}}:all"
            entries = client.zcard(index)
            if entries:
                found["index_per_session"] = float(client.memory_usage(index, samples=0) or 0) / entries
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.folder.cleanup()


def start_redis(cpu: int) -> BenchRedis:
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server not found (apt-get install -y redis-server)")
    port = free_port()
    folder = tempfile.TemporaryDirectory(prefix="bench-redis-")
    process = subprocess.Popen(
        [
            "taskset",
            "-c",
            str(cpu),
            "redis-server",
            "--port",
            str(port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            folder.name,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = BenchRedis(port, process, folder)
    deadline = time.monotonic() + 10
    while True:
        try:
            with server.client() as client:
                client.ping()
            return server
        except redis.exceptions.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"redis-server did not start on port {port}") from None
            time.sleep(0.05)
