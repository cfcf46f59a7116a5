"""The chat's storage contract: what the hub needs from SQLite and from Redis alike.

A :class:`Store` keeps the room's messages in one order. It assigns each new message the next
``seq`` (1, 2, 3, ... with no gap) atomically with committing it, and tells the hub about every
message committed from then on, by this process or by any other sharing the store, once each and
in seq order (``on_message``). The hub broadcasts only what ``on_message`` hands it, so nothing is
seen that was not stored first.

A :class:`Presence` tells every process who is connected anywhere, and relays typing notices;
neither is stored.

Two implementations of each: SQLite and in-process presence (sqlite_store.py, presence.py), and
Redis (redis_store.py) for several processes. tests/chat/test_store_contract.py runs one set of
tests against every Store.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "AppendOutcome",
    "ChatMessage",
    "Draft",
    "MessageListener",
    "Presence",
    "PresenceListener",
    "Store",
    "StoreUnavailable",
    "TypingListener",
    "escape",
]


def escape(text: str) -> str:
    """Return ``text`` with the five HTML-special characters escaped (& < > " ')."""
    return html.escape(text, quote=True)


@dataclass(frozen=True, slots=True)
class Draft:
    """A message a client asked to send, before the store numbers it.

    Attributes:
        username: the sender's name, as the server accepted it (unescaped).
        message: the text (unescaped); may be "" when ``upload`` is set.
        client_id: the sender's idempotency key (1-64 characters), or None.
        upload: "/uploads/<name>" when the message carries a file, else None.
        content_type: the served content type of that file, else None.
    """

    username: str
    message: str
    client_id: str | None = None
    upload: str | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A stored message: a Draft with its place in the room.

    Attributes:
        id: a unique id made by the store.
        seq: its position in the room, from 1, without gaps.
        timestamp: when it was stored, in epoch seconds.
        username, message, client_id, upload, content_type: as in :class:`Draft`, unescaped.
    """

    id: str
    seq: int
    username: str
    message: str
    timestamp: float
    client_id: str | None = None
    upload: str | None = None
    content_type: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """Return the chatMessage object clients receive, with username and message escaped."""
        wire: dict[str, Any] = {
            "messageType": "chatMessage",
            "id": self.id,
            "seq": self.seq,
            "username": escape(self.username),
            "message": escape(self.message),
            "timestamp": self.timestamp,
        }
        if self.client_id is not None:
            wire["clientId"] = self.client_id
        if self.upload is not None:
            wire["upload"] = self.upload
            wire["contentType"] = self.content_type or "application/octet-stream"
        return wire


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    """What :meth:`Store.append` did.

    Attributes:
        message: the stored message: the new one, or the one stored earlier under the same
            (username, client_id) when ``duplicate``.
        duplicate: True when nothing new was stored (the clientId was seen within the window).
    """

    message: ChatMessage
    duplicate: bool


class StoreUnavailable(Exception):
    """The store cannot take or give messages now (disk full, database locked, Redis down).

    ``str(error)`` is a reason that is safe to show a client.
    """


MessageListener = Callable[[ChatMessage], None]
PresenceListener = Callable[[list[str]], None]
TypingListener = Callable[[str, str], None]  # (username, origin key of the typing connection)


class Store(Protocol):
    """Durable, ordered history of one room, shared by every process that opens it.

    Attributes:
        uploads_dir: where uploaded files live (shared by all processes of the room).
        dedupe_window: seconds during which a (username, client_id) pair is remembered.
        kind: a short name for /healthz ("sqlite", "redis").
    """

    uploads_dir: Path
    dedupe_window: float
    kind: str

    async def open(self, on_message: MessageListener) -> None:
        """Get ready; from now on call ``on_message`` for every newly committed message.

        Every message committed after open() returns, by any process, is handed to
        ``on_message`` exactly once and in seq order, called on the event loop.
        """
        ...

    async def append(self, draft: Draft) -> AppendOutcome:
        """Commit ``draft`` as the room's next message and return it.

        A draft whose (username, client_id) was stored within ``dedupe_window`` is not stored
        again: the earlier message comes back with ``duplicate=True``. For a new message,
        ``on_message`` receives it before or soon after this returns.

        Raises:
            StoreUnavailable: nothing was stored.
        """
        ...

    async def after(self, seq: int, limit: int) -> list[ChatMessage]:
        """Return up to ``limit`` messages with seq greater than ``seq``, oldest first."""
        ...

    async def before(self, seq: int | None, limit: int) -> list[ChatMessage]:
        """Return the last ``limit`` messages with seq less than ``seq`` (None: the newest),
        oldest first."""
        ...

    async def last_seq(self) -> int:
        """Return the seq of the newest message, 0 when there is none."""
        ...

    async def health(self) -> str | None:
        """Return None when messages can be stored and delivered, else the reason why not."""
        ...

    async def close(self) -> None:
        """Release connections and threads; on_message is not called after this returns."""
        ...


class Presence(Protocol):
    """Who is connected to the room, across every process, and typing notices."""

    async def open(self, on_users: PresenceListener, on_typing: TypingListener) -> None:
        """Start; ``on_users(sorted distinct names)`` is called whenever the room's set of
        users changes, ``on_typing(username, origin)`` for each relayed typing notice."""
        ...

    def set_local_users(self, users: list[str]) -> None:
        """This process's users changed: ``users`` is the sorted, distinct list of them."""
        ...

    def users(self) -> list[str]:
        """Return the room's users (all processes), sorted and distinct."""
        ...

    def typing(self, username: str, origin: str) -> None:
        """Relay that ``username`` is typing, from the connection keyed ``origin``."""
        ...

    async def close(self) -> None:
        """Stop; this process's users leave the room."""
        ...
