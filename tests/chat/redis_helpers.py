"""Helpers shared by the Redis tests (tests/chat/test_redis*.py, test_workers.py): a bounded
asyncio.run, a TcpProxy in front of the test's redis-server, ``python -m framewire chat --redis``
processes, and a chat client that behaves like the page.

The redis_server and keys fixtures are in tests/chat/conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import framewire
from tests.chat.redis_server import RedisServer, TcpProxy
from tests.waiting import run_within

# Bounds that only catch a hang: the documented times (2 s to fail a send, 5 s liveness) are
# far below them, and a loaded 2-core machine must not fail the test on a slow turn.
NO_HANG = 10.0


def run(main: Callable[[], Awaitable[None]], timeout: float = 40) -> None:
    run_within(main, timeout)


@contextlib.asynccontextmanager
async def proxy_to(server: RedisServer) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(server.port)
    await proxy.start()
    try:
        yield proxy
    finally:
        proxy.thaw()
        await proxy.stop()


class ChatProcess:
    """``python -m framewire chat --redis URL`` on a free port, stopped by its PID."""

    def __init__(self, data_dir: Path, redis_url: str, *extra: str) -> None:
        self.log_path = data_dir / f"chat-{uuid.uuid4().hex[:8]}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "framewire", "chat", "--host", "127.0.0.1", "--port", "0",
             "--data-dir", str(data_dir), "--redis", redis_url, *extra],
            stdout=subprocess.PIPE,
            stderr=self.log_path.open("wb"),
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.port = 0
        self.output = b""

    def wait_serving(self, count: int = 1, timeout: float = 20) -> int:
        """Wait until ``count`` processes printed their URL (workers print one each)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        pattern = rb"serving http://127\.0\.0\.1:(\d+)/"
        while len(re.findall(pattern, self.output)) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0 and self.process.poll() is None, self.log()
            ready, _, _ = select.select([self.process.stdout], [], [], remaining)
            if ready:
                self.output += os.read(self.process.stdout.fileno(), 4096)
        self.port = int(re.findall(pattern, self.output)[0])
        return self.port

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.alive():
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()


class Peer:
    """A chat client that behaves like the page: resends unacknowledged messages (same
    clientId) after an error or a reconnect, and resumes with ``since=``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seqs: list[int] = []  # every chatMessage received, in order, acks excluded
        self.doubles: list[int] = []  # a seq received twice that was not an acknowledgement
        self.unacked: dict[str, str] = {}  # clientId -> text
        self.acked: set[str] = set()
        self.errored: set[str] = set()  # clientIds answered not_delivered at least once
        self.retry: set[str] = set()  # clientIds to send again (not_delivered, rate_limited)
        self.users: list[str] = []
        self.ws: Any = None
        self.port = 0
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    @property
    def last_seq(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    async def connect(self, port: int, since: int | None = None) -> None:
        query = f"?username={self.name}" + ("" if since is None else f"&since={since}")
        self.ws = await framewire.connect(f"ws://127.0.0.1:{port}/websocket{query}")
        self.port = port
        self.closed.clear()
        self._reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                self._on(json.loads(raw))
        except framewire.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    def _on(self, message: dict[str, Any]) -> None:
        kind = message.get("messageType")
        if kind == "chatMessage":
            client_id = message.get("clientId")
            mine = message.get("username") == self.name and client_id is not None
            if mine:
                self.unacked.pop(client_id, None)
                self.acked.add(client_id)
            if message["seq"] > self.last_seq:
                self.seqs.append(message["seq"])
            elif not mine:
                self.doubles.append(message["seq"])
        elif kind == "presence":
            self.users = message["users"]
        elif kind == "error" and message.get("code") == "not_delivered":
            client_id = message.get("clientId")
            self.errored.add(client_id)
            self.retry.add(client_id)
        elif kind == "error" and message.get("code") == "rate_limited":
            self.retry.add(message.get("clientId"))

    async def send(self, text: str, client_id: str | None = None) -> str:
        client_id = client_id or f"{self.name}-{uuid.uuid4().hex[:8]}"
        self.unacked[client_id] = text
        with contextlib.suppress(framewire.ConnectionClosed):
            await self.ws.send(
                json.dumps({"messageType": "chatMessage", "message": text, "clientId": client_id})
            )
        return client_id

    async def resend_unacked(self) -> None:
        for client_id, text in list(self.unacked.items()):
            await self.send(text, client_id)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader


async def connect_all(peers: list[Peer], ports: list[int]) -> None:
    await asyncio.gather(*(peer.connect(ports[n % len(ports)]) for n, peer in enumerate(peers)))
