"""Shared fixtures and helpers for the chat app's tests (tests/chat/).

Sections are grouped by who relies on them; add new groups below the existing ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import pytest

import framewire
from framewire.chat.app import build_app
from framewire.chat.config import ChatConfig
from framewire.chat.hub import Hub
from framewire.chat.limits import ChatLimits
from framewire.chat.presence import LocalPresence
from framewire.chat.sqlite_store import SQLiteStore
from tests.aio.fakes import ManualClock as ManualClock  # re-exported for the chat tests
from tests.chat.redis_server import RedisServer
from tests.waiting import wait_until as wait_until  # re-exported for the chat tests

if TYPE_CHECKING:
    from framewire.chat.redis_link import Keys

# =====================================================================================
# Protocol tests: an in-process chat server, clients, raw HTTP, and a `framewire chat`
# subprocess (tests/chat/test_hub.py, test_app.py, test_uploads.py, test_recovery.py, ...).
# =====================================================================================

DEFAULT_TIMEOUT = 10.0  # seconds any single wait of a protocol test may take


# ManualClock: a clock that moves only when told (clock.advance(seconds)); the hub's rate and
# typing limits read it as clock(). The same class drives the asyncio layer's timers.


@pytest.fixture
def wall_clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """A manual clock, starting now, as the wall clock (time.time()) of SQLiteStore: the
    timestamps it stores, and so its dedupe window, move only with wall_clock.advance()."""
    from framewire.chat import sqlite_store

    clock = ManualClock(start=time.time())
    monkeypatch.setattr(sqlite_store, "time", clock)  # the module reads only time.time()
    return clock


@dataclass
class ChatServer:
    """A chat server running in the test's event loop, built the way chat/run.py builds it."""

    config: ChatConfig
    hub: Hub
    port: int

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def uploads_dir(self) -> Path:
        return self.config.uploads_dir

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, username: str | None = None, since: int | None = None) -> str:
        return chat_ws_url(self.port, username, since)

    def connect(
        self, username: str | None = None, since: int | None = None, **options: Any
    ) -> framewire.connect:
        """Return framewire.connect() to /websocket as ``username`` (use with async with)."""
        return framewire.connect(self.ws_url(username, since), **options)


def chat_ws_url(port: int, username: str | None = None, since: int | None = None) -> str:
    """Return the ws:// URL of /websocket with the given query."""
    query = []
    if username is not None:
        query.append("username=" + quote(username, safe=""))
    if since is not None:
        query.append(f"since={since}")
    return f"ws://127.0.0.1:{port}/websocket" + ("?" + "&".join(query) if query else "")


@contextlib.asynccontextmanager
async def open_chat_server(
    data_dir: Path,
    *,
    allow_origins: Iterable[str] = (),
    clock: Callable[[], float] | None = None,
    serve_options: dict[str, Any] | None = None,
    **limits: Any,
) -> AsyncIterator[ChatServer]:
    """Serve the chat on 127.0.0.1, any free port, with ``limits`` replacing ChatLimits'
    defaults; mirrors run_chat() (SQLiteStore + LocalPresence + Hub + build_app + serve).
    ``serve_options`` go to framewire.serve() as well (close_timeout=1: a quicker stop)."""
    config = ChatConfig(
        host="127.0.0.1",
        port=0,
        data_dir=data_dir,
        allow_origins=tuple(allow_origins),
        limits=ChatLimits(**limits),
    )
    store = SQLiteStore(config.database_path, config.uploads_dir, config.limits)
    hub_options: dict[str, Any] = {} if clock is None else {"clock": clock}
    hub = Hub(store, LocalPresence(), config.limits, **hub_options)
    await hub.start()
    try:
        async with framewire.serve(
            build_app(hub, config),
            "127.0.0.1",
            0,
            max_message_size=config.limits.max_frame,
            compression=framewire.DeflateConfig(server_no_context_takeover=True),
            **(serve_options or {}),
        ) as server:
            yield ChatServer(config, hub, server.sockets[0].getsockname()[1])
    finally:
        await hub.close()


Scenario = Callable[[ChatServer], Awaitable[None]]


class RunChat(Protocol):
    def __call__(
        self,
        scenario: Scenario,
        *,
        timeout: float = ...,
        data_dir: Path | None = ...,
        allow_origins: Iterable[str] = ...,
        clock: Callable[[], float] | None = ...,
        serve_options: dict[str, Any] | None = ...,
        **limits: Any,
    ) -> None: ...


@pytest.fixture
def run_chat(tmp_path: Path) -> RunChat:
    """Return run(scenario, **limits): start a chat server over tmp_path/"data" in a new event
    loop, run ``await scenario(server)`` within ``timeout`` seconds, then stop the server."""

    def run(
        scenario: Scenario,
        *,
        timeout: float = 60.0,
        data_dir: Path | None = None,
        allow_origins: Iterable[str] = (),
        clock: Callable[[], float] | None = None,
        serve_options: dict[str, Any] | None = None,
        **limits: Any,
    ) -> None:
        async def main() -> None:
            async with open_chat_server(
                data_dir or tmp_path / "data",
                allow_origins=allow_origins,
                clock=clock,
                serve_options=serve_options,
                **limits,
            ) as server:
                await asyncio.wait_for(scenario(server), timeout)

        asyncio.run(main())

    return run


# ---- WebSocket clients ----------------------------------------------------------------


async def recv_json(ws: Any, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Return the next message of ``ws`` as a JSON object."""
    raw = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(raw, str), f"expected a text message, got {raw!r:.100}"
    message = json.loads(raw)
    assert isinstance(message, dict), message
    return message


async def recv_kind(
    ws: Any, kind: str | Iterable[str], timeout: float = DEFAULT_TIMEOUT
) -> dict[str, Any]:
    """Return the next message whose messageType is ``kind`` (or one of them), skipping
    presence and typing notices; any other unexpected message fails the test."""
    kinds = {kind} if isinstance(kind, str) else set(kind)
    async with asyncio.timeout(timeout):
        while True:
            message = await recv_json(ws, timeout)
            if message["messageType"] in kinds:
                return message
            assert message["messageType"] in ("presence", "typing"), message


async def send_json(ws: Any, obj: Any) -> None:
    await ws.send(json.dumps(obj))


async def send_chat(ws: Any, text: str, client_id: str | None = None) -> None:
    request: dict[str, Any] = {"messageType": "chatMessage", "message": text}
    if client_id is not None:
        request["clientId"] = client_id
    await send_json(ws, request)


async def chat_and_wait(ws: Any, text: str, client_id: str | None = None) -> dict[str, Any]:
    """Send a chatMessage and return the broadcast copy the sender gets back."""
    await send_chat(ws, text, client_id)
    return await recv_kind(ws, "chatMessage")


async def recv_presence(ws: Any, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    return list((await recv_kind(ws, "presence", timeout))["users"])


async def wait_for_presence(ws: Any, users: list[str], timeout: float = DEFAULT_TIMEOUT) -> None:
    """Read presence notices until one lists exactly ``users`` (chat messages fail the test)."""
    async with asyncio.timeout(timeout):
        while await recv_presence(ws, timeout) != users:
            pass


# ---- raw HTTP -------------------------------------------------------------------------


@dataclass
class HTTPReply:
    status: int
    headers: dict[str, str]  # lower-case names; repeated names joined with ", "
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _parse_reply(raw: bytes, head_request: bool = False) -> HTTPReply:
    head, separator, body = raw.partition(b"\r\n\r\n")
    assert separator, f"no complete response head in {raw[:200]!r}"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "content-length" in headers and not head_request:
        length = int(headers["content-length"])
        assert len(body) >= length, f"body cut short: {len(body)} of {length} bytes"
        body = body[:length]
    return HTTPReply(int(status_line.split()[1]), headers, body)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[:size]
        data = data[size + 2 :]


def request_bytes(
    method: str,
    target: str,
    port: int,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | None = None,
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body is not None and not any(name.lower() == "content-length" for name, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def http_request(
    port: int,
    method: str,
    target: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> HTTPReply:
    """Send one request with Connection: close over a fresh socket; return the response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_bytes(method, target, port, headers, body))
        raw = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    return _parse_reply(raw, head_request=method == "HEAD")


async def get_json(port: int, target: str) -> Any:
    reply = await http_request(port, "GET", target)
    assert reply.status == 200, (reply.status, reply.body)
    assert reply.headers["content-type"].startswith("application/json")
    return reply.json()


async def full_history(port: int) -> list[dict[str, Any]]:
    """Return every stored message, paging /chat-history?after= by 1000."""
    messages: list[dict[str, Any]] = []
    while True:
        after = messages[-1]["seq"] if messages else 0
        page = await get_json(port, f"/chat-history?after={after}&limit=1000")
        if not page:
            return messages
        messages += page


BOUNDARY = "----framewireChatTestBoundary7MA4YWxkTrZu0gW"
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


@dataclass(frozen=True)
class FilePart:
    name: str
    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


def multipart(parts: Iterable[tuple[str, str] | FilePart]) -> bytes:
    """Return a multipart/form-data body (boundary BOUNDARY): (name, value) pairs are text
    fields, FileParts are files; in the order given."""
    out = bytearray()
    for item in parts:
        out += f"--{BOUNDARY}\r\n".encode()
        if isinstance(item, FilePart):
            out += (
                f'Content-Disposition: form-data; name="{item.name}"; '
                f'filename="{item.filename}"\r\nContent-Type: {item.content_type}\r\n\r\n'
            ).encode()
            out += item.data
        else:
            name, value = item
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            out += value.encode("utf-8")
        out += b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


async def post_upload(port: int, body: bytes) -> HTTPReply:
    return await http_request(
        port, "POST", "/upload", headers=[("Content-Type", MULTIPART_TYPE)], body=body
    )


def upload_dir_entries(uploads_dir: Path) -> list[str]:
    """Names in the uploads directory, the health probe's .health file left out."""
    if not uploads_dir.is_dir():
        return []
    return sorted(name for name in os.listdir(uploads_dir) if name != ".health")


# ---- `framewire chat` as a subprocess -----------------------------------------------------

_SERVING = re.compile(r"framewire chat serving http://127\.0\.0\.1:(\d+)/")


@dataclass
class ChatProcess:
    """A `python -m framewire chat` subprocess that this test started."""

    process: subprocess.Popen[str]
    port: int
    data_dir: Path
    log_path: Path
    first_line: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def proc_status(self) -> dict[str, int]:
        """VmRSS, VmHWM ... of the process in bytes, from /proc/PID/status."""
        values: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                values[name] = int(value.split()[0]) * 1024
        return values


def start_chat_process(
    data_dir: Path | None,
    *args: str,
    log_path: Path,
    cwd: Path | None = None,
    timeout: float = 30.0,
) -> ChatProcess:
    """Start `python -m framewire chat --port 0 [--data-dir DATA] ARGS` (its stderr to
    ``log_path``) and wait for its URL line. Without ``data_dir`` the default applies."""
    command = [sys.executable, "-m", "framewire", "chat", "--host", "127.0.0.1", "--port", "0"]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    log = open(log_path, "a")  # noqa: SIM115 - the child keeps writing to it
    try:
        process = subprocess.Popen(
            [*command, *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        log.close()
    assert process.stdout is not None
    line = ""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if selector.select(timeout):
            line = process.stdout.readline()
    match = _SERVING.search(line)
    if match is None:
        stop_chat_process_by_pid(process)
        raise AssertionError(
            f"framewire chat did not start: {line!r}\n{log_path.read_text(errors='replace')}"
        )
    used_dir = data_dir if data_dir is not None else (cwd or Path.cwd()) / "framewire-data"
    return ChatProcess(process, int(match.group(1)), used_dir, log_path, line)


def stop_chat_process_by_pid(process: subprocess.Popen[str]) -> None:
    """Stop a process this test started, by its PID: SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


class StartChatProcess(Protocol):
    def __call__(self, *args: str, data_dir: Path | None = ...) -> ChatProcess: ...


@pytest.fixture
def chat_process(tmp_path: Path) -> Iterator[StartChatProcess]:
    """Return start(*args, data_dir=...): run `framewire chat` over tmp_path/"data" (or
    ``data_dir``); every process started is stopped, by its PID, at the end of the test."""
    started: list[ChatProcess] = []

    def start(*args: str, data_dir: Path | None = None) -> ChatProcess:
        log_path = tmp_path / f"chat-{len(started)}.log"
        chat = start_chat_process(data_dir or tmp_path / "data", *args, log_path=log_path)
        started.append(chat)
        return chat

    yield start
    for chat in started:
        stop_chat_process_by_pid(chat.process)


# =====================================================================================
# Redis tests: one real redis-server per test module, and a fresh room's keys per test
# (tests/chat/test_redis*.py, test_store_contract.py, test_workers.py).
# =====================================================================================


@pytest.fixture(scope="module")
def redis_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server per test module, stopped at its end."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(redis_server_process: RedisServer) -> RedisServer:
    """The module's redis-server, running: started again if a test before killed it and
    failed before restarting it, so that one failure does not fail the tests after it."""
    redis_server_process.start()
    return redis_server_process


@pytest.fixture
def keys() -> Keys:
    from framewire.chat.redis_link import Keys  # imports redis-py: only the Redis tests need it

    return Keys(prefix=f"test:{uuid.uuid4().hex}:")
