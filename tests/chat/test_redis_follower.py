"""StreamFollower (chat/redis_follower.py), through RedisStore against a real redis-server:
catching up after a cut, a trimmed stream reported as a gap, seq lifted when Redis lost its
data, the heartbeat that makes a deaf reader unhealthy, and the bounded cache of newest messages.
"""

from __future__ import annotations

from pathlib import Path

import redis

from framewire.chat.limits import ChatLimits
from framewire.chat.redis_link import Keys
from framewire.chat.redis_store import RedisStore
from framewire.chat.store import Draft
from tests.chat.redis_helpers import NO_HANG, proxy_to, run
from tests.chat.redis_server import RedisServer
from tests.waiting import wait_until

LIMITS = ChatLimits()


def test_the_cache_keeps_the_newest_messages_within_its_bytes(
    redis_server: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    async def main() -> None:
        store = RedisStore(redis_server.url, tmp_path, LIMITS, keys=keys, cache_size=5)
        store._follower.cache_bytes = 3 * (1000 + 3 + 200)
        await store.open(lambda message: None)
        try:
            for n in range(8):
                await store.append(Draft("ann", str(n) * 1000))
            await wait_until(lambda: store._follower.last_seq == 8, 5)
            assert [m.seq for m in store._follower.cache] == [6, 7, 8]
            store._follower.cache_bytes = 10**9
            for _ in range(8):
                await store.append(Draft("ann", "short"))
            await wait_until(lambda: store._follower.last_seq == 16, 5)
            assert [m.seq for m in store._follower.cache] == [12, 13, 14, 15, 16]
        finally:
            await store.close()

    run(main)


def test_reader_catches_up_on_what_others_stored_while_it_was_cut_off(
    redis_server: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    async def main() -> None:
        async with proxy_to(redis_server) as proxy:
            cut = RedisStore(proxy.url, tmp_path, LIMITS, keys=keys)
            other = RedisStore(redis_server.url, tmp_path, LIMITS, keys=keys)
            seen: list[int] = []
            await cut.open(lambda message: seen.append(message.seq))
            await other.open(lambda message: None)
            try:
                await other.append(Draft("bob", "one"))
                await wait_until(lambda: seen == [1], 5)
                await proxy.stop()
                for n in range(20):
                    await other.append(Draft("bob", f"while away {n}"))
                # History still answers from the local cache meanwhile.
                await wait_until(lambda: cut._follower.error is not None, 3)
                assert [m.seq for m in await cut.before(None, 10)] == [1]
                assert [m.seq for m in await cut.after(0, 10)] == [1]
                await proxy.start()
                await wait_until(lambda: len(seen) == 21, 5, "catch-up")
                assert seen == list(range(1, 22))
                assert cut.gaps == 0
            finally:
                await cut.close()
                await other.close()

    run(main)


def test_a_stream_trimmed_past_the_readers_position_is_a_gap_it_reports(
    redis_server: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    async def main() -> None:
        async with proxy_to(redis_server) as proxy:
            cut = RedisStore(proxy.url, tmp_path, LIMITS, keys=keys)
            other = RedisStore(redis_server.url, tmp_path, LIMITS, keys=keys)
            seen: list[int] = []
            await cut.open(lambda message: seen.append(message.seq))
            await other.open(lambda message: None)
            direct = redis.Redis(port=redis_server.port)
            try:
                await other.append(Draft("bob", "one"))
                await wait_until(lambda: seen == [1], 5)
                await proxy.stop()
                for n in range(30):
                    await other.append(Draft("bob", f"m{n}"))
                direct.xtrim(keys.stream, maxlen=10, approximate=False)  # seqs 22-31 remain
                await proxy.start()
                await wait_until(lambda: len(seen) == 11, 5, "delivery after the gap")
                assert seen == [1, *range(22, 32)]
                assert cut.gaps == 1
                # since= recovery sees where history starts.
                assert (await cut.after(1, 100))[0].seq == 22
            finally:
                direct.close()
                await cut.close()
                await other.close()

    run(main)


def test_seq_never_goes_back_when_redis_loses_its_data(
    redis_server: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    async def main() -> None:
        async with proxy_to(redis_server) as proxy:
            veteran = RedisStore(proxy.url, tmp_path, LIMITS, keys=keys)
            seen: list[int] = []
            await veteran.open(lambda message: seen.append(message.seq))
            direct = redis.Redis(port=redis_server.port)
            newcomer = RedisStore(redis_server.url, tmp_path, LIMITS, keys=keys)
            try:
                for n in range(5):
                    await veteran.append(Draft("ann", f"m{n}"))
                await wait_until(lambda: len(seen) == 5, 5)
                await proxy.stop()
                await wait_until(lambda: veteran._follower.error is not None, 3)
                direct.delete(keys.stream, keys.seq)  # as after a restart without persistence
                await proxy.start()
                await wait_until(lambda: veteran._follower.error is None, 5)
                # A process that never saw seq 5 still numbers after it.
                await newcomer.open(lambda message: None)
                outcome = await newcomer.append(Draft("bob", "after the loss"))
                assert outcome.message.seq == 6
                await wait_until(lambda: seen[-1:] == [6], 5, "delivered to the veteran")
            finally:
                direct.close()
                await newcomer.close()
                await veteran.close()

    run(main)


def test_health_fails_when_the_reader_goes_deaf_and_recovers(
    redis_server: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    async def main() -> None:
        async with proxy_to(redis_server) as proxy:
            store = RedisStore(
                proxy.url, tmp_path, LIMITS, keys=keys, heartbeat_interval=0.2, liveness_window=1.0
            )
            await store.open(lambda message: None)
            try:
                await wait_until(lambda: store._follower.heard_own_heartbeat > 0, NO_HANG)
                assert await store.health() is None
                proxy.freeze()  # no error, no bytes: a silent partition
                reasons: list[str | None] = []

                async def unhealthy() -> bool:
                    reasons.append(await store.health())
                    return reasons[-1] is not None

                await wait_until(unhealthy, NO_HANG, "health to fail")
                reason = reasons[-1]
                assert reason is not None and ("heartbeat" in reason or "unreachable" in reason)
                proxy.thaw()
                await proxy.stop()  # drop the stalled connections
                await proxy.start()

                async def healthy() -> bool:
                    return await store.health() is None

                await wait_until(healthy, NO_HANG, "health to recover")
            finally:
                await store.close()

    run(main)
