"""The loop's Poller and the DirectWriter (aio/ws/socket_poller.py; C in _speedups_c/poller.c and
direct_writer.c).

Unit tests drive them on socket pairs with recording protocols and transports; end-to-end tests
check that WebSocket connections on the default loop use them, keep bytes in order when the
kernel's send buffer fills, and leave no registration behind when connections come and go.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from typing import Any

import pytest

import framewire
from framewire.aio.ws import socket_poller
from framewire.aio.ws.websocket import WebSocket
from framewire.sansio.connection import Connection, Role
from tests.aio.ws.poller_fakes import RecordingProtocol, RecordingTransport, read_all, socket_pairs
from tests.conftest import c_twin_or_skip
from tests.sansio.ws_helpers import frame
from tests.waiting import loop_turns, wait_until


def make_poller() -> tuple[Any, memoryview]:
    poller_type = c_twin_or_skip("Poller")
    buffer = memoryview(bytearray(4096))
    return poller_type(buffer), buffer


def test_poller_reads_each_ready_socket_into_the_buffer_and_tells_its_protocol() -> None:
    poller, buffer = make_poller()
    protocols = [RecordingProtocol(buffer) for _ in range(3)]
    with socket_pairs(3) as pairs:
        for (ours, _), protocol in zip(pairs, protocols, strict=True):
            poller.register(ours.fileno(), protocol)
        assert len(poller) == 3
        pairs[0][1].send(b"first")
        pairs[2][1].send(b"third")
        poller.poll()
        assert [p.received for p in protocols] == [b"first", b"", b"third"]
        poller.poll()  # nothing more is ready: nothing is called
        assert [p.received for p in protocols] == [b"first", b"", b"third"]
        pairs[1][1].close()
        poller.poll()
        assert protocols[1].eof and not protocols[0].eof


def test_paused_sockets_are_not_read_until_resumed() -> None:
    poller, buffer = make_poller()
    protocol = RecordingProtocol(buffer)
    with socket_pairs(1) as [(ours, theirs)]:
        poller.register(ours.fileno(), protocol)
        poller.pause(ours.fileno())
        poller.pause(ours.fileno())  # twice is fine
        theirs.send(b"held")
        poller.poll()
        assert protocol.received == b""
        poller.resume(ours.fileno())
        poller.poll()
        assert protocol.received == b"held"


def test_a_lone_socket_is_read_without_asking_epoll_and_others_join_it() -> None:
    poller, buffer = make_poller()
    protocols = [RecordingProtocol(buffer) for _ in range(3)]
    with socket_pairs(3) as pairs:
        poller.register(pairs[0][0].fileno(), protocols[0])
        poller.poll()  # nothing to read: the lone socket's recv finds nothing
        pairs[0][1].send(b"a")
        poller.poll()
        poller.register(pairs[1][0].fileno(), protocols[1])
        poller.register(pairs[2][0].fileno(), protocols[2])
        poller.unregister(pairs[0][0].fileno())
        poller.unregister(pairs[1][0].fileno())  # the third is alone now
        pairs[2][1].send(b"c")
        poller.poll()
        assert [p.received for p in protocols] == [b"a", b"", b"c"]
        assert not any(p.errors or p.eof for p in protocols)


def test_register_unregister_and_their_errors() -> None:
    poller, buffer = make_poller()
    with socket_pairs(1) as [(ours, _)]:
        poller.register(ours.fileno(), RecordingProtocol(buffer))
        with pytest.raises(ValueError, match="already registered"):
            poller.register(ours.fileno(), RecordingProtocol(buffer))
        assert poller.unregister(ours.fileno()) is True
        assert poller.unregister(ours.fileno()) is False
        assert len(poller) == 0
        with pytest.raises(KeyError, match="not registered"):
            poller.pause(ours.fileno())
        with pytest.raises(ValueError, match="invalid file descriptor"):
            poller.register(-1, RecordingProtocol(buffer))
        with pytest.raises(OSError):
            poller.register(10**6, RecordingProtocol(buffer))  # not an open descriptor
    assert isinstance(poller.fileno(), int)


def test_a_failing_callback_goes_to_poller_error_and_others_are_still_read() -> None:
    poller, buffer = make_poller()
    failing = RecordingProtocol(buffer, fail_with=RuntimeError("handler bug"))
    quiet = RecordingProtocol(buffer)
    with socket_pairs(2) as (failing_pair, quiet_pair):
        poller.register(failing_pair[0].fileno(), failing)
        poller.register(quiet_pair[0].fileno(), quiet)
        failing_pair[1].send(b"x")
        quiet_pair[1].send(b"y")
        poller.poll()
        assert [str(exc) for exc in failing.errors] == ["handler bug"]
        assert quiet.received == b"y"


def test_an_exception_from_poller_error_reaches_the_loop() -> None:
    poller, buffer = make_poller()

    class Broken(RecordingProtocol):
        def poller_error(self, exc: BaseException) -> None:
            raise ValueError("cannot even fail properly") from exc

    with socket_pairs(1) as [(ours, theirs)]:
        poller.register(ours.fileno(), Broken(buffer, fail_with=RuntimeError("first")))
        theirs.send(b"x")
        with pytest.raises(ValueError, match="cannot even fail properly"):
            poller.poll()


def test_a_reset_connection_is_reported_as_an_oserror() -> None:
    poller, buffer = make_poller()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        server.setblocking(False)
        protocol = RecordingProtocol(buffer)
        with server:
            poller.register(server.fileno(), protocol)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # with linger 0: RST instead of FIN
            poller.poll()
            assert [type(exc) for exc in protocol.errors] == [ConnectionResetError]


def test_a_socket_unregistered_during_a_poll_is_not_read_in_that_poll() -> None:
    poller, buffer = make_poller()
    protocols = [RecordingProtocol(buffer), RecordingProtocol(buffer)]
    with socket_pairs(2) as (first, second):
        poller.register(first[0].fileno(), protocols[0])
        poller.register(second[0].fileno(), protocols[1])
        # Whichever is read first unregisters the other.
        protocols[0].on_data = lambda: poller.unregister(second[0].fileno())
        protocols[1].on_data = lambda: poller.unregister(first[0].fileno())
        first[1].send(b"a")
        second[1].send(b"b")
        poller.poll()
        assert sorted(p.received for p in protocols) in ([b"", b"a"], [b"", b"b"])


def test_direct_writer_sends_at_once_once_the_transport_holds_nothing() -> None:
    writer_type = c_twin_or_skip("DirectWriter")
    transport = RecordingTransport()
    with socket_pairs(1) as [(ours, theirs)]:
        writer = writer_type(ours.fileno(), transport)
        transport.queued = 10  # e.g. the handshake response, written before: it goes first
        writer.write(b"one")
        writer.write(b"two")
        assert transport.written == [b"one", b"two"]
        transport.queued = 0
        writer.write(b"three")
        writer.write(memoryview(b"four"))
        assert read_all(theirs) == b"threefour"
        assert transport.written == [b"one", b"two"]
        writer.stop()
        writer.write(b"five")
        assert transport.written[-1] == b"five"


def test_direct_writer_hands_what_the_kernel_did_not_take_to_the_transport() -> None:
    writer_type = c_twin_or_skip("DirectWriter")
    transport = RecordingTransport()
    payload = os.urandom(4 << 20)
    with socket_pairs(1) as [(ours, theirs)]:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        writer = writer_type(ours.fileno(), transport)
        writer.write(payload)
        assert len(transport.written) == 1
        sent = read_all(theirs)
        assert 0 < len(sent) < len(payload)
        assert sent + transport.written[0] == payload
        transport.queued = len(transport.written[0])
        writer.write(b"after")  # must not overtake the queued rest
        assert transport.written[-1] == b"after"
        assert read_all(theirs) == b""


def test_direct_writer_leaves_errors_to_the_transport() -> None:
    writer_type = c_twin_or_skip("DirectWriter")
    transport = RecordingTransport()
    with socket_pairs(1) as [(ours, theirs)]:
        theirs.close()  # closing twice (again at the end) is harmless
        writer = writer_type(ours.fileno(), transport)
        writer.write(b"nobody listens")  # EPIPE, without SIGPIPE
        assert transport.written == [b"nobody listens"]


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(first byte, payload) of each unmasked frame in ``data``, as a peer would read them."""
    frames = []
    while data:
        length, start = data[1], 2
        if length == 126:
            (length,) = struct.unpack("!H", data[2:4])
            start = 4
        frames.append((data[0], data[start : start + length]))
        data = data[start + length :]
    return frames


def test_send_message_frames_small_str_and_bytes_and_sends_them_at_once() -> None:
    writer_type = c_twin_or_skip("DirectWriter")
    transport = RecordingTransport()
    connection = Connection(Role.SERVER)
    with socket_pairs(1) as [(ours, theirs)]:
        writer = writer_type(ours.fileno(), transport)
        messages: list[str | bytes] = [b"", b"bin", "text", "é€😀", b"x" * 125, "y" * 126]
        messages += [b"z" * 65535]
        for message in messages:
            assert writer.send_message(connection, message) is True
        expected = [
            (0x81 if isinstance(m, str) else 0x82, m.encode() if isinstance(m, str) else m)
            for m in messages
        ]
        size = sum(len(payload) + (2 if len(payload) < 126 else 4) for _, payload in expected)
        theirs.settimeout(5)
        received = b""
        while len(received) < size:
            received += theirs.recv(1 << 20)
        assert parse_frames(received) == expected
        assert transport.written == []


def test_send_message_declines_what_needs_the_general_path() -> None:
    writer_type = c_twin_or_skip("DirectWriter")
    transport = RecordingTransport()
    with socket_pairs(1) as [(ours, theirs)]:
        writer = writer_type(ours.fileno(), transport)
        server = Connection(Role.SERVER)
        transport.queued = 1  # e.g. the handshake response: a direct send would overtake it
        assert writer.send_message(server, b"x") is False
        transport.queued = 0
        for message in (b"x" * 65536, bytearray(b"x"), memoryview(b"x"), 42, "\ud800"):
            assert writer.send_message(server, message) is False
        assert writer.send_message(Connection(Role.CLIENT), b"masked") is False
        assert writer.send_message(object(), b"not a Connection") is False
        fragmenting = Connection(Role.SERVER)
        fragmenting.send_binary(b"first", fin=False)
        assert writer.send_message(fragmenting, b"x") is False  # queued, then fragmenting
        fragmenting.data_to_send()
        assert writer.send_message(fragmenting, b"x") is False
        closing = Connection(Role.SERVER)
        closing.send_close()
        closing.data_to_send()
        assert writer.send_message(closing, b"x") is False
        writer.stop()
        assert writer.send_message(server, b"x") is False
        assert read_all(theirs) == b""
        assert transport.written == []


@pytest.mark.parametrize("size", [60_000, 1_000])  # sendmsg() of two iovecs; one send() of a copy
def test_send_message_hands_what_the_kernel_did_not_take_to_the_transport(size: int) -> None:
    writer_type = c_twin_or_skip("DirectWriter")
    transport = RecordingTransport()
    connection = Connection(Role.SERVER)
    with socket_pairs(1) as [(ours, theirs)]:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        writer = writer_type(ours.fileno(), transport)
        messages = [os.urandom(size) for _ in range(480_000 // size)]
        for message in messages:
            assert writer.send_message(connection, message) is True
            if transport.written:  # the transport holds bytes now: the rest go through it
                transport.queued = 1
                break
        assert transport.written, "the kernel took 480 kB through a 4 KiB send buffer"
        received = read_all(theirs) + b"".join(transport.written)
        sent = messages[: len(parse_frames(received))]
        assert parse_frames(received) == [(0x82, m) for m in sent]


def test_sent_is_a_finished_coroutine() -> None:
    sent = socket_poller.SENT
    if sent is None:
        pytest.skip("the C accelerator is not built")

    async def main() -> None:
        assert await sent is None
        assert await asyncio.create_task(sent) is None
        assert await asyncio.wait_for(sent, 1) is None
        assert await asyncio.gather(sent, sent) == [None, None]

    asyncio.run(main())
    with pytest.raises(StopIteration):
        sent.send(None)
    with pytest.raises(ValueError, match="thrown"):
        sent.throw(ValueError("thrown"))
    with pytest.raises(KeyError):
        sent.throw(KeyError)
    assert sent.close() is None


def test_send_on_a_polled_connection_writes_during_the_call() -> None:
    received: list[Any] = []

    async def handler(ws: WebSocket) -> None:
        async for message in ws:
            returned = ws.send(message)
            if ws._polled is not None and message != "a" and len(message) < 65536:
                assert returned is socket_poller.SENT  # already on its way
            await returned
        received.append(ws.close_code)

    async def main() -> None:
        async with framewire.serve(handler, "127.0.0.1", 0, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
                for message in ("a", b"b", "c" * 300, b"d" * 70_000):
                    await ws.send(message)
                    assert await ws.recv() == message
                await ws.close()
            await wait_until(lambda: received, what="the handler to end")
            assert received == [1000]

    asyncio.run(asyncio.wait_for(main(), 20))


def test_send_after_close_raises_when_awaited() -> None:
    outcome: list[BaseException] = []

    async def handler(ws: WebSocket) -> None:
        await ws.recv()
        await ws.send("ok")  # the socket is polled from here on
        await ws.close()
        try:
            await ws.send("too late")
        except framewire.ConnectionClosed as exc:
            outcome.append(exc)

    async def main() -> None:
        async with framewire.serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send("go")
                assert await ws.recv() == "ok"
                await ws.wait_closed()
            await wait_until(lambda: outcome, what="the late send() to fail")
            assert len(outcome) == 1

    asyncio.run(asyncio.wait_for(main(), 20))


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


def loop_poller() -> Any:
    return socket_poller._pollers.get(asyncio.get_running_loop())


def test_websockets_on_the_default_loop_use_the_poller_and_leave_nothing_behind() -> None:
    handlers: list[WebSocket] = []

    async def remember(ws: WebSocket) -> None:
        handlers.append(ws)
        await echo(ws)

    async def main() -> None:
        async with framewire.serve(remember, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
                assert ws._polled is None  # handed over after the first read, not before
                await ws.send("hi")
                assert await ws.recv() == "hi"
                await asyncio.sleep(0)  # recv() returned inside that read: let it finish
                expected = socket_poller._Poller is not None
                assert (ws._polled is not None) is expected
                assert (handlers[0]._polled is not None) is expected
                if expected:
                    assert len(loop_poller()) == 2
            if socket_poller._Poller is not None:  # once the server side finished its close
                await wait_until(lambda: len(loop_poller()) == 0, what="no socket registered")

    asyncio.run(asyncio.wait_for(main(), 20))


def test_bytes_stay_in_order_when_the_kernel_send_buffer_fills() -> None:
    big = os.urandom(8 << 20)
    handlers: list[WebSocket] = []

    async def burst(ws: WebSocket) -> None:
        handlers.append(ws)
        await ws.recv()
        await ws.send(big)  # larger than the socket buffers: the transport queues the rest
        for index in range(500):
            await ws.send(b"%d" % index)
        await ws.wait_closed()

    async def main() -> None:
        async with framewire.serve(burst, "127.0.0.1", 0, max_message_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with framewire.connect(f"ws://127.0.0.1:{port}/", max_message_size=None) as ws:
                await ws.send("go")
                # The server's sends pile up: the kernel's buffers are full, its transport
                # holds the rest, and its later sends must queue behind.
                await wait_until(
                    lambda: handlers and handlers[0].buffered_amount > 0,
                    what="the server's transport to hold bytes",
                )
                assert await ws.recv() == big
                assert [await ws.recv() for _ in range(500)] == [b"%d" % i for i in range(500)]

    asyncio.run(asyncio.wait_for(main(), 30))


def test_connections_that_come_and_go_reuse_descriptors_safely() -> None:
    async def client(port: int, index: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            for round_trip in range(5):
                message = f"{index}-{round_trip}"
                await ws.send(message)
                assert await ws.recv() == message

    async def main() -> None:
        async with framewire.serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            for wave in range(4):
                await asyncio.gather(*(client(port, wave * 100 + i) for i in range(50)))
            if socket_poller._Poller is not None:
                await wait_until(lambda: len(loop_poller()) == 0, what="no socket registered")

    asyncio.run(asyncio.wait_for(main(), 60))


UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@pytest.mark.parametrize("first_message", [False, True])
def test_a_reset_from_the_peer_closes_the_websocket_with_1006(first_message: bool) -> None:
    """A reset read by the transport (before any message) or by the Poller (after one)."""
    outcome: asyncio.Future[BaseException] | None = None
    handlers: list[WebSocket] = []

    async def echo_then_wait(ws: WebSocket) -> None:
        assert outcome is not None
        handlers.append(ws)
        try:
            if first_message:
                await ws.send(await ws.recv())
            await ws.recv()
        except Exception as exc:
            outcome.set_result(exc)

    async def main() -> None:
        nonlocal outcome
        outcome = asyncio.get_running_loop().create_future()
        async with framewire.serve(echo_then_wait, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(UPGRADE)
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
            if first_message:
                writer.write(frame(2, b"ping me"))
                assert await reader.readexactly(9) == b"\x82\x07ping me"
                expected = socket_poller._Poller is not None
                await wait_until(
                    lambda: (handlers[0]._polled is not None) is expected,
                    what="the socket handed to the Poller (when there is one)",
                )
            raw = writer.get_extra_info("socket")
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # RST
            exc = await outcome
            assert isinstance(exc, framewire.ConnectionClosedError)
            assert exc.code == 1006
            poller = loop_poller()
            if poller is not None:
                await wait_until(lambda: len(poller) == 0, what="no socket registered")

    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_bug_in_buffer_updated_reaches_the_loop_and_drops_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reported: list[dict[str, Any]] = []
    original = Connection.receive_messages

    def broken(self: Connection, data: Any, out: Any) -> int:
        if self.role is Role.SERVER:
            raise RuntimeError("bug in the receive path")
        return original(self, data, out)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: reported.append(context))
        async with framewire.serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
                monkeypatch.setattr(Connection, "receive_messages", broken)
                await ws.send("this breaks the server's side")
                with pytest.raises(framewire.ConnectionClosedError):
                    await ws.recv()
        assert [str(context["exception"]) for context in reported] == ["bug in the receive path"]
        assert "buffer_updated" in reported[0]["message"]

    asyncio.run(asyncio.wait_for(main(), 20))


def test_slow_handlers_aborting_clients_and_big_messages_together() -> None:
    """Backpressure (pause and resume through the Poller), partial writes, aborts and normal
    closes at once: every client that stays gets its echoes in order, nothing is left behind."""
    problems: list[dict[str, Any]] = []

    async def slow_echo(ws: WebSocket) -> None:
        async for message in ws:
            if len(message) > 50_000:
                await loop_turns(20)  # let the client's messages pile up: reading pauses
            await ws.send(message)

    async def client(port: int, index: int) -> None:
        sizes = [(index * 7919 + n * 104_729) % 200_000 for n in range(10)]
        payloads = [os.urandom(size) for size in sizes]
        async with framewire.connect(f"ws://127.0.0.1:{port}/", max_message_size=None) as ws:
            for payload in payloads:
                await ws.send(payload)
            if index % 5 == 0:
                assert ws.transport is not None
                ws.transport.abort()  # vanish with echoes still on the way
                return
            assert [await ws.recv() for _ in payloads] == payloads

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: problems.append(ctx))
        options: dict[str, Any] = {"max_message_size": None, "max_queue": 2}
        async with framewire.serve(slow_echo, "127.0.0.1", 0, **options) as server:
            port = server.sockets[0].getsockname()[1]
            await asyncio.gather(*(client(port, index) for index in range(20)))
            await wait_until(lambda: not server.connections, what="every connection to end")
            if socket_poller._Poller is not None:
                assert len(loop_poller()) == 0

    asyncio.run(asyncio.wait_for(main(), 60))
    assert problems == []


def test_reading_paused_by_the_first_read_stays_paused_when_the_poller_takes_over() -> None:
    async def late_echo(ws: WebSocket) -> None:
        # The first read queues more than max_queue: reading pauses, and then the Poller
        # takes the socket over (in that same read).
        await wait_until(lambda: ws._reading_paused, what="reading to pause")
        paused_then = ws._reading_paused
        polled_then = ws._polled is not None
        async for message in ws:
            await ws.send(message)
            if message == b"last":
                await ws.send(b"paused=%d polled=%d" % (paused_then, polled_then))

    async def main() -> None:
        async with framewire.serve(late_echo, "127.0.0.1", 0, max_queue=2) as server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(UPGRADE)
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
            writer.write(b"".join(frame(2, b"%d" % index) for index in range(10)))
            echoes = [await reader.readexactly(3) for _ in range(10)]
            assert echoes == [b"\x82\x01%d" % index for index in range(10)]
            writer.write(frame(2, b"last"))  # read after the pause ended
            assert await reader.readexactly(6) == b"\x82\x04last"
            expected = b"paused=1 polled=%d" % (socket_poller._Poller is not None)
            assert await reader.readexactly(2 + len(expected)) == bytes([0x82, 17]) + expected
            writer.write(frame(8, b"\x03\xe8"))
            assert await reader.read() == b"\x88\x02\x03\xe8"  # the close echoed, then EOF
            writer.close()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_closes_at_once_only_for_a_plain_transport_with_nothing_left_to_write() -> None:
    """A server skips its close timer only when asyncio will call connection_lost() anyway."""

    async def main() -> None:
        accepted: list[asyncio.StreamWriter] = []

        async def keep(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)  # never reads: the client's writes pile up

        server = await asyncio.start_server(keep, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        transport = writer.transport
        assert socket_poller.closes_at_once(transport)
        while not transport.get_write_buffer_size():
            transport.write(b"x" * (1 << 20))
            await asyncio.sleep(0)
        assert not socket_poller.closes_at_once(transport)

        class Other(asyncio.WriteTransport):
            def get_write_buffer_size(self) -> int:
                return 0

        assert not socket_poller.closes_at_once(Other())
        transport.abort()
        for peer in accepted:
            peer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_a_receiver_takes_reads_of_whole_messages_and_leaves_the_rest_to_the_protocol() -> None:
    """The Poller's twin of WebSocket.buffer_updated()'s commonest case."""
    poller, buffer = make_poller()
    inbox_type = c_twin_or_skip("Inbox")
    pauses: list[str] = []
    inbox = inbox_type(1, 1 << 20, lambda: pauses.append("pause"), lambda: None)
    connection = Connection(Role.SERVER)
    protocol = RecordingProtocol(buffer)
    mask = b"\x01\x02\x03\x04"
    with socket_pairs(1) as [(ours, theirs)]:
        poller.register(ours.fileno(), protocol, (connection, inbox, True, 1000))
        theirs.send(frame(0x1, b"one", mask=mask) + frame(0x2, b"two", mask=mask))
        poller.poll()
        assert protocol.received == b""  # the Poller queued both itself
        assert inbox.next_message() == "one" and inbox.next_message() == b"two"
        assert pauses == ["pause"]  # two messages passed max_queue: reading paused as usual
        # A read that holds more than whole simple messages goes to the protocol, whole.
        for data in (
            frame(0x1, b"a", mask=mask) + frame(0x9, b"ping", mask=mask),  # a control frame
            frame(0x2, b"x" * 1001, mask=mask),  # over max_size
            frame(0x2, b"half", mask=mask)[:-2],  # a partial frame
            frame(0x1, b"\xff", mask=mask),  # invalid UTF-8
        ):
            protocol.received = b""
            theirs.send(data)
            poller.poll()
            assert protocol.received == data
            assert inbox.next_message() is None
        # So does every read while the connection is within a frame or message.
        connection.receive_data(frame(0x2, b"first", fin=False, mask=mask))
        assert not connection._whole_frames_ok
        protocol.received = b""
        theirs.send(frame(0x2, b"whole", mask=mask))
        poller.poll()
        assert protocol.received == frame(0x2, b"whole", mask=mask)
        assert poller.unregister(ours.fileno())


def test_a_receiver_must_be_a_connection_a_c_inbox_and_its_settings() -> None:
    poller, buffer = make_poller()
    inbox = c_twin_or_skip("Inbox")(1, 1, lambda: None, lambda: None)
    with socket_pairs(1) as [(ours, _)]:
        for receiver in [(Connection(Role.SERVER), object(), True, None), ("c", inbox, 1, None)]:
            with pytest.raises(TypeError, match="receiver"):
                poller.register(ours.fileno(), RecordingProtocol(buffer), receiver)
        assert len(poller) == 0
        poller.register(ours.fileno(), RecordingProtocol(buffer), None)
        assert len(poller) == 1
