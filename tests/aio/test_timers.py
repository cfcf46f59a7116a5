"""FixedDelayTimers (aio/timers.py): one asyncio timer per delay serves every timer of that
delay, in order, at its own deadline; cancel() works as a TimerHandle's.

The timers run on a ManualClock standing in for the event loop (tests/aio/fakes.py): the tests
move time exactly to each deadline and count the loop timers armed, without waiting.
"""

from __future__ import annotations

import asyncio
from typing import Any

from framewire.aio.timers import Deadline, FixedDelayTimers, loop_of
from tests.aio.fakes import ManualClock

TICK = 0.001  # seconds: a moment


def make_timers() -> tuple[ManualClock, FixedDelayTimers]:
    clock = ManualClock()
    return clock, FixedDelayTimers(clock)  # type: ignore[arg-type]  # the loop's clock part


def test_timers_fire_in_order_each_at_its_own_deadline_from_one_loop_timer() -> None:
    clock, timers = make_timers()
    fired: list[tuple[str, float]] = []
    armed: dict[str, float] = {}
    for name in ("a", "b", "c"):
        if armed:
            clock.advance(0.02)
        armed[name] = clock.time()
        timers.call_later(0.05, lambda name=name: fired.append((name, clock.time())))
    # Three timers of one delay: one loop timer, armed for the earliest.
    assert len(clock.pending()) == 1
    clock.advance(0.05 - 0.04 - TICK)  # just before "a" is due
    assert fired == []
    clock.advance(0.1)
    assert fired == [(name, armed[name] + 0.05) for name in ("a", "b", "c")]
    # Each deadline re-armed the loop timer for the next: three loop callbacks in all.
    assert clock.calls == 3 and clock.pending() == []


def test_cancelled_timers_never_fire_and_the_next_one_still_does() -> None:
    clock, timers = make_timers()
    fired: list[str] = []
    first = timers.call_later(0.03, lambda: fired.append("first"))
    second = timers.call_later(0.03, lambda: fired.append("second"))
    assert isinstance(first, Deadline) and not first.cancelled()
    first.cancel()  # the loop timer armed for it still runs, and finds the second
    first.cancel()  # twice is harmless
    assert first.cancelled()
    clock.advance(0.03)
    assert fired == ["second"]
    assert clock.calls == 1  # one loop callback served both
    assert second.cancelled()  # called: cancelling now does nothing
    second.cancel()
    assert clock.pending() == []
    # After the queue ran empty, a new timer arms the loop timer again.
    timers.call_later(0.01, lambda: fired.append("third"))
    assert len(clock.pending()) == 1
    clock.advance(0.01 - TICK)
    assert fired == ["second"]
    clock.advance(TICK)
    assert fired == ["second", "third"]


def test_cancelling_every_timer_leaves_one_loop_callback_that_finds_nothing() -> None:
    clock, timers = make_timers()
    fired: list[int] = []
    deadlines = [timers.call_later(1.0, lambda i=i: fired.append(i)) for i in range(1000)]
    for deadline in deadlines:
        deadline.cancel()
    assert len(clock.pending()) == 1  # cancelling is a dict delete, not a loop-heap entry each
    assert clock.advance(2.0) == 1
    assert fired == [] and clock.pending() == []


def test_a_timer_armed_in_a_callback_of_the_same_delay_fires_a_delay_later() -> None:
    clock, timers = make_timers()
    times: list[float] = []
    start = clock.time()

    def tick() -> None:
        times.append(clock.time())
        if len(times) < 3:
            timers.call_later(0.02, tick)

    timers.call_later(0.02, tick)
    clock.advance(0.15)
    assert times == [start + 0.02, start + 0.04, start + 0.06]


def test_a_loop_timer_that_runs_early_fires_nothing_before_its_deadline() -> None:
    """Event loops run timers up to their clock resolution early: _fire() treats the armed
    time as now, so a timer armed for that instant fires, and a later one waits."""
    clock, timers = make_timers()
    fired: list[str] = []
    timers.call_later(0.05, lambda: fired.append("due"))
    clock.advance(0.01)
    timers.call_later(0.05, lambda: fired.append("later"))
    [loop_timer] = clock.pending()
    loop_timer.cancel()  # the loop takes it off its heap...
    clock.now = loop_timer.when - TICK / 10  # ...and runs it slightly early
    loop_timer.callback(*loop_timer.args)
    assert fired == ["due"]
    [next_timer] = clock.pending()
    assert next_timer.when == loop_timer.when + 0.01


def test_a_failing_callback_is_reported_and_the_others_still_run() -> None:
    clock, timers = make_timers()
    fired: list[str] = []

    def fail() -> None:
        raise ValueError("boom")

    timers.call_later(0.01, fail)
    timers.call_later(0.01, lambda: fired.append("after"))
    clock.advance(0.01)
    assert fired == ["after"]
    assert len(clock.reports) == 1 and isinstance(clock.reports[0]["exception"], ValueError)
    assert "timer callback" in clock.reports[0]["message"]


def test_more_distinct_delays_than_the_queues_go_to_the_loop() -> None:
    clock, timers = make_timers()
    fired: list[int] = []
    handles = [timers.call_later(0.01 + i / 1000, lambda i=i: fired.append(i)) for i in range(20)]
    assert all(isinstance(handle, Deadline) for handle in handles[:16])
    assert not any(isinstance(handle, Deadline) for handle in handles[16:])  # the loop's own
    assert len(clock.pending()) == 20  # one per queue, plus the four straight on the loop
    handles[17].cancel()
    clock.advance(0.01 + 19 / 1000)
    assert fired == [i for i in range(20) if i != 17]  # each at its deadline: in delay order


def test_on_a_real_event_loop_timers_fire_and_connections_use_its_loop() -> None:
    """The same timers on asyncio's loop: fired in order, awaited as futures, no sleeping."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        timers = FixedDelayTimers(loop)
        assert loop_of(timers) is loop and loop_of(None) is loop
        fired: list[str] = []
        done: asyncio.Future[None] = loop.create_future()
        timers.call_later(0.01, lambda: fired.append("a"))
        cancelled = timers.call_later(0.01, lambda: fired.append("cancelled"))
        timers.call_later(0.01, lambda: done.set_result(None))
        cancelled.cancel()
        await asyncio.wait_for(done, 10)
        assert fired == ["a"]

    asyncio.run(main())


def test_the_manual_clock_is_what_the_loop_would_be_for_these_timers() -> None:
    """FixedDelayTimers asks its loop only for time(), call_at(), call_later() and
    call_exception_handler(): what ManualClock offers. A new use of the loop fails here."""
    used: set[str] = set()
    clock = ManualClock()

    class LoopView:
        """The clock, recording which of its names the timers use."""

        def __getattr__(self, name: str) -> Any:
            used.add(name)
            return getattr(clock, name)

    timers = FixedDelayTimers(LoopView())  # type: ignore[arg-type]
    fired: list[int] = []
    timers.call_later(0.0, lambda: 1 / 0)
    for delay in range(1, 20):
        timers.call_later(delay / 100, lambda delay=delay: fired.append(delay))
    clock.advance(1.0)
    assert used == {"time", "call_at", "call_later", "call_exception_handler"}
    assert fired == list(range(1, 20)) and len(clock.reports) == 1
