"""The receive buffer (aio/receive_buffer.py): one per event loop, made on first use, shared by
every connection on that loop and never by two loops, so that reads allocate nothing."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
import weakref

import framewire
from framewire.aio.receive_buffer import RECEIVE_BUFFER_SIZE, receive_buffer
from tests.aio.helpers import run_with_server


def test_one_writable_buffer_per_loop_the_same_on_every_call() -> None:
    loop = asyncio.new_event_loop()
    try:
        buffer = receive_buffer(loop)
        assert len(buffer) == RECEIVE_BUFFER_SIZE and not buffer.readonly
        assert receive_buffer(loop) is buffer
    finally:
        loop.close()


def test_two_loops_never_share_a_buffer_whichever_was_asked_last() -> None:
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        one = receive_buffer(first)
        two = receive_buffer(second)
        assert one.obj is not two.obj
        assert receive_buffer(first) is one and receive_buffer(second) is two
    finally:
        first.close()
        second.close()


def test_a_loop_that_is_gone_takes_its_buffer_with_it() -> None:
    loop = asyncio.new_event_loop()
    receive_buffer(loop)
    loop.close()
    gone = weakref.ref(loop)
    del loop
    gc.collect()
    assert gone() is None  # neither the table nor the last-used cache keeps the loop alive


def test_reads_go_into_one_shared_buffer_without_a_read_sized_allocation() -> None:
    """WebSocket reads with recv_into() into the loop's receive buffer. asyncio's plain recv()
    allocates a 256 KiB bytes object per read, which glibc may serve with mmap/munmap: that made
    fresh servers twice as slow on small messages (docs/topics/performance.md)."""

    async def scenario(port: int) -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send(b"warm up")
            assert await ws.recv() == b"warm up"
            tracemalloc.start()
            try:
                for index in range(50):
                    await ws.send(b"%d" % index)
                    assert await ws.recv() == b"%d" % index
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            # 100 reads (both ends) in the window; one 256 KiB read buffer would show here.
            assert peak < 64 * 1024, f"peak {peak} bytes during 50 round trips"

    run_with_server(scenario)
