"""The bounded inbox between data_received and recv() (aio/ws/inbox.py)."""

from __future__ import annotations

import asyncio

import pytest

from framewire.aio.ws.inbox import PyInbox
from tests.conftest import c_twin_or_skip

Inbox = PyInbox  # replaced per test by the fixture below: the Python class, then the C one


@pytest.fixture(autouse=True, params=["python", "c"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test with PyInbox, then with framewire._speedups.Inbox."""
    if request.param == "c":
        monkeypatch.setitem(globals(), "Inbox", c_twin_or_skip("Inbox"))


def test_pieces_come_out_in_order_and_reading_pauses_and_resumes() -> None:
    calls: list[str] = []
    inbox = Inbox(4, 1000, lambda: calls.append("pause"), lambda: calls.append("resume"))
    for index in range(5):
        inbox.put(f"m{index}", True, True)
    assert calls == ["pause"]  # five complete messages exceed max_queue=4
    assert [inbox.get_nowait() for _ in range(3)] == [(f"m{i}", True, True) for i in range(3)]
    assert calls == ["pause", "resume"]  # two left: at most half of max_queue
    assert inbox.get_nowait() == ("m3", True, True)
    assert inbox.get_nowait() == ("m4", True, True)
    assert inbox.get_nowait() is None


def test_byte_budget_pauses_reading_for_one_large_partial_message() -> None:
    calls: list[str] = []
    inbox = Inbox(16, 1000, lambda: calls.append("pause"), lambda: calls.append("resume"))
    inbox.put(b"x" * 600, False, False)
    inbox.put(b"x" * 600, False, False)
    assert calls == ["pause"]
    inbox.get_nowait()
    inbox.get_nowait()
    assert calls == ["pause", "resume"]


def test_a_queue_that_never_empties_stays_compact() -> None:
    inbox = Inbox(10_000, 1 << 30, lambda: None, lambda: None)
    inbox.put(b"first", False, True)
    for index in range(10_000):
        inbox.put(b"%d" % index, False, True)
        assert inbox.get_nowait() is not None
        assert len(inbox._pieces) <= 200
    assert inbox.has_pieces


async def _wait(inbox: Inbox) -> None:
    await inbox.wait(asyncio.get_running_loop())


def test_wait_returns_when_a_piece_is_announced_or_the_inbox_closes() -> None:
    async def main() -> None:
        inbox = Inbox(4, 1000, lambda: None, lambda: None)
        waiting = asyncio.create_task(_wait(inbox))
        await asyncio.sleep(0)
        inbox.put("late", True, True)
        await asyncio.sleep(0)
        assert not waiting.done()  # queuing alone does not wake: the protocol announces a batch
        inbox.wake_reader()
        await waiting
        assert inbox.get_nowait() == ("late", True, True)
        closing = asyncio.create_task(_wait(inbox))
        await asyncio.sleep(0)
        assert not closing.done()
        inbox.close()
        await closing
        assert inbox.closed and inbox.get_nowait() is None

    asyncio.run(main())


def test_wake_reader_without_pieces_leaves_the_reader_waiting() -> None:
    async def main() -> None:
        inbox = Inbox(4, 1000, lambda: None, lambda: None)
        waiting = asyncio.create_task(_wait(inbox))
        await asyncio.sleep(0)
        inbox.wake_reader()
        await asyncio.sleep(0)
        assert not waiting.done()
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        assert waiting.cancelled()

    asyncio.run(main())


def test_take_messages_queues_a_batch_counts_it_and_wakes_the_reader() -> None:
    async def main() -> None:
        calls: list[str] = []
        inbox = Inbox(2, 1000, lambda: calls.append("pause"), lambda: calls.append("resume"))
        waiting = asyncio.create_task(_wait(inbox))
        await asyncio.sleep(0)
        batch: list[tuple[str | bytes, bool, bool]] = [("a", True, True), (b"bc", False, True)]
        inbox.take_messages(batch, False)
        assert batch == []
        await asyncio.sleep(0)
        assert not waiting.done()
        inbox.take_messages([], True)
        await asyncio.wait_for(waiting, 5)
        inbox.take_messages([(b"d", False, True)], True)
        assert calls == ["pause"]  # three whole messages exceed max_queue=2
        assert inbox.get_nowait() == ("a", True, True)
        assert inbox.get_nowait() == (b"bc", False, True)
        assert calls == ["pause", "resume"]
        assert inbox.get_nowait() == (b"d", False, True)
        assert inbox.get_nowait() is None

    asyncio.run(main())


def test_next_message_takes_only_a_whole_message_held_as_str_or_bytes() -> None:
    inbox = Inbox(16, 1 << 20, lambda: None, lambda: None)
    assert inbox.next_message() is None
    inbox.put("whole", True, True)
    inbox.put(b"first part", False, False)
    inbox.put(b"last part", False, True)
    inbox.put(memoryview(b"a view"), False, True)
    assert inbox.next_message() == "whole"
    assert inbox.next_message() is None  # a partial message: the caller takes it piece by piece
    assert inbox.get_nowait() == (b"first part", False, False)
    assert inbox.next_message() == b"last part"
    assert inbox.next_message() is None  # a view: the caller converts it
    data, _, last = inbox.get_nowait()  # type: ignore[misc]
    assert bytes(data) == b"a view" and last
    assert not inbox.has_pieces and not inbox.has_message


def test_a_reader_with_pieces_queued_is_never_left_waiting() -> None:
    """A partial message at the head must not make __anext__ wait for more (its rest may be
    queued already): tested through the WebSocket's use of next_message and has_pieces."""
    inbox = Inbox(16, 1 << 20, lambda: None, lambda: None)
    inbox.put(b"part", False, False)
    inbox.put(b"rest", False, True)
    assert inbox.next_message() is None and inbox.has_pieces


def test_wait_if_empty_gives_a_waiter_only_when_nothing_is_queued_and_the_inbox_is_open() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        inbox = Inbox(4, 1000, lambda: None, lambda: None)
        waiter = inbox.wait_if_empty(loop)
        assert waiter is not None and not waiter.done()
        inbox.put("part", True, False)  # a piece of a message: the reader must take it
        assert inbox.wait_if_empty(loop) is None
        inbox.wake_reader()
        assert waiter.done()
        assert inbox.get_nowait() == ("part", True, False)
        assert inbox.wait_if_empty(loop) is not None
        inbox.close()
        assert inbox.wait_if_empty(loop) is None

    asyncio.run(main())


class GeneralPath:
    """Stands in for the WebSocket behind anext(): records calls to its general path."""

    def __init__(self, result: str | bytes = "general") -> None:
        self.calls = 0
        self.result = result

    async def _anext_general(self) -> str | bytes:
        self.calls += 1
        await asyncio.sleep(0)  # suspends once, so the awaitable must pass the step on
        return self.result


def test_anext_takes_a_queued_message_or_waits_for_the_next() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        inbox = Inbox(16, 1 << 20, lambda: None, lambda: None)
        general = GeneralPath()
        inbox.put(b"queued", False, True)
        assert await inbox.anext(general, loop) == b"queued"
        task = asyncio.create_task(inbox.anext(general, loop))  # a coroutine, to asyncio
        await asyncio.sleep(0)
        assert inbox.receiving and not task.done()
        inbox.take_messages([("later", True, True)], True)
        assert await task == "later"
        assert not inbox.receiving
        assert general.calls == 0

    asyncio.run(main())


def test_anext_leaves_everything_else_to_the_general_path() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        inbox = Inbox(16, 1 << 20, lambda: None, lambda: None)
        general = GeneralPath()
        inbox.put(b"part", False, False)  # a fragmented message
        assert await inbox.anext(general, loop) == "general"
        inbox.get_nowait()
        inbox.receiving = True  # another coroutine receives
        assert await inbox.anext(general, loop) == "general"
        inbox.receiving = False
        waiting = asyncio.create_task(inbox.anext(general, loop))
        await asyncio.sleep(0)
        inbox.close()  # woken with nothing queued
        assert await waiting == "general"
        assert await inbox.anext(general, loop) == "general"  # closed from the start
        assert general.calls == 4
        assert await inbox.anext(GeneralPath(b""), loop) == b""  # a falsy result returns too

    asyncio.run(main())


def test_anext_cancelled_while_waiting_leaves_the_inbox_free_for_the_next_reader() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        inbox = Inbox(16, 1 << 20, lambda: None, lambda: None)
        task = asyncio.create_task(inbox.anext(GeneralPath(), loop))
        await asyncio.sleep(0)
        assert inbox.receiving
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not inbox.receiving
        inbox.take_messages([("next", True, True)], True)
        assert await inbox.anext(GeneralPath(), loop) == "next"

    asyncio.run(main())


def test_anext_errors_of_the_general_path_reach_the_awaiter() -> None:
    class Failing:
        async def _anext_general(self) -> str:
            await asyncio.sleep(0)
            raise StopAsyncIteration

    async def main() -> None:
        inbox = Inbox(16, 1 << 20, lambda: None, lambda: None)
        inbox.close()
        with pytest.raises(StopAsyncIteration):
            await inbox.anext(Failing(), asyncio.get_running_loop())

    asyncio.run(main())


def test_anext_awaitable_is_a_coroutine_for_throw_close_and_reuse() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        inbox = Inbox(16, 1 << 20, lambda: None, lambda: None)
        awaitable = inbox.anext(GeneralPath(), loop)
        assert awaitable.send(None) is not None  # suspended on its waiter
        assert inbox.receiving
        with pytest.raises(ValueError, match="into the wait"):
            awaitable.throw(ValueError("into the wait"))
        assert not inbox.receiving
        closed = inbox.anext(GeneralPath(), loop)
        closed.send(None)
        closed.close()
        assert not inbox.receiving
        inbox.put("done", True, True)
        finished = inbox.anext(GeneralPath(), loop)
        with pytest.raises(StopIteration) as stop:
            finished.send(None)
        assert stop.value.value == "done"
        with pytest.raises(RuntimeError):
            finished.send(None)

    asyncio.run(main())


def test_anext_throws_into_the_general_path_where_it_is_suspended() -> None:
    class Catching:
        async def _anext_general(self) -> str:
            try:
                await asyncio.sleep(0)
            except KeyError:
                return "caught"
            return "not thrown"

    async def main() -> None:
        inbox = Inbox(16, 1 << 20, lambda: None, lambda: None)
        inbox.close()
        awaitable = inbox.anext(Catching(), asyncio.get_running_loop())
        awaitable.send(None)  # now suspended inside _anext_general()
        with pytest.raises(StopIteration) as stop:
            awaitable.throw(KeyError)
        assert stop.value.value == "caught"
        failing = inbox.anext(Catching(), asyncio.get_running_loop())
        failing.send(None)
        with pytest.raises(ValueError):
            failing.throw(ValueError("not caught"))
        with pytest.raises(RuntimeError):
            failing.send(None)

    asyncio.run(main())
