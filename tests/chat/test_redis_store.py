"""RedisStore (chat/redis_store.py) against a real redis-server: appends that fail fast while
Redis is cut off and are retried without storing twice, and a store opened without Redis.

The tests reach Redis through a TcpProxy (tests/chat/redis_server.py), so an outage is cut for
one store only. The Store contract itself is tests/chat/test_store_contract.py; reading the
stream is tests/chat/test_redis_follower.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis

from framewire.chat.limits import ChatLimits
from framewire.chat.redis_link import Backoff, Keys
from framewire.chat.redis_store import RedisStore
from framewire.chat.store import ChatMessage, Draft, StoreUnavailable
from tests.chat.redis_helpers import NO_HANG, proxy_to, run
from tests.chat.redis_server import RedisServer
from tests.waiting import wait_until

LIMITS = ChatLimits()


@pytest.fixture
def backoff_delays(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """Every reconnection delay any Backoff hands out, as (delay, its cap), in seconds."""
    delays: list[tuple[float, float]] = []
    next_delay = Backoff.next_delay

    def recording(self: Backoff) -> float:
        delay = next_delay(self)
        delays.append((delay, self._cap))
        return delay

    monkeypatch.setattr(Backoff, "next_delay", recording)
    return delays


def test_append_fails_fast_while_redis_is_cut_off_and_works_after(
    redis_server: RedisServer,
    keys: Keys,
    tmp_path: Path,
    backoff_delays: list[tuple[float, float]],
) -> None:
    async def main() -> None:
        async with proxy_to(redis_server) as proxy:
            store = RedisStore(proxy.url, tmp_path, LIMITS, keys=keys)
            received: list[ChatMessage] = []
            await store.open(received.append)
            try:
                await store.append(Draft("ann", "before"))
                await proxy.stop()
                # Fails rather than hangs (2 s documented): NO_HANG only catches a hang.
                with pytest.raises(StoreUnavailable, match="unreachable"):
                    async with asyncio.timeout(NO_HANG):
                        await store.append(Draft("ann", "during", client_id="d1"))
                await wait_until(lambda: store._follower.error is not None, 3, "reader notices")
                reason = await store.health()
                assert reason is not None and "redis unreachable" in reason
                await proxy.start()
                await wait_until(lambda: store._follower.error is None, 5, "reader back")
                # The reader retried with back-off, capped at 2 s; the append's retries at 0.5 s.
                assert 2.0 in (cap for _, cap in backoff_delays), "the reader never backed off"
                assert all(delay <= cap for delay, cap in backoff_delays), backoff_delays
                outcome = await store.append(Draft("ann", "during", client_id="d1"))
                assert not outcome.duplicate and outcome.message.seq == 2
                await wait_until(lambda: len(received) == 2, 5, "delivery")
                await wait_until(lambda: store._follower.heard_own_heartbeat > 0, 3)
                assert await store.health() is None
            finally:
                await store.close()

    run(main)


def test_a_store_opened_while_redis_is_away_starts_from_the_newest_message_later(
    redis_server: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    async def main() -> None:
        other = RedisStore(redis_server.url, tmp_path, LIMITS, keys=keys)
        await other.open(lambda message: None)
        async with proxy_to(redis_server) as proxy:
            await proxy.stop()
            late = RedisStore(proxy.url, tmp_path, LIMITS, keys=keys)
            seen: list[int] = []
            try:
                for n in range(3):
                    await other.append(Draft("bob", f"old {n}"))
                async with asyncio.timeout(NO_HANG):  # opens without Redis, without hanging
                    await late.open(lambda message: seen.append(message.seq))
                assert "redis unreachable" in (await late.health() or "")
                with pytest.raises(StoreUnavailable):
                    await late.after(0, 10)  # nothing cached yet
                assert await late.before(None, 10) == []
                await proxy.start()
                await wait_until(lambda: late._follower.error is None, 5, "reader connected")
                assert [m.seq for m in await late.before(None, 10)] == [1, 2, 3]
                await other.append(Draft("bob", "new"))
                await wait_until(lambda: seen == [4], 5, "only the new message")
            finally:
                await late.close()
                await other.close()

    run(main)


def test_a_lost_answer_is_retried_without_storing_twice(
    redis_server: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    async def main() -> None:
        store = RedisStore(redis_server.url, tmp_path, LIMITS, keys=keys)
        received: list[ChatMessage] = []
        await store.open(received.append)
        original = store._append_script
        calls = 0

        async def lose_first_answer(**kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            reply = await original(**kwargs)
            if calls == 1:
                raise redis.exceptions.ConnectionError("connection lost before the answer")
            return reply

        store._append_script = lose_first_answer  # type: ignore[assignment]
        try:
            with_id = await store.append(Draft("ann", "x", client_id="c"))
            without_id = await store.append(Draft("ann", "y"))
            assert calls == 3
            assert not with_id.duplicate and not without_id.duplicate
            assert [with_id.message.seq, without_id.message.seq] == [1, 2]
            # A marker behind them: the stream is delivered in order, so a duplicate of 1 or 2
            # would arrive before it.
            marker = await store.append(Draft("ann", "marker"))
            await wait_until(lambda: received[-1:] == [marker.message], 5, "the marker")
            assert [m.seq for m in received] == [1, 2, 3]
        finally:
            store._append_script = original
            await store.close()

    run(main)
