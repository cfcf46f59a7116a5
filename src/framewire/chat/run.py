"""run_chat(): build the store, hub and app for a ChatConfig, and serve until told to stop."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable

import framewire
from framewire.chat.app import build_app
from framewire.chat.config import ChatConfig
from framewire.chat.hub import Hub
from framewire.chat.presence import LocalPresence
from framewire.chat.sqlite_store import SQLiteStore
from framewire.chat.store import Presence, Store

__all__ = ["HTTP_HEADROOM", "make_backend", "run_chat", "serving_url"]

HTTP_HEADROOM = 1000  # connections the server takes beyond the chat's WebSockets (plain HTTP)


def make_backend(config: ChatConfig, process_id: str) -> tuple[Store, Presence]:
    """Return the store and presence ``config`` asks for: SQLite, or Redis with ``redis_url``.

    Raises:
        RuntimeError: Redis was asked for but redis-py is not installed.
    """
    if config.redis_url is None:
        store = SQLiteStore(config.database_path, config.uploads_dir, config.limits)
        return store, LocalPresence()
    try:
        from framewire.chat.redis_store import RedisPresence, RedisStore
    except ImportError as error:
        raise RuntimeError(
            f"--redis needs redis-py: pip install 'framewire[redis]' ({error})"
        ) from error
    return (
        RedisStore(config.redis_url, config.uploads_dir, config.limits),
        RedisPresence(config.redis_url, process_id),
    )


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def serving_url(sock: socket.socket) -> str:
    """Return the http:// URL of a listening socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


async def run_chat(config: ChatConfig, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the chat until SIGINT or SIGTERM, then close every client with 1001.

    Prints ``framewire chat serving http://HOST:PORT/`` when listening (or calls ``on_ready``
    with the URL instead).
    """
    process_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    store, presence = make_backend(config, process_id)
    hub = Hub(store, presence, config.limits, process_id=process_id)
    await hub.start()
    try:
        app = build_app(hub, config)
        sock = _reuse_port_socket(config.host, config.port) if config.reuse_port else None
        async with framewire.serve(
            app,
            None if sock else config.host,
            None if sock else config.port,
            sock=sock,
            max_message_size=config.limits.max_frame,
            # Each message compressed from a fresh context: broadcast() then compresses it once
            # for every client instead of once per client, and idle connections hold no zlib
            # state (RFC 7692 7.1.1.1 lets the server choose this without being asked).
            compression=framewire.DeflateConfig(server_no_context_takeover=True),
            # The chat refuses WebSockets past its own limit with a chat-specific 503; the
            # server's limit leaves room beside them for page loads, uploads and /healthz.
            max_connections=config.limits.max_connections + HTTP_HEADROOM,
        ) as server:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, server.close)
            url = serving_url(server.sockets[0])
            if on_ready is not None:
                on_ready(url)
            else:
                print(f"framewire chat serving {url}", flush=True)
                sys.stdout.flush()
            await server.serve_forever()
    finally:
        await hub.close()
