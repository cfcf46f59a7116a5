"""FixedDelayTimers (aio/timers.py): one asyncio timer per delay serves every timer of that
delay, in order, at its own deadline; cancel() works as a TimerHandle's."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from framewire.aio.timers import Deadline, FixedDelayTimers


def run(main: Any) -> None:
    asyncio.run(asyncio.wait_for(main(), 10))


def test_timers_fire_in_order_each_at_its_own_deadline() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        timers = FixedDelayTimers(loop)
        fired: list[tuple[str, float]] = []
        armed: dict[str, float] = {}
        for name in ("a", "b", "c"):
            armed[name] = loop.time()
            timers.call_later(0.05, lambda name=name: fired.append((name, loop.time())))
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert [name for name, _ in fired] == ["a", "b", "c"]
        resolution = loop._clock_resolution  # type: ignore[attr-defined]
        for name, at in fired:
            assert at >= armed[name] + 0.05 - resolution, name

    run(main)


def test_cancelled_timers_never_fire_and_the_next_one_still_does() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        timers = FixedDelayTimers(loop)
        fired: list[str] = []
        first = timers.call_later(0.03, lambda: fired.append("first"))
        second = timers.call_later(0.03, lambda: fired.append("second"))
        assert isinstance(first, Deadline) and not first.cancelled()
        first.cancel()  # the asyncio timer armed for it still runs, and finds the second
        first.cancel()  # twice is harmless
        assert first.cancelled()
        await asyncio.sleep(0.08)
        assert fired == ["second"]
        assert second.cancelled()  # called: cancelling now does nothing
        second.cancel()
        # After the queue ran empty, a new timer arms the asyncio timer again.
        timers.call_later(0.01, lambda: fired.append("third"))
        await asyncio.sleep(0.05)
        assert fired == ["second", "third"]

    run(main)


def test_a_timer_armed_in_a_callback_of_the_same_delay_fires_a_delay_later() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        timers = FixedDelayTimers(loop)
        times: list[float] = []

        def tick() -> None:
            times.append(loop.time())
            if len(times) < 3:
                timers.call_later(0.02, tick)

        timers.call_later(0.02, tick)
        await asyncio.sleep(0.15)
        assert len(times) == 3
        assert all(later - earlier >= 0.015 for earlier, later in itertools.pairwise(times))

    run(main)


def test_a_failing_callback_is_reported_and_the_others_still_run() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        reports: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: reports.append(context))
        timers = FixedDelayTimers(loop)
        fired: list[str] = []

        def fail() -> None:
            raise ValueError("boom")

        timers.call_later(0.01, fail)
        timers.call_later(0.01, lambda: fired.append("after"))
        await asyncio.sleep(0.05)
        assert fired == ["after"]
        assert len(reports) == 1 and isinstance(reports[0]["exception"], ValueError)
        assert "timer callback" in reports[0]["message"]

    run(main)


def test_more_distinct_delays_than_the_queues_go_to_the_loop() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        timers = FixedDelayTimers(loop)
        fired: list[int] = []
        handles = [
            timers.call_later(0.01 + i / 1000, lambda i=i: fired.append(i)) for i in range(20)
        ]
        assert all(isinstance(handle, Deadline) for handle in handles[:16])
        assert all(isinstance(handle, asyncio.TimerHandle) for handle in handles[16:])
        handles[17].cancel()
        await asyncio.sleep(0.08)
        assert sorted(fired) == [i for i in range(20) if i != 17]

    run(main)
