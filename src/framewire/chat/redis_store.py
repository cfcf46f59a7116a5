"""RedisStore: the room's history in a Redis stream, shared by every process with the same URL.

How it keeps the Store contract (store.py) across processes:

- One Lua script (APPEND_SCRIPT) numbers and commits a message atomically: INCR the seq
  counter, XADD the message to the stream under the id ``<seq>-0`` (MAXLEN ~ stream_maxlen),
  and remember its idempotency key with a TTL. So seq is gapless, the stream's order is the seq
  order, and a resend with the same (username, clientId) within dedupe_window returns the copy.
- Delivery: a StreamFollower (redis_follower.py) per process XREADs the stream from the last id
  it has seen and hands each entry to on_message in order, catching up after an outage; it also
  runs the heartbeat that health() checks.
- History (after/before) is XRANGE/XREVRANGE on the stream, since an entry's id is its seq.
  While Redis is down, the follower's cache of the newest messages answers instead, so
  reconnecting clients and /chat-history keep working from what this process saw.
- Sends while Redis is down fail within append_timeout with StoreUnavailable. An append whose
  answer was lost is repeated with the same idempotency key until it is answered or the
  deadline passes, so it is stored at most once.

docs/howto/scale-out.md explains the Redis settings and what each failure does.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError, ResponseError

from framewire.chat.limits import ChatLimits
from framewire.chat.redis_follower import StreamFollower, entries_of, message_of, pairs_of
from framewire.chat.redis_link import Backoff, Keys, describe_error, make_client
from framewire.chat.redis_presence import RedisPresence
from framewire.chat.store import (
    AppendOutcome,
    ChatMessage,
    Draft,
    MessageListener,
    StoreUnavailable,
)

__all__ = ["RedisPresence", "RedisStore"]

logger = logging.getLogger("framewire.chat.redis")

# KEYS: seq counter, stream, idempotency key.
# ARGV: message id, username, text, client id, upload, content type, stream MAXLEN,
#       idempotency TTL (ms), floor (the highest seq the appending process has seen).
# Returns {"dup", "<seq> <id> <ts>", fields} for a known key, else {"new", seq, ts}.
APPEND_SCRIPT = """
local hit = redis.call('GET', KEYS[3])
if hit then
  local seq = string.match(hit, '^(%d+)')
  local found = redis.call('XRANGE', KEYS[2], seq, seq)
  local fields = {}
  if found[1] then fields = found[1][2] end
  return {'dup', hit, fields}
end
local now = redis.call('TIME')
local ts = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
local floor = tonumber(ARGV[9])
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if top[1] then
  local top_seq = tonumber(string.match(top[1][1], '^(%d+)'))
  if top_seq > floor then floor = top_seq end
end
local seq = redis.call('INCR', KEYS[1])
if seq <= floor then
  seq = floor + 1
  redis.call('SET', KEYS[1], seq)
end
local sid = string.format('%d', seq)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], sid .. '-0',
  'seq', sid, 'id', ARGV[1], 'user', ARGV[2], 'text', ARGV[3], 'cid', ARGV[4],
  'up', ARGV[5], 'ct', ARGV[6], 'ts', ts)
redis.call('SET', KEYS[3], sid .. ' ' .. ARGV[1] .. ' ' .. ts, 'PX', ARGV[8])
return {'new', sid, ts}
"""

# How long the key of an append without clientId is kept: long enough to repeat the append.
ATTEMPT_TTL = 120.0


class RedisStore:
    """The room's history in Redis, shared by every process opened with the same URL.

    Args:
        redis_url: ``redis://HOST:PORT/DB``.
        uploads_dir: where uploads live; every process must see the same directory.
        limits: the chat's limits (dedupe_window, replay_limit, history_max).
        stream_maxlen: messages Redis keeps (MAXLEN ~, so at least this many); older ones are
            gone from history.
        append_timeout: seconds an append may take before it fails with StoreUnavailable.
        heartbeat_interval: seconds between two liveness markers of this process.
        liveness_window: seconds after which health() fails if the reader has not seen this
            process's own marker come back.
        cache_size: newest messages kept in memory to answer history while Redis is down
            (default max(replay_limit, history_max); at most 64 MiB of text in any case).
        keys: the Redis key names (tests use a prefix of their own).
    """

    kind = "redis"

    def __init__(
        self,
        redis_url: str,
        uploads_dir: Path,
        limits: ChatLimits,
        *,
        stream_maxlen: int = 100_000,
        append_timeout: float = 2.0,
        heartbeat_interval: float = 1.0,
        liveness_window: float = 5.0,
        cache_size: int | None = None,
        keys: Keys | None = None,
    ) -> None:
        self.uploads_dir = uploads_dir
        self.dedupe_window = limits.dedupe_window
        self.stream_maxlen = stream_maxlen
        self.append_timeout = append_timeout
        self.heartbeat_interval = heartbeat_interval
        self.liveness_window = liveness_window
        self._keys = keys or Keys()
        size = (
            cache_size if cache_size is not None else max(limits.replay_limit, limits.history_max)
        )
        self._commands = make_client(redis_url)
        self._append_script = self._commands.register_script(APPEND_SCRIPT)
        self._follower = StreamFollower(
            redis_url,
            self._keys,
            self._commands,
            cache_size=size,
            heartbeat_interval=heartbeat_interval,
            liveness_window=liveness_window,
        )
        self._closed = False

    @property
    def gaps(self) -> int:
        """Times this process found the stream trimmed past the last message it delivered."""
        return self._follower.gaps

    # -- the Store protocol --------------------------------------------------------------

    async def open(self, on_message: MessageListener) -> None:
        """Find the newest message, fill the local cache, start the reader and heartbeat.

        Redis being down does not fail open(): the reader keeps trying with back-off and
        starts from the newest message it finds then.
        """
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        await self._follower.start(on_message, self.append_timeout)

    async def append(self, draft: Draft) -> AppendOutcome:
        """Number and store ``draft`` with one Lua script; see the module docstring.

        Raises:
            StoreUnavailable: Redis did not answer within append_timeout or refused the
                write (for example out of memory); nothing is stored, except in the one
                ambiguous case documented in docs/howto/scale-out.md.
        """
        if self._closed:
            raise StoreUnavailable("the message store is closed")
        message_id = uuid.uuid4().hex
        if draft.client_id is not None:
            idempotency_key = self._keys.dedupe(draft.username, draft.client_id)
            ttl = self.dedupe_window
        else:
            idempotency_key = self._keys.attempt(message_id)
            ttl = ATTEMPT_TTL
        keys = [self._keys.seq, self._keys.stream, idempotency_key]
        args: list[str | int] = [
            message_id,
            draft.username,
            draft.message,
            draft.client_id or "",
            draft.upload or "",
            draft.content_type or "",
            self.stream_maxlen,
            max(1, int(ttl * 1000)),
            self._follower.last_seq,
        ]
        reply = await self._run_append(keys, args)
        if reply[0] == "new":
            seq, timestamp = int(reply[1]), str(reply[2])
            return AppendOutcome(self._from_draft(draft, message_id, seq, timestamp), False)
        seq_text, stored_id, timestamp = str(reply[1]).split(" ")
        # Our own earlier attempt, whose answer was lost, is no duplicate for the caller.
        duplicate = stored_id != message_id
        stored = pairs_of(reply[2]) if len(reply) > 2 and reply[2] else None
        if stored:
            return AppendOutcome(message_of(f"{seq_text}-0", stored), duplicate)
        # The entry was trimmed from the stream: answer with the resent draft's content.
        return AppendOutcome(
            self._from_draft(draft, stored_id, int(seq_text), timestamp), duplicate
        )

    async def after(self, seq: int, limit: int) -> list[ChatMessage]:
        """Return up to ``limit`` messages with seq > ``seq`` from Redis (or, while Redis is
        down, from the local cache when it reaches back far enough).

        Messages trimmed from the stream are not returned: the first one may be past seq + 1.

        Raises:
            StoreUnavailable: Redis is down and the cache does not reach back to ``seq``.
        """
        if limit <= 0:
            return []
        found = await self._range(f"{seq + 1}-0", "+", limit)
        if found is not None:
            return found
        follower = self._follower
        cached = list(follower.cache)
        if follower.positioned and (
            seq >= follower.last_seq or (cached and cached[0].seq <= seq + 1)
        ):
            return [message for message in cached if message.seq > seq][:limit]
        raise StoreUnavailable("history is unavailable while redis is unreachable")

    async def before(self, seq: int | None, limit: int) -> list[ChatMessage]:
        """Return the last ``limit`` messages with seq < ``seq`` (None: the newest), oldest
        first, from Redis or, while Redis is down, from the local cache (possibly fewer)."""
        if limit <= 0 or (seq is not None and seq <= 1):
            return []
        found = await self._range("+" if seq is None else f"({seq}-0", "-", limit, reverse=True)
        if found is not None:
            return found
        cached = [m for m in self._follower.cache if seq is None or m.seq < seq]
        return cached[-limit:]

    async def last_seq(self) -> int:
        """Return the seq of the newest message this process knows of (Redis's when it
        answers, else the newest one delivered here)."""
        newest = await self._range("+", "-", 1, reverse=True)
        return max([self._follower.last_seq, *(message.seq for message in newest or [])])

    async def health(self) -> str | None:
        """Return None while Redis answers and the reader sees this process's heartbeats,
        else why not (see StreamFollower.health)."""
        if self._closed:
            return "the message store is closed"
        return self._follower.health()

    async def close(self) -> None:
        """Stop the reader and heartbeat and close the connections."""
        self._closed = True
        await self._follower.stop()
        await self._commands.aclose()

    # -- internals -----------------------------------------------------------------------

    async def _range(
        self, start: str, end: str, count: int, *, reverse: bool = False
    ) -> list[ChatMessage] | None:
        """XRANGE (or XREVRANGE from ``start`` down to ``end``); return the messages oldest
        first, or None when Redis did not answer (known down, or twice failed: the first
        failure may only be a pooled connection that an outage left dead)."""
        for attempt in range(2):
            if self._follower.error is not None:
                return None
            read = self._commands.xrevrange if reverse else self._commands.xrange
            try:
                raw = await asyncio.wait_for(read(self._keys.stream, start, end, count=count), 2.0)
            except (RedisError, OSError, TimeoutError) as error:
                if attempt:
                    logger.warning("history read failed (%s)", describe_error(error))
                continue
            entries = entries_of(raw)
            if reverse:
                entries.reverse()
            return [message_of(entry_id, fields) for entry_id, fields in entries]
        return None

    async def _run_append(self, keys: list[str], args: list[str | int]) -> list[Any]:
        """Run APPEND_SCRIPT until it answers or append_timeout passes.

        Repeating is safe: the idempotency key makes a second run return the first one's
        message instead of storing another.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.append_timeout
        backoff = Backoff(0.05, 0.5)
        while True:
            remaining = deadline - loop.time()
            try:
                reply = await asyncio.wait_for(
                    self._append_script(keys=keys, args=args, client=self._commands),
                    max(0.01, remaining),
                )
            except ResponseError as error:
                # Redis answered with a refusal (out of memory, read-only replica, ...).
                logger.warning("redis refused an append: %s", describe_error(error))
                raise StoreUnavailable("the message store refused it") from error
            except (RedisError, OSError, TimeoutError) as error:
                delay = backoff.next_delay()
                if loop.time() + delay >= deadline:
                    logger.warning("append failed: %s", describe_error(error))
                    raise StoreUnavailable("the message store is unreachable") from error
                await asyncio.sleep(delay)
                continue
            if not isinstance(reply, list) or len(reply) < 2:
                raise StoreUnavailable("the message store gave an unexpected answer")
            return reply

    def _from_draft(self, draft: Draft, message_id: str, seq: int, timestamp: str) -> ChatMessage:
        return ChatMessage(
            id=message_id,
            seq=seq,
            username=draft.username,
            message=draft.message,
            timestamp=float(timestamp),
            client_id=draft.client_id,
            upload=draft.upload,
            content_type=draft.content_type,
        )
