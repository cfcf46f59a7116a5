"""The C types stay safe to call after the cycle collector clears them.

A WebSocket and its Inbox refer to each other (pause_reading is a bound method), so the cycle
collector frees them with each type's ``tp_clear``; while it clears one object, another of the
same cycle may still call it. Each check calls ``tp_clear`` directly, as the collector would
(through ``PyType_GetSlot``), then every method: it may raise, it must not crash. The checks
run in a child interpreter, so a crash fails one test instead of ending the run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("framewire._speedups", exc_type=ImportError)

PRELUDE = """
import asyncio
import ctypes

from framewire import _speedups as speedups

PY_TP_CLEAR = 51  # Include/typeslots.h
get_slot = ctypes.pythonapi.PyType_GetSlot
get_slot.restype = ctypes.c_void_p
get_slot.argtypes = [ctypes.py_object, ctypes.c_int]


def collector_clear(obj):
    clear = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object)(get_slot(type(obj), PY_TP_CLEAR))
    assert clear(obj) == 0


def attempt(call, *args):
    try:
        return call(*args)
    except Exception as exc:
        return exc


loop = asyncio.new_event_loop()
hooks = []
"""


def run_child(body: str) -> None:
    script = PRELUDE + textwrap.dedent(body)
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert child.returncode == 0, child.stderr[-2000:]


def test_a_cleared_inbox_keeps_its_queue_and_calls_no_cleared_hook() -> None:
    run_child("""
        pause, resume = (lambda: hooks.append("pause")), (lambda: hooks.append("resume"))
        inbox = speedups.Inbox(1, 1000, pause, resume)
        inbox.put(b"first", False, True)
        inbox.wait(loop)
        collector_clear(inbox)
        inbox.put(b"x" * 2000, False, True)  # over both budgets: pause_reading() is gone
        inbox.take_messages([(b"third", False, True)], True)
        assert hooks == [], hooks
        assert inbox.has_pieces and inbox.has_message and len(inbox._pieces) == 3
        assert inbox.next_message() == b"first"
        assert inbox.get_nowait() == (b"x" * 2000, False, True)
        assert inbox.next_message() == b"third"
        assert inbox.next_message() is None and inbox.get_nowait() is None
        inbox.wake_reader()
        inbox.wait_if_empty(loop)
        inbox.close()
        assert inbox.closed
    """)


def test_a_cleared_next_message_is_finished_and_no_longer_receiving() -> None:
    run_child("""
        class Receiver:
            async def _anext_general(self):
                return "general"

        inbox = speedups.Inbox(16, 1 << 20, lambda: None, lambda: None)
        waiting = inbox.anext(Receiver(), loop)
        assert isinstance(waiting.send(None), speedups.Wakeup)  # suspended on the Wakeup
        assert inbox.receiving
        collector_clear(waiting)
        assert not inbox.receiving
        fresh = inbox.anext(Receiver(), loop)
        collector_clear(fresh)
        for awaitable in (waiting, fresh):
            assert isinstance(attempt(awaitable.send, None), RuntimeError)
            assert isinstance(attempt(next, awaitable), RuntimeError)
            assert isinstance(attempt(awaitable.throw, ValueError), ValueError)
            assert awaitable.close() is None
    """)


def test_a_cleared_wakeup_keeps_its_loop() -> None:
    run_child("""
        wakeup = speedups.Wakeup(loop)
        wakeup.add_done_callback(hooks.append)
        collector_clear(wakeup)
        assert wakeup.get_loop() is loop
        wakeup.add_done_callback(hooks.append)
        wakeup.resume_now()  # outside any task: the callback runs at once
        assert hooks == [wakeup], hooks
        assert wakeup.done() and wakeup.result() is None
        wakeup.add_done_callback(hooks.append)  # already done: scheduled on the loop
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert hooks == [wakeup, wakeup], hooks
        cancelled = speedups.Wakeup(loop)
        cancelled.add_done_callback(hooks.append)
        collector_clear(cancelled)
        assert cancelled.cancel() is True and cancelled.cancelled()
    """)
