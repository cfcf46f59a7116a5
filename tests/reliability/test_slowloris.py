"""Slowloris: a client that sends its request head a byte at a time and never finishes it.

The server must drop it when HTTPLimits.header_timeout has passed since the head began (a 408
then a close, or a close), however steadily the bytes arrive: a timer that restarted at every
byte would let it stay forever. Meanwhile the server keeps answering other clients at once, and
200 such clients together do not hold back a normal one.

A slowloris client paces itself by waiting for the server's answer for PACE seconds before its
next byte: it stops as soon as the server answers or closes, and never sleeps blindly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

import framewire
from framewire.http import App, HTTPLimits, Request, Response, text_response
from tests.waiting import run_within, wait_until

TEST_TIMEOUT = 60.0  # seconds for one whole test
PACE = 0.05  # seconds between a slowloris client's bytes
SLOW_HEAD = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n" + b"".join(
    b"X-Padding-%d: %s\r\n" % (index, b"a" * 40) for index in range(200)
)  # never ends: no blank line, and longer than any test dribbles
NORMAL_REQUEST = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def app() -> App:
    application = App()

    @application.get("/hello")
    async def hello(request: Request) -> Response:
        return text_response("hello")

    @application.websocket("/ws")
    async def echo(ws: framewire.WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    return application


@asynccontextmanager
async def serving(header_timeout: float) -> AsyncIterator[int]:
    limits = HTTPLimits(header_timeout=header_timeout)
    async with framewire.serve(app(), "127.0.0.1", 0, http_limits=limits) as server:
        yield server.sockets[0].getsockname()[1]


def run(main: Callable[[], Awaitable[None]]) -> None:
    run_within(main, TEST_TIMEOUT)


@dataclass
class Dropped:
    """How the server ended a slowloris connection."""

    answer: bytes  # what the server sent (a 408 response, or nothing)
    seconds: float  # from the first byte of the head to the close
    bytes_sent: int  # of the head, before the server answered


async def slowloris(
    port: int,
    *,
    first_request: bool = False,
    dribbling: set[int] | None = None,
    give_up_after: float,
) -> Dropped:
    """Dribble SLOW_HEAD a byte every PACE seconds until the server answers and closes.

    With ``first_request`` a whole request is answered on the connection first, so the slow
    head is a keep-alive connection's second one. ``dribbling`` gets the client's port once
    its first byte is sent.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if first_request:
            writer.write(NORMAL_REQUEST)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200 "), head
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        started = time.monotonic()
        sent = 0
        answer = b""
        try:
            async with asyncio.timeout(give_up_after):
                while True:
                    if sent < len(SLOW_HEAD) and not writer.is_closing():
                        try:
                            writer.write(SLOW_HEAD[sent : sent + 1])
                            sent += 1
                            if dribbling is not None:
                                dribbling.add(writer.get_extra_info("sockname")[1])
                        except ConnectionError:
                            pass  # the server is gone: read what it said
                    try:
                        async with asyncio.timeout(PACE):
                            chunk = await reader.read(4096)
                    except TimeoutError:
                        continue  # no answer yet: the next byte
                    except ConnectionError:
                        chunk = b""
                    if not chunk:
                        return Dropped(answer, time.monotonic() - started, sent)
                    answer += chunk
        except TimeoutError:
            raise AssertionError(
                f"a slowloris still connected after {give_up_after} s and {sent} bytes"
            ) from None
    finally:
        writer.close()


async def normal_request(port: int) -> bytes:
    """Send one whole request on a new connection; return the whole response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(NORMAL_REQUEST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        answer = await asyncio.wait_for(reader.read(-1), 10)
    finally:
        writer.close()
    return answer


def assert_dropped_at_header_timeout(dropped: Dropped, header_timeout: float) -> None:
    assert dropped.answer == b"" or dropped.answer.startswith(b"HTTP/1.1 408 "), dropped.answer
    # The timer runs from the connection's start (a keep-alive connection's: from the first
    # byte of its next head), whatever arrives after that.
    assert header_timeout - 0.05 <= dropped.seconds <= header_timeout + 2.0, dropped
    assert dropped.bytes_sent >= header_timeout / PACE / 4, dropped  # it was dribbling


@pytest.mark.parametrize("first_request", [False, True], ids=["first-head", "keep-alive-head"])
def test_a_slowloris_is_dropped_at_the_header_timeout_while_others_are_served(
    first_request: bool,
) -> None:
    header_timeout = 0.6

    async def main() -> None:
        async with serving(header_timeout) as port:
            dribbling: set[int] = set()
            slow = asyncio.ensure_future(
                slowloris(
                    port,
                    first_request=first_request,
                    dribbling=dribbling,
                    give_up_after=header_timeout + 5,
                )
            )
            await wait_until(lambda: dribbling, header_timeout / 2, "the slowloris dribbles")
            served = 0
            while not slow.done():
                answer = await normal_request(port)
                assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nhello")
                served += 1
            dropped = await slow
            assert_dropped_at_header_timeout(dropped, header_timeout)
            assert served >= 3  # requests were answered while the slowloris dribbled
            # A WebSocket works too, after it.
            async with framewire.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.send("still here")
                assert await ws.recv() == "still here"

    run(main)


def test_two_hundred_slowloris_clients_do_not_hold_back_a_normal_client() -> None:
    header_timeout = 3.0
    count = 200

    async def main() -> None:
        async with serving(header_timeout) as port:
            dribbling: set[int] = set()
            slow = [
                asyncio.ensure_future(
                    slowloris(port, dribbling=dribbling, give_up_after=header_timeout + 5)
                )
                for _ in range(count)
            ]
            await wait_until(
                lambda: len(dribbling) == count, header_timeout / 2, "every slowloris dribbles"
            )
            for _ in range(10):
                answer = await normal_request(port)
                assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nhello")
                async with framewire.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                    await ws.send("hi")
                    assert await ws.recv() == "hi"
            # Every normal client was answered while all 200 were still connected.
            assert not any(task.done() for task in slow), [t.result() for t in slow if t.done()]
            for dropped in await asyncio.gather(*slow):
                assert_dropped_at_header_timeout(dropped, header_timeout)

    run(main)
