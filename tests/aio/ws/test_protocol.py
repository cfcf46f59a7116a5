"""WebSocketProtocol (aio/ws/protocol.py), the side the event loop drives: flow control both
ways (reading pauses past max_queue, send() waits above write_limit), a peer that stops reading
or vanishes, write_limit reaching the transport, and the closing handshake's TCP side and
timers. The in-memory tests run on a FakeTransport with a ManualClock (tests/aio/fakes.py)."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Awaitable, Callable

import pytest

import framewire
from framewire import ConnectionClosedError
from framewire.aio.ws.websocket import WebSocket
from framewire.sansio.connection import Connection, Role, State
from framewire.sansio.events import BinaryMessage, CloseReceived, TextMessage
from tests.aio.fakes import ManualClock, open_websocket
from tests.aio.helpers import echo, run_with_server
from tests.conformance.rawclient import RawClient, client_frame
from tests.waiting import wait_until


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
