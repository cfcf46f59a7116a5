"""Command line shared by the Python echo servers: port, broadcast, uvloop, deflate, TLS."""

from __future__ import annotations

import argparse
import asyncio
import ssl
from collections.abc import Awaitable, Callable


def parse_arguments(description: str, deflate_backends: tuple[str, ...] = ()) -> argparse.Namespace:
    """Parse the arguments every contender's echo server takes.

    Args:
        description: the server's --help text.
        deflate_backends: choices of --deflate-backend (the first is the default); none: no
            such option.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument(
        "--broadcast",
        action="store_true",
        help="send every received message to all open connections instead of echoing it",
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (a labelled variant)")
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="accept permessage-deflate with the library's own default settings",
    )
    parser.add_argument("--tls-cert", help="serve wss with this certificate (PEM)")
    parser.add_argument("--tls-key", help="the certificate's private key (PEM)")
    if deflate_backends:
        parser.add_argument(
            "--deflate-backend",
            choices=deflate_backends,
            default=deflate_backends[0],
            help="which deflate implementation compresses (default: %(default)s)",
        )
    return parser.parse_args()


def tls_context(arguments: argparse.Namespace) -> ssl.SSLContext | None:
    """Return the TLS settings every contender serves wss with, or None without --tls-cert.

    TLS 1.3 only; the load generator offers one cipher suite (TLS_AES_128_GCM_SHA256) and one
    group (X25519), so all servers negotiate the same ones whatever their library prefers.
    """
    if arguments.tls_cert is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(arguments.tls_cert, arguments.tls_key)
    return context


def run(main: Callable[[], Awaitable[None]], use_uvloop: bool) -> None:
    """Run main() on asyncio's default loop, or on uvloop when asked."""
    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
