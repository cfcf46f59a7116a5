"""BodyChannel: request body bytes on their way from the socket to Request.stream().

The server protocol feeds bytes in as the parser yields them; the handler reads them out. The
channel holds at most about HIGH_WATER bytes: past it, the protocol pauses reading from the
socket, and reading resumes once the handler brings it under LOW_WATER. So a handler that reads
slowly (or not at all) costs a bounded amount of memory whatever the body size.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from framewire.exceptions import HTTPError

__all__ = ["HIGH_WATER", "LOW_WATER", "BodyChannel"]

HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024


class BodyChannel:
    """The body of one request, between the protocol (producer) and the handler (consumer).

    Args:
        set_reading_paused: called with True to stop reading the socket, False to resume.
        on_first_read: called with the body limit when the handler starts reading (the
            protocol sends "100 Continue" and applies the limit to its parser).
        on_limit_change: called when the handler changes the limit while reading.
        body_timeout: seconds without body bytes before read_chunk() raises HTTPError(408).
    """

    def __init__(
        self,
        set_reading_paused: Callable[[bool], None],
        on_first_read: Callable[[int], None],
        on_limit_change: Callable[[int], None],
        body_timeout: float,
    ) -> None:
        self._set_reading_paused = set_reading_paused
        self._on_first_read = on_first_read
        self._on_limit_change = on_limit_change
        self._body_timeout = body_timeout
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._limit: int | None = None
        self._discarding = False
        self.complete = False
        self.error: BaseException | None = None
        self.started = False
        self.received = 0

    # Producer side (the protocol).

    def feed(self, data: bytes) -> None:
        """Add body bytes, pausing the socket when too many are waiting."""
        if self._discarding or self.error is not None:
            return
        self._chunks.append(data)
        self._buffered += len(data)
        self.received += len(data)
        if self._buffered > HIGH_WATER and not self._paused:
            self._paused = True
            self._set_reading_paused(True)
        self._wake()

    def finish(self) -> None:
        """Mark the body complete."""
        self.complete = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        """Make the next read raise ``error`` (the first error wins); drop unread bytes."""
        if self.error is None and not self.complete:
            self.error = error
            self._drop_buffered()
        self._wake()

    def discard(self) -> None:
        """Drop bytes buffered and to come: the handler is done without reading everything."""
        self._discarding = True
        self._drop_buffered()

    # Consumer side (Request.stream()).

    async def read_chunk(self, max_body_size: int) -> bytes:
        """Return the next piece of the body, or b"" at its end.

        Raises:
            HTTPError: 413 past ``max_body_size``, 408 when no bytes arrive for body_timeout,
                or the status of a malformed body.
            ConnectionResetError: the client went away before the end of the body.
        """
        if not self.started:
            self.started = True
            self._limit = max_body_size
            self._on_first_read(max_body_size)
        elif max_body_size != self._limit:
            self._limit = max_body_size
            self._on_limit_change(max_body_size)
        if self.received > max_body_size and self.error is None:
            # The body may have arrived whole before the handler chose its limit.
            self.complete = False
            self.fail(HTTPError(413, f"body exceeds max_body_size={max_body_size}"))
        while not self._chunks:
            if self.error is not None:
                raise self.error
            if self.complete:
                return b""
            if not await self._wait(self._body_timeout):
                self.fail(
                    HTTPError(408, f"request body stalled past body_timeout={self._body_timeout}")
                )
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered <= LOW_WATER:
            self._paused = False
            self._set_reading_paused(False)
        return chunk

    async def wait_complete(self) -> bool:
        """Wait while body bytes keep arriving (discard mode); False on a stall or an error."""
        while not self.complete:
            if self.error is not None or not await self._wait(self._body_timeout):
                return False
        return self.error is None

    # Internals.

    def _drop_buffered(self) -> None:
        self._chunks.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            self._set_reading_paused(False)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout: float) -> bool:
        """Wait for the producer; return False when nothing happened within ``timeout``."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return False
        finally:
            self._waiter = None
        return True
