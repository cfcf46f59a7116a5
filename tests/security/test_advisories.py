"""One test per class of bug in shared/SECURITY-HISTORY.md: framewire is not open to it.

Each docstring names the advisory (CVE, GHSA or release) that shipped the bug elsewhere. Most
tests feed bytes to the sans-I/O parsers (fast and deterministic); the few that need the asyncio
layer bind 127.0.0.1 port 0 and finish within a timeout. Complexity tests compare the time of
n and 4n units (linear: about 4x; quadratic: 16x) on this thread's CPU clock, best of three, so
other processes on the machine do not count.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import gc
import gzip
import logging
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import framewire
from framewire.exceptions import HTTPError, InvalidStatus
from framewire.http.app import App
from framewire.http.messages import Request, Response, text_response
from framewire.http.uploads import save_uploads
from framewire.sansio import deflate as deflate_module
from framewire.sansio.connection import Connection, Role
from framewire.sansio.deflate import (
    DeflateConfig,
    DeflateParameters,
    PerMessageDeflate,
    parse_extension_header,
    server_negotiate,
)
from framewire.sansio.events import ConnectionFailed, MessageChunk
from framewire.sansio.field_lines import py_parse_field_lines
from framewire.sansio.handshake import accept_request
from framewire.sansio.headers import Headers
from framewire.sansio.http11 import (
    BadRequest,
    BadResponse,
    BodyData,
    EndOfMessage,
    RequestHead,
    RequestParser,
    ResponseParser,
)
from framewire.sansio.limits import HTTPLimits, WebSocketLimits
from framewire.sansio.multipart import (
    MultipartFailed,
    MultipartParser,
    PartData,
    parse_boundary,
    parse_options_header,
)
from tests.conformance.rawclient import RawClient, client_frame
from tests.conftest import c_twin_or_skip
from tests.sansio.ws_helpers import frame
from tests.waiting import wait_until

SRC = Path(framewire.__file__).resolve().parent
FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
TIMEOUT = 10.0
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = (
    "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
)


# ------------------------------------------------------------------------------ helpers


def cpu_seconds(run: Callable[[], object], repeat: int = 3) -> float:
    """Best of ``repeat`` runs of ``run()`` on this thread's CPU clock."""
    best = float("inf")
    for _ in range(repeat):
        start = time.thread_time()
        run()
        best = min(best, time.thread_time() - start)
    return best


def assert_linear(make: Callable[[int], Callable[[], object]], n: int, what: str) -> None:
    """Time make(n)() and make(4 * n)(); 4x the input may cost at most ~8x the time."""
    small = cpu_seconds(make(n))
    large = cpu_seconds(make(4 * n))
    assert large < 8 * small + 0.02, (
        f"{what}: {small * 1e3:.1f} ms for n={n}, {large * 1e3:.1f} ms for 4n: not linear"
    )


@contextlib.contextmanager
def traced_memory() -> Iterator[dict[str, int]]:
    """Measure the peak of Python allocations inside the block, above what was held before."""
    gc.collect()
    tracemalloc.start()
    result: dict[str, int] = {}
    base = tracemalloc.get_traced_memory()[0]
    try:
        yield result
    finally:
        current, peak = tracemalloc.get_traced_memory()
        result["peak"] = peak - base
        result["held"] = current - base
        tracemalloc.stop()


def request_events(data: bytes, limits: HTTPLimits | None = None, *, pieces: int = 1) -> list[Any]:
    """Parse ``data`` as requests (whole, or in ``pieces`` equal reads); pipelined ones too."""
    parser = RequestParser(limits or HTTPLimits())
    events: list[Any] = []
    size = max(1, len(data) // pieces)
    for start in range(0, len(data), size):
        parser.receive_data(data[start : start + size])
        while parser.has_more_to_parse:
            parser.parse_more()
        for event in parser.events_received():
            events.append(event)
            if isinstance(event, EndOfMessage):
                parser.next_request()
                events.extend(parser.events_received())
    return events


def bad_status(data: bytes, limits: HTTPLimits | None = None) -> int | None:
    """The status of the BadRequest the request gets, or None when it is accepted."""
    for event in request_events(data, limits):
        if isinstance(event, BadRequest):
            return event.http_status
    return None


def deflate_bomb(inflated_mib: int) -> bytes:
    """Raw DEFLATE data (no final block, tail stripped) inflating to ``inflated_mib`` MiB of
    zeros, built from one repeated sync-flushed block so that it costs no time to make."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(1 << 20)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert block == again, "zlib's output for a run of zeros is not periodic here"
    return first + block * (inflated_mib - 1)


def deflate(is_server: bool) -> PerMessageDeflate:
    return PerMessageDeflate(DeflateParameters(), is_server=is_server, config=DeflateConfig())


def failure_of(connection: Connection) -> int | None:
    return None if connection.failure is None else connection.failure.code


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 3 * TIMEOUT))


def port_of(server: Any) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


# ------------------------------------------------------------------------ websockets (WS)


class CountingZlib:
    """The zlib module as sansio/deflate.py sees it, counting the bytes it inflates: the work
    is counted, not timed (a fast machine inflates a whole bomb within any sane time bound, and
    a loaded one may miss a tight bound without inflating too much)."""

    def __init__(self) -> None:
        self.inflated = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(zlib, name)

    def decompressobj(self, *args: Any) -> Any:
        inner = zlib.decompressobj(*args)
        counter = self

        class CountingDecompressor:
            def decompress(self, data: Any, max_length: int = 0) -> bytes:
                output = inner.decompress(data, max_length)
                counter.inflated += len(output)
                return output

            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

        return CountingDecompressor()


@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
def test_ws_cve_2018_1000518_deflate_bomb_closes_1009_within_twice_the_limit(
    role: Role, monkeypatch: pytest.MonkeyPatch
) -> None:
    """websockets CVE-2018-1000518 (fixed in 5.0): max_size was not applied to inflated data.

    A frame inflating to 1 GiB (about 1 MiB on the wire: DEFLATE tops out near 1032:1, so no
    1 KiB frame can), arriving in 64 KiB reads, closes with 1009 after inflating just past
    max_message_size, with Python allocations peaking under twice the limit (plus 256 KiB for
    the reads in flight), on either side and on either path.
    """
    limit = 1 << 20
    payload = deflate_bomb(1024)
    is_server = role is Role.SERVER
    data = frame(2, payload, rsv1=True, mask=b"\x01\x02\x03\x04" if is_server else None)
    connection = Connection(
        role, limits=WebSocketLimits(max_message_size=limit), deflate=deflate(is_server)
    )
    reads = [data[start : start + (64 << 10)] for start in range(0, len(data), 64 << 10)]
    counting = CountingZlib()
    monkeypatch.setattr(deflate_module, "zlib", counting)
    with traced_memory() as memory:
        for read in reads:
            connection.receive_data(read)
    assert failure_of(connection) == 1009
    assert memory["peak"] < 2 * limit + (256 << 10), memory
    # A bomb is never inflated to the end: no more than max_message_size + 1 bytes of it.
    assert 0 < counting.inflated <= limit + 1, counting.inflated


def test_ws_cve_2021_33880_no_secret_is_compared_with_a_plain_operator() -> None:
    """websockets CVE-2021-33880 (fixed in 9.1): Basic Auth passwords were compared with ==.

    framewire checks no credentials itself (the client only sends user info from the URI); this
    lint keeps it that way: no comparison in src/framewire involves a name that says password,
    secret, credential, signature or digest, unless it goes through hmac.compare_digest.
    """
    secret_words = {"password", "passwd", "secret", "credential", "credentials", "signature"}
    secret_words |= {"digest", "apikey", "authorization", "auth"}
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            for operand in (node.left, *node.comparators):
                for sub in ast.walk(operand):
                    name = sub.id if isinstance(sub, ast.Name) else getattr(sub, "attr", "")
                    if set(name.lower().split("_")) & secret_words:
                        offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {name}")
    assert offenders == [], "compare secrets with hmac.compare_digest: " + ", ".join(offenders)


def test_ws_16_1_rsv1_on_a_continuation_frame_is_1002() -> None:
    """websockets 16.1 hardening: RSV1 on a continuation frame was accepted (RFC 7692 6.1)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    start = compressor.compress(b"hello") + compressor.flush(zlib.Z_SYNC_FLUSH)
    rest = compressor.compress(b" world") + compressor.flush(zlib.Z_SYNC_FLUSH)
    connection = Connection(Role.SERVER, deflate=deflate(True))
    connection.receive_data(frame(1, start, fin=False, rsv1=True))
    connection.receive_data(frame(0, rest[:-4], rsv1=True))
    assert failure_of(connection) == 1002
    assert connection.failure is not None and "RSV1" in connection.failure.reason


def test_ws_16_1_and_ws_node_2022_a_redirect_is_never_followed_with_credentials() -> None:
    """websockets 16.1 and ws #2013 (2022): Authorization and Cookie went along on redirects
    to another origin. framewire's client follows no redirect at all: a 302 is InvalidStatus,
    and the other origin never hears from it."""

    async def scenario() -> None:
        other_origin_connections = 0

        async def other(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal other_origin_connections
            other_origin_connections += 1
            writer.close()

        other_server = await asyncio.start_server(other, "127.0.0.1", 0)
        other_port = other_server.sockets[0].getsockname()[1]

        async def redirecting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:%d/\r\nContent-Length: 0\r\n"
                b"Connection: close\r\n\r\n" % other_port
            )
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(redirecting, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, other_server:
            with pytest.raises(InvalidStatus) as caught:
                await framewire.connect(
                    f"ws://user:secret@127.0.0.1:{port}/",
                    extra_headers=[("Cookie", "session=1"), ("Proxy-Authorization", "Basic x")],
                    open_timeout=TIMEOUT,
                )
            assert caught.value.status == 302
            # A probe of our own: the other origin accepts in order, so a connection the client
            # made while following the redirect would be counted before it.
            _, probe = await asyncio.open_connection("127.0.0.1", other_port)
            await wait_until(lambda: other_origin_connections >= 1, what="the probe accepted")
            probe.close()
        assert other_origin_connections == 1  # the probe alone

    run(scenario())


# ------------------------------------------------------------------------- wsproto (WP)


def test_wp_design_inflation_is_bounded_at_the_sans_io_layer() -> None:
    """wsproto (by design, extensions.py:230): no size limit, unbounded inflate.

    framewire's sans-I/O layer has a default limit (1 MiB), and PerMessageDeflate itself never
    hands out more than max_size bytes of a message before raising PayloadTooBig.
    """
    assert WebSocketLimits().max_message_size == 1 << 20
    receiver = deflate(True)
    handed_out = 0
    with pytest.raises(framewire.PayloadTooBig), traced_memory() as memory:
        for piece in receiver.decompress(deflate_bomb(64), final=True, max_size=1 << 20):
            handed_out += len(piece)
    assert handed_out <= 1 << 20
    assert memory["peak"] < 3 << 20, memory


# ------------------------------------------------------------------------- uvicorn (UV)


def test_uv_pr_2915_fragmented_oversize_message_is_1009_in_every_mode() -> None:
    """uvicorn PR #2915 (2026-04): the wsproto backend ignored ws_max_size.

    Every way framewire receives (whole messages, streamed chunks, the receive_messages()
    fast path, one read or a byte per read) closes a fragmented message past the limit with
    1009. The C and pure-Python paths are both exercised: the suite runs once more with
    FRAMEWIRE_NO_SPEEDUPS=1.
    """
    limits = WebSocketLimits(max_message_size=1000)
    data = frame(2, b"x" * 600, fin=False) + frame(0, b"y" * 600)
    for stream in (False, True):
        for pieces in ([data], [data[i : i + 1] for i in range(len(data))]):
            connection = Connection(Role.SERVER, limits=limits, stream_messages=stream)
            for piece in pieces:
                out: list[Any] = []
                used = connection.receive_messages(piece, out)
                connection.receive_data(piece[used:])
            assert failure_of(connection) == 1009, (stream, len(pieces))


def test_uv_pr_2915_fragmented_oversize_message_is_1009_over_a_socket() -> None:
    """uvicorn PR #2915: the same through the asyncio server, as a peer sees it."""

    async def scenario() -> None:
        async def handler(ws: Any) -> None:
            async for _ in ws:
                pass

        async with framewire.serve(handler, "127.0.0.1", 0, max_message_size=1000) as server:
            client = await RawClient.connect(port_of(server))
            await client.send(client_frame(2, b"x" * 600, fin=False) + client_frame(0, b"y" * 600))
            await client.expect_close(1009)

    run(scenario())


# ---------------------------------------------------------------------------- ws (NW)


@pytest.mark.parametrize("method", ["send_ping", "send_pong", "send_binary"])
@pytest.mark.parametrize("argument", [5, 5.0, None, [1, 2]])
def test_nw_1_0_1_a_number_is_never_a_payload(method: str, argument: object) -> None:
    """ws 1.0.1 (2016-01) "Buffer vulnerability": ping(50) sent 50 bytes of uninitialised
    memory. framewire refuses anything but bytes-like payloads with TypeError."""
    connection = Connection(Role.SERVER)
    with pytest.raises(TypeError):
        getattr(connection, method)(argument)
    assert connection.data_to_send() == []


def test_nw_1_0_1_and_8_20_1_the_asyncio_api_refuses_numbers_too() -> None:
    """ws 1.0.1 and 8.20.1: numbers (or typed arrays) as ping data or close reason. framewire's
    WebSocket.ping(), send() and close() raise TypeError and send nothing."""

    async def scenario() -> None:
        async def handler(ws: Any) -> None:
            for call in (lambda: ws.ping(50), lambda: ws.send(50), lambda: ws.close(1000, 50)):
                with pytest.raises(TypeError):
                    await call()
            await ws.send("done")

        async with framewire.serve(handler, "127.0.0.1", 0, compression=None) as server:
            client = await RawClient.connect(port_of(server))
            assert await client.read_message() == (1, b"done")
            await client.expect_close(1000)

    run(scenario())


@pytest.mark.parametrize("reason", [b"abc", bytearray(10), memoryview(b"x"), 7])
def test_nw_8_20_1_close_reason_must_be_text(reason: object) -> None:
    """ws 8.20.1 (2026-05): a TypedArray close reason disclosed uninitialised memory.
    framewire's send_close() takes str only."""
    connection = Connection(Role.SERVER)
    with pytest.raises(TypeError):
        connection.send_close(1000, reason)  # type: ignore[arg-type]
    assert connection.data_to_send() == [] and connection.close_sent is None


def test_nw_3_3_1_extension_header_with_prototype_names_and_64_kib_in_linear_time() -> None:
    """ws 3.3.1 (2017-11): DoS in the Sec-WebSocket-Extensions parser (``__proto__`` and
    ``constructor`` params poisoned an object; a long header took quadratic time).

    framewire returns plain lists of pairs: such names are just names, and the offer is declined
    without error. 64 KiB of separators or parameters parse in linear time.
    """
    offer = "permessage-deflate; __proto__; constructor=1; hasOwnProperty"
    assert parse_extension_header([offer]) == [
        (
            "permessage-deflate",
            [("__proto__", None), ("constructor", "1"), ("hasOwnProperty", None)],
        )
    ]
    assert server_negotiate([offer], DeflateConfig()) is None

    def header(n: int) -> Callable[[], object]:
        value = "x" + "; a=b" * n + ", " + " ," * n
        return lambda: parse_extension_header([value])

    assert_linear(header, 3000, "Sec-WebSocket-Extensions")
    start = time.thread_time()
    parse_extension_header(["," * 65536])
    parse_extension_header([" " * 65536])
    assert time.thread_time() - start < 1.0  # a backtracking parse takes seconds or more


@pytest.mark.parametrize("filler", [" ", ",", " ,", "\t, ", "a, "])
def test_nw_cve_2021_32640_64_kib_sec_websocket_protocol_is_parsed_without_backtracking(
    filler: str,
) -> None:
    """ws 7.4.6 (2021-05), CVE-2021-32640: ReDoS in the Sec-WebSocket-Protocol parser."""
    value = (filler * (65536 // len(filler)))[:65536]
    headers = Headers([*(line.split(": ", 1) for line in UPGRADE.strip().split("\r\n")[1:])])
    headers.add("Sec-WebSocket-Protocol", value + "x")
    elapsed = cpu_seconds(lambda: accept_request("GET", "1.1", headers, subprotocols=["chat"]))
    # About 1 ms here; the quadratic parser of the advisory took seconds on 64 KiB. The bound
    # only catches that, not a slow turn of a busy machine.
    assert elapsed < 1.0, f"{elapsed * 1e3:.1f} ms"


def test_nw_cve_2024_37890_more_headers_than_the_limit_get_431_and_the_server_lives() -> None:
    """ws 8.17.1 (2024-06), CVE-2024-37890: a request with more headers than maxHeadersCount
    crashed the server (the key header was dropped). framewire answers 431 (in the sans-I/O
    parser and over a socket, where the C fast path declines first), then serves the next
    client."""
    limits = HTTPLimits()
    extra = "".join(f"X-{index}: v\r\n" for index in range(limits.max_headers))
    request = (UPGRADE + extra + "\r\n").encode()
    assert bad_status(request, limits) == 431

    async def scenario() -> None:
        async def handler(ws: Any) -> None:
            await ws.send("hi")

        async with framewire.serve(handler, "127.0.0.1", 0) as server:
            port = port_of(server)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            assert head.startswith(b"HTTP/1.1 431"), head
            writer.close()
            async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
                assert await ws.recv() == "hi"

    run(scenario())


def test_nw_cve_2026_48779_100k_one_byte_fragments_sans_io_memory_bounded_1009() -> None:
    """ws 8.21.0 (2026-05), CVE-2026-48779: memory exhaustion from many tiny fragments and tiny
    reads (ws retained a part per fragment, not bytes).

    100,000 one-byte fragments, eight frames per read, fail with 1009 at the fragment limit
    (65,536 for 1 MiB). Memory is traced over the last 5,000 fragments before the limit (cheaper
    than tracing all, and a part kept per fragment would show there as well): they add no more
    than their payload. Fed one byte per read, the same holds at a smaller limit.
    """
    first = frame(2, b"x", fin=False)
    fragment = frame(0, b"x", fin=False)
    connection = Connection(Role.SERVER)
    connection.receive_data(first)
    for _ in range(60_000 // 8):
        connection.receive_data(fragment * 8)
    with traced_memory() as memory:
        for _ in range(5000 // 8):
            connection.receive_data(fragment * 8)
    assert connection.failure is None
    assert memory["held"] < 256 << 10, memory  # a part per fragment would be 500 KB or more
    for _ in range(40_000 // 8):
        connection.receive_data(fragment * 8)
        if connection.failure is not None:
            break
    assert failure_of(connection) == 1009

    data = first + fragment * 5000
    connection = Connection(Role.SERVER, limits=WebSocketLimits(max_message_size=1 << 16))
    cut = len(fragment) * 3000
    for index in range(cut):
        connection.receive_data(data[index : index + 1])
    with traced_memory() as memory:
        for index in range(cut, cut + 7000):
            connection.receive_data(data[index : index + 1])
    assert connection.failure is None
    assert memory["held"] < 48 << 10, memory  # 1,000 fragments: 100 KB if each kept a part
    for index in range(cut + 7000, len(data)):
        connection.receive_data(data[index : index + 1])
        if connection.failure is not None:
            break
    assert failure_of(connection) == 1009


def test_nw_cve_2026_48779_tiny_fragments_over_a_socket_hold_under_twice_the_limit() -> None:
    """ws CVE-2026-48779 through the asyncio server: a peer sending 30,000 one-byte fragments
    to a handler that is busy must not make the server hold more than twice max_message_size."""

    async def scenario() -> int:
        release = asyncio.Event()

        async def handler(ws: Any) -> None:
            await release.wait()

        async with framewire.serve(handler, "127.0.0.1", 0, compression=None) as server:
            client = await RawClient.connect(port_of(server))
            data = client_frame(2, b"x", fin=False) + client_frame(0, b"x", fin=False) * 30_000
            with traced_memory() as memory:
                await client.send(data)
                # The server answers a ping after the frames before it: a barrier that shows
                # it read everything the socket held.
                await client.send(client_frame(9, b"barrier"))
                _, _, opcode, payload = await client.read_frame()
                assert (opcode, payload) == (10, b"barrier")
            release.set()
            client.writer.close()
        return memory["held"]

    held = run(scenario())
    assert held < 2 << 20, f"held {held} bytes"


# --------------------------------------------------------------------------- aiohttp (AH)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX\r: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\nY: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n",
        b"GET / HTTP/1.1\r\rHost: a\r\n\r\n",
    ],
)
def test_ah_ghsa_45c4_8wx5_qw6w_bare_cr_or_lf_in_a_head_is_400_on_both_paths(
    request_bytes: bytes,
) -> None:
    """aiohttp GHSA-45c4-8wx5-qw6w (3.8.5, 2023): llhttp took a CR inside a header value for
    the start of a new header (request smuggling). Both the C and the Python field-line parsers
    decline such a head, and the request gets 400."""
    assert bad_status(request_bytes) == 400
    c_parse = c_twin_or_skip("parse_field_lines")
    start = request_bytes.index(b"\r\n") + 2
    end = request_bytes.rindex(b"\r\n\r\n")
    if start <= end:  # else the request line itself is what is wrong
        assert py_parse_field_lines(request_bytes, start, end, 8190, 100) is None
        assert c_parse(request_bytes, start, end, 8190, 100) is None


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),  # obs-fold (9112 5.2)
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),  # space before the colon (5.1)
        (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),  # leading whitespace
        (b"GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", 400),  # not a token
        (b"GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n", 400),  # empty name
        (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),  # method not a token (9110 9.1)
        (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),  # space in the target (9112 3.2)
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),  # two spaces (9112 3)
        (b"GET / http/1.1\r\nHost: a\r\n\r\n", 400),  # the version is case-sensitive (2.3)
        (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host (9112 3.2)
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x1\r\n\r\nx", 400),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400),
    ],
)
def test_ah_ghsa_pjjw_qhg8_p2p9_and_gfw2_4jvh_wgfg_rfc_9112_grammar(
    request_bytes: bytes, status: int
) -> None:
    """aiohttp GHSA-pjjw-qhg8-p2p9 and GHSA-gfw2-4jvh-wgfg (3.8.6): the Python parser was not
    RFC 9110/9112 strict. Each malformed head or framing gets the status RFC 9112 asks for."""
    assert bad_status(request_bytes) == status


@pytest.mark.parametrize(
    "request_bytes",
    [
        "GET / HTTP/1ö1\r\nHost: a\r\n\r\n".encode(),
        "GET / HTTP/1.\U0001d7d9\r\nHost: a\r\n\r\n".encode(),  # MATHEMATICAL DOUBLE-STRUCK ONE
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Encoding?: gzip\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Léngth: 5\r\n\r\n".encode(),
        "GET /é HTTP/1.1\r\nHost: a\r\n\r\n".encode(),
        "GÉT / HTTP/1.1\r\nHost: a\r\n\r\n".encode(),
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \u0661\r\n\r\nx".encode(),  # Arabic 1
    ],
)
def test_ah_2024_python_parser_leniency_non_ascii_versions_and_tokens_are_refused(
    request_bytes: bytes,
) -> None:
    """aiohttp 2024 Python-parser leniency (chia-blockchain PR #17776): ``HTTP/1ö1``,
    ``HTTP/1.`` + MATHEMATICAL DOUBLE-STRUCK DIGIT ONE, and ``Content-Encoding?:`` were
    accepted. framewire refuses non-ASCII in the version, method, target, names and
    Content-Length digits."""
    status = bad_status(request_bytes)
    assert status is not None and 400 <= status < 600


@pytest.mark.parametrize(
    "body",
    [
        b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n" + b"\r\n-" * 2000,
        b"--b\r\n" + b"\r" * 5000,
        b"--b" + b" " * 5000,
        b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b\r\n\r\n",
        b"\r\n--b--" * 2000,
        b'--b\r\nContent-Disposition: form-data; name="' + b"\\" * 5000,
    ],
)
def test_ah_cve_2024_30251_multipart_ends_on_any_body(body: bytes) -> None:
    """aiohttp CVE-2024-30251 (3.9.4): a crafted multipart body made the parser loop forever.
    framewire's parser reaches an end (Finished, or MultipartFailed at EOF) within a second,
    whole and byte by byte; fuzz/fuzz_multipart.py checks this for any body."""
    for pieces in ([body], [body[i : i + 1] for i in range(len(body))]):
        parser = MultipartParser(b"b")
        start = time.thread_time()
        for piece in pieces:
            parser.receive_data(piece)
        parser.receive_eof()
        assert time.thread_time() - start < 1.0
        events = parser.events_received()
        assert events and type(events[-1]).__name__ in ("Finished", "MultipartFailed")


@pytest.mark.parametrize(
    "target",
    [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/%2e%2e%2fsecret.txt",
        "/static/sub/../../secret.txt",
        "/static/..%5csecret.txt",
        "/static/%00/../secret.txt",
        "/static/link/secret.txt",
        "/static/link.txt",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
    ],
)
def test_ah_cve_2024_23334_static_path_traversal_is_404(tmp_path: Path, target: str) -> None:
    """aiohttp CVE-2024-23334 (3.9.2, follow_symlinks) and #380 (2015): a static route served
    files outside its directory. framewire answers 404 for ``..`` in any encoding, backslashes,
    NUL, absolute paths and symlinks leading outside the mount."""
    root = tmp_path / "public"
    (root / "sub").mkdir(parents=True)
    (root / "index.txt").write_text("public")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link").symlink_to(tmp_path, target_is_directory=True)
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    app = App()
    app.static("/static", str(root))
    assert asyncio.run(app.handle_http(Request.build("GET", "/static/index.txt"))).status == 200
    response = asyncio.run(app.handle_http(Request.build("GET", target)))
    assert response.status in (404, 400), response.status


@pytest.mark.parametrize(
    "chunk_line",
    [b"1;a\nb", b"1;a=\nb", b"1\n", b"1;\x00", b"1;a\rb", b"1 ;a\x7f"],
)
def test_ah_cve_2024_52304_lf_or_ctl_in_a_chunk_extension_is_400(chunk_line: bytes) -> None:
    """aiohttp CVE-2024-52304 (3.10.11): the pure-Python parser accepted LF inside chunk
    extensions (request smuggling)."""
    request = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunk_line
        + b"\r\nx\r\n0\r\n\r\n"
    )
    assert bad_status(request) == 400


def test_ah_cve_2025_53643_trailers_are_parsed_and_the_next_request_is_found() -> None:
    """aiohttp CVE-2025-53643 (3.12.14): the pure-Python parser did not parse the trailer
    section, so a request hidden in it was smuggled. framewire parses trailers as fields
    (framing headers there change nothing), then the pipelined request after them."""
    data = (
        b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\nContent-Length: 50\r\n\r\n"
        b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    for pieces in (1, 7, len(data)):
        events = request_events(data, pieces=pieces)
        heads = [event.target for event in events if isinstance(event, RequestHead)]
        assert heads == ["/a", "/b"]
        body = b"".join(event.data for event in events if isinstance(event, BodyData))
        assert body == b"abc"
        ends = [event for event in events if isinstance(event, EndOfMessage)]
        assert ends[0].trailers.items() == [("X-Trailer", "1"), ("Content-Length", "50")]
    smuggled = data.replace(b"X-Trailer: 1\r\n", b"X-Trailer: 1\nGET /c HTTP/1.1\r\n")
    assert bad_status(smuggled) == 400
    folded = data.replace(b"X-Trailer: 1\r\n", b"X-Trailer: 1\r\n GET /c\r\n")
    assert bad_status(folded) == 400


def multipart_body(parts: list[tuple[str, bytes, str | None]], boundary: str = "b") -> bytes:
    chunks = []
    for name, content, filename in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        chunks.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    return b"".join(chunks) + f"--{boundary}--\r\n".encode()


def multipart_events(body: bytes, limits: HTTPLimits, read_size: int = 1 << 16) -> list[Any]:
    parser = MultipartParser(b"b", limits)
    events: list[Any] = []
    for start in range(0, len(body), read_size):
        parser.receive_data(body[start : start + read_size])
        events.extend(parser.events_received())
    parser.receive_eof()
    return events + parser.events_received()


def failure_status(events: list[Any]) -> int | None:
    failures = [event for event in events if isinstance(event, MultipartFailed)]
    return failures[0].error.http_status if failures else None


def test_ah_cve_2025_69228_the_form_size_counts_all_fields_together() -> None:
    """aiohttp CVE-2025-69228 (3.13.3): the multipart size counter was reset per field, so many
    fields each under the limit passed it together. framewire's max_form_size is one total
    (413), and no more than it is ever handed out; the same holds through save_uploads()."""
    limits = HTTPLimits(max_form_size=10_000)
    body = multipart_body([(f"f{index}", b"x" * 900, None) for index in range(20)])
    for read_size in (len(body), 100, 7):
        events = multipart_events(body, limits, read_size)
        assert failure_status(events) == 413
        handed_out = sum(len(event.data) for event in events if isinstance(event, PartData))
        assert handed_out <= 10_000
    request = Request.build(
        "POST", "/upload", headers=[("Content-Type", "multipart/form-data; boundary=b")], body=body
    )
    with pytest.raises(HTTPError) as caught:
        asyncio.run(save_uploads(request, "/nonexistent-never-created", limits=limits))
    assert caught.value.http_status == 413


def chunked_request(chunks: int, size: int = 1) -> bytes:
    one = b"%x\r\n%s\r\n" % (size, b"x" * size)
    return (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + one * chunks
        + b"0\r\n\r\n"
    )


def test_ah_cve_2025_69229_one_byte_chunks_cost_linear_time_and_no_read_blocks_long() -> None:
    """aiohttp CVE-2025-69229 (3.13.3): O(N^2) bookkeeping of many 1-byte chunks blocked the
    event loop. framewire parses them in linear time, caps the work of one call (no call takes
    100 ms: the loop stays responsive), and past max_chunks answers 413."""
    limits = HTTPLimits(max_body_size=1 << 30)

    def parse(n: int) -> Callable[[], object]:
        data = chunked_request(n)
        return lambda: request_events(data, limits)

    assert_linear(parse, 5000, "one-byte chunks")
    parser = RequestParser(limits)
    data = chunked_request(100_000)
    longest = 0.0
    for start in range(0, len(data), 256 << 10):  # reads of 256 KiB
        began = time.thread_time()
        parser.receive_data(data[start : start + (256 << 10)])
        longest = max(longest, time.thread_time() - began)
        while parser.has_more_to_parse:
            began = time.thread_time()
            parser.parse_more()
            longest = max(longest, time.thread_time() - began)
    assert type(parser.events_received()[-1]) is EndOfMessage
    assert longest < 1.0, f"one call took {longest * 1e3:.0f} ms"  # no call does it all
    assert bad_status(chunked_request(1001), HTTPLimits(max_chunks=1000)) == 413


def _http_app(upload_dir: Path) -> App:
    app = App()

    @app.post("/upload")
    async def upload(request: Request) -> Response:
        result = await save_uploads(request, upload_dir, limits=HTTPLimits(max_multipart_parts=50))
        return text_response(f"{len(result.files)} files")

    @app.get("/cookies")
    async def cookies(request: Request) -> Response:
        return text_response(str(len(request.headers.get_all("Cookie"))))

    return app


def test_ah_cve_2025_69230_and_to_cve_2025_47287_bad_input_never_storms_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp CVE-2025-69230 (3.13.3, a warning per bad cookie) and tornado CVE-2025-47287
    (6.5.0, a log line per bad multipart part): log storms from one request. framewire logs at
    most one line per request, whatever it holds: 4,800 malformed cookies in 60 Cookie fields
    (the handler runs), a multipart body of 1,000 malformed parts (400), 100 bad chunk lines
    (400), 200 header fields (431)."""
    cookie_fields = b"".join(
        b"Cookie: %s\r\n" % "; ".join(f'bad{n}="{n}' for n in range(80)).encode() for _ in range(60)
    )
    bad_parts = (
        b"".join(b"--b\r\nNo-Disposition: x\r\n\r\ny\r\n" for _ in range(1000)) + b"--b--\r\n"
    )
    requests = [
        (b"GET /cookies HTTP/1.1\r\nHost: a\r\n" + cookie_fields + b"\r\n", b"200"),
        (
            b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary=b"
            b"\r\nContent-Length: %d\r\n\r\n%s" % (len(bad_parts), bad_parts),
            b"400",
        ),
        (
            b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary=b"
            b"\r\nTransfer-Encoding: chunked\r\n\r\n" + b"zz\r\n" * 100,
            b"400",
        ),
        (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 200 + b"\r\n", b"431"),
    ]

    async def scenario() -> list[int]:
        counts = []
        async with framewire.serve(_http_app(tmp_path), "127.0.0.1", 0) as server:
            baseline = asyncio.all_tasks()
            for request, status in requests:
                before = len(caplog.records)
                reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
                assert head.startswith(b"HTTP/1.1 " + status), head
                writer.close()
                # A line logged late would come from the request's task: wait until it ended.
                await wait_until(lambda: not asyncio.all_tasks() - baseline, what="tasks ended")
                counts.append(len(caplog.records) - before)
        return counts

    with caplog.at_level(logging.DEBUG, logger="framewire"):
        counts = run(scenario())
    assert max(counts) <= 1, counts


def test_ah_3_13_3_a_gzip_body_is_never_inflated_by_framewire() -> None:
    """aiohttp 3.13.3: a decompression bomb in auto-decompressed request bodies (now capped at
    32 MiB per call). framewire never decompresses request bodies: a gzip body reaches the
    handler as the compressed bytes, capped by max_body_size (413 past it)."""
    bomb = gzip.compress(bytes(64 << 20), 9)
    headers = [("Content-Encoding", "gzip"), ("Content-Length", str(len(bomb)))]
    request = Request.build("POST", "/", headers=headers, body=bomb)
    assert asyncio.run(request.body()) == bomb
    small = Request.build("POST", "/", headers=headers, body=bomb, max_body_size=1000)
    with pytest.raises(HTTPError) as caught:
        asyncio.run(small.body())
    assert caught.value.http_status == 413
    http_modules = [*(SRC / "http").glob("*.py"), *(SRC / "aio").glob("http1*.py")]
    for path in http_modules:
        source = path.read_text(encoding="utf-8")
        assert "gzip" not in source and "zlib" not in source, f"{path.name} decompresses"


def test_ah_cve_2026_34516_34517_22815_multipart_and_trailer_counts_are_capped() -> None:
    """aiohttp CVE-2026-34516, CVE-2026-34517, CVE-2026-22815 (3.13.4): multipart header count
    unbounded, a form field read before its size was checked, unbounded header/trailer memory.
    framewire caps part headers (max_part_headers, max_part_header_size: 413), checks every
    field's bytes against max_form_size before handing them out, and applies max_headers and
    max_head_size to the trailer section (431)."""
    limits = HTTPLimits(max_part_headers=16, max_form_size=1000)
    many_headers = (
        b"--b\r\n"
        + b"X-H: v\r\n" * 17
        + b"Content-Disposition: form-data; name=a\r\n\r\nx\r\n--b--"
    )
    assert failure_status(multipart_events(many_headers, limits)) == 413
    huge_header = b"--b\r\nX-H: " + b"v" * 9000 + b"\r\n\r\n"
    assert failure_status(multipart_events(huge_header, limits, read_size=100)) == 413
    big_field = multipart_body([("a", b"x" * 100_000, None)])
    events = multipart_events(big_field, limits, read_size=10_000)
    assert failure_status(events) == 413
    assert sum(len(e.data) for e in events if isinstance(e, PartData)) <= 1000
    trailers = b"".join(b"T%d: v\r\n" % index for index in range(101))
    request = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        + trailers
        + b"\r\n"
    )
    assert bad_status(request) == 431
    long_trailer = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
    long_trailer += (b"T: " + b"v" * 8000 + b"\r\n") * 10 + b"\r\n"
    assert bad_status(long_trailer) == 431


# ---------------------------------------------------------------------------- tornado (TO)


def test_to_pr_1997_and_2391_websocket_size_limits_before_and_after_inflation() -> None:
    """tornado PR #1997 (2017, no WebSocket size limit) and #2391 (2018, none after inflation).
    An uncompressed frame over the limit fails with 1009 on its header alone, before any of its
    payload arrives; a compressed one once inflation passes the limit."""
    connection = Connection(Role.SERVER, limits=WebSocketLimits(max_message_size=1 << 20))
    header = frame(2, bytes(2 << 20))[:14]  # 64-bit length and masking key, no payload
    connection.receive_data(header)
    assert failure_of(connection) == 1009
    compressed = Connection(
        Role.SERVER, limits=WebSocketLimits(max_message_size=1 << 20), deflate=deflate(True)
    )
    compressed.receive_data(frame(2, deflate_bomb(4), rsv1=True))
    assert failure_of(compressed) == 1009


def test_to_cve_2025_67725_67726_repeated_headers_and_quoted_semicolons_in_linear_time() -> None:
    """tornado CVE-2025-67725 (repeated header coalescing, O(n^2)) and CVE-2025-67726
    (``_parseparam`` rescanning quoted ``;``, O(n^2)), fixed in 6.5.3. 64 KiB of repeated
    header lines, and of semicolons inside and outside quotes, take linear time."""
    limits = HTTPLimits(max_headers=100_000, max_head_size=1 << 22)

    def repeated_headers(n: int) -> Callable[[], object]:
        data = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Repeat: v\r\n" * n + b"\r\n"
        return lambda: request_events(data, limits)[0].headers.get_all("X-Repeat")

    assert_linear(repeated_headers, 4000, "repeated header lines")

    for unit in ('a=";";', ";a", '; a="\\;"', ';a="', '"\\\\;', "; filename*=UTF-8''%3B"):

        def options(n: int, unit: str = unit) -> Callable[[], object]:
            value = "multipart/form-data" + unit * n
            return lambda: parse_options_header(value)

        assert_linear(options, 4000, f"Content-Type parameters of {unit!r}")
    start = time.thread_time()
    parse_options_header("form-data; name=" + '"' + ";" * 65536)
    assert time.thread_time() - start < 1.0  # a backtracking parse takes seconds or more


def test_to_cve_2026_31958_multipart_part_count_is_capped() -> None:
    """tornado CVE-2026-31958 (6.5.5): unlimited multipart part count. max_multipart_parts
    (1000 by default) answers 413 for one part more."""
    body = multipart_body([(f"p{index}", b"", None) for index in range(1001)])
    assert failure_status(multipart_events(body, HTTPLimits())) == 413
    body = multipart_body([(f"p{index}", b"", None) for index in range(1000)])
    assert failure_status(multipart_events(body, HTTPLimits())) is None


def test_to_chunkloris_per_chunk_cost_is_small_and_chunks_are_capped() -> None:
    """tornado "chunkloris" (per-chunk CPU amplification, ~104 us per paced 1-byte chunk; see
    michaelbommarito.com/wiki/per-chunk-amplification/tornado). framewire spends a few
    microseconds per chunk when each arrives in its own read, and max_chunks caps a body."""
    parser = RequestParser(HTTPLimits())
    parser.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunks = 20_000
    start = time.thread_time()
    for _ in range(chunks):
        parser.receive_data(b"1\r\nx\r\n")
        parser.events_received()
    per_chunk = (time.thread_time() - start) / chunks
    assert per_chunk < 50e-6, f"{per_chunk * 1e6:.1f} us per chunk"
    assert HTTPLimits().max_chunks == 1 << 20


# ------------------------------------------------------------------ autobahn-python (AB)


def test_autobahn_ghsa_hxp9_w8x3_p566_the_limit_applies_to_the_inflated_size() -> None:
    """autobahn-python GHSA-hxp9-w8x3-p566 (2026): maxMessagePayloadSize was checked against the
    compressed length. A 30-byte compressed frame inflating to 100 KB closes with 1009, in the
    sans-I/O layer and through the asyncio server with compression negotiated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = (compressor.compress(bytes(100_000)) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert len(payload) < 200
    connection = Connection(
        Role.SERVER, limits=WebSocketLimits(max_message_size=1000), deflate=deflate(True)
    )
    connection.receive_data(frame(2, payload, rsv1=True))
    assert failure_of(connection) == 1009

    async def scenario() -> None:
        async def handler(ws: Any) -> None:
            async for _ in ws:
                pass

        async with framewire.serve(handler, "127.0.0.1", 0, max_message_size=1000) as server:
            client = await RawClient.connect(
                port_of(server), extra="Sec-WebSocket-Extensions: permessage-deflate\r\n"
            )
            assert "permessage-deflate" in client.response_head
            await client.send(client_frame(2, payload, rsv=4))
            await client.expect_close(1009)

    run(scenario())


# ----------------------------------------------------- python-multipart / Starlette (PM)


@pytest.mark.parametrize(
    "unit",
    ["; a=b", ';a="\\"', "; a", " ;", '; a="' + "x" * 10, ";\t\t", ";=;=;"],
)
def test_pm_cve_2024_24762_content_type_parameters_in_linear_time(unit: str) -> None:
    """python-multipart CVE-2024-24762 (ReDoS in Content-Type parameter parsing).
    parse_options_header() and parse_boundary() take linear time on any parameter list."""

    def content_type(n: int) -> Callable[[], object]:
        value = "multipart/form-data" + unit * n + "; boundary=b"
        return lambda: (parse_options_header(value), _boundary_or_error(value))

    assert_linear(content_type, 4000, f"Content-Type of {unit!r}")


def _boundary_or_error(value: str) -> object:
    try:
        return parse_boundary(value)
    except HTTPError as error:
        return error.http_status


def test_pm_cve_2026_53539_a_semicolon_query_string_in_linear_time() -> None:
    """python-multipart CVE-2026-53539: O(B^2) parsing of an ``a;a;a`` query string. framewire
    parses request queries with urllib.parse.parse_qs (``&`` only), in linear time; the request
    line itself is capped by max_request_line (414)."""

    def query(n: int) -> Callable[[], object]:
        target = "/?" + "a;" * n + "&b=1" + "&a" * n
        return lambda: Request.build("GET", target).query_params

    assert_linear(query, 8000, "query string of a;a;a")
    long_line = b"GET /?" + b"a;" * 5000 + b" HTTP/1.1\r\nHost: h\r\n\r\n"
    assert bad_status(long_line) == 414


@pytest.mark.parametrize("value", [b"-1", b"-0", b"- 1", b"1e3", b"9" * 30, b" 5 5", b""])
def test_pm_cve_2026_53540_negative_or_malformed_content_length(value: bytes) -> None:
    """python-multipart CVE-2026-53540: a negative Content-Length meant an unbounded read.
    framewire accepts plain digits only (400 otherwise; 413 past max_body_size), in requests
    and in responses."""
    request = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + value + b"\r\n\r\nbody"
    assert bad_status(request) in (400, 413)
    parser = ResponseParser(HTTPLimits())
    parser.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\nbody")
    assert any(isinstance(event, BadResponse) for event in parser.events_received())


# ---------------------------------------------------------------------- uWebSockets (UW)


def test_uw_every_parser_has_a_fuzz_target_and_a_seed_corpus() -> None:
    """uWebSockets: no advisory in the corpus, but OSS-Fuzz runs a libFuzzer harness on every
    parser (its fuzzing/ directory). framewire has an atheris target per parser, with seeds;
    tests/fuzz runs each briefly and replays every seed."""
    targets = {
        "frames": "framewire.sansio.decoder",
        "connection": "framewire.sansio.connection",
        "http11": "framewire.sansio.http11",
        "multipart": "framewire.sansio.multipart",
        "handshake": "framewire.sansio.handshake",
        "deflate": "framewire.sansio.deflate",
        "chat_json": "framewire.chat.hub",
    }
    for name, module in targets.items():
        script = FUZZ / f"fuzz_{name}.py"
        assert script.is_file(), script
        source = script.read_text()
        assert "fuzz_main(check)" in source and module.rsplit(".", 1)[1] in source
        assert any((FUZZ / "corpus" / name).iterdir())
    assert "max_total_time" in (FUZZ / "README.md").read_text()


def test_the_streamed_chunks_of_a_huge_message_are_not_retained_by_the_connection() -> None:
    """The sans-I/O side of CVE-2026-48779 in streaming mode: a connection that streams a
    message holds none of it; each chunk is handed over as it comes."""
    connection = Connection(Role.SERVER, stream_messages=True, limits=WebSocketLimits(None))
    connection.receive_data(frame(2, b"x", fin=False))
    with traced_memory() as memory:
        for _ in range(5000):
            connection.receive_data(frame(0, b"x" * 100, fin=False))
            assert all(isinstance(e, MessageChunk) for e in connection.events_received())
    assert memory["held"] < 64 << 10, memory
    assert not isinstance(connection.failure, ConnectionFailed)
