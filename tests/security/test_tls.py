"""wss:// with modern defaults: TLS 1.2 at least, certificates and host names checked.

framewire takes the server's ssl.SSLContext from the user and makes only one itself: the client
context of connect() for a wss:// URI given without ``ssl``. These tests serve wss:// with the
context Python recommends for servers, ssl.create_default_context(ssl.Purpose.CLIENT_AUTH), and
check what a client sees: a trusted certificate works, TLS 1.1 and lower is refused, and
connect()'s own context refuses an untrusted certificate or one for another host name.
Certificates are made at test time with the openssl command (scripts/test.sh installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import framewire
from tests.certificates import Certificate, make_certificate
from tests.waiting import run_within

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def local_cert(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A certificate for 127.0.0.1 and localhost."""
    directory = tmp_path_factory.mktemp("tls")
    return make_certificate(directory, "local", "IP:127.0.0.1,DNS:localhost")


@pytest.fixture(scope="module")
def other_host_cert(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A certificate for other.example only."""
    directory = tmp_path_factory.mktemp("tls-other")
    return make_certificate(directory, "other", "DNS:other.example")


def server_context(certificate: Certificate) -> ssl.SSLContext:
    """The server context Python recommends, with ``certificate``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)
    return context


def trusting(certificate: Certificate) -> ssl.SSLContext:
    """A client context that trusts ``certificate`` (and nothing else)."""
    return ssl.create_default_context(cafile=str(certificate.cert))


def legacy_client(certificate: Certificate, maximum: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that trusts ``certificate`` and offers TLS 1.0 up to ``maximum``, with every
    cipher (security level 0), so that only the protocol version can make it fail."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1 and TLSv1_1 are deprecated
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = maximum
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.load_verify_locations(certificate.cert)
    return context


def tls_1_1_is_possible(certificate: Certificate) -> bool:
    """Whether this Python's OpenSSL can negotiate TLS 1.1 at all when both ends allow it."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        server.load_cert_chain(certificate.cert, certificate.key)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            server.minimum_version = ssl.TLSVersion.TLSv1
        server.set_ciphers("ALL:@SECLEVEL=0")
        client = legacy_client(certificate, ssl.TLSVersion.TLSv1_1)
    except (ssl.SSLError, ValueError):
        return False
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    from_server, from_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_end = client.wrap_bio(to_client, from_client, server_hostname="127.0.0.1")
    server_end = server.wrap_bio(to_server, from_server, server_side=True)
    for _ in range(10):  # a handshake takes a few flights
        for end in (client_end, server_end):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                pass  # waiting for the other end's flight
            except ssl.SSLError:
                return False
        to_server.write(from_client.read())
        to_client.write(from_server.read())
    return client_end.version() == "TLSv1.1"


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


@contextlib.asynccontextmanager
async def wss_server(certificate: Certificate) -> AsyncIterator[int]:
    async with framewire.serve(
        echo, "127.0.0.1", 0, ssl=server_context(certificate), max_message_size=1 << 20
    ) as server:
        yield server.sockets[0].getsockname()[1]


def run(main: Callable[[], Awaitable[None]]) -> None:
    run_within(main, TIMEOUT * 3)


async def negotiated_version(port: int, context: ssl.SSLContext) -> str | None:
    """Open a TLS connection to ``port`` and return the protocol version agreed."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        version: str | None = ssl_object.version()
        return version
    finally:
        writer.close()


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("maximum", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.MAXIMUM_SUPPORTED])
def test_wss_serves_a_client_trusting_the_certificate_over_tls_1_2_or_later(
    local_cert: Certificate, maximum: ssl.TLSVersion
) -> None:
    client = trusting(local_cert)
    client.maximum_version = maximum

    async def main() -> None:
        async with wss_server(local_cert) as port:
            async with framewire.connect(f"wss://127.0.0.1:{port}/", ssl=client) as ws:
                await ws.send("over TLS")
                assert await ws.recv() == "over TLS"
                large = bytes(range(256)) * 1024  # many TLS records, compressed or not
                await ws.send(large)
                assert await ws.recv() == large
            version = await negotiated_version(port, client)
            expected = {"TLSv1.2"} if maximum is ssl.TLSVersion.TLSv1_2 else {"TLSv1.2", "TLSv1.3"}
            assert version in expected

    run(main)


def test_a_client_offering_only_tls_1_1_or_lower_is_refused(local_cert: Certificate) -> None:
    if not tls_1_1_is_possible(local_cert):
        pytest.skip("this OpenSSL cannot negotiate TLS 1.1 even when both ends allow it")

    async def main() -> None:
        async with wss_server(local_cert) as port:
            # The server answers a protocol_version alert and closes: the client sees the
            # alert, or a reset when the close overtakes it.
            with pytest.raises((ssl.SSLError, ConnectionResetError)) as refused:
                await framewire.connect(
                    f"wss://127.0.0.1:{port}/",
                    ssl=legacy_client(local_cert, ssl.TLSVersion.TLSv1_1),
                    open_timeout=TIMEOUT,
                )
            if isinstance(refused.value, ssl.SSLError):
                assert "version" in str(refused.value).lower(), refused.value
            # The same legacy client allowed TLS 1.2 gets in: the version alone was refused.
            legacy_12 = legacy_client(local_cert, ssl.TLSVersion.TLSv1_2)
            async with framewire.connect(f"wss://127.0.0.1:{port}/", ssl=legacy_12) as ws:
                await ws.send("ok")
                assert await ws.recv() == "ok"

    run(main)


def test_connect_makes_a_default_context_with_tls_1_2_and_verification(
    local_cert: Certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[ssl.SSLContext] = []
    create_default_context = ssl.create_default_context

    def spy(purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH, **kwargs: Any) -> ssl.SSLContext:
        context = create_default_context(purpose, **kwargs)
        if purpose is ssl.Purpose.SERVER_AUTH:  # a client's context (not the test server's)
            made.append(context)
            context.load_verify_locations(local_cert.cert)  # as if a known CA had signed it
        return context

    monkeypatch.setattr(ssl, "create_default_context", spy)

    async def main() -> None:
        async with (
            wss_server(local_cert) as port,
            framewire.connect(f"wss://127.0.0.1:{port}/") as ws,
        ):
            await ws.send("default context")
            assert await ws.recv() == "default context"

    run(main)
    assert len(made) == 1
    context = made[0]
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_connect_refuses_an_untrusted_certificate_by_default(local_cert: Certificate) -> None:
    async def main() -> None:
        async with wss_server(local_cert) as port:
            with pytest.raises(ssl.SSLCertVerificationError, match="self-signed|self signed"):
                await framewire.connect(f"wss://127.0.0.1:{port}/", open_timeout=TIMEOUT)
            # The server survives the failed handshake.
            async with framewire.connect(
                f"wss://127.0.0.1:{port}/", ssl=trusting(local_cert)
            ) as ws:
                await ws.send("still serving")
                assert await ws.recv() == "still serving"

    run(main)


def test_connect_checks_the_host_name(other_host_cert: Certificate) -> None:
    client = trusting(other_host_cert)

    async def main() -> None:
        async with wss_server(other_host_cert) as port:
            with pytest.raises(ssl.SSLCertVerificationError, match="(?i)mismatch|doesn't match"):
                await framewire.connect(f"wss://127.0.0.1:{port}/", ssl=client)
            # The certificate is trusted: only the name was wrong.
            async with framewire.connect(
                f"wss://127.0.0.1:{port}/", ssl=client, server_hostname="other.example"
            ) as ws:
                await ws.send("right name")
                assert await ws.recv() == "right name"

    run(main)
