"""StreamFollower: one process's reader of the room's Redis stream, and its liveness probe.

The follower XREADs (BLOCK) the message stream from the last id it has seen and hands every
entry to on_message in seq order (entry ids are ``<seq>-0``, so the id is the position). On a
lost connection it reconnects with back-off (0.1 s doubling to 2 s) and reads on from that id,
so it misses nothing Redis still holds. When Redis no longer holds the next seq (the stream was
trimmed past it while this process was away) it delivers from the oldest entry left, counts a
gap and logs it; the hub sees the jump in seq. When the stream ends *before* the last seq it
delivered, Redis lost its data: it lifts the seq counter so new messages number after it.

Liveness: every heartbeat_interval the follower XADDs a marker naming this process to a
heartbeat stream that the same XREAD reads. A reader that stopped hearing Redis (a dead
subscription, a silent partition) stops seeing its own marker, and health() says so after
liveness_window seconds, instead of staying green while deaf.

It also keeps the newest messages it delivered (a contiguous run) so that history can be
answered while Redis is down.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from redis.typing import KeyT, StreamIdT

from framewire.chat.redis_link import Backoff, Keys, describe_error, make_client, stop_tasks
from framewire.chat.store import ChatMessage, MessageListener

__all__ = ["StreamFollower", "entries_of", "message_of", "pairs_of"]

logger = logging.getLogger("framewire.chat.redis")

# Lifts the seq counter (KEYS[1]) to at least ARGV[1]: run by a follower that finds the stream
# behind what it has already delivered (Redis lost data), so seq never goes backwards.
LIFT_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return current
"""

HEARTBEAT_MAXLEN = 1000  # markers kept in the heartbeat stream (MAXLEN ~)
CACHE_BYTES = 64 << 20  # most bytes of message text a follower keeps in memory


class StreamFollower:
    """Deliver the room's messages to this process, once each and in seq order.

    Args:
        url: ``redis://HOST:PORT/DB``; the follower opens its own connection for XREAD BLOCK.
        keys: the room's Redis keys.
        commands: a client for short commands (the heartbeat), shared with the store.
        cache_size: newest messages kept for history while Redis is down.
        cache_bytes: ... and at most this many bytes of their text (messages may be 1 MiB).
        heartbeat_interval: seconds between two markers of this process.
        liveness_window: seconds without its own marker after which health() fails; also the
            XREAD BLOCK time.

    Attributes:
        last_seq: the newest seq delivered (or found at start).
        cache: the newest messages delivered, contiguous, oldest first.
        error: why Redis cannot be read now, or None.
        gaps: times the stream had been trimmed past last_seq.
        positioned: last_seq and the cache come from Redis (False until Redis first answers).
    """

    def __init__(
        self,
        url: str,
        keys: Keys,
        commands: aioredis.Redis,
        *,
        cache_size: int,
        cache_bytes: int = CACHE_BYTES,
        heartbeat_interval: float,
        liveness_window: float,
    ) -> None:
        self.keys = keys
        self.heartbeat_interval = heartbeat_interval
        self.liveness_window = liveness_window
        self.last_seq = 0
        self.cache: deque[ChatMessage] = deque()
        self.cache_size = cache_size
        self.cache_bytes = cache_bytes
        self._cached_bytes = 0
        self.error: str | None = "the store is not open"
        self.gaps = 0
        self.heard_own_heartbeat = 0.0  # loop time
        self._url = url
        self._commands = commands
        self._lift_script = commands.register_script(LIFT_SCRIPT)
        self._token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"  # this process, in markers
        self._on_message: MessageListener | None = None
        self.positioned = False  # last_seq and the cache were read from Redis
        self._reader: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    async def start(self, on_message: MessageListener, timeout: float) -> None:
        """Find the newest message (within ``timeout`` seconds, else later) and start."""
        self._on_message = on_message
        self.heard_own_heartbeat = asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(self._position(self._commands), timeout)
        except (RedisError, OSError, TimeoutError) as error:
            logger.warning(
                "redis unreachable at start (%s); will keep trying", describe_error(error)
            )
            self.error = f"redis unreachable: {describe_error(error)}"
        else:
            self.error = None
        self._tasks = [
            asyncio.create_task(self._read_forever(), name="redis-stream-reader"),
            asyncio.create_task(self._beat_forever(), name="redis-heartbeat"),
        ]

    def health(self) -> str | None:
        """Return None while Redis answers and this process's markers come back."""
        if self.error is not None:
            return self.error
        silent = asyncio.get_running_loop().time() - self.heard_own_heartbeat
        if silent > self.liveness_window:
            return (
                f"redis stream reader has not seen this process's heartbeat for {silent:.1f} s "
                f"(liveness_window={self.liveness_window:g} s)"
            )
        return None

    async def stop(self) -> None:
        """Stop reading and beating; on_message is not called after this returns."""
        self._closed = True
        self._on_message = None
        clients = [self._commands] + ([self._reader] if self._reader is not None else [])
        await stop_tasks(self._tasks, clients)
        self._tasks = []

    # -- internals -----------------------------------------------------------------------

    async def _beat_forever(self) -> None:
        """XADD a marker to the heartbeat stream every heartbeat_interval."""
        while not self._closed:
            try:
                await asyncio.wait_for(
                    self._commands.xadd(
                        self.keys.heartbeat,
                        {"p": self._token},
                        maxlen=HEARTBEAT_MAXLEN,
                        approximate=True,
                    ),
                    2.0,
                )
            except (RedisError, OSError, TimeoutError) as error:
                logger.debug("heartbeat failed: %s", describe_error(error))
            await asyncio.sleep(self.heartbeat_interval)

    async def _read_forever(self) -> None:
        """Read the stream from the last id seen, reconnecting with back-off, until stopped."""
        backoff = Backoff(0.1, 2.0)
        while not self._closed:
            client = make_client(self._url, read_timeout=self.liveness_window + 3.0)
            self._reader = client
            try:
                heartbeat_id = await self._resume(client)
                while not self._closed:
                    positions: dict[KeyT, StreamIdT] = {
                        self.keys.stream: f"{self.last_seq}-0",
                        self.keys.heartbeat: heartbeat_id,
                    }
                    block = int(self.liveness_window * 1000)
                    reply = await client.xread(positions, count=1000, block=block)
                    if self.error is not None:
                        logger.info("redis stream reader resumed after seq %d", self.last_seq)
                    self.error = None
                    backoff.reset()
                    heartbeat_id = self._handle(reply, heartbeat_id)
            except (RedisError, OSError, TimeoutError) as error:
                if self._closed:
                    break
                if self.error is None:
                    logger.warning("redis stream reader lost redis: %s", describe_error(error))
                self.error = f"redis unreachable: {describe_error(error)}"
            finally:
                self._reader = None
                await client.aclose()
            if not self._closed:
                await asyncio.sleep(backoff.next_delay())

    async def _resume(self, client: aioredis.Redis) -> str:
        """Check the stream against what was delivered; return the heartbeat id to read from."""
        if not self.positioned:
            await self._position(client)
        newest = entries_of(await client.xrevrange(self.keys.stream, "+", "-", count=1))
        top = _seq_of(newest[0][0]) if newest else 0
        if top < self.last_seq:
            logger.warning(
                "redis holds messages up to seq %d only, this process delivered up to %d: "
                "redis lost data; numbering continues after %d",
                top,
                self.last_seq,
                self.last_seq,
            )
            await self._lift_script(keys=[self.keys.seq], args=[self.last_seq], client=client)
        beat = entries_of(await client.xrevrange(self.keys.heartbeat, "+", "-", count=1))
        return beat[0][0] if beat else "0-0"

    async def _position(self, client: aioredis.Redis) -> None:
        """Start after the newest message, with the newest ones in the cache (done once)."""
        raw = await client.xrevrange(self.keys.stream, "+", "-", count=self.cache_size)
        messages = [message_of(entry_id, fields) for entry_id, fields in reversed(entries_of(raw))]
        self._clear_cache()
        for message in messages:
            self._cache(message)
        self.last_seq = messages[-1].seq if messages else 0
        self.positioned = True

    def _handle(self, reply: Any, heartbeat_id: str) -> str:
        """Deliver the messages of one XREAD reply; return the new heartbeat id."""
        for stream_name, entries in _streams(reply):
            if stream_name == self.keys.heartbeat:
                for entry_id, fields in entries:
                    heartbeat_id = entry_id
                    if fields.get("p") == self._token:
                        self.heard_own_heartbeat = asyncio.get_running_loop().time()
                continue
            for entry_id, fields in entries:
                self._deliver(message_of(entry_id, fields))
        return heartbeat_id

    def _deliver(self, message: ChatMessage) -> None:
        if message.seq <= self.last_seq:
            return
        if message.seq != self.last_seq + 1:
            # Trimmed past our last id: the seqs in between are gone from Redis. Deliver on
            # from here and keep the cache contiguous.
            self.gaps += 1
            logger.warning(
                "redis stream trimmed past seq %d: seqs %d-%d are lost to this process",
                self.last_seq,
                self.last_seq + 1,
                message.seq - 1,
            )
            self._clear_cache()
        self.last_seq = message.seq
        self._cache(message)
        listener = self._on_message
        if listener is not None:
            try:
                listener(message)
            except Exception:
                logger.exception("on_message failed for seq %d", message.seq)

    def _cache(self, message: ChatMessage) -> None:
        """Keep ``message``, dropping the oldest past cache_size or cache_bytes."""
        self.cache.append(message)
        self._cached_bytes += _size(message)
        while len(self.cache) > self.cache_size or self._cached_bytes > self.cache_bytes:
            self._cached_bytes -= _size(self.cache.popleft())

    def _clear_cache(self) -> None:
        self.cache.clear()
        self._cached_bytes = 0


def _size(message: ChatMessage) -> int:
    """Roughly the bytes a cached message holds (its text and name, plus overhead)."""
    return len(message.message) + len(message.username) + 200


def _seq_of(entry_id: object) -> int:
    """Return the seq of a message stream entry id ``<seq>-0``."""
    return int(str(entry_id).split("-", 1)[0])


def pairs_of(flat: Sequence[Any]) -> dict[str, str]:
    """Turn Redis's flat [field, value, ...] list into a dict."""
    return {str(field): str(value) for field, value in zip(flat[0::2], flat[1::2], strict=False)}


def _fields(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(field): str(value) for field, value in raw.items()}
    return pairs_of(list(raw or []))


def entries_of(raw: Any) -> list[tuple[str, dict[str, str]]]:
    """Normalize stream entries from XRANGE/XREVRANGE/XREAD to [(entry id, fields)]."""
    return [(str(entry_id), _fields(fields)) for entry_id, fields in raw or []]


def message_of(entry_id: str, fields: Mapping[str, str]) -> ChatMessage:
    """Build a ChatMessage from a message stream entry (empty strings stand for None)."""
    return ChatMessage(
        id=fields.get("id") or entry_id,
        seq=_seq_of(entry_id),
        username=fields.get("user", ""),
        message=fields.get("text", ""),
        timestamp=float(fields.get("ts") or 0.0),
        client_id=fields.get("cid") or None,
        upload=fields.get("up") or None,
        content_type=fields.get("ct") or None,
    )


def _streams(reply: Any) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """Normalize an XREAD reply (RESP2 list or RESP3 dict) to [(stream, [(id, fields)])]."""
    if not reply:
        return []
    items = reply.items() if isinstance(reply, dict) else reply
    return [(str(stream_name), entries_of(entries)) for stream_name, entries in items]
