"""The ``framewire`` command: argument parsing and wiring, nothing else.

framewire chat [--host 127.0.0.1] [--port 8080] [--data-dir ./framewire-data] [--max-upload SIZE]
               [--redis URL] [--workers N] [--allow-origin ORIGIN ...] [--<limit> VALUE ...]
framewire echo [--host 127.0.0.1] [--port 9001] [--no-compression] [--max-message-size BYTES]
framewire client URL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import inspect
import logging
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import framewire
from framewire.aio.ws.websocket import WebSocket

if TYPE_CHECKING:
    from framewire.chat.config import ChatConfig

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


_SIZE = re.compile(r"(\d+)\s*(|b|k|kb|kib|m|mb|mib|g|gb|gib)", re.IGNORECASE)
_BYTE_LIMITS = frozenset({"max_message", "max_frame", "max_upload", "slow_reader_bytes"})
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _size_with_unit(text: str) -> int:
    """Parse ``512M``, ``1GiB``, ``4096``: bytes, with K/M/G meaning KiB/MiB/GiB."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 4096, 64K, 512M or 1G")
    value = int(match.group(1)) * _UNITS[match.group(2)[:1].lower()]
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return value


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def _add_chat_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from framewire.chat.limits import ChatLimits

    chat = commands.add_parser(
        "chat",
        help="run the chat app (page, WebSocket, history, uploads) on one port",
        description="Serve the real-time chat: open the printed URL in a browser.",
    )
    chat.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    chat.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    chat.add_argument(
        "--data-dir",
        type=Path,
        default=Path("framewire-data"),
        help="history (SQLite) and uploads live here (./framewire-data)",
    )
    chat.add_argument("--redis", metavar="URL", help="share the room through Redis (redis://)")
    chat.add_argument(
        "--workers", type=int, default=1, help="processes serving the port (needs --redis)"
    )
    chat.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also let pages of ORIGIN open the WebSocket (repeatable)",
    )
    chat.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    defaults = ChatLimits()
    docs = _limit_docs()
    for field in dataclasses.fields(ChatLimits):
        default = getattr(defaults, field.name)
        is_size = field.name in _BYTE_LIMITS
        chat.add_argument(
            "--" + field.name.replace("_", "-"),
            dest="limit_" + field.name,
            type=_size_with_unit
            if is_size
            else (int if isinstance(default, int) else _positive_number),
            default=default,
            metavar="SIZE" if is_size else "N",
            help=f"{docs.get(field.name, '')} (default {default})",
        )


def _limit_docs() -> dict[str, str]:
    """Each ChatLimits field's one-line description, from its docstring."""
    from framewire.chat.limits import ChatLimits

    docs: dict[str, str] = {}
    name = None
    # cleandoc: Python 3.13 strips docstring indentation itself, earlier versions do not.
    for line in inspect.cleandoc(ChatLimits.__doc__ or "").splitlines():
        match = re.match(r" {4}(\w+): (.*)", line)
        if match:
            name = match.group(1)
            docs[name] = match.group(2)
        elif name and line.startswith(" " * 8):
            docs[name] += " " + line.strip()
    return {key: value.replace("%", "%%").replace("``", "") for key, value in docs.items()}


_EXAMPLES = """examples:
  framewire chat                        the chat on http://127.0.0.1:8080/ (data: ./framewire-data)
  framewire chat --host 0.0.0.0 --max-upload 1G
  framewire chat --redis redis://localhost:6379/0 --workers 4
  framewire echo --port 9001            an echo server on ws://127.0.0.1:9001/
  framewire client ws://127.0.0.1:9001  type lines to send them; messages are printed

'framewire COMMAND --help' lists a command's options.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="framewire",
        description=(
            "framewire: WebSocket and HTTP/1.1 for asyncio. From the command line it runs\n"
            "a real-time chat, an echo server to try clients against, or an interactive client."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_chat_command(commands)
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


def _read_lines_in_thread(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str]:
    """Return a queue of the lines typed on stdin, with "" at its end.

    A daemon thread reads: a thread of the loop's executor blocked in readline() would keep
    asyncio.run() from returning after the server closed the connection.
    """
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "")

    threading.Thread(target=read, name="framewire-client-stdin", daemon=True).start()
    return lines


CLIENT_QUIET_TIME = 0.5  # seconds without a message, after stdin ends, before closing


async def run_client(url: str, compression: bool) -> None:
    """Send each line typed on stdin; print each message received.

    At the end of stdin, waits for replies until none has come for CLIENT_QUIET_TIME, then
    closes the connection. Ends at once when the server closes it.
    """
    loop = asyncio.get_running_loop()
    async with framewire.connect(url, compression="deflate" if compression else None) as ws:
        print(f"connected to {url}; type lines to send, Ctrl-D to quit", file=sys.stderr)
        last_message = loop.time()

        async def print_messages() -> None:
            nonlocal last_message
            try:
                async for message in ws:
                    last_message = loop.time()
                    text = message if isinstance(message, str) else f"<binary {message!r}>"
                    print(f"< {text}", flush=True)
            except framewire.ConnectionClosed as exc:
                print(f"connection closed: {exc}", file=sys.stderr)
            else:
                print(f"connection closed: code {ws.close_code}", file=sys.stderr)

        printer = asyncio.create_task(print_messages())
        lines = _read_lines_in_thread(loop)
        while True:
            next_line = asyncio.ensure_future(lines.get())
            await asyncio.wait({next_line, printer}, return_when=asyncio.FIRST_COMPLETED)
            if not next_line.done():
                next_line.cancel()
                break  # the server closed the connection
            line = next_line.result()
            if not line:
                last_message = loop.time()
                while not printer.done() and loop.time() - last_message < CLIENT_QUIET_TIME:
                    await asyncio.wait({printer}, timeout=CLIENT_QUIET_TIME / 5)
                break
            with contextlib.suppress(framewire.ConnectionClosed):
                await ws.send(line.rstrip("\n"))
        await ws.close()
        await printer


def chat_config(args: argparse.Namespace) -> ChatConfig:
    """Return the ChatConfig that ``framewire chat``'s parsed arguments describe.

    Raises:
        ValueError: the arguments contradict each other (the message says how).
    """
    from framewire.chat.config import ChatConfig
    from framewire.chat.limits import ChatLimits
    from framewire.chat.origin import OriginPolicy

    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.workers > 1 and not args.redis:
        raise ValueError(
            f"--workers {args.workers} needs --redis URL: without Redis each process would "
            "have its own room"
        )
    if args.redis and not args.redis.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"--redis {args.redis!r} is not a redis:// URL")
    OriginPolicy(args.allow_origin)  # raises on a malformed origin
    limits = ChatLimits(
        **{
            field.name: getattr(args, "limit_" + field.name)
            for field in dataclasses.fields(ChatLimits)
        }
    )
    return ChatConfig(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        redis_url=args.redis,
        workers=args.workers,
        allow_origins=tuple(args.allow_origin),
        reuse_port=args.reuse_port,
        limits=limits,
    )


def _run_chat(args: argparse.Namespace) -> int:
    config = chat_config(args)
    if config.workers > 1:
        from framewire.chat.workers import run_workers

        return run_workers(config)
    from framewire.chat.run import run_chat

    asyncio.run(run_chat(config))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``framewire`` command; return its exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "chat":
            return _run_chat(args)
        if args.command == "echo":
            asyncio.run(
                run_echo(args.host, args.port, not args.no_compression, args.max_message_size)
            )
        elif args.command == "client":
            asyncio.run(run_client(args.url, not args.no_compression))
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, RuntimeError, framewire.FramewireError) as exc:
        print(f"framewire: {exc}", file=sys.stderr)
        return 1
    return 0
