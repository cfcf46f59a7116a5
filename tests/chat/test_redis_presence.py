"""RedisPresence (chat/redis_presence.py) against a real redis-server: users across processes,
a silent process dropped after its ttl, typing relayed, and changes brought by the nudge.
"""

from __future__ import annotations

from framewire.chat.limits import ChatLimits
from framewire.chat.redis_link import Keys
from framewire.chat.redis_presence import RedisPresence
from tests.chat.redis_helpers import NO_HANG, proxy_to, run
from tests.chat.redis_server import RedisServer
from tests.waiting import wait_until

LIMITS = ChatLimits()


def test_presence_spans_processes_and_drops_a_silent_one(
    redis_server: RedisServer, keys: Keys
) -> None:
    async def main() -> None:
        async with proxy_to(redis_server) as proxy:
            doomed = RedisPresence(proxy.url, "doomed", ttl=1.5, refresh_interval=0.5, keys=keys)
            watcher = RedisPresence(
                redis_server.url, "watcher", ttl=1.5, refresh_interval=0.5, keys=keys
            )
            third = RedisPresence(
                redis_server.url, "third", ttl=1.5, refresh_interval=0.5, keys=keys
            )
            announced: list[list[str]] = []
            typed: list[tuple[str, str]] = []
            await doomed.open(lambda users: None, lambda user, origin: None)
            await watcher.open(announced.append, lambda user, origin: typed.append((user, origin)))
            await third.open(lambda users: None, lambda user, origin: None)
            try:
                watcher.set_local_users(["wendy"])
                assert watcher.users() == ["wendy"]  # at once, locally
                await wait_until(lambda: announced[-1:] == [["wendy"]], 1, "announced")
                doomed.set_local_users(["ann", "bob"])
                third.set_local_users(["bob", "cy"])
                # By the nudge (test_presence_changes_arrive_by_the_nudge...) or a refresh.
                await wait_until(
                    lambda: watcher.users() == ["ann", "bob", "cy", "wendy"], 2, "nudged"
                )
                await wait_until(lambda: announced[-1] == watcher.users(), 1, "announced")
                assert len(announced) <= 3  # joins close together are announced together
                doomed.typing("ann", "conn-1")
                watcher.typing("wendy", "conn-9")
                await wait_until(lambda: ("ann", "doomed/conn-1") in typed, 2, "typing relayed")
                assert ("wendy", "conn-9") in typed  # own notices go to the own listener
                await proxy.stop()  # doomed can no longer refresh: like kill -9
                # ttl 1.5 s in this test: 8 s only catches a hang.
                await wait_until(lambda: watcher.users() == ["bob", "cy", "wendy"], 8, "expiry")
                await third.close()  # a clean exit leaves at once
                await wait_until(lambda: watcher.users() == ["wendy"], 1, "leave on close")
            finally:
                for presence in (doomed, watcher, third):
                    if not presence._closed:
                        await presence.close()

    run(main)


def test_presence_changes_arrive_by_the_nudge_not_the_periodic_refresh(
    redis_server: RedisServer, keys: Keys
) -> None:
    """With refresh_interval an hour, only the nudge can bring another process's users: each
    one costs the watcher one refresh, counted."""

    async def main() -> None:
        hour = 3600.0
        joiner = RedisPresence(
            redis_server.url, "joiner", ttl=2 * hour, refresh_interval=hour, keys=keys
        )
        watcher = RedisPresence(
            redis_server.url, "watcher", ttl=2 * hour, refresh_interval=hour, keys=keys
        )
        refreshes = 0
        refresh = watcher._refresh

        async def counting_refresh() -> None:
            nonlocal refreshes
            await refresh()
            refreshes += 1

        watcher._refresh = counting_refresh  # type: ignore[method-assign]
        await joiner.open(lambda users: None, lambda user, origin: None)
        await watcher.open(lambda users: None, lambda user, origin: None)
        try:
            # One refresh at open, one once its listener subscribed: from then on only a
            # nudge wakes it within the hour.
            await wait_until(lambda: refreshes >= 2, NO_HANG, "the watcher subscribed")
            await wait_until(lambda: not watcher._wake.is_set(), NO_HANG, "the watcher idle")
            for users in (["ann"], ["ann", "bob"], []):
                before = refreshes
                joiner.set_local_users(users)
                await wait_until(lambda u=users: watcher.users() == u, NO_HANG, f"nudged: {users}")
                assert refreshes > before
        finally:
            await joiner.close()
            await watcher.close()

    run(main)
