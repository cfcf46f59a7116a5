"""Keepalive (aio/ws/keepalive.py and WebSocket's use of it), on a manual clock, fake transport.

Each test counts the pings the peer received and the pongs it sent back, and moves the clock to
just before and just after each deadline: a keepalive that never pings, pings late, or ignores
pongs fails here without any test waiting for real time to pass. The last two tests run
end to end on 127.0.0.1: a silent peer closed by the ping timeout, and real pongs counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import framewire
from framewire import ConnectionClosedError
from framewire.aio.ws.keepalive import PingTracker
from framewire.aio.ws.websocket import WebSocket
from framewire.exceptions import InvalidState
from framewire.sansio.connection import State
from framewire.sansio.events import CloseReceived, Ping
from tests.aio.fakes import ManualClock, open_websocket
from tests.aio.helpers import run_with_server
from tests.conformance.rawclient import RawClient
from tests.waiting import wait_until

INTERVAL = 20.0
TIMEOUT = 10.0
TICK = 0.001  # a moment, in seconds: well below any interval here


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 10))


def test_a_ping_goes_out_every_ping_interval_and_each_answered_one_keeps_the_connection() -> None:
    async def main() -> None:
        clock = ManualClock()
        ws, transport, peer = open_websocket(clock, ping_interval=INTERVAL, ping_timeout=TIMEOUT)
        for round_trip in range(1, 6):
            clock.advance(INTERVAL - TICK)
            peer.answer()
            assert peer.pings_received == round_trip - 1, "pinged before ping_interval"
            clock.advance(TICK)
            events = peer.answer()
            assert [type(event) for event in events] == [Ping], f"round {round_trip}"
            assert (peer.pings_received, peer.pongs_sent) == (round_trip, round_trip)
            # The pong arrived: no ping timeout is armed any more, only the next keepalive.
            assert [timer.when for timer in clock.pending()] == [clock.now + INTERVAL]
        clock.advance(INTERVAL - TICK)  # well past each ping's timeout: still open
        assert ws.state is State.OPEN and not transport.closing
        assert ws.close_code is None

    run(main)


def test_a_ping_without_a_pong_closes_with_1011_after_ping_timeout() -> None:
    async def main() -> None:
        clock = ManualClock()
        ws, transport, peer = open_websocket(clock, ping_interval=INTERVAL, ping_timeout=TIMEOUT)
        clock.advance(INTERVAL)
        assert [type(event) for event in peer.receive()] == [Ping]  # read, never answered
        clock.advance(TIMEOUT - TICK)
        assert ws.state is State.OPEN and not transport.closing
        assert peer.receive() == []
        clock.advance(TICK)
        assert peer.receive() == [CloseReceived(1011, "keepalive ping timeout")]
        assert transport.aborted
        await asyncio.wait_for(ws.wait_closed(), 5)
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv()
        assert "keepalive ping timeout" in str(info.value) and "blocked" in str(info.value)
        assert peer.pings_received == 1 and peer.pongs_sent == 1  # the pong was never flushed

    run(main)


def test_a_late_pong_within_ping_timeout_keeps_the_connection_and_the_rhythm() -> None:
    async def main() -> None:
        clock = ManualClock()
        ws, transport, peer = open_websocket(clock, ping_interval=INTERVAL, ping_timeout=TIMEOUT)
        clock.advance(INTERVAL)
        peer.receive()
        clock.advance(TIMEOUT - TICK)
        peer.flush()  # the pong, just in time
        clock.advance(2 * TICK)  # past where the timeout would have fired
        assert ws.state is State.OPEN and not transport.closing
        # The next ping comes ping_interval after the previous one, not after the pong.
        clock.advance(INTERVAL - TIMEOUT - 2 * TICK)
        assert peer.answer() == []
        clock.advance(TICK)
        events = peer.answer()
        assert [type(event) for event in events] == [Ping]
        assert (peer.pings_received, peer.pongs_sent) == (2, 2)

    run(main)


def test_no_second_ping_while_the_first_still_waits_for_its_pong() -> None:
    async def main() -> None:
        clock = ManualClock()
        ws, transport, peer = open_websocket(clock, ping_interval=5, ping_timeout=12)
        clock.advance(5)
        assert [type(event) for event in peer.receive()] == [Ping]
        clock.advance(5)
        clock.advance(5)
        assert peer.receive() == []  # two intervals passed: still the one ping waiting
        assert ws.state is State.OPEN
        clock.advance(2)  # 12 s after the ping
        assert peer.receive() == [CloseReceived(1011, "keepalive ping timeout")]
        assert peer.pings_received == 1 and transport.aborted

    run(main)


def test_a_pong_that_answers_no_ping_does_not_keep_the_connection_open() -> None:
    async def main() -> None:
        clock = ManualClock()
        ws, transport, peer = open_websocket(clock, ping_interval=INTERVAL, ping_timeout=TIMEOUT)
        clock.advance(INTERVAL)
        peer.receive()
        peer.connection.data_to_send()  # drop the pong the peer's Connection queued
        peer.send_pong(b"not yours")  # unsolicited (RFC 6455 5.5.3): proves nothing
        clock.advance(TIMEOUT)
        assert peer.receive() == [CloseReceived(1011, "keepalive ping timeout")]
        assert transport.aborted and peer.pings_received == 1
        await asyncio.wait_for(ws.wait_closed(), 5)

    run(main)


def test_without_ping_interval_no_timer_is_armed_and_no_ping_sent() -> None:
    async def main() -> None:
        clock = ManualClock()
        ws, _, peer = open_websocket(clock, ping_interval=None)
        assert clock.pending() == []
        clock.advance(3600)
        assert peer.receive() == [] and clock.calls == 0
        assert ws.state is State.OPEN

    run(main)


def test_keepalive_stops_when_the_connection_closes() -> None:
    async def main() -> None:
        clock = ManualClock()
        ws, transport, peer = open_websocket(clock, ping_interval=INTERVAL, ping_timeout=TIMEOUT)
        clock.advance(INTERVAL)
        peer.answer()
        assert peer.pings_received == 1
        peer.connection.send_close(1000, "bye")
        peer.flush()  # the server answers the close and closes the TCP connection
        assert transport.closing
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert peer.receive() == [CloseReceived(1000, "")]  # the echo of the close
        assert clock.pending() == []  # the keepalive and close timers were cancelled
        clock.advance(10 * INTERVAL)
        assert peer.receive() == [] and peer.pings_received == 1

    run(main)


# PingTracker on its own.


class Pinger:
    """Records the pings a PingTracker sends; ``can_send`` False plays a closing connection."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.timeouts = 0
        self.can_send = True

    def send_ping(self, payload: bytes) -> bool:
        if self.can_send:
            self.sent.append(payload)
        return self.can_send

    def timed_out(self) -> None:
        self.timeouts += 1


def test_ping_tracker_counts_pings_and_pongs_on_its_own() -> None:
    async def main() -> None:
        clock = ManualClock()
        pinger = Pinger()
        tracker = PingTracker(pinger.send_ping, pinger.timed_out, 5, 2, timers=clock)
        tracker.keepalive()  # as the owner's first timer would
        for count in range(1, 4):
            assert len(pinger.sent) == count
            tracker.pong_received(pinger.sent[-1])
            clock.advance(5)
        assert len(pinger.sent) == 4 and pinger.timeouts == 0
        clock.advance(2)  # no pong for the fourth
        assert pinger.timeouts == 1
        pinger.can_send = False  # the connection is closing: keepalive stops for good
        clock.advance(3)
        assert len(pinger.sent) == 4 and clock.pending() == []

    run(main)


def test_a_pong_resolves_its_ping_and_every_earlier_one() -> None:
    async def main() -> None:
        clock = ManualClock()
        pinger = Pinger()
        tracker = PingTracker(pinger.send_ping, pinger.timed_out, None, None, timers=clock)
        first, second, third = (tracker.register(payload) for payload in (b"1", b"2", b"3"))
        with pytest.raises(InvalidState, match="already waiting"):
            tracker.register(b"2")
        tracker.pong_received(b"unknown")
        assert not first.done()
        tracker.pong_received(b"2")
        assert first.result() >= 0 and second.result() >= 0 and not third.done()
        assert tracker.new_payload() not in (b"3",)
        closed = ConnectionClosedError(1006, "")
        tracker.close(closed)
        assert third.exception() is closed

    run(main)


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


def test_keepalive_pings_answered_keep_the_connection_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """End to end: the server's keepalive pings reach a real client, whose pongs come back.
    Counted at the server: pings registered, pongs matched (the tests above check each
    deadline on a manual clock)."""
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
