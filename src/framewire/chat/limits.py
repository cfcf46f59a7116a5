"""Every limit of the chat app, with its default, in one table (ChatLimits).

docs/topics/limits.md lists the same table; tests/test_limits_doc.py checks that the two
agree. Sizes are bytes, durations seconds, rates per second.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["ChatLimits", "TokenBucket"]


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """The chat's limits; each is a ``framewire chat`` option of the same name (dashes for
    underscores).

    Attributes:
        max_username: longest user name in characters; longer names are truncated.
        max_message: longest chat message text, in UTF-8 bytes (an ``error`` past it).
        max_frame: largest WebSocket message a client may send, in bytes (JSON envelope
            included; close 1009 past it).
        max_upload: largest uploaded file, in bytes (413 past it).
        message_rate: chatMessages per second a connection may send on average (token bucket).
        message_burst: chatMessages a connection may send at once before the rate applies.
        typing_interval: seconds between two typing notices relayed for one connection.
        slow_reader_bytes: unsent bytes queued for one client before it is closed with 1008.
        replay_limit: most messages replayed on reconnect; past it the client gets ``resync``.
        history_default: messages /chat-history returns without ``limit``.
        history_max: largest ``limit`` /chat-history accepts.
        dedupe_window: seconds a (username, clientId) pair is remembered for idempotent send.
        max_connections: open chat WebSockets per process (503 past it).
    """

    max_username: int = 32
    max_message: int = 1 << 20
    max_frame: int = 8 << 20
    max_upload: int = 512 << 20
    message_rate: float = 10.0
    message_burst: int = 30
    typing_interval: float = 1.0
    slow_reader_bytes: int = 8 << 20
    replay_limit: int = 1000
    history_default: int = 100
    history_max: int = 1000
    dedupe_window: float = 24 * 3600.0
    max_connections: int = 10000

    @classmethod
    def names(cls) -> list[str]:
        """Return the limits' field names, in table order."""
        return [field.name for field in fields(cls)]


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, holding at most ``burst``.

    The caller passes the clock reading, so the bucket itself never reads a clock (tests drive
    it with made-up times).
    """

    __slots__ = ("_burst", "_rate", "_tokens", "_updated")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        """Start full at time ``now`` (seconds, any monotonic clock)."""
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float) -> bool:
        """Take one token at time ``now``; return False (taking nothing) when none is left."""
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
