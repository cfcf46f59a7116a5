"""The Store contract (store.py), run against every implementation: SQLite and Redis.

Each test gets a ``backend``: a factory for stores over one fresh room (calling it twice gives
two stores over the same data, which is how reopening is tested).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from framewire.chat.limits import ChatLimits
from framewire.chat.store import ChatMessage, Draft, Store
from tests.chat.redis_server import RedisServer
from tests.waiting import run_within, wait_until

LIMITS = ChatLimits()
StoreFactory = Callable[[], Store]


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    if request.param == "sqlite":
        from framewire.chat.sqlite_store import SQLiteStore

        return lambda: SQLiteStore(tmp_path / "chat.sqlite3", tmp_path / "uploads", LIMITS)
    from framewire.chat.redis_link import Keys
    from framewire.chat.redis_store import RedisStore

    server: RedisServer = request.getfixturevalue("redis_server")
    keys = Keys(prefix=f"contract:{uuid.uuid4().hex}:")
    return lambda: RedisStore(server.url, tmp_path / "uploads", LIMITS, keys=keys)


def run(main: Callable[[], Awaitable[None]], timeout: float = 30) -> None:
    run_within(main, timeout)


class Opened:
    """An open store and what its on_message received."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.received: list[ChatMessage] = []

    async def __aenter__(self) -> Opened:
        await self.store.open(self.received.append)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.store.close()

    async def received_before_a_marker(self) -> list[int]:
        """Append a marker message, wait for it, and return the seqs received before it.

        on_message delivers in seq order, so a message delivered twice or late would arrive
        before the marker: no need to sleep and see whether anything more comes.
        """
        marker = (await self.store.append(Draft("marker", "marker"))).message
        await wait_until(lambda: marker in self.received, what="the marker")
        assert self.received[-1] == marker, self.received
        return [message.seq for message in self.received[:-1]]


def test_seqs_run_from_one_without_gaps_and_reach_on_message_in_order(
    backend: StoreFactory,
) -> None:
    async def main() -> None:
        async with Opened(backend()) as opened:
            first = [await opened.store.append(Draft("ann", f"one {n}")) for n in range(10)]
            together = await asyncio.gather(
                *(opened.store.append(Draft(f"user{n % 3}", f"two {n}")) for n in range(30))
            )
            outcomes = first + list(together)
            assert sorted(o.message.seq for o in outcomes) == list(range(1, 41))
            assert not any(o.duplicate for o in outcomes)
            assert [o.message.seq for o in first] == list(range(1, 11))
            assert await opened.received_before_a_marker() == list(range(1, 41))
            by_seq = {o.message.seq: o.message for o in outcomes}
            assert [by_seq[m.seq] for m in opened.received[:-1]] == opened.received[:-1]

    run(main)


def test_after_pages_forward_oldest_first(backend: StoreFactory) -> None:
    async def main() -> None:
        async with Opened(backend()) as opened:
            for n in range(25):
                await opened.store.append(Draft("ann", f"m{n}"))
            pages = [await opened.store.after(seq, 10) for seq in (0, 10, 20)]
            assert [[m.seq for m in page] for page in pages] == [
                list(range(1, 11)),
                list(range(11, 21)),
                list(range(21, 26)),
            ]
            assert [m.message for m in pages[0]] == [f"m{n}" for n in range(10)]
            assert await opened.store.after(25, 10) == []
            assert await opened.store.after(100, 10) == []
            assert [m.seq for m in await opened.store.after(23, 1000)] == [24, 25]

    run(main)


def test_before_pages_backward_oldest_first(backend: StoreFactory) -> None:
    async def main() -> None:
        async with Opened(backend()) as opened:
            assert await opened.store.before(None, 10) == []
            for n in range(25):
                await opened.store.append(Draft("ann", f"m{n}"))
            assert [m.seq for m in await opened.store.before(None, 10)] == list(range(16, 26))
            assert [m.seq for m in await opened.store.before(16, 10)] == list(range(6, 16))
            assert [m.seq for m in await opened.store.before(6, 10)] == list(range(1, 6))
            assert await opened.store.before(1, 10) == []
            assert [m.seq for m in await opened.store.before(1000, 2)] == [24, 25]
            assert await opened.store.last_seq() == 25

    run(main)


def test_resend_with_same_client_id_returns_the_earlier_message_once(
    backend: StoreFactory,
) -> None:
    async def main() -> None:
        async with Opened(backend()) as opened:
            store = opened.store
            first = await store.append(Draft("ann", "hello", client_id="c1"))
            again = await store.append(Draft("ann", "hello", client_id="c1"))
            assert not first.duplicate and again.duplicate
            assert again.message == first.message
            # Another user may use the same clientId; no clientId means no de-duplication.
            other = await store.append(Draft("bob", "hello", client_id="c1"))
            plain = [await store.append(Draft("ann", "same")) for _ in range(2)]
            assert not other.duplicate and not any(o.duplicate for o in plain)
            assert [other.message.seq] + [o.message.seq for o in plain] == [2, 3, 4]
            # A name ending like another pair's key does not collide with it.
            tricky = await store.append(Draft("ann:c", "x", client_id="1"))
            assert not tricky.duplicate
            assert await opened.received_before_a_marker() == [1, 2, 3, 4, 5]
            assert await store.last_seq() == 6  # the marker

    run(main)


def test_concurrent_resends_store_one_message(backend: StoreFactory) -> None:
    async def main() -> None:
        async with Opened(backend()) as opened:
            outcomes = await asyncio.gather(
                *(opened.store.append(Draft("ann", "once", client_id="same")) for _ in range(8))
            )
            assert {o.message.seq for o in outcomes} == {1}
            assert sum(not o.duplicate for o in outcomes) == 1
            assert await opened.received_before_a_marker() == [1]

    run(main)


def test_fields_are_stored_unescaped_and_round_trip(backend: StoreFactory) -> None:
    async def main() -> None:
        before = time.time()
        async with Opened(backend()) as opened:
            draft = Draft(
                "<ann & 'co'>",
                '<b>hi</b> "there" é 🙂',
                client_id="id-1",
                upload="/uploads/abc.png",
                content_type="image/png",
            )
            stored = (await opened.store.append(draft)).message
            plain = (await opened.store.append(Draft("bob", ""))).message
            read = await opened.store.after(0, 10)
            assert read == [stored, plain]
            assert (stored.username, stored.message) == (draft.username, draft.message)
            assert (stored.client_id, stored.upload, stored.content_type) == (
                "id-1",
                "/uploads/abc.png",
                "image/png",
            )
            assert (plain.client_id, plain.upload, plain.content_type) == (None, None, None)
            assert before - 5 <= stored.timestamp <= time.time() + 5
            assert stored.id != plain.id
            assert stored.to_wire()["message"] == "&lt;b&gt;hi&lt;/b&gt; &quot;there&quot; é 🙂"

    run(main)


def test_history_and_dedupe_survive_reopening(backend: StoreFactory) -> None:
    async def main() -> None:
        async with Opened(backend()) as opened:
            for n in range(5):
                await opened.store.append(Draft("ann", f"m{n}", client_id=f"c{n}"))
            written = await opened.store.after(0, 10)
        async with Opened(backend()) as reopened:
            store = reopened.store
            assert await store.after(0, 10) == written
            assert await store.last_seq() == 5
            again = await store.append(Draft("ann", "m2", client_id="c2"))
            assert again.duplicate and again.message == written[2]
            new = await store.append(Draft("ann", "m5"))
            assert new.message.seq == 6
            # Only what was committed after open() reaches on_message.
            assert await reopened.received_before_a_marker() == [6]

    run(main)


def test_two_stores_over_one_room_see_each_others_messages(backend: StoreFactory) -> None:
    async def main() -> None:
        async with Opened(backend()) as one, Opened(backend()) as two:
            if one.store.kind == "sqlite":
                pytest.skip("SQLite serves one process")
            await asyncio.gather(
                *(one.store.append(Draft("ann", f"a{n}")) for n in range(10)),
                *(two.store.append(Draft("bob", f"b{n}")) for n in range(10)),
            )
            await wait_until(lambda: len(one.received) >= 20 and len(two.received) >= 20)
            assert one.received == two.received
            assert [m.seq for m in one.received] == list(range(1, 21))

    run(main)


def test_health_is_none_while_open(backend: StoreFactory) -> None:
    async def main() -> None:
        async with Opened(backend()) as opened:
            assert await opened.store.health() is None
            await opened.store.append(Draft("ann", "hi"))
            assert await opened.store.health() is None
            assert opened.store.kind in {"sqlite", "redis"}
            assert opened.store.dedupe_window == LIMITS.dedupe_window

    run(main)
