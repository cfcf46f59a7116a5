"""What RedisStore and RedisPresence share: key names, client settings, back-off.

redis-py is imported here and in the two modules beside this one only, so that the rest of
framewire stays free of dependencies (``pip install 'framewire[redis]'`` brings it).

Every client is made with automatic retries off: a command that fails comes back to its
caller at once, and the caller decides whether repeating it is safe (an append is, because it
carries an idempotency key; see redis_store.py) and how long to keep trying.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

__all__ = ["KEY_PREFIX", "Backoff", "Keys", "describe_error", "make_client", "stop_tasks"]

logger = logging.getLogger("framewire.chat.redis")

KEY_PREFIX = "framewire:chat:"

# A command that Redis does not answer within this time (seconds) fails; so does a connection
# not made within CONNECT_TIMEOUT. Together they bound how long a send waits on a dead Redis.
COMMAND_TIMEOUT = 2.0
CONNECT_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True)
class Keys:
    """The Redis keys and channels of one room, all under ``prefix``.

    Attributes:
        seq: string, the last seq handed out (INCR).
        stream: the messages, one stream entry per message with the id ``<seq>-0``.
        heartbeat: stream of liveness markers, one per process every few seconds.
        presence_users: hash, process id -> JSON list of that process's users.
        presence_expiry: sorted set, process id -> when (Redis ms) its entry expires.
        presence_channel: pub/sub channel nudging processes to re-read presence.
        typing_channel: pub/sub channel carrying typing notices.
    """

    prefix: str = KEY_PREFIX

    @property
    def seq(self) -> str:
        return self.prefix + "seq"

    @property
    def stream(self) -> str:
        return self.prefix + "messages"

    @property
    def heartbeat(self) -> str:
        return self.prefix + "heartbeat"

    @property
    def presence_users(self) -> str:
        return self.prefix + "presence:users"

    @property
    def presence_expiry(self) -> str:
        return self.prefix + "presence:expiry"

    @property
    def presence_channel(self) -> str:
        return self.prefix + "presence:changed"

    @property
    def typing_channel(self) -> str:
        return self.prefix + "typing"

    def dedupe(self, username: str, client_id: str) -> str:
        """Return the key remembering (username, client_id); the length prefix keeps a ':'
        inside a name from making two pairs share a key."""
        return f"{self.prefix}dedupe:{len(username)}:{username}:{client_id}"

    def attempt(self, message_id: str) -> str:
        """Return the key remembering one append attempt of a message sent without clientId."""
        return f"{self.prefix}attempt:{message_id}"


def make_client(url: str, *, read_timeout: float = COMMAND_TIMEOUT) -> aioredis.Redis:
    """Return a client for ``url`` that never retries by itself.

    Args:
        url: ``redis://HOST:PORT/DB`` (any URL redis-py accepts).
        read_timeout: seconds a command may wait for its answer; a blocking reader passes
            more than its BLOCK time.
    """
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=read_timeout,
        socket_connect_timeout=CONNECT_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
    return client


class Backoff:
    """Delays between reconnection attempts: ``first`` doubling up to ``cap`` seconds, each
    with up to 20 % jitter so that many processes do not reconnect in step."""

    __slots__ = ("_cap", "_first", "_next")

    def __init__(self, first: float = 0.1, cap: float = 2.0) -> None:
        self._first = first
        self._cap = cap
        self._next = first

    def next_delay(self) -> float:
        """Return the delay to wait now, and lengthen the next one."""
        delay = self._next
        self._next = min(self._cap, self._next * 2)
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        """Start again from ``first`` (after a success)."""
        self._next = self._first


def describe_error(error: BaseException) -> str:
    """Return a short reason for a failed Redis call, safe to show a client."""
    text = str(error).strip().splitlines()[0][:120] if str(error).strip() else ""
    name = type(error).__name__
    return f"{name}: {text}" if text else name


async def stop_tasks(
    tasks: Iterable[asyncio.Task[None]], clients: Iterable[aioredis.Redis]
) -> None:
    """Cancel ``tasks`` and wait for them to end.

    redis-py can swallow a cancellation that arrives while a command is finishing (redis-py
    issues #2028 and #2551 describe the kind; 8.1 still loses about two cancellations in three
    in a tight XREAD loop), so the loops also check a closed flag, and a task still running
    after a moment has its clients' connections closed under it, which ends any command.
    """
    every = list(tasks)
    pending = {task for task in every if not task.done()}
    connections = list(clients)
    for attempt in range(20):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.2 if attempt == 0 else 0.5)
        for client in connections:
            await client.connection_pool.disconnect()
    else:
        logger.error("%d redis task(s) did not stop", len(pending))
    for task in every:
        if task.done() and not task.cancelled() and task.exception() is not None:
            logger.error("redis task %s failed", task.get_name(), exc_info=task.exception())
