"""Every private asyncio internal framewire uses still behaves as framewire expects.

Run on every Python the test command finds (3.11 and the newest): when asyncio changes one of
these, the failing test names it, instead of a fast path silently turning off or breaking.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import ssl
from pathlib import Path

import pytest

from framewire.aio import asyncio_internals
from framewire.aio.asyncio_internals import (
    PLAIN_TRANSPORT,
    is_selector_loop,
    make_socket_transport,
    raw_accept,
    running_tasks,
    server_sockets,
    server_uses_tls,
    tls_parts,
)
from tests.certificates import make_certificate


def test_plain_tcp_transport_is_the_class_asyncio_makes() -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        try:
            assert PLAIN_TRANSPORT is not None
            assert type(transport) is PLAIN_TRANSPORT
        finally:
            transport.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def test_make_socket_transport_takes_the_arguments_the_acceptor_passes() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert is_selector_loop(loop)
        make = make_socket_transport(loop)
        assert make is not None
        parameters = inspect.signature(make).parameters
        assert list(parameters)[:2] == ["sock", "protocol"]
        assert parameters["extra"].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters["server"].kind is inspect.Parameter.KEYWORD_ONLY

    asyncio.run(main())


def test_raw_accept_returns_a_descriptor_and_the_peer_address() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    client = socket.create_connection(listener.getsockname())
    try:
        for _ in range(100):
            try:
                fd, address = raw_accept(listener)
                break
            except BlockingIOError:
                socket.socket().close()  # a moment for the kernel
        else:
            raise AssertionError("no connection to accept")
        accepted = socket.socket(fileno=fd)
        assert isinstance(fd, int)
        assert address == client.getsockname()
        accepted.close()
    finally:
        client.close()
        listener.close()


def test_server_sockets_and_tls_are_read_from_asyncio_server() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        plain = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, start_serving=False)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        secure = await loop.create_server(
            asyncio.Protocol, "127.0.0.1", 0, ssl=context, start_serving=False
        )
        try:
            sockets = server_sockets(plain)
            assert sockets is not None
            assert [sock.fileno() for sock in sockets] == [s.fileno() for s in plain.sockets]
            assert not server_uses_tls(plain)
            assert server_uses_tls(secure)
        finally:
            for server in (plain, secure):
                server.close()
                await server.wait_closed()

    asyncio.run(main())


def test_running_tasks_maps_the_loop_to_its_running_task_where_c_reads_it() -> None:
    async def main() -> None:
        tasks = running_tasks()
        if inspect.isfunction(asyncio.current_task):  # 3.11: wakeup.c reads the dict
            assert tasks is not None
            assert tasks.get(asyncio.get_running_loop()) is asyncio.current_task()
        else:  # current_task() is in C: the dict, if any, need not be what it reads
            assert tasks is None

    asyncio.run(main())


def test_the_module_lists_what_it_wraps() -> None:
    assert set(asyncio_internals.__all__) >= {
        "PLAIN_TRANSPORT",
        "make_socket_transport",
        "raw_accept",
        "running_tasks",
        "server_sockets",
        "server_uses_tls",
        "tls_parts",
    }


def test_tls_parts_are_the_objects_the_ssl_protocol_moves_records_with(tmp_path: Path) -> None:
    certificate = make_certificate(tmp_path, "local", "IP:127.0.0.1")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(certificate.cert, certificate.key)
    client_context = ssl.create_default_context(cafile=str(certificate.cert))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=server_context)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(
            asyncio.Protocol, "127.0.0.1", port, ssl=client_context
        )
        try:
            parts = tls_parts(transport)
            assert parts is not None
            ssl_object, incoming, outgoing, send_outgoing, plain = parts
            assert type(plain) is PLAIN_TRANSPORT
            assert isinstance(incoming, ssl.MemoryBIO) and isinstance(outgoing, ssl.MemoryBIO)
            # What tls_link.c calls: read(n, buffer), write(data), pending() on the C object,
            # and send_outgoing() (the SSLProtocol's _process_outgoing()).
            assert ssl_object.pending() == 0
            assert ssl_object.write(b"x") == 1 and outgoing.pending > 0
            send_outgoing()
            assert outgoing.pending == 0
            with pytest.raises(ssl.SSLWantReadError):
                ssl_object.read(10, bytearray(10))
            assert tls_parts(plain) is None  # a plain transport has none
            ssl_protocol = send_outgoing.__self__
            ssl_protocol._write_backlog.append(b"held back")
            assert tls_parts(transport) is None  # nor a TLS one holding plaintext back
            ssl_protocol._write_backlog.clear()
        finally:
            transport.close()
            server.close()
            await server.wait_closed()

    asyncio.run(asyncio.wait_for(main(), 20))
