"""Wakeup (aio/ws/wakeup.py): a task waiting for a message is resumed without a loop turn."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from framewire.aio.ws.wakeup import PyWakeup
from tests.conftest import c_twin_or_skip

Wakeup = PyWakeup  # replaced per test by the fixture below: the Python class, then the C one


@pytest.fixture(autouse=True, params=["python", "c"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test with PyWakeup, then with framewire._speedups.Wakeup."""
    if request.param == "c":
        monkeypatch.setitem(globals(), "Wakeup", c_twin_or_skip("Wakeup"))


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def test_resume_now_runs_the_waiting_task_before_returning() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        wakeup = Wakeup(loop)
        seen: list[object] = []

        async def waiter() -> None:
            request_id.set("handler")
            await wakeup
            seen.append((asyncio.current_task(), request_id.get()))

        task = asyncio.create_task(waiter())
        await asyncio.sleep(0)
        assert not wakeup.done()
        # As a protocol callback does: outside any task.
        loop.call_soon(wakeup.resume_now)
        loop.call_soon(lambda: seen.append("after resume_now"))
        await task
        # The task ran inside resume_now, as itself and in its own context.
        assert seen == [(task, "handler"), "after resume_now"]
        assert wakeup.done() and not wakeup.cancelled()

    asyncio.run(main())


def test_resume_now_inside_a_task_falls_back_to_the_next_loop_turn() -> None:
    async def main() -> None:
        wakeup = Wakeup(asyncio.get_running_loop())
        resumed: list[str] = []

        async def waiter() -> None:
            await wakeup
            resumed.append("resumed")

        task = asyncio.create_task(waiter())
        await asyncio.sleep(0)
        wakeup.resume_now()  # this coroutine is a task: asyncio forbids entering another one
        assert resumed == []
        await task
        assert resumed == ["resumed"]

    asyncio.run(main())


def test_a_wakeup_resumed_before_it_is_awaited_does_not_suspend() -> None:
    async def main() -> None:
        wakeup = Wakeup(asyncio.get_running_loop())
        wakeup.resume_now()
        wakeup.resume_now()  # idempotent
        await wakeup
        assert wakeup.done()

    asyncio.run(main())


def test_cancelling_the_waiting_task_cancels_the_wait() -> None:
    async def main() -> None:
        wakeup = Wakeup(asyncio.get_running_loop())
        task = asyncio.create_task(_await(wakeup))
        await asyncio.sleep(0)
        task.cancel("shutting down")
        with pytest.raises(asyncio.CancelledError):
            await task
        assert wakeup.cancelled()
        wakeup.resume_now()  # too late: nothing happens
        with pytest.raises(asyncio.CancelledError):
            wakeup.result()
        assert not wakeup.cancel()

    asyncio.run(main())


def test_timeouts_work_around_a_wakeup() -> None:
    async def main() -> None:
        wakeup = Wakeup(asyncio.get_running_loop())
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await wakeup
        assert wakeup.cancelled()
        other = Wakeup(asyncio.get_running_loop())
        asyncio.get_running_loop().call_later(0.01, other.resume_soon)
        await asyncio.wait_for(_await(other), 5)

    asyncio.run(main())


def test_future_protocol_details() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        wakeup = Wakeup(loop)
        assert wakeup.get_loop() is loop
        with pytest.raises(asyncio.InvalidStateError):
            wakeup.result()
        calls: list[object] = []
        with pytest.raises(TypeError):
            wakeup.add_done_callback(calls.append, None)  # context is keyword-only
        with pytest.raises(TypeError, match="unexpected keyword argument 'ctx'"):
            wakeup.add_done_callback(calls.append, ctx=None)
        wakeup.add_done_callback(calls.append, context=None)
        wakeup.add_done_callback(calls.append)
        assert wakeup.remove_done_callback(print) == 0
        assert wakeup.remove_done_callback(calls.append) == 1
        wakeup.resume_soon()
        assert wakeup.exception() is None
        wakeup.add_done_callback(calls.append)  # already done: called in the next loop turn
        await asyncio.sleep(0)
        assert calls == [wakeup]

    asyncio.run(main())


async def _await(wakeup: Wakeup) -> None:
    await wakeup
