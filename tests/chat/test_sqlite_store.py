"""SQLiteStore (chat/sqlite_store.py) beyond the shared Store contract: the file on disk (WAL),
group commit, the order of on_message, failures while the database is locked, and close().

tests/chat/test_store_contract.py runs the contract itself against every Store.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from framewire.chat.limits import ChatLimits
from framewire.chat.sqlite_store import SQLiteStore
from framewire.chat.store import ChatMessage, Draft, StoreUnavailable
from tests.chat.conftest import ManualClock

StoreScenario = Callable[[SQLiteStore, list[ChatMessage]], Awaitable[None]]


def open_store(tmp_path: Path, **limits: float) -> SQLiteStore:
    return SQLiteStore(
        tmp_path / "data" / "chat.sqlite3", tmp_path / "data" / "uploads", ChatLimits(**limits)
    )


def run_store(tmp_path: Path, scenario: StoreScenario, **limits: float) -> None:
    """Open a store over tmp_path/data, run ``scenario(store, delivered)``, close it; every
    message handed to on_message is appended to ``delivered``."""

    async def main() -> None:
        store = open_store(tmp_path, **limits)
        delivered: list[ChatMessage] = []
        await store.open(delivered.append)
        try:
            await asyncio.wait_for(scenario(store, delivered), 30)
        finally:
            await asyncio.wait_for(store.close(), 10)

    asyncio.run(main())


def test_open_creates_the_directories_and_a_wal_database(tmp_path: Path) -> None:
    async def scenario(store: SQLiteStore, delivered: list[ChatMessage]) -> None:
        assert store.uploads_dir.is_dir()
        await store.append(Draft("ann", "hi"))

    run_store(tmp_path, scenario)
    database = sqlite3.connect(tmp_path / "data" / "chat.sqlite3")
    try:
        assert database.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert database.execute("SELECT seq, username, message FROM messages").fetchall() == [
            (1, "ann", "hi")
        ]
    finally:
        database.close()


def test_concurrent_appends_get_gapless_seqs_and_on_message_in_order(tmp_path: Path) -> None:
    count = 300

    async def scenario(store: SQLiteStore, delivered: list[ChatMessage]) -> None:
        outcomes = await asyncio.gather(
            *(store.append(Draft(f"user{n % 7}", f"text {n}")) for n in range(count))
        )
        assert sorted(o.message.seq for o in outcomes) == list(range(1, count + 1))
        assert not any(o.duplicate for o in outcomes)
        # Handed over once each, in seq order, before the append that stored it returned.
        assert [m.seq for m in delivered] == list(range(1, count + 1))
        assert {o.message for o in outcomes} == set(delivered)
        assert len({m.id for m in delivered}) == count
        assert await store.last_seq() == count

    run_store(tmp_path, scenario)


def test_stored_fields_round_trip(tmp_path: Path) -> None:
    draft = Draft("ann", "<b>caption</b>", "cid-1", "/uploads/" + "a" * 32 + ".png", "image/png")

    async def scenario(store: SQLiteStore, delivered: list[ChatMessage]) -> None:
        before = time.time()
        outcome = await store.append(draft)
        message = outcome.message
        assert (message.username, message.message, message.client_id) == (
            "ann",
            draft.message,
            "cid-1",
        )
        assert (message.upload, message.content_type) == (draft.upload, "image/png")
        assert before - 1 <= message.timestamp <= time.time() + 1
        assert await store.after(0, 10) == [message]
        assert await store.before(None, 10) == [message]

    run_store(tmp_path, scenario)


def test_a_duplicate_is_not_stored_nor_handed_over(tmp_path: Path) -> None:
    async def scenario(store: SQLiteStore, delivered: list[ChatMessage]) -> None:
        first = await store.append(Draft("ann", "hi", "c1"))
        again = await store.append(Draft("ann", "hi, edited", "c1"))
        assert again.duplicate and again.message == first.message
        other_user = await store.append(Draft("bob", "hi", "c1"))
        assert not other_user.duplicate and other_user.message.seq == 2
        # Within one batch too.
        both = await asyncio.gather(
            store.append(Draft("cat", "one", "c9")), store.append(Draft("cat", "two", "c9"))
        )
        assert [o.duplicate for o in both] == [False, True]
        assert both[1].message == both[0].message
        assert [m.seq for m in delivered] == [1, 2, 3]
        assert await store.last_seq() == 3

    run_store(tmp_path, scenario)


def test_the_dedupe_window_is_measured_from_the_stored_timestamp(
    tmp_path: Path, wall_clock: ManualClock
) -> None:
    window = 60.0

    async def scenario(store: SQLiteStore, delivered: list[ChatMessage]) -> None:
        first = await store.append(Draft("ann", "hi", "c1"))
        assert first.message.timestamp == pytest.approx(wall_clock.now, abs=0.001)  # ms
        wall_clock.advance(0.5 * window)
        assert (await store.append(Draft("ann", "hi", "c1"))).duplicate
        # Past the window from the stored message (not from the duplicate just refused).
        wall_clock.advance(0.75 * window)
        later = await store.append(Draft("ann", "hi", "c1"))
        assert not later.duplicate and later.message.seq == 2

    run_store(tmp_path, scenario, dedupe_window=window)


def test_paging_reads(tmp_path: Path) -> None:
    async def scenario(store: SQLiteStore, delivered: list[ChatMessage]) -> None:
        assert await store.after(0, 10) == []
        assert await store.before(None, 10) == []
        assert await store.last_seq() == 0
        for n in range(1, 21):
            await store.append(Draft("ann", f"m{n}"))

        def texts(messages: list[ChatMessage]) -> list[str]:
            return [m.message for m in messages]

        assert texts(await store.after(0, 3)) == ["m1", "m2", "m3"]
        assert texts(await store.after(18, 10)) == ["m19", "m20"]
        assert texts(await store.before(None, 3)) == ["m18", "m19", "m20"]
        assert texts(await store.before(5, 10)) == ["m1", "m2", "m3", "m4"]
        assert texts(await store.before(5, 2)) == ["m3", "m4"]
        assert await store.after(20, 5) == []
        assert await store.before(1, 5) == []

    run_store(tmp_path, scenario)


def test_history_and_seq_survive_reopening(tmp_path: Path) -> None:
    async def first(store: SQLiteStore, delivered: list[ChatMessage]) -> None:
        for n in range(5):
            await store.append(Draft("ann", f"m{n}", f"c{n}"))

    async def second(store: SQLiteStore, delivered: list[ChatMessage]) -> None:
        assert [m.message for m in await store.after(0, 10)] == [f"m{n}" for n in range(5)]
        assert (await store.append(Draft("ann", "again", "c4"))).duplicate
        assert (await store.append(Draft("ann", "new"))).message.seq == 6

    run_store(tmp_path, first)
    run_store(tmp_path, second)


def test_append_while_the_database_is_locked_fails_and_loses_no_seq(tmp_path: Path) -> None:
    async def scenario(store: SQLiteStore, delivered: list[ChatMessage]) -> None:
        await store.append(Draft("ann", "before"))
        locker = sqlite3.connect(store.database_path, isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            with pytest.raises(
                StoreUnavailable, match="history database error: database is locked"
            ):
                await store.append(Draft("ann", "during"))
            problem = await store.health()
            assert problem is not None and "not writable" in problem
            # Reads go on beside a writer (WAL).
            assert [m.message for m in await store.after(0, 10)] == ["before"]
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert (await store.append(Draft("ann", "after"))).message.seq == 2
        assert [m.message for m in delivered] == ["before", "after"]
        assert await store.health() is None

    run_store(tmp_path, scenario)


def test_health_names_an_unusable_uploads_directory(tmp_path: Path) -> None:
    async def scenario(store: SQLiteStore, delivered: list[ChatMessage]) -> None:
        assert await store.health() is None
        assert (store.uploads_dir / ".health").exists()
        shutil.rmtree(store.uploads_dir)
        store.uploads_dir.write_bytes(b"")  # root ignores chmod: a file where the directory was
        problem = await store.health()
        assert problem is not None and problem.startswith("uploads directory is not writable")

    run_store(tmp_path, scenario)


def test_append_after_close_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store(tmp_path)
        with pytest.raises(StoreUnavailable):
            await store.append(Draft("ann", "not open yet"))
        await store.open(lambda message: None)
        await store.close()
        with pytest.raises(StoreUnavailable, match="closed"):
            await store.append(Draft("ann", "too late"))
        assert await store.health() == "the store is not open"

    asyncio.run(asyncio.wait_for(main(), 30))


def test_close_commits_what_is_pending(tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store(tmp_path)
        delivered: list[ChatMessage] = []
        await store.open(delivered.append)
        appends = [asyncio.ensure_future(store.append(Draft("ann", f"m{n}"))) for n in range(5)]
        await asyncio.sleep(0)  # the appends are queued
        await asyncio.wait_for(store.close(), 10)
        assert [(await append).message.seq for append in appends] == [1, 2, 3, 4, 5]

    asyncio.run(asyncio.wait_for(main(), 30))


def test_close_returns_when_an_append_came_during_a_commit(tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store(tmp_path)
        later: list[asyncio.Future[object]] = []

        def on_message(message: ChatMessage) -> None:
            # Runs in the commit loop, right after the first batch committed: another append
            # and close() arrive before the loop looks for more work.
            if message.seq == 1:
                later.append(asyncio.ensure_future(store.append(Draft("ann", "second"))))
                later.append(asyncio.ensure_future(store.close()))

        await store.open(on_message)
        await store.append(Draft("ann", "first"))
        second, closing = later
        try:
            await asyncio.wait_for(asyncio.shield(closing), 3)
        except TimeoutError:
            raise AssertionError("SQLiteStore.close() did not return") from None
        assert second.done() and second.result().message.seq == 2  # type: ignore[attr-defined]

    asyncio.run(main())
