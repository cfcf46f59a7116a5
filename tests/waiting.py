"""Waiting in tests without fixed sleeps: poll a condition until it holds, within a deadline.

A fixed sleep is either longer than needed or, on a loaded machine, too short; a test waits for
what it needs instead, and fails with a message naming it once ``timeout`` seconds pass. The
deadline only bounds a failing test: a passing one returns as soon as the condition holds.

- wait_until(): in a coroutine; the event loop runs between checks. The first checks are one
  loop turn apart (most conditions hold within a few turns), then every few milliseconds.
- wait_until_sync(): in plain code waiting for another process or thread.
- loop_turns(): a deliberately slow coroutine yields a number of loop turns, not seconds.
- run_within(): run a test's coroutine in a new event loop, failing it after ``timeout`` seconds,
  so that every network test ends by itself.

Where the test itself controls time (timers, keepalive, timeouts), use the manual clock of
tests/aio/fakes.py instead; where something can signal, wait for an asyncio.Event or a future.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

__all__ = ["DEFAULT_TIMEOUT", "loop_turns", "run_within", "wait_until", "wait_until_sync"]

DEFAULT_TIMEOUT = 10.0  # seconds: generous, since it only bounds a failing test
_POLL_INTERVAL = 0.005  # seconds between checks once the first loop turns did not suffice
_TURNS_BEFORE_POLLING = 20


async def wait_until(
    condition: Callable[[], object | Awaitable[object]],
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "",
) -> None:
    """Return once ``condition()`` is true; raise AssertionError after ``timeout`` seconds.

    Args:
        condition: checked at once, then between loop turns; it must not block. It may be a
            coroutine function (an HTTP probe, a store's health()): each check awaits it.
        timeout: seconds before the test fails.
        what: what is awaited, for the failure message (default: the condition's repr).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    turns = 0
    while not await _holds(condition):
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        turns += 1
        # The one polling sleep of the async tests: a loop turn first, then a short interval,
        # so that a condition another process must make true does not spin a shared core.
        await asyncio.sleep(0 if turns < _TURNS_BEFORE_POLLING else _POLL_INTERVAL)


async def _holds(condition: Callable[[], object | Awaitable[object]]) -> bool:
    result = condition()
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


async def loop_turns(count: int) -> None:
    """Let the event loop run ``count`` turns: a measure of work, not of time.

    For a peer or handler that is deliberately slow (so that its input piles up): in one event
    loop, each turn lets every ready socket be read once.
    """
    for _ in range(count):
        await asyncio.sleep(0)


def wait_until_sync(
    condition: Callable[[], object],
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "",
    interval: float = 0.01,
) -> None:
    """Return once ``condition()`` is true, checking every ``interval`` seconds; raise
    AssertionError after ``timeout`` seconds. For code outside an event loop."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)  # the one polling sleep of the synchronous tests


def run_within(main: Callable[[], Awaitable[object]], timeout: float) -> None:
    """Run ``main()`` with asyncio.run(); TimeoutError when it takes over ``timeout`` seconds."""

    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await main()

    asyncio.run(bounded())
