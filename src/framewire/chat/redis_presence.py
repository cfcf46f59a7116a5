"""RedisPresence: who is connected to any process of the room, and typing notices.

Each process writes its users into one Redis hash under its process id, with an expiry time in
a sorted set (Redis's clock, so machines need not agree on time). A Lua script (REFRESH_SCRIPT)
writes this process's entry, drops every entry past its expiry and returns the rest; each process
runs it every refresh_interval and whenever its users change. A process killed with -9 stops
refreshing, so the others drop its users at most ttl + refresh_interval seconds later (15 s by
default). After a change a process PUBLISHes a nudge so the others re-read at once instead of at
their next refresh. on_users is called at most once per ANNOUNCE_DELAY (0.1 s), with the list as
it is then, so a burst of joins costs each process a few announcements, not one per join.

Typing notices are ephemeral: they go over pub/sub only and are lost while Redis is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from redis.exceptions import RedisError

from framewire.chat.redis_link import Backoff, Keys, describe_error, make_client, stop_tasks
from framewire.chat.store import PresenceListener, TypingListener

__all__ = ["RedisPresence"]

logger = logging.getLogger("framewire.chat.redis")

# KEYS: users hash, expiry sorted set.  ARGV: process id, JSON users ("" = leave), TTL (ms).
# Returns HGETALL of the live entries, as a flat [process id, JSON users, ...] list.
REFRESH_SCRIPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[3]), ARGV[1])
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms)
for _, process in ipairs(expired) do
  redis.call('HDEL', KEYS[1], process)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]) * 2)
return redis.call('HGETALL', KEYS[1])
"""

MAX_PENDING_TYPING = 100  # typing notices waiting for Redis; more are dropped
ANNOUNCE_DELAY = 0.1  # seconds during which changes of the room's users are gathered


class RedisPresence:
    """Presence and typing across every process opened with the same Redis URL.

    Args:
        redis_url: ``redis://HOST:PORT/DB``.
        process_id: unique per process (a killed process's users expire under it).
        ttl: seconds this process's entry lives without a refresh.
        refresh_interval: seconds between two refreshes; also how long until a process sees
            a change whose nudge it missed.
        keys: the Redis key names (tests use a prefix of their own).
    """

    def __init__(
        self,
        redis_url: str,
        process_id: str,
        *,
        ttl: float = 12.0,
        refresh_interval: float = 3.0,
        keys: Keys | None = None,
    ) -> None:
        self.process_id = process_id
        self.ttl = ttl
        self.refresh_interval = refresh_interval
        self._url = redis_url
        self._keys = keys or Keys()
        self._client = make_client(redis_url)
        self._refresh_script = self._client.register_script(REFRESH_SCRIPT)
        self._local: list[str] = []
        self._remote: dict[str, list[str]] = {}  # other processes' users, as last read
        self._remote_read_at = -float("inf")  # time.monotonic() of that read
        self._announced: list[str] = []
        self._announce_handle: asyncio.TimerHandle | None = None
        self._on_users: PresenceListener | None = None
        self._on_typing: TypingListener | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._closed = False

    async def open(self, on_users: PresenceListener, on_typing: TypingListener) -> None:
        """Read the room's users once (if Redis answers), then keep them fresh."""
        self._on_users = on_users
        self._on_typing = on_typing
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(self._refresh(), 2.0)
        self._tasks = [
            asyncio.create_task(self._refresh_forever(), name="redis-presence-refresh"),
            asyncio.create_task(self._listen_forever(), name="redis-presence-listen"),
        ]

    def set_local_users(self, users: list[str]) -> None:
        """Record this process's users; other processes learn them within moments."""
        self._local = list(users)
        self._announce()
        self._wake.set()

    def users(self) -> list[str]:
        """Return the users of every process, sorted and distinct.

        Other processes' users are forgotten ``ttl`` seconds after the last successful read
        (while Redis is down, this process cannot tell who is still there).
        """
        names = set(self._local)
        if time.monotonic() - self._remote_read_at <= self.ttl:
            for remote in self._remote.values():
                names.update(remote)
        return sorted(names)

    def typing(self, username: str, origin: str) -> None:
        """Relay a typing notice to this process's listener now and to the others via Redis."""
        if self._on_typing is not None:
            self._on_typing(username, origin)
        if self._closed or len(self._pending) >= MAX_PENDING_TYPING:
            return
        payload = json.dumps({"p": self.process_id, "u": username, "o": origin})
        task = asyncio.create_task(self._publish(self._keys.typing_channel, payload))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close(self) -> None:
        """Stop; remove this process's entry so its users leave at once."""
        self._closed = True
        await stop_tasks([*self._tasks, *self._pending], [self._client])
        self._tasks = []
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(
                self._refresh_script(
                    keys=[self._keys.presence_users, self._keys.presence_expiry],
                    args=[self.process_id, "", int(self.ttl * 1000)],
                    client=self._client,
                ),
                2.0,
            )
            await asyncio.wait_for(
                self._client.publish(self._keys.presence_channel, self.process_id), 2.0
            )
        self._on_users = None
        self._on_typing = None
        if self._announce_handle is not None:
            self._announce_handle.cancel()
            self._announce_handle = None
        await self._client.aclose()

    # -- internals -----------------------------------------------------------------------

    async def _refresh(self) -> None:
        """Write this process's entry, read everyone's; announce a change."""
        flat = await self._refresh_script(
            keys=[self._keys.presence_users, self._keys.presence_expiry],
            args=[self.process_id, json.dumps(self._local), int(self.ttl * 1000)],
            client=self._client,
        )
        remote: dict[str, list[str]] = {}
        for process, users in zip(flat[0::2], flat[1::2], strict=False):
            if process != self.process_id:
                with contextlib.suppress(ValueError, TypeError):
                    remote[str(process)] = [str(name) for name in json.loads(users)]
        self._remote = remote
        self._remote_read_at = time.monotonic()
        self._announce()

    def _announce(self) -> None:
        """Call on_users soon if the room's users may have changed.

        Changes are announced at most once per ANNOUNCE_DELAY: when hundreds of clients
        connect at once, each process sends the list a few times instead of once per join
        (each announcement goes to every client).
        """
        if self._announce_handle is None and self._on_users is not None:
            loop = asyncio.get_running_loop()
            self._announce_handle = loop.call_later(ANNOUNCE_DELAY, self._announce_now)

    def _announce_now(self) -> None:
        self._announce_handle = None
        users = self.users()
        if users != self._announced:
            self._announced = users
            if self._on_users is not None:
                self._on_users(users)

    async def _refresh_forever(self) -> None:
        """Refresh every refresh_interval, or at once when woken; nudge others on a change."""
        published: list[str] | None = None
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.refresh_interval)
            self._wake.clear()
            local = list(self._local)
            try:
                await asyncio.wait_for(self._refresh(), 2.0)
                if local != published:
                    await self._client.publish(self._keys.presence_channel, self.process_id)
                    published = local
            except (RedisError, OSError, TimeoutError) as error:
                logger.debug("presence refresh failed: %s", describe_error(error))
                self._announce()  # remote users may just have aged out

    async def _listen_forever(self) -> None:
        """Follow the nudge and typing channels, resubscribing with back-off."""
        backoff = Backoff(0.1, 2.0)
        while not self._closed:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self._keys.presence_channel, self._keys.typing_channel)
                self._wake.set()  # re-read: nudges sent while we were away were missed
                while not self._closed:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    backoff.reset()
                    if message is not None:
                        self._on_pubsub(message)
            except (RedisError, OSError, TimeoutError) as error:
                logger.debug("presence listener lost redis: %s", describe_error(error))
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            if not self._closed:
                await asyncio.sleep(backoff.next_delay())

    def _on_pubsub(self, message: dict[str, Any]) -> None:
        channel, data = message.get("channel"), message.get("data")
        if channel == self._keys.presence_channel:
            if data != self.process_id:
                self._wake.set()
            return
        if channel != self._keys.typing_channel or not isinstance(data, str):
            return
        try:
            notice = json.loads(data)
            process, username, origin = str(notice["p"]), str(notice["u"]), str(notice["o"])
        except (ValueError, KeyError, TypeError):
            return
        if process != self.process_id and self._on_typing is not None:
            # Prefixed so that a remote origin never equals a local connection's key.
            self._on_typing(username, f"{process}/{origin}")

    async def _publish(self, channel: str, payload: str) -> None:
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(self._client.publish(channel, payload), 2.0)
