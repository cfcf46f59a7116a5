"""The ``framewire`` command: argument parsing and wiring, nothing else.

framewire echo [--host 127.0.0.1] [--port 9001] [--no-compression] [--max-message-size BYTES]
framewire client URL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

import framewire
from framewire.aio.websocket import WebSocket

__all__ = ["main"]

ECHO_MAX_MESSAGE_SIZE = 64 * 1024 * 1024  # conformance suites send messages of up to 16 MiB


def _size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of bytes") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="framewire", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    echo = commands.add_parser("echo", help="run a WebSocket echo server on any path")
    echo.add_argument("--host", default="127.0.0.1")
    echo.add_argument("--port", type=int, default=9001)
    echo.add_argument("--no-compression", action="store_true", help="do not offer deflate")
    echo.add_argument(
        "--max-message-size",
        type=_size,
        default=ECHO_MAX_MESSAGE_SIZE,
        metavar="BYTES",
        help=f"largest message accepted (default {ECHO_MAX_MESSAGE_SIZE})",
    )
    client = commands.add_parser("client", help="interactive client: send lines, print messages")
    client.add_argument("url", help="ws:// or wss:// URL")
    client.add_argument("--no-compression", action="store_true")
    return parser


async def echo_handler(ws: WebSocket) -> None:
    """Send every message back with its type (text stays text, binary stays binary)."""
    async for message in ws:
        await ws.send(message)


async def run_echo(host: str, port: int, compression: bool, max_message_size: int) -> None:
    """Serve the echo handler until SIGINT or SIGTERM, then close every client with 1001."""
    async with framewire.serve(
        echo_handler,
        host,
        port,
        compression="deflate" if compression else None,
        max_message_size=max_message_size,
    ) as server:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server.close)
        bound = server.sockets[0].getsockname()
        shown_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        print(f"framewire echo server listening on ws://{shown_host}:{bound[1]}/", flush=True)
        await server.serve_forever()


async def run_client(url: str, compression: bool) -> None:
    """Send each line typed on stdin; print each message received; exit on EOF or close."""
    async with framewire.connect(url, compression="deflate" if compression else None) as ws:
        print(f"connected to {url}; type lines to send, Ctrl-D to quit", file=sys.stderr)

        async def print_messages() -> None:
            try:
                async for message in ws:
                    text = message if isinstance(message, str) else f"<binary {message!r}>"
                    print(f"< {text}", flush=True)
            except framewire.ConnectionClosed as exc:
                print(f"connection closed: {exc}", file=sys.stderr)

        printer = asyncio.create_task(print_messages())
        loop = asyncio.get_running_loop()
        while not printer.done():
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            with contextlib.suppress(framewire.ConnectionClosed):
                await ws.send(line.rstrip("\n"))
        await ws.close()
        await printer


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``framewire`` command; return its exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "echo":
            asyncio.run(
                run_echo(args.host, args.port, not args.no_compression, args.max_message_size)
            )
        elif args.command == "client":
            asyncio.run(run_client(args.url, not args.no_compression))
    except KeyboardInterrupt:
        return 130
    except (OSError, framewire.FramewireError) as exc:
        print(f"framewire: {exc}", file=sys.stderr)
        return 1
    return 0
