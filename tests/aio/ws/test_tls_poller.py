"""wss:// through the loop's Poller: records decrypted and encrypted in C with asyncio's own TLS
objects (aio/ws/socket_poller.py, _speedups_c/tls_link.c).

End to end, on both sides of a connection: every size of message arrives intact and in order,
the kernel's send buffer filling up keeps bytes in order, reading paused with decrypted bytes
still waiting in the ssl object resumes without a new read, and every way a connection ends
(closing handshakes from either side, close_notify, a reset) ends it promptly with the right
close code, leaving nothing registered. Without the accelerator the same tests check asyncio's
own TLS path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import framewire
from framewire.aio import receive_buffer
from framewire.aio.ws import socket_poller
from framewire.aio.ws.websocket import WebSocket
from tests.aio.helpers import echo
from tests.aio.ws.poller_fakes import RecordingProtocol, RecordingTransport, read_all
from tests.certificates import Certificate, make_certificate
from tests.sansio.ws_helpers import frame
from tests.waiting import run_within, wait_until

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
POLLED = socket_poller._Poller is not None  # the accelerator was built (Linux)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls-poller"), "local", "IP:127.0.0.1")


@contextlib.asynccontextmanager
async def serve_tls(
    certificate: Certificate, handler: Callable[[WebSocket], Awaitable[None]], **options: Any
) -> AsyncIterator[tuple[str, ssl.SSLContext, Any]]:
    """Serve ``handler`` over wss://; yield its URI, a client context trusting it, the server."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(certificate.cert, certificate.key)
    client_context = ssl.create_default_context(cafile=str(certificate.cert))
    async with framewire.serve(handler, "127.0.0.1", 0, ssl=server_context, **options) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"wss://127.0.0.1:{port}/", client_context, server


def registered() -> int:
    """How many sockets the running loop's Poller reads (0 without one)."""
    poller = socket_poller._pollers.get(asyncio.get_running_loop())
    return 0 if poller is None else len(poller)


async def open_raw(uri: str, context: ssl.SSLContext) -> tuple[Any, Any]:
    """A TLS stream past the WebSocket handshake, for writing frames by hand."""
    port = int(uri.rsplit(":", 1)[1].strip("/"))
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(UPGRADE)
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    return reader, writer


SIZES = [0, 1, 125, 126, 2048, 2049, 16_384, 65_535, 65_536, 200_000, 1 << 20]


def test_every_size_round_trips_through_the_poller_on_both_sides(certificate: Certificate) -> None:
    handlers: list[WebSocket] = []

    async def remember(ws: WebSocket) -> None:
        handlers.append(ws)
        await echo(ws)

    async def main() -> None:
        async with serve_tls(certificate, remember, max_message_size=None) as (uri, context, _):
            async with framewire.connect(uri, ssl=context, max_message_size=None) as ws:
                for size in SIZES:
                    payload = os.urandom(size)
                    await ws.send(payload)
                    assert await ws.recv() == payload
                    await ws.send("é" * size)
                    assert await ws.recv() == "é" * size
                assert (ws._polled is not None) is POLLED
                assert (handlers[0]._polled is not None) is POLLED
                # Many messages at once: records split and joined across reads.
                burst = [os.urandom(index * 37 % 5000) for index in range(400)]
                for payload in burst:
                    await ws.send(payload)
                assert [await ws.recv() for _ in burst] == burst
            await wait_until(lambda: registered() == 0, what="no socket registered")

    run_within(main, 60)


def test_bytes_stay_in_order_when_the_kernel_send_buffer_fills(certificate: Certificate) -> None:
    big = os.urandom(8 << 20)
    handlers: list[WebSocket] = []

    async def burst(ws: WebSocket) -> None:
        handlers.append(ws)
        await ws.recv()
        await ws.send(big)  # past the socket buffers: records wait under the TLS transport
        for index in range(500):
            await ws.send(b"%d" % index)  # must queue behind them, as plaintext
        await ws.wait_closed()

    async def main() -> None:
        options: dict[str, Any] = {"max_message_size": None}
        async with (
            serve_tls(certificate, burst, **options) as (uri, context, _),
            framewire.connect(uri, ssl=context, **options) as ws,
        ):
            await ws.send("go")
            await wait_until(
                lambda: handlers and handlers[0].buffered_amount > 0,
                what="the server's transports to hold bytes",
            )
            assert await ws.recv() == big
            assert [await ws.recv() for _ in range(500)] == [b"%d" % i for i in range(500)]

    run_within(main, 60)


@pytest.mark.parametrize("buffer_size", [None, 4096])
def test_paused_reading_resumes_with_what_the_ssl_object_already_holds(
    certificate: Certificate, buffer_size: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With max_queue=2, reading pauses in the middle of reads that decrypted many messages;
    the rest waits in the ssl object, where no new read would find it. A receive buffer of
    4 KiB (half of it for plaintext) makes that happen at nearly every read."""
    if buffer_size is not None:
        monkeypatch.setattr(receive_buffer, "RECEIVE_BUFFER_SIZE", buffer_size)

    async def slow_echo(ws: WebSocket) -> None:
        await wait_until(lambda: ws._reading_paused, what="reading to pause")
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with serve_tls(certificate, slow_echo, max_queue=2) as (uri, context, server):
            reader, writer = await open_raw(uri, context)
            # Rounds of one record each (10 KB of small messages): with a 4 KiB receive
            # buffer, reading pauses after the first 2 KiB of plaintext, and the rest waits
            # in the ssl object with nothing more on the socket until the echoes are back.
            for round_number in range(20):
                messages = [
                    b"%02d%03d" % (round_number, index) + os.urandom(95) for index in range(100)
                ]
                writer.write(b"".join(frame(2, message) for message in messages))
                for message in messages:
                    assert await reader.readexactly(102) == b"\x82\x64" + message
            writer.write(frame(8, b"\x03\xe8"))
            assert await reader.readexactly(4) == b"\x88\x02\x03\xe8"
            assert await reader.read() == b""
            writer.close()
            await wait_until(lambda: not server.connections, what="the connection to end")
            assert registered() == 0

    run_within(main, 30)


@pytest.mark.parametrize("closer", ["client", "server"])
def test_a_closing_handshake_from_either_side_ends_both_at_once(
    certificate: Certificate, closer: str
) -> None:
    """close_timeout is long: a close waiting on a read nobody makes would fail run_within()."""
    outcome: list[BaseException | None] = []

    async def handler(ws: WebSocket) -> None:
        await ws.send(await ws.recv())
        if closer == "server":
            await ws.close(1000, "bye")
        try:
            await ws.recv()
        except framewire.ConnectionClosed as exc:
            outcome.append(exc)

    async def main() -> None:
        async with serve_tls(certificate, handler, close_timeout=60) as (uri, context, server):
            async with framewire.connect(uri, ssl=context, close_timeout=60) as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
                if closer == "client":
                    await ws.close(1000, "bye")
                else:
                    with pytest.raises(framewire.ConnectionClosedOK):
                        await ws.recv()
                await ws.wait_closed()
            await wait_until(lambda: not server.connections, what="the server side to end")
            assert registered() == 0

    run_within(main, 20)
    assert [type(exc) for exc in outcome] == [framewire.ConnectionClosedOK]


@pytest.mark.parametrize("how", ["close_notify", "reset"])
def test_a_peer_that_leaves_without_a_close_frame_gets_1006(
    certificate: Certificate, how: str
) -> None:
    outcome: list[BaseException] = []

    async def handler(ws: WebSocket) -> None:
        await ws.send(await ws.recv())
        try:
            await ws.recv()
        except Exception as exc:
            outcome.append(exc)

    async def main() -> None:
        async with serve_tls(certificate, handler, close_timeout=60) as (uri, context, server):
            reader, writer = await open_raw(uri, context)
            writer.write(frame(2, b"ping me"))
            assert await reader.readexactly(9) == b"\x82\x07ping me"
            if how == "close_notify":
                writer.close()  # TLS close_notify, then the TCP close
                with contextlib.suppress(ssl.SSLError, ConnectionError):
                    await writer.wait_closed()
            else:
                raw = writer.get_extra_info("socket")
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            await wait_until(lambda: outcome, what="the handler's recv() to fail")
            await wait_until(lambda: not server.connections, what="the connection to end")
            assert registered() == 0

    run_within(main, 20)
    assert isinstance(outcome[0], framewire.ConnectionClosedError)
    assert outcome[0].code == 1006


def test_many_clients_with_big_messages_and_aborts_leave_nothing_behind(
    certificate: Certificate,
) -> None:
    problems: list[dict[str, Any]] = []

    async def client(uri: str, context: ssl.SSLContext, index: int) -> None:
        payloads = [os.urandom((index * 7919 + n * 104_729) % 150_000) for n in range(6)]
        async with framewire.connect(uri, ssl=context, max_message_size=None) as ws:
            for payload in payloads:
                await ws.send(payload)
            if index % 4 == 0:
                assert ws.transport is not None
                ws.transport.abort()  # vanish with echoes still on the way
                return
            assert [await ws.recv() for _ in payloads] == payloads

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: problems.append(ctx))
        options: dict[str, Any] = {"max_message_size": None, "max_queue": 2}
        async with serve_tls(certificate, echo, **options) as (uri, context, server):
            await asyncio.gather(*(client(uri, context, index) for index in range(12)))
            await wait_until(lambda: not server.connections, what="every connection to end")
            assert registered() == 0

    run_within(main, 60)
    assert [context.get("message") for context in problems] == []


# ---------------------------------------------------------------- the C pieces on their own


class TLSEnds:
    """A finished TLS handshake between two ssl objects over memory BIOs, and what a
    DirectWriter takes for the server's end (``parts``, with recording transports)."""

    def __init__(self, certificate: Certificate) -> None:
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(certificate.cert, certificate.key)
        client_context = ssl.create_default_context(cafile=str(certificate.cert))
        client_context.check_hostname = False
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.peer_in, self.peer_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.server = server_context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.peer = client_context.wrap_bio(self.peer_in, self.peer_out)
        for _ in range(10):
            done = 0
            for end in (self.peer, self.server):
                with contextlib.suppress(ssl.SSLWantReadError):
                    end.do_handshake()
                    done += 1
                self.incoming.write(self.peer_out.read())
                self.peer_in.write(self.outgoing.read())
            if done == 2:
                break
        self.peer_in.write(self.outgoing.read())
        with contextlib.suppress(ssl.SSLWantReadError):
            self.peer.read()  # the session tickets
        self.tls_transport = RecordingTransport()  # plaintext that could not go out now
        self.plain = RecordingTransport()  # records that could not go out now
        self.ssl_protocol = RecordingSSLProtocol(self.outgoing, self.plain)
        send_outgoing = self.ssl_protocol.send_outgoing
        self.parts = (
            self.server._sslobj,
            self.incoming,
            self.outgoing,
            send_outgoing,
            self.plain,
        )

    def records(self, plaintext: bytes) -> bytes:
        """``plaintext`` as the peer's records."""
        self.peer.write(plaintext)
        return self.peer_out.read()

    def decrypt(self, records: bytes) -> bytes:
        """What the peer reads from the server's ``records``."""
        self.peer_in.write(records)
        plaintext = b""
        with contextlib.suppress(ssl.SSLWantReadError):
            while chunk := self.peer.read(1 << 20):
                plaintext += chunk
        return plaintext


class RecordingSSLProtocol:
    """asyncio's SSLProtocol._process_outgoing(): the outgoing records to the TCP transport."""

    def __init__(self, outgoing: ssl.MemoryBIO, plain: RecordingTransport) -> None:
        self.outgoing, self.plain = outgoing, plain

    def send_outgoing(self) -> None:
        self.plain.write(self.outgoing.read())


@contextlib.contextmanager
def polled_tls(certificate: Certificate, buffer_size: int = 4096) -> Any:
    """A Poller reading our end of a socket pair as the server's end of TLSEnds."""
    from tests.conftest import c_twin_or_skip

    poller_type, writer_type = c_twin_or_skip("Poller"), c_twin_or_skip("DirectWriter")
    ends = TLSEnds(certificate)
    ours, theirs = socket.socketpair()
    try:
        for sock in (ours, theirs):
            sock.setblocking(False)
        buffer = memoryview(bytearray(buffer_size))
        poller = poller_type(buffer)
        writer = writer_type(ours.fileno(), ends.tls_transport, ends.parts)
        protocol = RecordingProtocol(buffer)
        poller.register(ours.fileno(), protocol, None, writer)
        yield ends, poller, writer, protocol, ours, theirs
    finally:
        ours.close()
        theirs.close()


def poll_until(poller: Any, condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        poller.poll()
    raise AssertionError("the Poller never got there")


def test_records_are_decrypted_in_order_in_pieces_of_half_the_buffer(
    certificate: Certificate,
) -> None:
    with polled_tls(certificate) as (ends, poller, _, protocol, _, theirs):
        plaintext = os.urandom(50_000)  # four records, each larger than half the buffer
        theirs.sendall(ends.records(plaintext[:20_000]) + ends.records(plaintext[20_000:]))
        poll_until(poller, lambda: len(protocol.received) == len(plaintext))
        assert protocol.received == plaintext
        assert protocol.errors == [] and not protocol.eof


def test_a_pause_during_delivery_leaves_the_rest_to_read_now(certificate: Certificate) -> None:
    with polled_tls(certificate) as (ends, poller, _, protocol, ours, theirs):
        fd = ours.fileno()
        protocol.on_data = lambda: poller.pause(fd)
        plaintext = os.urandom(12_000)  # one record: decrypted 2,048 bytes at a time
        theirs.sendall(ends.records(plaintext))
        poll_until(poller, lambda: len(protocol.received) > 0)
        assert len(protocol.received) == 2048  # paused after the first piece
        protocol.on_data = None
        poller.resume(fd)
        poller.poll()  # nothing new on the socket: the rest waits in the ssl object
        assert len(protocol.received) == 2048
        poller.read_now(fd)
        assert protocol.received == plaintext


def test_the_end_of_the_stream_waits_for_what_a_pause_left_in_the_ssl_object(
    certificate: Certificate,
) -> None:
    with polled_tls(certificate) as (ends, poller, _, protocol, ours, theirs):
        fd = ours.fileno()
        protocol.on_data = lambda: poller.pause(fd)
        plaintext = os.urandom(12_000)
        theirs.sendall(ends.records(plaintext))
        theirs.shutdown(socket.SHUT_WR)  # TCP's end, right behind the record
        poll_until(poller, lambda: len(protocol.received) > 0)
        assert len(protocol.received) == 2048 and not protocol.eof
        protocol.on_data = None
        poller.resume(fd)
        poller.read_now(fd)  # reads the end of the stream, and decrypts the rest first
        assert protocol.received == plaintext
        assert protocol.eof


def test_close_notify_is_the_end_of_the_stream_and_bad_records_an_error(
    certificate: Certificate,
) -> None:
    with polled_tls(certificate) as (ends, poller, _, protocol, _, theirs):
        last_words = ends.records(b"last words")
        with contextlib.suppress(ssl.SSLWantReadError):
            ends.peer.unwrap()
        theirs.sendall(last_words + ends.peer_out.read())
        poll_until(poller, lambda: protocol.eof)
        assert protocol.received == b"last words"
    with polled_tls(certificate) as (ends, poller, _, protocol, _, theirs):
        records = bytearray(ends.records(b"tampered with"))
        records[-1] ^= 1  # the authentication tag no longer matches
        theirs.sendall(bytes(records))
        poll_until(poller, lambda: bool(protocol.errors))
        assert isinstance(protocol.errors[0], ssl.SSLError)
        assert protocol.received == b""


def test_direct_writer_encrypts_what_it_sends(certificate: Certificate) -> None:
    from framewire.sansio.connection import Connection, Role

    with polled_tls(certificate) as (ends, _, writer, _, _, theirs):
        ends.tls_transport.queued = 0
        writer.write(b"plain bytes")
        assert writer.send_message(Connection(Role.SERVER), "é" * 3000) is True
        big = os.urandom(600_000)  # encrypted in pieces, as far as the kernel takes them
        writer.write(big)
        received = ends.decrypt(read_all(theirs) + b"".join(ends.plain.written))
        received += b"".join(ends.tls_transport.written)  # plaintext behind those records
        assert received == b"plain bytes\x81\x7e\x17\x70" + "é".encode() * 3000 + big


def test_direct_writer_queues_plaintext_behind_what_either_transport_holds(
    certificate: Certificate,
) -> None:
    with polled_tls(certificate) as (ends, _, writer, _, ours, theirs):
        ends.tls_transport.queued = 5  # e.g. the handshake response, not sent yet
        writer.write(b"after it")
        assert ends.tls_transport.written == [b"after it"]
        ends.tls_transport.queued = 0
        ends.plain.queued = 5
        writer.write(b"after records")
        assert ends.tls_transport.written == [b"after it", b"after records"]
        ends.plain.queued = 0
        writer.write(b"now")
        assert ends.decrypt(read_all(theirs)) == b"now"
        # The kernel takes part of a large write: the rest of the records go under the TLS
        # transport, and what follows them as plaintext above it.
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        big = os.urandom(1 << 20)
        writer.write(big)
        assert ends.plain.written and ends.tls_transport.written[-1] != b"now"
        sent = read_all(theirs)
        rest = ends.tls_transport.written[2:]
        assert ends.decrypt(sent + b"".join(ends.plain.written)) + b"".join(rest) == big


def test_records_reading_produced_go_out_through_the_ssl_protocol(certificate: Certificate) -> None:
    """What the ssl object writes while reading (a TLS 1.3 key update's answer; here a record
    left in the outgoing BIO) is sent after the read, by the SSLProtocol's own method."""
    with polled_tls(certificate) as (ends, poller, _, protocol, _, theirs):
        ends.server.write(b"left behind")
        theirs.sendall(ends.records(b"hello"))
        poll_until(poller, lambda: protocol.received == b"hello")
        assert ends.outgoing.pending == 0
        assert ends.decrypt(b"".join(ends.plain.written)) == b"left behind"
