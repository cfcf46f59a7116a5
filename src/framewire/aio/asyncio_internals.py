"""The private parts of asyncio that framewire uses, all in this one module.

Each one buys speed on asyncio's own selector loop (benchmarks/README.md's ledger names the
rows), and each has a fallback: when a name below is missing, the caller takes asyncio's public
path. tests/aio/test_asyncio_internals.py checks every one of them on the running Python, so a
change in a new Python version fails a named test instead of silently costing speed or
correctness.

- ``PLAIN_TRANSPORT``: asyncio's plain TCP transport class (``_SelectorSocketTransport``). Only
  its sockets are read by the Poller and closed at once (ws/socket_poller.py).
- ``make_socket_transport(loop)``: the loop's ``_make_socket_transport``, used by the acceptor to
  build a transport for an accepted socket without a task (acceptor.py).
- ``raw_accept(sock)``: ``socket._accept()``, accept without converting family and type to
  enums (acceptor.py).
- ``server_sockets(server)`` and ``server_uses_tls(server)``: ``asyncio.Server``'s listening
  sockets and TLS context (acceptor.py).
- ``running_tasks()``: Python 3.11's loop -> running task dict, ``asyncio.tasks._current_tasks``,
  which aio/ws/wakeup.py hands to the C Wakeup (wakeup.c reads it instead of calling
  current_task()); None where current_task() is not a Python function over that dict.

Known behaviour changes asyncio made that framewire works around, each tested there too:
from 3.12 the selector transport's ``writelines()`` queues without calling ``pause_writing()``,
so framewire never calls it (ws/protocol.py, _flush()).
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from asyncio import selector_events
from collections.abc import Callable
from typing import Any

__all__ = [
    "PLAIN_TRANSPORT",
    "has_raw_accept",
    "is_selector_loop",
    "make_socket_transport",
    "raw_accept",
    "running_tasks",
    "server_sockets",
    "server_uses_tls",
]

PLAIN_TRANSPORT: Any = getattr(selector_events, "_SelectorSocketTransport", None)


def is_selector_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` is asyncio's own selector event loop (not uvloop, not proactor)."""
    return isinstance(loop, selector_events.BaseSelectorEventLoop)


def make_socket_transport(loop: asyncio.AbstractEventLoop) -> Callable[..., Any] | None:
    """Return ``loop._make_socket_transport(sock, protocol, *, extra, server)``, or None."""
    if not is_selector_loop(loop):
        return None
    return getattr(loop, "_make_socket_transport", None)


def raw_accept(sock: socket.socket) -> tuple[int, Any]:
    """Accept one connection on non-blocking ``sock``: (file descriptor, peer address).

    Raises:
        BlockingIOError: nothing is waiting; OSError as socket.accept() does.
    """
    return sock._accept()  # type: ignore[attr-defined,no-any-return]


def has_raw_accept() -> bool:
    """Whether :func:`raw_accept` can be used on this Python."""
    return hasattr(socket.socket, "_accept")


def server_sockets(server: asyncio.Server) -> list[socket.socket] | None:
    """Return the listening sockets of a server made with ``start_serving=False``, or None."""
    sockets = getattr(server, "_sockets", None)
    if not sockets or not all(isinstance(sock, socket.socket) for sock in sockets):
        return None
    return list(sockets)


def server_uses_tls(server: asyncio.Server) -> bool:
    """Whether ``server`` wraps its connections in TLS (True when it cannot tell)."""
    return getattr(server, "_ssl_context", True) is not None


def running_tasks() -> dict[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None:
    """Return the loop -> running task dict that asyncio.current_task() reads, or None.

    None where current_task() is not a Python function over that dict (it is on 3.11; from 3.12
    it is written in C): reading the dict would not be reading what current_task() reads.
    """
    if not inspect.isfunction(asyncio.current_task):
        return None
    tasks = getattr(asyncio.tasks, "_current_tasks", None)
    return tasks if type(tasks) is dict else None
