"""Clients that vanish mid-handshake, mid-frame or mid-upload leave nothing behind.

Each test runs a server in this process and takes a snapshot of what a connection can hold on
to: open file descriptors, asyncio tasks, files in the upload directory, and the server's sets
of WebSocket and HTTP connections. Then many clients disconnect at a bad moment, half of them
with a FIN (close) and half with a RST (SO_LINGER 0), and every count must come back to the
snapshot within CLEANUP_TIMEOUT. The server's own timers (header, body, close, ping) are set far
beyond that, so only noticing the disconnect can clean up in time.

A client vanishes only once the server has what it sent (its bookkeeping, its handler's byte
count or the upload's temporary file says so): a RST that overtakes the data would test less.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import framewire
from framewire.chat.app import build_app
from framewire.chat.config import ChatConfig
from framewire.chat.hub import Hub
from framewire.chat.presence import LocalPresence
from framewire.chat.sqlite_store import SQLiteStore
from framewire.http import App, HTTPLimits, Request, Response, json_response, save_uploads
from tests.chat.conftest import (
    MULTIPART_TYPE,
    FilePart,
    multipart,
    post_upload,
    upload_dir_entries,
)
from tests.conformance.rawclient import client_frame
from tests.waiting import run_within, wait_until

TEST_TIMEOUT = 60.0  # seconds for one whole test
CLEANUP_TIMEOUT = 10.0  # seconds for the server to let go of everything the clients held
SYNC_TIMEOUT = 10.0  # seconds for the server to receive what the clients sent
FAR = 600.0  # seconds: every server timer, so that none of them does the cleanup
LIMITS = HTTPLimits(
    header_timeout=FAR,
    body_timeout=FAR,
    keepalive_timeout=FAR,
    linger_timeout=FAR,
    max_body_size=64 << 20,
)
SERVE_OPTIONS: dict[str, Any] = {
    "http_limits": LIMITS,
    "ping_interval": None,
    "open_timeout": FAR,
    "close_timeout": FAR,
}
BATCH = 20  # clients connected at once
HOW = ("fin", "rst")
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE_HEAD = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
).encode()
GET_HEAD = b"GET /hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\nX-Long: " + (
    b"y" * 300 + b"\r\n\r\n"
)
CLOSING_GET_HEAD = GET_HEAD.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
BOUNDARY = "vanishingBoundary"
UPLOAD_BODY = (
    (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    + os.urandom(1 << 20)
    + f"\r\n--{BOUNDARY}--\r\n".encode()
)


# ------------------------------------------------------------------------------ counting


@dataclass(frozen=True)
class Snapshot:
    """What the process holds that a vanished client could leak."""

    fds: int
    tasks: int
    upload_files: tuple[str, ...]
    websockets: int
    http_connections: int


def take_snapshot(server: framewire.Server, upload_dir: Path | None = None) -> Snapshot:
    """Count what the process holds now (no garbage collection: a connection's descriptor
    must be closed when the connection is lost, not when a cycle is collected)."""
    return Snapshot(
        fds=len(os.listdir("/proc/self/fd")),
        tasks=len(asyncio.all_tasks()),
        upload_files=tuple(upload_dir_entries(upload_dir)) if upload_dir is not None else (),
        websockets=len(server.connections),
        # The connections still at the HTTP stage: the server closes these at shutdown.
        http_connections=len(server._http_protocols),
    )


async def assert_back_to(
    baseline: Snapshot, server: framewire.Server, upload_dir: Path | None = None
) -> None:
    """Wait until a snapshot equals ``baseline``; fail showing both after CLEANUP_TIMEOUT."""
    latest = take_snapshot(server, upload_dir)

    def released() -> bool:
        nonlocal latest
        latest = take_snapshot(server, upload_dir)
        return latest == baseline

    try:
        await wait_until(released, CLEANUP_TIMEOUT)
    except AssertionError:
        raise AssertionError(f"leaked: before {baseline}, after {latest}") from None


def run(main: Callable[[], Awaitable[None]]) -> None:
    run_within(main, TEST_TIMEOUT)


def port_of(server: framewire.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


# ------------------------------------------------------------------------------ raw clients


async def raw_connect(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return sock


async def send(sock: socket.socket, data: bytes) -> None:
    await asyncio.get_running_loop().sock_sendall(sock, data)


async def read_head(sock: socket.socket) -> bytes:
    """Read a response head (the server sends nothing after it until asked)."""
    loop = asyncio.get_running_loop()
    data = b""
    async with asyncio.timeout(SYNC_TIMEOUT):
        while b"\r\n\r\n" not in data:
            chunk = await loop.sock_recv(sock, 4096)
            assert chunk, f"connection closed after {data!r}"
            data += chunk
    return data


def vanish(sock: socket.socket, how: str) -> None:
    """Disconnect without a word: a FIN (close), or a RST (close with SO_LINGER 0)."""
    if how == "rst":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def websocket_client(port: int, path: str = "/ws") -> socket.socket:
    sock = await raw_connect(port)
    await send(sock, UPGRADE_HEAD.replace(b"/ws", path.encode(), 1))
    head = await read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


# ------------------------------------------------------------------------------ servers


def received_counter() -> tuple[dict[int, int], Callable[[Any], Awaitable[None]]]:
    """Return {client port: message bytes received} and a handler that keeps it up to date
    piece by piece, so a test sees when half a message has arrived."""
    received: dict[int, int] = {}

    async def handler(ws: Any) -> None:
        port = ws.remote_address[1]
        received[port] = 0
        while True:
            async for piece in ws.recv_stream():
                received[port] += len(piece)

    return received, handler


def upload_app(upload_dir: Path) -> App:
    """An App with POST /upload streaming to ``upload_dir``, GET /hello, and a WebSocket."""
    app = App()
    _, handler = received_counter()

    @app.post("/upload", max_body_size=64 << 20)
    async def upload(request: Request) -> Response:
        result = await save_uploads(request, upload_dir, limits=LIMITS)
        return json_response({"files": [saved.stored_name for saved in result.files]}, 201)

    @app.get("/hello")
    async def hello(request: Request) -> Response:
        return json_response({"hello": "world"})

    app.websocket("/ws")(handler)
    return app


@contextlib.asynccontextmanager
async def serving(handler: Any) -> AsyncIterator[framewire.Server]:
    async with framewire.serve(handler, "127.0.0.1", 0, **SERVE_OPTIONS) as server:
        yield server


async def full_exchange(port: int, request: bytes) -> bytes:
    """Send a whole request with Connection: close and return the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        async with asyncio.timeout(SYNC_TIMEOUT):
            return await reader.read(-1)
    finally:
        writer.close()
        await writer.wait_closed()


def upload_request(body: bytes, content_length: int | None = None) -> bytes:
    length = len(body) if content_length is None else content_length
    return (
        f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode() + body


async def warm_up(server: framewire.Server, *, websocket: bool = True) -> None:
    """One whole HTTP exchange and WebSocket connection, so that what the first connection
    makes once (timers, buffers, the deflate compressor, the Poller) is in the snapshot; then
    collect garbage, which may hold descriptors of earlier tests' event loops (the Poller's
    epoll descriptor lives until its loop is collected)."""
    port = port_of(server)
    answer = await full_exchange(port, CLOSING_GET_HEAD)
    assert answer.startswith(b"HTTP/1.1 "), answer
    if websocket:
        async with framewire.connect(f"ws://127.0.0.1:{port}/ws") as ws:
            # A few reads: the loop's one Poller (aio/ws/socket_poller.py) is made at a later read.
            for _ in range(3):
                await ws.send(b"warm")
                await ws.ping()
    await settle(server)


async def settle(server: framewire.Server) -> None:
    """Wait until the server holds no connection, then collect garbage."""
    await wait_until(
        lambda: not server.connections and not server._http_protocols,
        SYNC_TIMEOUT,
        "the server holds no connection",
    )
    gc.collect()


# ------------------------------------------------------------------------------ mid-handshake


def half_heads(count: int) -> list[bytes]:
    """``count`` request heads cut at varied places: in the request line, in a field name, in
    a value, and just before the final CRLF; upgrade requests and plain GETs in turn."""
    heads = []
    for index in range(count):
        head = UPGRADE_HEAD if index % 2 == 0 else GET_HEAD
        cut = 1 + (index * 37) % (len(head) - 3)
        heads.append(head[: len(head) - 2] if index % 10 == 9 else head[:cut])
    return heads


def parsers_started(server: framewire.Server) -> int:
    # A connection's parser is made when its first bytes are read (aio/http1/protocol.py).
    return sum(protocol._request_parser is not None for protocol in server._http_protocols)


@pytest.mark.parametrize("kind", ["plain", "app"])
def test_clients_vanishing_mid_handshake_leave_nothing_behind(kind: str, tmp_path: Path) -> None:
    """120 clients per server send part of a request head (upgrade or GET), then vanish."""
    clients = 120

    async def main() -> None:
        handler = upload_app(tmp_path) if kind == "app" else received_counter()[1]
        async with serving(handler) as server:
            await warm_up(server, websocket=True)
            baseline = take_snapshot(server)
            port = port_of(server)
            heads = half_heads(clients)
            for start in range(0, clients, BATCH):
                socks = [await raw_connect(port) for _ in range(BATCH)]
                for sock, head in zip(socks, heads[start : start + BATCH], strict=True):
                    await send(sock, head)
                await wait_until(
                    lambda: parsers_started(server) == BATCH,
                    SYNC_TIMEOUT,
                    "the server has read every half head",
                )
                for index, sock in enumerate(socks):
                    vanish(sock, HOW[index % 2])
                await assert_back_to(baseline, server)
            # The server still serves: nothing is wedged.
            answer = await full_exchange(port, CLOSING_GET_HEAD)
            assert answer.startswith(b"HTTP/1.1 "), answer

    run(main)


# ------------------------------------------------------------------------------ mid-frame


LARGE_MESSAGE = os.urandom(600 << 10)  # under the default max_message_size of 1 MiB


def half_frame_headers() -> list[bytes]:
    """Frame headers cut short: in the 16-bit length, in the 64-bit length, in the mask key."""
    medium = client_frame(0x2, b"m" * 300)  # 2 + 2 + 4 bytes of header
    large_header = struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 17) + b"mask"
    return [medium[:3], large_header[:6], medium[:6], large_header[:12], b"\x82"]


def test_clients_vanishing_mid_frame_leave_nothing_behind() -> None:
    """200 WebSocket clients vanish in the middle of a frame: 100 inside a frame header, 100
    halfway through the payload of a 600 KiB message."""
    clients = 200
    headers = half_frame_headers()
    large = client_frame(0x2, LARGE_MESSAGE)
    half_large = large[: len(large) - len(LARGE_MESSAGE) // 2]
    half_payload_size = len(LARGE_MESSAGE) - len(LARGE_MESSAGE) // 2

    async def main() -> None:
        received, handler = received_counter()
        async with serving(handler) as server:
            await warm_up(server, websocket=True)
            received.clear()
            baseline = take_snapshot(server)
            port = port_of(server)
            for start in range(0, clients, BATCH):
                in_payload = (start // BATCH) % 2 == 1
                socks = [await websocket_client(port) for _ in range(BATCH)]
                ports = [sock.getsockname()[1] for sock in socks]
                await wait_until(
                    lambda: len(server.connections) == BATCH, SYNC_TIMEOUT, "every client is open"
                )
                for index, sock in enumerate(socks):
                    if in_payload:
                        await send(sock, half_large)
                    else:
                        # A whole message first: the handler is then surely reading.
                        await send(sock, client_frame(0x2, b"x") + headers[index % len(headers)])
                expected = half_payload_size if in_payload else 1
                await wait_until(
                    lambda: all(received.get(p) == expected for p in ports),  # noqa: B023
                    SYNC_TIMEOUT,
                    f"the server has received {expected} bytes from every client",
                )
                for index, sock in enumerate(socks):
                    vanish(sock, HOW[index % 2])
                await assert_back_to(baseline, server)

    run(main)


# ------------------------------------------------------------------------------ mid-upload


def temporary_files(directory: Path) -> list[str]:
    return [name for name in upload_dir_entries(directory) if name.startswith(".upload-")]


def test_clients_vanishing_mid_upload_to_an_app_leave_no_file_behind(tmp_path: Path) -> None:
    """120 multipart uploads of 1 MiB to an App route that streams to disk are cut halfway."""
    clients = 120
    upload_dir = tmp_path / "uploads"
    half = upload_request(UPLOAD_BODY[: len(UPLOAD_BODY) // 2], content_length=len(UPLOAD_BODY))

    async def main() -> None:
        async with serving(upload_app(upload_dir)) as server:
            await warm_up(server, websocket=False)
            port = port_of(server)
            answer = await full_exchange(port, upload_request(UPLOAD_BODY))
            assert answer.startswith(b"HTTP/1.1 201 "), answer[:200]
            await settle(server)
            baseline = take_snapshot(server, upload_dir)
            assert len(baseline.upload_files) == 1  # the whole upload is stored
            await cut_uploads(server, half, clients, baseline, upload_dir)

    run(main)


async def cut_uploads(
    server: framewire.Server, half: bytes, clients: int, baseline: Snapshot, upload_dir: Path
) -> None:
    """Send ``half`` of an upload from ``clients`` clients, BATCH at a time; once each batch is
    writing its temporary files, they vanish, and everything must come back to ``baseline``."""
    port = port_of(server)
    for _ in range(0, clients, BATCH):
        socks = [await raw_connect(port) for _ in range(BATCH)]
        for sock in socks:
            await send(sock, half)
        await wait_until(
            lambda: len(temporary_files(upload_dir)) == BATCH,
            SYNC_TIMEOUT,
            "every upload is being written to a temporary file",
        )
        for index, sock in enumerate(socks):
            vanish(sock, HOW[index % 2])
        await assert_back_to(baseline, server, upload_dir)


@contextlib.asynccontextmanager
async def chat_serving(data_dir: Path) -> AsyncIterator[tuple[framewire.Server, Hub, Path]]:
    """The chat as chat/run.py serves it with SQLite (open_chat_server() in tests/chat does
    not expose its Server, whose connection sets this test counts)."""
    config = ChatConfig(host="127.0.0.1", port=0, data_dir=data_dir)
    store = SQLiteStore(config.database_path, config.uploads_dir, config.limits)
    hub = Hub(store, LocalPresence(), config.limits)
    await hub.start()
    try:
        async with serving(build_app(hub, config)) as server:
            yield server, hub, config.uploads_dir
    finally:
        await hub.close()


def test_clients_vanishing_mid_upload_to_the_chat_leave_no_file_behind(tmp_path: Path) -> None:
    """60 uploads to the chat's POST /upload are cut halfway; nothing is stored or posted."""
    clients = 60
    body = multipart([("message", "caption"), FilePart("upload", "photo.bin", os.urandom(1 << 20))])
    head = (
        f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {MULTIPART_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    half = head + body[: len(body) // 2]

    async def main() -> None:
        async with chat_serving(tmp_path / "data") as (server, hub, uploads_dir):
            port = port_of(server)
            reply = await post_upload(port, body)
            assert reply.status == 201, reply
            await settle(server)
            history = await hub.store.after(0, 1000)
            baseline = take_snapshot(server, uploads_dir)
            assert len(baseline.upload_files) == 1  # the whole upload is stored
            await cut_uploads(server, half, clients, baseline, uploads_dir)
            assert await hub.store.after(0, 1000) == history

    run(main)
