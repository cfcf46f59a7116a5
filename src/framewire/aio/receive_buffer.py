"""One receive buffer per event loop, shared by every connection on it.

WebSocket and the HTTP connection are ``asyncio.BufferedProtocol``s: the transport reads straight
into this buffer (``recv_into``) and the protocol has consumed or copied every byte before the
loop reads the next socket. Reading with plain ``recv(256 KiB)`` instead allocates a 256 KiB
bytes object per read; glibc serves that size with mmap/munmap until its adaptive threshold
happens to rise, which made a fresh server at times half as fast on small messages
(benchmarks/run.py, 64-byte round trips). Sharing the buffer keeps idle connections free of it.
"""

from __future__ import annotations

import asyncio
import weakref

__all__ = ["RECEIVE_BUFFER_SIZE", "receive_buffer"]

RECEIVE_BUFFER_SIZE = 256 * 1024
_buffers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, memoryview] = (
    weakref.WeakKeyDictionary()
)


_last: tuple[weakref.ref[asyncio.AbstractEventLoop], memoryview] | None = None


def receive_buffer(loop: asyncio.AbstractEventLoop) -> memoryview:
    """Return the receive buffer of ``loop``, making it on first use."""
    global _last
    last = _last
    if last is not None and last[0]() is loop:  # nearly always: one loop per process
        return last[1]
    buffer = _buffers.get(loop)
    if buffer is None:
        buffer = _buffers[loop] = memoryview(bytearray(RECEIVE_BUFFER_SIZE))
    _last = (weakref.ref(loop), buffer)
    return buffer
