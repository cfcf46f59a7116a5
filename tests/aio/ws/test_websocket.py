"""The asyncio server and client, end to end on 127.0.0.1 (aio/)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import socket
import ssl
import subprocess
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import framewire
from framewire import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from framewire.aio.ws.keepalive import PingTracker
from framewire.aio.ws.websocket import WebSocket
from framewire.http.messages import Response as HTTPResponse
from framewire.sansio.connection import Connection, Role, State
from framewire.sansio.events import BinaryMessage, CloseReceived, TextMessage
from tests.aio.fakes import ManualClock, open_websocket
from tests.conformance.rawclient import RawClient, client_frame
from tests.waiting import wait_until

Scenario = Callable[[int], Awaitable[None]]


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


def run_with_server(
    scenario: Scenario, handler: Callable[[WebSocket], Awaitable[Any]] = echo, **options: Any
) -> None:
    async def main() -> None:
        async with framewire.serve(handler, "127.0.0.1", 0, **options) as server:
            port = server.sockets[0].getsockname()[1]
            await asyncio.wait_for(scenario(port), 30)

    asyncio.run(main())


def test_echo_text_binary_and_1_mib() -> None:
    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/path") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01")
            assert await ws.recv() == b"\x00\x01"
            big = os.urandom(1 << 20)
            await ws.send(big)
            assert await ws.recv() == big
            assert ws.close_code is None

    run_with_server(scenario, max_message_size=2 << 20)


def test_handler_sees_request_attributes_and_close_code() -> None:
    seen: dict[str, Any] = {}

    async def handler(ws: WebSocket) -> None:
        assert ws.request is not None
        seen["path"] = ws.request.path
        seen["header"] = ws.request.headers.get("X-Test")
        seen["remote"] = ws.remote_address
        seen["subprotocol"] = ws.subprotocol
        try:
            await ws.recv()
        except ConnectionClosedOK as exc:
            seen["closed"] = (exc.code, exc.reason, ws.close_code, ws.close_reason)

    async def scenario(port: int) -> None:
        async with framewire.connect(
            f"ws://127.0.0.1:{port}/room/1?x=y",
            extra_headers={"X-Test": "yes"},
            subprotocols=["chat.v1"],
        ) as ws:
            assert ws.subprotocol == "chat.v1"
            assert ws.remote_address == ("127.0.0.1", port)
            local = ws.local_address
            assert local[0] == "127.0.0.1" and local[1] != port
            await ws.close(1000, "bye")
            assert ws.close_code == 1000
            assert ws.remote_address == ("127.0.0.1", port)  # still known once closed

    run_with_server(scenario, handler, subprotocols=["chat.v1"])
    assert seen["path"] == "/room/1"
    assert seen["header"] == "yes"
    assert seen["remote"][0] == "127.0.0.1"
    assert seen["subprotocol"] == "chat.v1"
    assert seen["closed"] == (1000, "bye", 1000, "bye")


def test_async_for_ends_on_normal_close_and_raises_on_error_close() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.send("one")
        await ws.close(1011, "oops")

    async def scenario(port: int) -> None:
        ws = await framewire.connect(f"ws://127.0.0.1:{port}/")
        received = []
        with pytest.raises(ConnectionClosedError) as info:
            async for message in ws:
                received.append(message)
        assert received == ["one"]
        assert info.value.code == 1011 and info.value.reason == "oops"

    run_with_server(scenario, handler)


def test_ping_returns_once_the_pong_arrives() -> None:
    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            before = time.monotonic()
            latency = await ws.ping(b"x")
            assert 0 <= latency <= time.monotonic() - before  # measured within the call
            assert await ws.ping() >= 0

    run_with_server(scenario)


def test_recv_stream_yields_pieces_of_one_large_message() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.send([b"a" * 100_000, b"b" * 100_000, b"c" * 100_000])
        await ws.send(iter(["x", "y"]))
        await ws.wait_closed()

    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            pieces = [piece async for piece in ws.recv_stream()]
            assert b"".join(pieces) == b"a" * 100_000 + b"b" * 100_000 + b"c" * 100_000  # type: ignore[arg-type]
            assert len(pieces) >= 3
            assert await ws.recv() == "xy"

    run_with_server(scenario, handler)


def test_send_of_an_async_iterator_is_one_fragmented_message() -> None:
    async def fragments() -> AsyncIterator[str]:
        for part in ("Never look ", "directly into ", "the sun"):
            yield part

    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send(fragments())
            assert await ws.recv() == "Never look directly into the sun"

    run_with_server(scenario)


def test_origin_rejected_with_403() -> None:
    async def scenario(port: int) -> None:
        with pytest.raises(InvalidStatus) as info:
            await framewire.connect(f"ws://127.0.0.1:{port}/", origin="https://evil.example")
        assert info.value.status == 403
        async with framewire.connect(f"ws://127.0.0.1:{port}/", origin="https://ok.example"):
            pass

    run_with_server(scenario, origins=["https://ok.example"])


def test_extra_headers_that_would_split_the_101_response_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match="invalid character in the value of header 'X'"):
        framewire.serve(echo, "127.0.0.1", 0, extra_headers=[("X", "a\r\nSet-Cookie: evil")])


def test_oversized_message_closes_with_1009() -> None:
    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send(b"x" * 2000)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1009

    run_with_server(scenario, max_message_size=1000)


def test_graceful_shutdown_sends_1001_to_every_client() -> None:
    async def main() -> None:
        server = await framewire.serve(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        clients = [await framewire.connect(f"ws://127.0.0.1:{port}/") for _ in range(3)]
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)
        for ws in clients:
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1001

    asyncio.run(main())


# ------------------------------------------------------------------ misbehaving peers


def test_silent_peer_is_closed_by_the_ping_timeout() -> None:
    closed: asyncio.Future[tuple[int | None, str]] | None = None

    async def handler(ws: WebSocket) -> None:
        try:
            await ws.recv()
        except ConnectionClosedError as exc:
            assert closed is not None
            sent = ws.connection.close_sent
            closed.set_result((sent[0] if sent else None, str(exc)))

    async def scenario(port: int) -> None:
        nonlocal closed
        closed = asyncio.get_running_loop().create_future()
        client = await RawClient.connect(port)  # never answers pings
        code, text = await asyncio.wait_for(closed, 10)
        assert code == 1011
        assert "keepalive ping timeout" in text and "blocked" in text
        client.writer.close()

    run_with_server(scenario, handler, ping_interval=0.2, ping_timeout=0.3)


def test_peer_that_stops_reading_has_bounded_buffers_and_does_not_slow_others() -> None:
    buffered: list[int] = []
    slow_handlers: list[WebSocket] = []
    slow_done = asyncio.Event()

    async def handler(ws: WebSocket) -> None:
        assert ws.request is not None
        if ws.request.path == "/slow":
            slow_handlers.append(ws)
            chunk = b"z" * 65536
            try:
                for _ in range(2000):  # 128 MiB if nothing pushed back
                    await ws.send(chunk)
                    buffered.append(ws.buffered_amount)
            except framewire.ConnectionClosed:
                pass  # aborted below, while send() was held back
            finally:
                slow_done.set()
        else:
            await echo(ws)

    def slow_is_held_back() -> bool:
        """The kernel's buffers are full and send() waits: it stays so, since the slow peer
        never reads."""
        if not slow_handlers:
            return False
        slow_ws = slow_handlers[0]
        return slow_ws._writing_paused and slow_ws.buffered_amount > 0 and not slow_done.is_set()

    async def scenario(port: int) -> None:
        slow = await RawClient.connect(port, path="/slow", limit=4096)  # then never reads
        await wait_until(slow_is_held_back, what="the slow peer's handler to be held back")
        async with framewire.connect(f"ws://127.0.0.1:{port}/fast") as fast:
            for index in range(50):
                await fast.send(f"m{index}")
                assert await asyncio.wait_for(fast.recv(), 2) == f"m{index}"
        assert slow_is_held_back()  # all along
        buffered.append(slow_handlers[0].buffered_amount)
        slow_handlers[0].abort()
        await asyncio.wait_for(slow_done.wait(), 10)
        slow.writer.close()

    run_with_server(scenario, handler)
    assert buffered, "the slow handler never ran"
    assert max(buffered) <= 64 * 1024 + 65536 + 16  # write_limit + one message


def test_peer_that_vanishes_mid_frame_leaves_nothing_behind() -> None:
    outcome: list[BaseException] = []

    async def handler(ws: WebSocket) -> None:
        try:
            await ws.recv()
        except BaseException as exc:
            outcome.append(exc)
            raise

    async def scenario(port: int) -> None:
        before = len(os.listdir("/proc/self/fd"))
        tasks_before = len(asyncio.all_tasks())
        client = await RawClient.connect(port)
        frame = client_frame(2, b"x" * 1000)
        client.writer.write(frame[:500])
        await client.writer.drain()
        client.writer.transport.abort()
        await wait_until(
            lambda: outcome and len(asyncio.all_tasks()) <= tasks_before,
            what="the handler to fail and its task to end",
        )
        gc.collect()
        assert len(os.listdir("/proc/self/fd")) <= before

    run_with_server(scenario, handler)
    assert len(outcome) == 1 and isinstance(outcome[0], ConnectionClosedError)
    assert outcome[0].code == 1006  # type: ignore[attr-defined]


# ------------------------------------------------------------------ broadcast


def test_broadcast_reaches_every_client_and_skips_a_slow_one() -> None:
    connections: list[WebSocket] = []

    async def handler(ws: WebSocket) -> None:
        connections.append(ws)
        await ws.wait_closed()

    async def scenario(port: int) -> None:
        clients = [await framewire.connect(f"ws://127.0.0.1:{port}/") for _ in range(5)]
        await wait_until(lambda: len(connections) == 5, what="five handlers")
        assert framewire.broadcast(connections, "news") == 5
        for ws in clients:
            assert await ws.recv() == "news"
        assert framewire.broadcast(connections, b"\x01\x02") == 5
        for ws in clients:
            assert await ws.recv() == b"\x01\x02"
        for ws in clients:
            await ws.close()

    run_with_server(scenario, handler)


# ------------------------------------------------------------------ TLS


def test_wss_with_a_certificate_made_at_test_time(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))

    async def scenario(port: int) -> None:
        async with framewire.connect(f"wss://127.0.0.1:{port}/", ssl=client_context) as ws:
            await ws.send("secret")
            assert await ws.recv() == "secret"
        with pytest.raises(ssl.SSLError):
            await framewire.connect(f"wss://127.0.0.1:{port}/")  # untrusted certificate

    run_with_server(scenario, ssl=server_context)


def test_connect_errors_name_the_problem() -> None:
    with pytest.raises(framewire.InvalidURI, match="scheme must be ws or wss"):
        framewire.connect("http://example.com/")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()

    async def main() -> None:
        with pytest.raises(OSError):
            await framewire.connect(f"ws://127.0.0.1:{port}/")

    asyncio.run(main())


def test_reading_pauses_when_the_handler_does_not_read() -> None:
    inbox_sizes: list[tuple[int, int]] = []
    handlers: list[WebSocket] = []
    release = asyncio.Event()

    async def handler(ws: WebSocket) -> None:
        handlers.append(ws)
        await release.wait()
        count = 0
        async for _ in ws:
            count += 1
            if count == 500:
                await ws.send("got them all")

    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
            sent = 0

            async def send_all() -> None:
                nonlocal sent
                while sent < 500:  # 500 x 64 KiB = 32 MiB if nothing pushed back
                    await ws.send(b"m" * 65536)
                    sent += 1

            def pushed_back() -> bool:
                """Sample the server's inbox; true once the server stopped reading and the
                kernel's buffers between the two are full (the client's transport holds
                bytes): from then on nothing moves until the handler reads."""
                if not handlers:
                    return False
                inbox = handlers[0]._inbox
                inbox_sizes.append((inbox._messages, inbox._bytes))
                return handlers[0]._reading_paused and ws.buffered_amount > 0

            sender = asyncio.create_task(send_all())
            await wait_until(pushed_back, what="the server to pause reading and the client")
            assert sent < 500 and not sender.done(), "the client was never pushed back"
            release.set()
            await sender
            assert await ws.recv() == "got them all"

    run_with_server(scenario, handler, max_queue=4, max_queue_bytes=256 * 1024, compression=None)
    assert inbox_sizes
    assert max(messages for messages, _ in inbox_sizes) <= 4 + 8  # max_queue + one read's worth
    assert max(size for _, size in inbox_sizes) <= 256 * 1024 + 512 * 1024


def test_broadcast_overflow_policies() -> None:
    connections: dict[str, WebSocket] = {}

    async def handler(ws: WebSocket) -> None:
        assert ws.request is not None
        connections[ws.request.path] = ws
        await ws.wait_closed()

    async def scenario(port: int) -> None:
        slow = await RawClient.connect(port, path="/slow", limit=4096)  # never reads
        fast = await framewire.connect(f"ws://127.0.0.1:{port}/fast", max_message_size=None)
        await wait_until(lambda: len(connections) == 2, what="both handlers")
        message = b"b" * 256 * 1024
        skipped = 0
        for _ in range(100):
            delivered = framewire.broadcast(connections.values(), message)
            skipped += 2 - delivered
            assert await asyncio.wait_for(fast.recv(), 5) == message
        assert skipped > 0, "the slow client's buffer never overflowed"
        assert connections["/slow"].buffered_amount < 64 * 1024 + 2 * len(message)
        framewire.broadcast(connections.values(), message, on_overflow="close")
        await asyncio.wait_for(connections["/slow"].wait_closed(), 15)
        assert connections["/slow"].connection.close_sent == (
            1008,
            "too slow to keep up with broadcast",
        )
        await fast.close()
        slow.writer.close()

    run_with_server(scenario, handler, compression=None, close_timeout=1)


def test_broadcast_compresses_once_for_peers_that_can_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from framewire.sansio.deflate import DeflateConfig, PerMessageDeflate

    connections: list[WebSocket] = []
    compress_calls = 0
    original = PerMessageDeflate.compress

    def counting(self: PerMessageDeflate, data: Any, *, final: bool) -> bytes:
        nonlocal compress_calls
        compress_calls += 1
        return original(self, data, final=final)

    async def handler(ws: WebSocket) -> None:
        connections.append(ws)
        await ws.wait_closed()

    async def scenario(port: int) -> None:
        clients = [await framewire.connect(f"ws://127.0.0.1:{port}/") for _ in range(3)]
        await wait_until(lambda: len(connections) == 3, what="three handlers")
        for ws in connections:
            deflate = ws.connection.deflate
            assert deflate is not None and deflate.can_share_output
        monkeypatch.setattr(PerMessageDeflate, "compress", counting)
        text = '{"type": "message", "text": "hello everyone"}' * 20
        assert framewire.broadcast(connections, text) == 3
        assert compress_calls == 1
        monkeypatch.undo()
        for ws in clients:
            assert await ws.recv() == text
            await ws.close()

    run_with_server(scenario, handler, compression=DeflateConfig(server_no_context_takeover=True))


def test_keepalive_pings_answered_keep_the_connection_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """End to end: the server's keepalive pings reach a real client, whose pongs come back.
    Counted at the server: pings registered, pongs matched (tests/aio/test_keepalive.py
    checks each deadline on a manual clock)."""
    pings = pongs = 0
    register, pong_received = PingTracker.register, PingTracker.pong_received

    def counting_register(self: PingTracker, payload: bytes) -> Any:
        nonlocal pings
        pings += 1
        return register(self, payload)

    def counting_pong_received(self: PingTracker, payload: bytes) -> None:
        nonlocal pongs
        pongs += payload in self._waiting
        pong_received(self, payload)

    monkeypatch.setattr(PingTracker, "register", counting_register)
    monkeypatch.setattr(PingTracker, "pong_received", counting_pong_received)

    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/", ping_interval=None) as ws:
            await wait_until(lambda: pongs >= 3, what="three keepalive rounds answered")
            assert pings >= 3
            await ws.send("still here")
            assert await ws.recv() == "still here"
            assert ws.close_code is None

    run_with_server(scenario, ping_interval=0.05, ping_timeout=5)


def test_pending_pings_fail_when_the_connection_drops() -> None:
    seen: list[BaseException] = []

    async def handler(ws: WebSocket) -> None:
        try:
            await ws.ping(b"never answered")
        except framewire.ConnectionClosed as exc:
            seen.append(exc)

    async def main() -> None:
        async with framewire.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            client = await RawClient.connect(port)
            _, _, opcode, payload = await client.read_frame()
            assert (opcode, payload) == (9, b"never answered")  # the handler awaits its pong
            client.writer.transport.abort()
            await wait_until(lambda: seen, what="ping() to fail")

    asyncio.run(main())
    assert len(seen) == 1 and isinstance(seen[0], ConnectionClosedError)


def test_reads_go_into_one_shared_buffer_without_a_read_sized_allocation() -> None:
    """WebSocket reads with recv_into() into the loop's receive buffer. asyncio's plain recv()
    allocates a 256 KiB bytes object per read, which glibc may serve with mmap/munmap: that made
    fresh servers twice as slow on small messages (docs/topics/performance.md)."""

    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send(b"warm up")
            assert await ws.recv() == b"warm up"
            tracemalloc.start()
            try:
                for index in range(50):
                    await ws.send(b"%d" % index)
                    assert await ws.recv() == b"%d" % index
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            # 100 reads (both ends) in the window; one 256 KiB read buffer would show here.
            assert peak < 64 * 1024, f"peak {peak} bytes during 50 round trips"

    run_with_server(scenario)


def test_the_handler_task_runs_in_its_own_context_when_resumed_by_a_read() -> None:
    """Messages wake the handler's task inline (aio/ws/wakeup.py): it must still be that task,
    with its context variables, asyncio.timeout() and cancellation working."""
    tag: contextvars.ContextVar[str] = contextvars.ContextVar("tag", default="unset")
    seen: list[object] = []

    async def handler(ws: WebSocket) -> None:
        tag.set("handler")
        me = asyncio.current_task()
        async for message in ws:
            seen.append((asyncio.current_task() is me, tag.get()))
            async with asyncio.timeout(5):
                await ws.send(message)
            if len(seen) == 3:
                break
        # The client sends nothing until told: recv() can only end by the timeout.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await ws.recv()
        seen.append("timed out")
        await ws.send("timed out")
        await ws.wait_closed()

    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            for index in range(3):
                await ws.send(f"m{index}")
                assert await ws.recv() == f"m{index}"
            assert await ws.recv() == "timed out"

    run_with_server(scenario, handler)
    assert seen == [(True, "handler")] * 3 + ["timed out"]


def test_a_handler_resumed_by_a_read_may_fail_or_close_and_the_server_goes_on() -> None:
    """The handler runs inside the read callback (aio/ws/wakeup.py); what it does there must not
    disturb the transport: an exception closes with 1011, a close() completes normally."""

    async def handler(ws: WebSocket) -> None:
        async for message in ws:
            if message == "fail":
                raise RuntimeError("handler bug")
            if message == "bye":
                await ws.close(4000, "bye")
                return
            await ws.send(message)

    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as failing:
            await failing.send("fail")
            with pytest.raises(ConnectionClosedError) as info:
                await failing.recv()
            assert (info.value.code, info.value.reason) == (1011, "internal server error")
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as leaving:
            await leaving.send("echo me")
            assert await leaving.recv() == "echo me"
            await leaving.send("bye")
            with pytest.raises(ConnectionClosedError) as info:
                await leaving.recv()
            assert (info.value.code, info.value.reason) == (4000, "bye")

    run_with_server(scenario, handler)


def test_a_fragmented_message_queued_whole_before_the_handler_reads_it() -> None:
    """Pieces of a message may all be queued before the handler looks: it must take them
    without waiting for more data (none will come)."""
    received: list[object] = []

    async def handler(ws: WebSocket) -> None:
        # Both messages are queued, the first in pieces, before the handler looks.
        await wait_until(lambda: ws._inbox._messages == 2, what="both messages queued")
        async for message in ws:
            received.append(message)
            if len(received) == 2:
                await ws.send("got both")

    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send([b"frag", b"ment", b"ed"])
            await ws.send("whole")
            assert await asyncio.wait_for(ws.recv(), 5) == "got both"

    run_with_server(scenario, handler)
    assert received == [b"fragmented", "whole"]


# The handshake's fast path (sansio/upgrade_request.py, Server._upgrade_plain).


async def raw_handshake(port: int, request: bytes) -> tuple[RawClient, bytes]:
    """Write ``request`` in one write; return the client and the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    return RawClient(reader, writer), head


PLAIN_REQUEST = (
    b"GET /fast?q=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"X-Trace: 7\r\n\r\n"
)


def test_a_plain_upgrade_takes_the_fast_path_with_the_general_paths_101() -> None:
    from framewire.sansio.handshake import accept_request
    from framewire.sansio.headers import Headers

    seen: dict[str, Any] = {}

    async def handler(ws: WebSocket) -> None:
        assert ws.request is not None
        seen["path"], seen["trace"] = ws.request.path, ws.request.headers["x-trace"]
        await echo(ws)

    async def main() -> None:
        extra = [("X-Served-By", "test")]
        async with framewire.serve(handler, "127.0.0.1", 0, extra_headers=extra) as server:

            def general_upgrade(*args: Any) -> None:
                raise AssertionError("the plain request went the general way")

            server._upgrade = general_upgrade  # type: ignore[method-assign]
            port = server.sockets[0].getsockname()[1]
            # A frame in the same write as the request: the fast path hands it on.
            client, head = await raw_handshake(port, PLAIN_REQUEST + client_frame(1, b"hi"))
            expected = accept_request(
                "GET",
                "1.1",
                Headers(
                    [
                        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                        ("Host", "x"),
                        ("Upgrade", "websocket"),
                        ("Connection", "Upgrade"),
                        ("Sec-WebSocket-Version", "13"),
                    ]
                ),
                extra_headers=server.extra_headers,
            ).response_bytes()
            assert head == expected
            assert b"X-Served-By: test\r\nServer: framewire\r\n" in head
            assert await client.read_message() == (1, b"hi")
            await client.close()

    asyncio.run(main())
    assert seen == {"path": "/fast", "trace": "7"}


@pytest.mark.parametrize(
    ("options", "extra", "expected"),
    [
        ({"subprotocols": ["chat"]}, b"Sec-WebSocket-Protocol: other, chat\r\n", b"Protocol: chat"),
        ({"origins": ["http://ok"]}, b"Origin: http://ok\r\n", b"HTTP/1.1 101"),
        ({"origins": ["http://ok"]}, b"Origin: http://evil\r\n", b"HTTP/1.1 403"),
        ({}, b"Sec-WebSocket-Extensions: permessage-deflate\r\n", b"permessage-deflate"),
        ({"compression": None}, b"Sec-WebSocket-Extensions: permessage-deflate\r\n", b"101"),
    ],
)
def test_a_plain_upgrade_that_needs_negotiation_goes_the_general_way(
    options: dict[str, Any], extra: bytes, expected: bytes
) -> None:
    async def main() -> None:
        async with framewire.serve(echo, "127.0.0.1", 0, **options) as server:
            port = server.sockets[0].getsockname()[1]
            request = PLAIN_REQUEST.replace(b"X-Trace: 7\r\n", extra)
            client, head = await raw_handshake(port, request)
            assert expected in head
            if b" 101 " in head and b"deflate" not in head:
                assert b"Sec-WebSocket-Extensions" not in head
                await client.send(client_frame(2, b"\x00"))
                assert await client.read_message() == (2, b"\x00")
            client.writer.close()

    asyncio.run(main())


def test_a_request_split_over_two_reads_goes_the_general_way() -> None:
    async def main() -> None:
        async with framewire.serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(PLAIN_REQUEST[:40])
            await writer.drain()
            # The first read made the general path's parser: the request is split for sure.
            await wait_until(
                lambda: any(p._request_parser is not None for p in server._http_protocols),
                what="the server to read the first 40 bytes",
            )
            writer.write(PLAIN_REQUEST[40:])
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 101") and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
            writer.close()

    asyncio.run(main())


class _LimitsTransport(asyncio.Transport):
    """Records what a WebSocket asks of its transport's write-buffer limits."""

    def __init__(self, limits: tuple[int, int] | None) -> None:
        super().__init__()
        self.limits = limits
        self.highs_set: list[int | None] = []

    def get_write_buffer_limits(self) -> tuple[int, int]:
        if self.limits is None:
            raise NotImplementedError  # as asyncio.WriteTransport's
        return self.limits

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.highs_set.append(high)


def test_write_limit_reaches_the_transport_unless_it_is_already_set() -> None:
    async def scenario() -> None:
        for write_limit, limits, expected in [
            (65536, (16384, 65536), []),  # asyncio's default: nothing to set
            (4096, (16384, 65536), [4096]),
            (65536, (0, 65536), [65536]),  # same high-water mark, another low one
            (65536, None, [65536]),  # a transport that cannot tell
        ]:
            ws = WebSocket(Connection(Role.SERVER), write_limit=write_limit, ping_interval=None)
            transport = _LimitsTransport(limits)
            ws.connection_made(transport)
            assert transport.highs_set == expected, (write_limit, limits)

    asyncio.run(scenario())


@pytest.mark.parametrize("hook", [False, True])
def test_server_forgets_each_connection_task_as_it_ends(hook: bool) -> None:
    """Accepted, rejected and failed connections all leave the set close() waits for."""

    async def process_request(request: Any) -> Any:
        if request.path == "/rejected":
            return HTTPResponse(403, body=b"no")
        if request.path == "/broken":
            raise RuntimeError("process_request fails")
        return None

    async def handler(ws: WebSocket) -> None:
        if ws.request is not None and ws.request.path == "/raises":
            raise RuntimeError("handler fails")
        await echo(ws)

    async def main() -> None:
        hooks = {"process_request": process_request} if hook else {}
        statuses: list[int] = []
        async with framewire.serve(handler, "127.0.0.1", 0, **hooks) as server:
            port = server.sockets[0].getsockname()[1]
            paths = ["/", "/raises"] + (["/rejected", "/broken"] if hook else [])
            for path in paths:
                try:
                    async with framewire.connect(f"ws://127.0.0.1:{port}{path}") as ws:
                        await ws.send("hi")
                        await ws.recv()
                except InvalidStatus as exc:
                    statuses.append(exc.status)
                except ConnectionClosedError:
                    statuses.append(1011)
            assert statuses == ([1011, 403, 500] if hook else [1011])
            await wait_until(
                lambda: not server._tasks and not server.connections,
                what="every connection's task to end",
            )

    asyncio.run(asyncio.wait_for(main(), 30))


# ------------------------------------------------------------------ in memory: timers and flow
# A WebSocket on a FakeTransport with a ManualClock as its timers (tests/aio/fakes.py): each
# deadline is checked just before and at the moment it falls due, without waiting.

TICK = 0.001  # seconds: a moment


def run_in_memory(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 10))


def test_a_close_the_peer_never_answers_drops_the_connection_after_close_timeout() -> None:
    async def main() -> None:
        clock = ManualClock()
        ws, transport, peer = open_websocket(clock, close_timeout=10, ping_interval=None)
        closing = asyncio.create_task(ws.close(1000, "bye"))
        await asyncio.sleep(0)
        assert peer.receive() == [CloseReceived(1000, "bye")]  # read, never answered
        clock.advance(10 - TICK)
        assert not transport.closing and not closing.done()
        clock.advance(TICK)
        assert transport.aborted
        await closing
        assert ws.state is State.CLOSED and ws.close_code == 1006

    run_in_memory(main)


def test_a_close_the_peer_answers_closes_the_transport_and_cancels_the_timer() -> None:
    async def main() -> None:
        clock = ManualClock()
        ws, transport, peer = open_websocket(clock, close_timeout=10, ping_interval=None)
        closing = asyncio.create_task(ws.close(4000, "done"))
        await asyncio.sleep(0)
        peer.answer()  # the peer's Connection echoes the close
        await closing
        assert transport.closing and not transport.aborted  # RFC 6455 7.1.1: the server
        assert (ws.close_code, ws.close_reason) == (4000, "")  # the echo: code, no reason
        assert clock.pending() == []

    run_in_memory(main)


def test_a_protocol_error_behind_unread_messages_closes_after_the_grace_period() -> None:
    """The close frame waits until the application took the queued messages, or for
    min(close_timeout, 1 s): whichever comes first."""

    async def main() -> None:
        for read_them in (False, True):
            clock = ManualClock()
            ws, transport, peer = open_websocket(clock, close_timeout=10, ping_interval=None)
            transport.feed(client_frame(1, b"first") + client_frame(3))  # opcode 3: reserved
            assert peer.receive() == []  # held back: "first" is not read yet
            if read_them:
                assert await ws.recv() == "first"
                receiving = asyncio.create_task(ws.recv())
                await asyncio.sleep(0)
                assert clock.now == 1000.0  # the close went out at once, before the grace
            else:
                clock.advance(1.0 - TICK)
                assert peer.receive() == []
                clock.advance(TICK)
            [closed] = peer.receive()
            assert isinstance(closed, CloseReceived) and closed.code == 1002
            if read_them:
                clock.advance(10)  # the peer never answers: close_timeout drops it
                with pytest.raises(ConnectionClosedError):
                    await receiving
                assert transport.aborted
            else:
                assert await ws.recv() == "first"  # still delivered

    run_in_memory(main)


def test_send_waits_while_the_write_buffer_is_above_write_limit() -> None:
    async def main() -> None:
        clock = ManualClock()
        ws, transport, peer = open_websocket(
            clock, write_limit=4096, ping_interval=None, peer_reads=False
        )
        assert transport.high_water == 4096
        await ws.send(b"a" * 5000)  # goes to the buffer; the buffer passes the mark
        assert transport.writing_pauses == 1 and ws.buffered_amount > 4096
        waiting = asyncio.create_task(ws.send(b"b" * 10))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()  # written, and waiting for the buffer to drain
        transport.send_buffered(len(transport.buffered) - 1025)  # just above the low mark
        await asyncio.sleep(0)
        assert not waiting.done()
        transport.send_buffered(1)  # at the low-water mark (a quarter of write_limit)
        await asyncio.wait_for(waiting, 5)
        transport.send_buffered()
        assert [type(event) for event in peer.receive()] == [BinaryMessage, BinaryMessage]

    run_in_memory(main)


def test_reading_pauses_past_max_queue_and_resumes_as_messages_are_read() -> None:
    async def main() -> None:
        clock = ManualClock()
        ws, transport, peer = open_websocket(clock, max_queue=2, ping_interval=None)
        for index in range(6):
            peer.connection.send_text(f"m{index}")
        peer.flush()  # six messages in one read
        assert not transport.is_reading() and transport.reading_pauses == 1
        assert transport.unread == b""  # that read was consumed whole; nothing more is
        assert [await ws.recv() for _ in range(6)] == [f"m{index}" for index in range(6)]
        assert transport.is_reading()
        peer.connection.send_text("after")
        peer.connection.send_binary(b"\x00")
        peer.flush()
        assert [await ws.recv() for _ in range(2)] == ["after", b"\x00"]
        assert transport.reading_pauses == 1
        assert not any(type(event) is TextMessage for event in peer.receive())

    run_in_memory(main)
