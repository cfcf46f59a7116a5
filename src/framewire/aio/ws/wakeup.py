"""Wakeup: what a task waits on for the next message, resumed without a loop turn.

asyncio accepts any future-like object in an ``await`` (one with ``_asyncio_future_blocking``,
``add_done_callback``, ``result``, ``cancel`` and ``get_loop``). A Future resumes its task by
scheduling the task's step with ``call_soon``: a Handle, one more trip through the event loop
and, in a round-trip workload, about a quarter of the server's time per message
(benchmarks/run.py, 64-byte round trips). A Wakeup instead runs the task's step at once when
``resume_now()`` is called from a protocol callback, the way the loop would have run it a moment
later: same task, same context, same exception handling. Inside another task's step (where
asyncio forbids entering a second task) it falls back to ``call_soon``.

``framewire._speedups.Wakeup`` is the same class in C, used when it was built and
FRAMEWIRE_NO_SPEEDUPS is unset (``SPEEDUPS`` says which one is in use).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from contextvars import Context
from typing import TYPE_CHECKING, Any, TypeAlias

from framewire.aio.asyncio_internals import running_tasks
from framewire.sansio.speedups import BUILT, ENABLED

if TYPE_CHECKING:
    from framewire import _speedups

__all__ = ["SPEEDUPS", "PyWakeup", "Wakeup", "WakeupLike"]

_current_task = asyncio.current_task
_PENDING, _RESUMED, _CANCELLED = 0, 1, 2


class PyWakeup:
    """A one-shot, future-like event that one task awaits (``await wakeup``)."""

    __slots__ = ("_asyncio_future_blocking", "_callback", "_context", "_loop", "_state")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._state = _PENDING
        self._callback: Callable[[Any], object] | None = None
        self._context: Context | None = None
        self._asyncio_future_blocking = False

    def __await__(self) -> Generator[PyWakeup, None, None]:
        if self._state == _PENDING:
            self._asyncio_future_blocking = True
            yield self
        self.result()

    def resume_now(self) -> None:
        """Wake the waiting task, running its next step now when that is allowed."""
        if self._state != _PENDING:
            return
        self._state = _RESUMED
        callback, self._callback = self._callback, None
        if callback is None:  # not awaited yet: the await will see the state and not suspend
            return
        context = self._context
        if _current_task(self._loop) is None:
            if context is None:
                callback(self)
            else:
                context.run(callback, self)
        else:
            self._loop.call_soon(callback, self, context=context)

    def resume_soon(self) -> None:
        """Wake the waiting task in a later loop turn, as a Future would."""
        if self._state == _PENDING:
            self._finish_soon(_RESUMED)

    def _finish_soon(self, state: int) -> None:
        """End the wait with ``state``; wake the task in a later loop turn, as a Future would."""
        self._state = state
        callback, self._callback = self._callback, None
        if callback is not None:
            self._loop.call_soon(callback, self, context=self._context)

    # ---------------------------------------------------- the future protocol, for asyncio

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the waiting task runs on."""
        return self._loop

    def add_done_callback(
        self, callback: Callable[[Any], object], *, context: Context | None = None
    ) -> None:
        """Called by the task that awaits this object; there is at most one."""
        if self._state != _PENDING:
            self._loop.call_soon(callback, self, context=context)
            return
        self._callback = callback
        self._context = context

    def remove_done_callback(self, callback: Callable[[Any], object]) -> int:
        """Forget ``callback``; return how many were removed."""
        if self._callback is not None and self._callback == callback:
            self._callback = None
            self._context = None
            return 1
        return 0

    def done(self) -> bool:
        """True once resumed or cancelled."""
        return self._state != _PENDING

    def cancelled(self) -> bool:
        """True once cancelled."""
        return self._state == _CANCELLED

    def result(self) -> None:
        """Return None, or raise CancelledError if the wait was cancelled."""
        if self._state == _CANCELLED:
            raise asyncio.CancelledError
        if self._state == _PENDING:
            raise asyncio.InvalidStateError("Result is not ready.")

    def exception(self) -> BaseException | None:
        """Return None, or raise CancelledError if the wait was cancelled."""
        self.result()
        return None

    def cancel(self, msg: Any = None) -> bool:
        """Cancel the wait (Task.cancel() calls this); the task is woken with CancelledError."""
        if self._state != _PENDING:
            return False
        self._finish_soon(_CANCELLED)
        return True


# An instance of either class: the stub (framewire/_speedups.pyi) types the C one.
WakeupLike: TypeAlias = "PyWakeup | _speedups.Wakeup"

# The C Wakeup reads the running task from asyncio's dict where there is one (3.11), a call less
# per message; Python hands it over, so that C reads no private name (wakeup.c).
if BUILT:
    from framewire._speedups import use_running_tasks

    use_running_tasks(running_tasks())
Wakeup: type[WakeupLike] = PyWakeup
if ENABLED:
    from framewire._speedups import Wakeup as CWakeup

    Wakeup = CWakeup
SPEEDUPS = Wakeup is not PyWakeup
