"""Inbox: the bounded queue between a connection's protocol callbacks and recv().

Received message pieces wait here until the application asks for them. Two budgets bound it:
``max_queue`` complete messages and ``max_queue_bytes`` bytes. Past either, the transport stops
reading (so TCP's flow control pushes back on the peer); once the application has taken enough,
reading resumes at half the budget. One Wakeup at most is ever waiting, and none is made when a
message is already there. put() does not wake the reader: the protocol calls wake_reader() once
it has queued everything one read brought, so the reader takes the whole batch in one step;
take_messages() queues a batch of whole messages and can wake the reader itself.

``framewire._speedups.Inbox`` is the same class in C (``PyInbox`` is this one), used when it was
built and FRAMEWIRE_NO_SPEEDUPS is unset: the queue is touched several times per message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from framewire.aio.ws.wakeup import Wakeup, WakeupLike
from framewire.sansio.speedups import ENABLED

if TYPE_CHECKING:
    from framewire import _speedups

__all__ = ["PIECE_OVERHEAD", "SPEEDUPS", "Inbox", "InboxLike", "PyInbox"]

# What one queued piece costs beside its payload (its tuple, its object's header, its list slot),
# charged to max_queue_bytes (FW_PIECE_OVERHEAD in inbox.c is the same): a message sent as many
# tiny fragments pauses reading before it holds more than the budget (ws CVE-2026-48779).
PIECE_OVERHEAD = 128

Piece = tuple[str | bytes | memoryview, bool, bool]  # (data, is_text, last)
WholeMessage = tuple[str | bytes, bool, bool]  # (data, is_text, True)


class Receiver(Protocol):
    """What anext() falls back on: the WebSocket's general receive path."""

    def _anext_general(self) -> Coroutine[Any, Any, str | bytes]:
        """Receive the next message whatever the queue holds; end iteration on a normal close."""


class PyInbox:
    """Message pieces in arrival order, with backpressure on the reading side.

    Args:
        max_queue: most complete messages held before reading pauses.
        max_queue_bytes: most bytes held before reading pauses.
        pause_reading: called when a budget is exceeded.
        resume_reading: called when the queue falls below half of both budgets.
    """

    __slots__ = (
        "_bytes",
        "_closed",
        "_head",
        "_messages",
        "_pause",
        "_paused",
        "_pieces",
        "_resume",
        "_waiter",
        "max_queue",
        "max_queue_bytes",
        "receiving",
    )

    def __init__(
        self,
        max_queue: int,
        max_queue_bytes: int,
        pause_reading: Callable[[], None],
        resume_reading: Callable[[], None],
    ) -> None:
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self._pause = pause_reading
        self._resume = resume_reading
        self._pieces: list[Piece] = []
        self._head = 0  # index of the oldest piece in _pieces
        self._messages = 0  # complete messages in the queue
        self._bytes = 0
        self._paused = False
        self._waiter: WakeupLike | None = None
        self._closed = False
        self.receiving = False  # a coroutine is receiving (set by the WebSocket and anext())

    def put(self, data: str | bytes | memoryview, is_text: bool, last: bool) -> None:
        """Queue one piece of a message (called from data_received)."""
        self._pieces.append((data, is_text, last))
        self._bytes += len(data) + PIECE_OVERHEAD
        if last:
            self._messages += 1
        self._check_pause()

    def take_messages(self, messages: list[WholeMessage], wake: bool) -> None:
        """Move whole messages, each ``(data, is_text, True)``, from ``messages`` (left empty)
        to the queue, in order; then wake the reader if ``wake`` (the read held nothing else)."""
        pieces = self._pieces
        size = 0
        for piece in messages:
            size += len(piece[0]) + PIECE_OVERHEAD
            pieces.append(piece)
        self._messages += len(messages)
        messages.clear()
        self._bytes += size
        self._check_pause()
        if wake:
            self._wake()

    def wake_reader(self) -> None:
        """Resume the reader waiting in wait(), if any, now (see Wakeup.resume_now)."""
        if self._head < len(self._pieces):
            self._wake()

    def _check_pause(self) -> None:
        """Pause reading when a budget is exceeded."""
        if not self._paused and (
            self._messages > self.max_queue or self._bytes > self.max_queue_bytes
        ):
            self._paused = True
            self._pause()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.resume_now()

    def close(self) -> None:
        """No more pieces will come: wake the reader (in a later loop turn) so it sees the end."""
        self._closed = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.resume_soon()

    @property
    def has_pieces(self) -> bool:
        """True when anything is queued, even part of a message."""
        return self._head < len(self._pieces)

    @property
    def has_message(self) -> bool:
        """True when a complete message is queued."""
        return self._messages > 0

    def get_nowait(self) -> Piece | None:
        """Return the oldest piece, or None when the queue is empty."""
        pieces = self._pieces
        head = self._head
        if head == len(pieces):
            return None
        piece = pieces[head]
        if head + 1 == len(pieces):
            pieces.clear()
            self._head = 0
        elif head >= 64 and head * 2 >= len(pieces):
            del pieces[: head + 1]  # compact: a reader that never empties the queue
            self._head = 0
        else:
            pieces[head] = None  # type: ignore[call-overload]  # let the piece be freed
            self._head = head + 1
        self._bytes -= len(piece[0]) + PIECE_OVERHEAD
        if piece[2]:
            self._messages -= 1
        if (
            self._paused
            and self._messages <= self.max_queue // 2
            and self._bytes <= self.max_queue_bytes // 2
        ):
            self._paused = False
            self._resume()
        return piece

    def next_message(self) -> str | bytes | None:
        """Take the oldest piece if it is a whole message held as ``str`` or ``bytes`` (what a
        reader between messages gets nearly always); else None: use get_nowait()."""
        pieces = self._pieces
        if self._head == len(pieces):
            return None
        data, _, last = pieces[self._head]
        if not last or type(data) is memoryview:
            return None
        self.get_nowait()
        return data

    @property
    def closed(self) -> bool:
        """True once close() was called: no more pieces will be queued."""
        return self._closed

    def wait(self, loop: asyncio.AbstractEventLoop) -> WakeupLike:
        """Return what to await until a piece is queued (and wake_reader() called) or the inbox
        is closed.

        ``loop`` is the running loop, passed in because asyncio.get_running_loop() costs a
        getpid() system call on Python 3.11 (strace of benchmarks/run.py's echo server).
        """
        waiter = self._waiter = Wakeup(loop)
        return waiter

    def wait_if_empty(self, loop: asyncio.AbstractEventLoop) -> WakeupLike | None:
        """Return wait(loop) when nothing is queued and the inbox is open, else None."""
        if self.has_pieces or self._closed:
            return None
        return self.wait(loop)

    async def anext(self, websocket: Receiver, loop: asyncio.AbstractEventLoop) -> str | bytes:
        """Return the next whole message, waiting for it when the queue is empty (what
        ``async for message in ws`` does nearly always); leave anything else (a fragmented
        message, a closed inbox, another coroutine receiving) to websocket._anext_general().

        ``receiving`` is True while this waits. The C twin returns an awaitable that is not a
        coroutine object (_speedups_c/next_message.c), a frame less per message.
        """
        if not self.receiving:
            message = self.next_message()
            if message is None:
                waiter = self.wait_if_empty(loop)
                if waiter is not None:
                    self.receiving = True
                    try:
                        await waiter
                    finally:
                        self.receiving = False
                    message = self.next_message()
            if message is not None:
                return message
        return await websocket._anext_general()


# An instance of either class: the stub (framewire/_speedups.pyi) types the C one.
InboxLike: TypeAlias = "PyInbox | _speedups.Inbox"

Inbox: type[InboxLike] = PyInbox
if ENABLED:
    from framewire._speedups import Inbox as CInbox

    Inbox = CInbox
SPEEDUPS = Inbox is not PyInbox
