"""connect() (aio/ws/client.py): wss:// with a certificate made at test time, and errors that
name the problem. The client's refusals of header injection are
tests/security/test_header_injection.py."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest

import framewire
from tests.aio.helpers import run_with_server
from tests.certificates import make_certificate


def test_wss_with_a_certificate_made_at_test_time(tmp_path: Path) -> None:
    certificate = make_certificate(tmp_path, "localhost", "IP:127.0.0.1,DNS:localhost")
    cert, key = certificate.cert, certificate.key
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
