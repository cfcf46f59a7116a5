"""Type stub of framewire._speedups, the optional C accelerator (see framewire.sansio.speedups).

Every name the extension exports is declared here, and nothing else; each piece with a
pure-Python twin has the twin's parameters (tests/test_speedups_boundary.py checks both).
Poller, DirectWriter, SENT and WebSocketMethods are built on Linux only.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Generator, Iterable
from contextvars import Context
from types import MemberDescriptorType
from typing import Final, Never

from framewire.aio.asyncio_internals import TLSParts
from framewire.aio.ws.inbox import PyInbox, Receiver
from framewire.aio.ws.socket_poller import PolledProtocol, PolledSocket
from framewire.sansio.connection import Connection
from framewire.sansio.field_lines import ParsedFields
from framewire.sansio.upgrade_request import UpgradeRequest

_BytesLike = bytes | bytearray | memoryview
# (payload, is_text, True): one whole message, str for text and bytes for binary.
_WholeMessage = tuple[str | bytes, bool, bool]
# (data, is_text, last): one piece of a message in an Inbox.
_Piece = tuple[str | bytes | memoryview, bool, bool]
# What WebSocket.send() takes.
_Message = str | bytes | bytearray | memoryview | Iterable[str | bytes] | AsyncIterable[str | bytes]
# A coroutine that returns None, whatever it yields to the event loop; it need accept nothing.
_SendCoroutine = Coroutine[object, Never, None]

def apply_mask(data: _BytesLike, mask: _BytesLike) -> bytes:
    """Return ``data`` XOR-ed with the repeating 4-byte ``mask`` (RFC 6455 5.3).

    Twin: framewire.sansio.mask.py_apply_mask.
    """

def parse_whole_frames(
    data: _BytesLike, masked: bool, max_size: int | None, out: list[_WholeMessage], /
) -> int:
    """Append (payload, is_text, True) per whole simple frame at the start of ``data``; return
    the bytes they took.

    Twin: framewire.sansio.whole_frames.py_parse_whole_frames.
    """

def parse_field_lines(
    buffer: bytes | bytearray, start: int, end: int, max_line: int, max_fields: int, /
) -> ParsedFields | None:
    """Parse the CRLF-separated field lines in ``buffer[start:end]``; None for anything unusual.

    Twin: framewire.sansio.field_lines.py_parse_field_lines.
    """

def encode_fields(fields: Iterable[tuple[str, str]], /) -> bytes | None:
    """Return a list or tuple of valid (name, value) fields as CRLF-terminated lines; None for
    anything else (the twin then encodes it, or names the error).

    Twin: framewire.sansio.http11_encode.py_encode_fields.
    """

def parse_upgrade_request(
    data: _BytesLike,
    max_request_line: int,
    max_head_size: int,
    max_header_line: int,
    max_headers: int,
    /,
) -> UpgradeRequest | None:
    """Parse a whole plain upgrade request at the start of ``data``; None for anything else.

    Twin: framewire.sansio.upgrade_request.py_parse_upgrade_request.
    """

def use_connection_flags(
    connection_type: type[Connection],
    frame_now_ok: MemberDescriptorType,
    whole_frames_ok: MemberDescriptorType,
    /,
) -> None:
    """Hand over Connection and the slots of its two fast-path flags, which
    DirectWriter.send_message() and the Poller read (no twin: sansio/connection.py calls it)."""

def use_running_tasks(
    tasks: dict[asyncio.AbstractEventLoop, asyncio.Task[object]] | None, /
) -> None:
    """Hand over the loop -> running task dict that asyncio.current_task() reads, or None to
    call current_task() (no twin: aio/ws/wakeup.py calls it with
    asyncio_internals.running_tasks())."""

class PayloadBuffer:
    """One large frame's payload, unmasked in place (no twin: see sansio/payload_buffer.py)."""

    def __init__(self, length: int) -> None: ...
    @property
    def filled(self) -> int:
        """Bytes written so far."""
    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    def unmask_into(self, data: _BytesLike, mask: _BytesLike, /) -> None:
        """Unmask ``data``, the next bytes of the payload, into the buffer."""
    def take(self) -> bytes:
        """Return the complete payload without copying it."""

class Wakeup:
    """A one-shot, future-like event that one task awaits.

    Twin: framewire.aio.ws.wakeup.PyWakeup.
    """

    _asyncio_future_blocking: bool
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None: ...
    def __await__(self) -> Generator[Wakeup]: ...
    def __iter__(self) -> Generator[Wakeup]: ...
    def resume_now(self) -> None:
        """Wake the waiting task, running its next step now when that is allowed."""
    def resume_soon(self) -> None:
        """Wake the waiting task in a later loop turn, as a Future would."""
    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the waiting task runs on."""
    def add_done_callback(
        self, callback: Callable[[Wakeup], object], *, context: Context | None = None
    ) -> None:
        """Called by the task that awaits this object; there is at most one."""
    def remove_done_callback(self, callback: Callable[[Wakeup], object]) -> int:
        """Forget ``callback``; return how many were removed."""
    def done(self) -> bool:
        """True once resumed or cancelled."""
    def cancelled(self) -> bool:
        """True once cancelled."""
    def result(self) -> None:
        """Return None, or raise CancelledError if the wait was cancelled."""
    def exception(self) -> BaseException | None:
        """Return None, or raise CancelledError if the wait was cancelled."""
    def cancel(self, msg: object = None) -> bool:
        """Cancel the wait; the task is woken with CancelledError."""

class Inbox:
    """Message pieces in arrival order, with backpressure on the reading side.

    Twin: framewire.aio.ws.inbox.PyInbox.
    """

    max_queue: int
    max_queue_bytes: int
    receiving: bool
    def __init__(
        self,
        max_queue: int,
        max_queue_bytes: int,
        pause_reading: Callable[[], None],
        resume_reading: Callable[[], None],
    ) -> None: ...
    def put(self, data: str | bytes | memoryview, is_text: bool, last: bool, /) -> None:
        """Queue one piece of a message."""
    def take_messages(self, messages: list[_WholeMessage], wake: bool, /) -> None:
        """Move whole messages from ``messages`` (left empty) to the queue; wake the reader if
        ``wake``."""
    def wake_reader(self) -> None:
        """Resume the reader waiting in wait(), if any and if anything is queued."""
    def close(self) -> None:
        """No more pieces will come: wake the reader in a later loop turn."""
    @property
    def has_pieces(self) -> bool:
        """True when anything is queued, even part of a message."""
    @property
    def has_message(self) -> bool:
        """True when a complete message is queued."""
    @property
    def closed(self) -> bool:
        """True once close() was called."""
    def get_nowait(self) -> _Piece | None:
        """Return the oldest piece, or None when the queue is empty."""
    def next_message(self) -> str | bytes | None:
        """Take the oldest piece if it is a whole message held as str or bytes; else None."""
    def wait(self, loop: asyncio.AbstractEventLoop, /) -> Wakeup:
        """Return what to await until a piece is queued or the inbox is closed."""
    def wait_if_empty(self, loop: asyncio.AbstractEventLoop, /) -> Wakeup | None:
        """Return wait(loop) when nothing is queued and the inbox is open, else None."""
    def anext(
        self, websocket: Receiver, loop: asyncio.AbstractEventLoop, /
    ) -> Awaitable[str | bytes]:
        """Return an awaitable of the next whole message (see PyInbox.anext)."""

if sys.platform == "linux":
    class Poller:
        """Many sockets read into one buffer through one epoll descriptor (no twin: without
        it each socket is read by its transport)."""

        def __init__(self, buffer: bytearray | memoryview) -> None: ...
        def __len__(self) -> int: ...
        def register(
            self,
            fd: int,
            protocol: PolledProtocol,
            receiver: tuple[Connection, Inbox, bool, int | None] | None = None,
            tls_writer: DirectWriter | None = None,
            /,
        ) -> None:
            """Read ``fd`` from now on for ``protocol``; a receiver (connection, Inbox, masked,
            max_size) takes reads of whole simple messages without the protocol; a TLS socket's
            records are decrypted with the TLS objects of ``tls_writer``."""
        def unregister(self, fd: int, /) -> bool:
            """Stop reading ``fd`` and forget its protocol; False when it was not registered."""
        def pause(self, fd: int, /) -> None:
            """Stop reading ``fd`` for now."""
        def resume(self, fd: int, /) -> None:
            """Read ``fd`` again."""
        def read_now(self, fd: int, /) -> None:
            """Decrypt and hand over what a TLS socket's ssl object holds without a new read."""
        def poll(self) -> None:
            """Read every ready descriptor once (the event loop calls it)."""
        def fileno(self) -> int:
            """The epoll descriptor, to watch for reading."""

    class DirectWriter:
        """Writes to the socket ``fd`` of ``transport`` at once while the transport holds
        nothing, and through ``transport.write()`` otherwise (no twin)."""

        def __init__(
            self,
            fd: int,
            transport: asyncio.WriteTransport,
            tls: TLSParts | None = None,
        ) -> None:
            """``tls``: asyncio_internals.tls_parts() of ``transport``, to encrypt with."""
        def write(self, data: _BytesLike, /) -> None:
            """Send ``data`` now if nothing is queued, else (and for the rest) transport.write()."""
        def send_message(self, connection: Connection, message: object, /) -> bool:
            """Frame and send a str or bytes message as ``connection.frame_now()`` would; False
            (and nothing done) when the general path must send it."""
        def stop(self) -> None:
            """From now on every write goes through transport.write()."""

    SENT: Final[Coroutine[Never, object, None]]
    """A coroutine that has already returned None: what WebSocket.send() returns when the frame
    went out during the call."""

    class WebSocketMethods:
        """WebSocket.send() and ``__anext__`` in C, for WebSocket to derive from.

        Twin: framewire.aio.ws.websocket_methods.PyWebSocketMethods. Like the twin, it declares
        the state it reads as slots, and what it calls back as methods that WebSocket overrides.
        """

        _polled: PolledSocket | None
        connection: Connection
        _inbox: PyInbox | Inbox
        _loop: asyncio.AbstractEventLoop
        def send(self, message: _Message, *, compress: bool = True) -> _SendCoroutine:
            """Send a message; the frame may go out during the call itself."""
        def _send(self, message: _Message, compress: bool, /) -> _SendCoroutine:
            """send()'s general path: WebSocket overrides it."""
        def _anext_general(self) -> Coroutine[object, Never, str | bytes]:
            """__anext__'s general path: WebSocket overrides it."""
        def __anext__(self) -> Awaitable[str | bytes]:
            """Return the next message; stop iterating on a normal close."""
