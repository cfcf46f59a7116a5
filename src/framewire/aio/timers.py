"""FixedDelayTimers: many timers of a few fixed delays, one asyncio timer per delay.

A server arms the same few delays on every connection (header_timeout, ping_interval,
close_timeout) and cancels nearly all of them. With ``loop.call_later()`` each one is a
TimerHandle pushed on the loop's heap, and cancelled handles stay there until the loop sweeps
them: about 1.5 µs per timer, three per WebSocket handshake (benchmarks/run.py, handshakes per
second). Timers of one delay fall due in the order they were armed, so an insertion-ordered dict
per delay holds them in deadline order, and one asyncio timer, armed for the earliest, serves
them all. Arming and cancelling is then a dict insert and a dict delete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

__all__ = ["Deadline", "FixedDelayTimers", "Scheduler", "Timer", "loop_of"]

_MAX_DELAYS = 16  # more distinct delays than this go to loop.call_later()


class Deadline:
    """One armed timer; cancel() it as an asyncio.TimerHandle."""

    __slots__ = ("_queue", "callback", "when")

    def __init__(self, queue: _DelayQueue, callback: Callable[[], object], when: float) -> None:
        self._queue: _DelayQueue | None = queue
        self.callback = callback
        self.when = when

    def cancel(self) -> None:
        """Do not call the callback; does nothing once it was called or cancelled."""
        queue = self._queue
        if queue is not None:
            self._queue = None
            del queue.due[self]

    def cancelled(self) -> bool:
        """True once cancelled, or called."""
        return self._queue is None


Timer = Deadline | asyncio.TimerHandle


def loop_of(timers: Scheduler | None) -> asyncio.AbstractEventLoop:
    """The event loop that ``timers`` run on: the running loop unless they are FixedDelayTimers.

    Saves connections made with FixedDelayTimers asyncio.get_running_loop(), which makes a
    getpid() system call on Python 3.11 (strace of benchmarks/run.py's handshakes).
    """
    if type(timers) is FixedDelayTimers:
        return timers.loop
    return asyncio.get_running_loop()


class Scheduler(Protocol):
    """What arms timers: a FixedDelayTimers, or the event loop itself."""

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Call ``callback()`` after ``delay`` seconds; return what cancels it."""
        ...


class _DelayQueue:
    """The armed timers of one delay, earliest first, and the asyncio timer of the earliest."""

    __slots__ = ("_loop", "due", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.due: dict[Deadline, None] = {}
        self.timer: asyncio.TimerHandle | None = None

    def arm(self, when: float) -> None:
        """Run _fire() at ``when``, the deadline of the earliest timer."""
        self.timer = self._loop.call_at(when, self._fire, when)

    def _fire(self, armed_for: float) -> None:
        """Call every callback that is due; arm the asyncio timer for the next one.

        Cancelled timers are not removed from the loop's heap here: when the earliest one is
        cancelled, its asyncio timer still fires and finds the next (at most once per delay).
        """
        self.timer = None
        now = max(self._loop.time(), armed_for)  # the loop runs timers slightly early
        due = self.due
        while due:
            deadline = next(iter(due))
            if deadline.when > now:
                self.arm(deadline.when)
                return
            del due[deadline]
            deadline._queue = None
            try:
                deadline.callback()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._loop.call_exception_handler(
                    {
                        "message": f"Exception in timer callback {deadline.callback!r}",
                        "exception": exc,
                    }
                )


class FixedDelayTimers:
    """call_later() for one event loop, cheap when the same delays come back again and again.

    For framewire's own callbacks: they run in the context of the delay's asyncio timer, not in
    the context of the code that armed them.

    Args:
        loop: the event loop whose clock and timers are used.
    """

    __slots__ = ("_queues", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop  # read by every connection the server makes: see loop_of()
        self._queues: dict[float, _DelayQueue] = {}

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Call ``callback()`` after ``delay`` seconds, as loop.call_later(); return the timer."""
        queue = self._queues.get(delay)
        if queue is None:
            if len(self._queues) >= _MAX_DELAYS:
                return self.loop.call_later(delay, callback)
            queue = self._queues[delay] = _DelayQueue(self.loop)
        # _DelayQueue.add(), inlined: one call less per timer.
        deadline = Deadline(queue, callback, self.loop.time() + delay)
        queue.due[deadline] = None
        if queue.timer is None:
            queue.arm(deadline.when)
        return deadline
