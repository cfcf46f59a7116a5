"""Hub: the room's live side. Fans out stored messages, replays missed ones, relays presence
and typing, and applies the per-connection limits.

Recovery without gap or duplicate: a connection that asks for ``since=N`` is registered
*before* the store is read, in a replaying state in which live messages are queued for it
instead of sent. Every message is then either in what the store returned (committed before the
read) or in that queue (handed to the hub after registration), or both; each client remembers
the last seq it was sent and skips anything not newer, so overlaps are dropped. When the queue
is empty the client turns live in the same loop turn, with no await in between.

Fan-out uses framewire.broadcast(): a message is framed once, written to every live client
without waiting, and a client whose unsent bytes pass ``slow_reader_bytes`` is closed with 1008
rather than holding memory; it recovers what it missed with ``since=`` when it reconnects.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import framewire
from framewire.chat.limits import ChatLimits, TokenBucket
from framewire.chat.store import (
    ChatMessage,
    Draft,
    Presence,
    Store,
    StoreUnavailable,
    escape,
)

__all__ = ["ChatClient", "Hub"]

logger = logging.getLogger("framewire.chat")

_MAX_CLIENT_ID = 64
_MAX_QUEUED_WHILE_REPLAYING = 10_000  # live messages held for one replaying client
PRESENCE_DELAY = 0.1  # seconds during which presence changes are gathered into one list


def _is_unicode(text: str) -> bool:
    """Whether ``text`` has no lone surrogate (so it can be encoded as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class ChatClient:
    """One open chat connection, as the hub tracks it.

    Attributes:
        websocket: the connection.
        username: the accepted (unescaped) user name.
        key: a name for this connection, unique within the process (typing's origin).
        last_seq: the newest seq this client was sent (or asked ``since=``).
        live: False while replaying; live messages are queued in ``queued`` meanwhile.
    """

    __slots__ = (
        "bucket",
        "greeted",
        "key",
        "last_seq",
        "last_typing",
        "live",
        "queued",
        "username",
        "users_shown",
        "websocket",
    )

    def __init__(self, websocket: Any, username: str, key: str, bucket: TokenBucket) -> None:
        """Register nothing yet: the hub does that."""
        self.websocket = websocket
        self.username = username
        self.key = key
        self.bucket = bucket
        self.last_seq = 0
        self.last_typing = float("-inf")
        self.live = False
        self.greeted = False  # sent its first presence
        self.users_shown: list[str] = []  # the last presence list it was sent
        self.queued: list[tuple[int, str]] = []


class Hub:
    """The room's live connections over a :class:`Store` and a :class:`Presence`.

    Args:
        store: where messages are committed and read back.
        presence: who is connected (across processes with Redis).
        limits: the chat's limits.
        clock: a monotonic clock in seconds (tests pass a manual one).
    """

    def __init__(
        self,
        store: Store,
        presence: Presence,
        limits: ChatLimits,
        *,
        process_id: str = "local",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Make a hub; call :meth:`start` before serving connections."""
        self.store = store
        self.presence = presence
        self.limits = limits
        self.clients: set[ChatClient] = set()
        # Connections per user name, so that the room's names cost O(users), not O(clients):
        # read at every connection, a scan of the clients made 10,000 connects quadratic
        # (tests/reliability/test_load.py).
        self._connections_per_user: dict[str, int] = {}
        self._clock = clock
        self._keys = (f"{process_id}:{number}" for number in itertools.count(1))
        self._tasks: set[asyncio.Future[None]] = set()
        self._last_delivered = 0  # the newest seq the store handed over
        self._presence_timer: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        """Open the store and the presence."""
        await self.store.open(self._deliver)
        await self.presence.open(self._presence_changed, self._typing_relayed)

    async def close(self) -> None:
        """Close the presence and the store."""
        if self._presence_timer is not None:
            self._presence_timer.cancel()
            self._presence_timer = None
        await self.presence.close()
        await self.store.close()

    # ------------------------------------------------------------------ from the store

    def _deliver(self, message: ChatMessage) -> None:
        """A message was committed (by any process): send it to every client that lacks it."""
        seq = message.seq
        if self._last_delivered and seq > self._last_delivered + 1:
            # The store lost messages before this process read them (Redis trimmed its
            # stream while this process was cut off): clients reload the history instead.
            logger.warning(
                "messages %d-%d never reached this process", self._last_delivered + 1, seq - 1
            )
            self._resync_everyone()
        self._last_delivered = max(self._last_delivered, seq)
        text = _dumps(message.to_wire())
        targets = []
        for client in self.clients:
            if client.live:
                if seq > client.last_seq:
                    client.last_seq = seq
                    targets.append(client.websocket)
            elif seq > client.last_seq:
                client.queued.append((seq, text))
                if len(client.queued) > _MAX_QUEUED_WHILE_REPLAYING:
                    client.queued.clear()
                    client.last_seq = seq  # nothing more is queued; it reconnects with since=
                    closing = asyncio.ensure_future(
                        client.websocket.close(1008, "too slow to replay: reconnect with since=")
                    )
                    self._tasks.add(closing)
                    closing.add_done_callback(self._tasks.discard)
        if targets:
            framewire.broadcast(
                targets,
                text,
                on_overflow="close",
                buffer_limit=self.limits.slow_reader_bytes,
            )

    def _resync_everyone(self) -> None:
        targets = [client.websocket for client in self.clients if client.greeted]
        if targets:
            framewire.broadcast(targets, _dumps({"messageType": "resync"}))

    def _presence_changed(self, users: list[str]) -> None:
        shown = [escape(user) for user in users]
        text = _dumps({"messageType": "presence", "users": shown})
        targets = []
        for client in self.clients:
            if client.greeted and client.users_shown != shown:
                client.users_shown = shown
                targets.append(client.websocket)
        if targets:
            framewire.broadcast(
                targets, text, on_overflow="close", buffer_limit=self.limits.slow_reader_bytes
            )

    def _typing_relayed(self, username: str, origin: str) -> None:
        text = _dumps({"messageType": "typing", "username": escape(username)})
        targets = [c.websocket for c in self.clients if c.key != origin and c.live]
        if targets:
            framewire.broadcast(targets, text, buffer_limit=self.limits.slow_reader_bytes)

    def _update_presence(self) -> None:
        # Coalesced: when a thousand clients reconnect at once, the room hears a few dozen
        # presence lists instead of one per connection to every connection (N squared).
        if self._presence_timer is None:
            loop = asyncio.get_running_loop()
            self._presence_timer = loop.call_later(PRESENCE_DELAY, self._publish_presence)

    def _publish_presence(self) -> None:
        self._presence_timer = None
        self.presence.set_local_users(self._local_users())

    def _local_users(self) -> list[str]:
        return sorted(self._connections_per_user)

    def _add_client(self, client: ChatClient) -> None:
        self.clients.add(client)
        counts = self._connections_per_user
        counts[client.username] = counts.get(client.username, 0) + 1

    def _remove_client(self, client: ChatClient) -> None:
        self.clients.remove(client)
        counts = self._connections_per_user
        counts[client.username] -= 1
        if not counts[client.username]:
            del counts[client.username]

    def _users_to_show(self) -> list[str]:
        """Return everyone in the room, escaped, for a new connection's first presence.

        A function of its own so that its set of every user is freed on return: a local of
        serve() would live in each connection's frame until it closes (8 KiB per connection
        with 100 users, tests/reliability/test_load.py).
        """
        # This process's own users are current; the presence's may lag by PRESENCE_DELAY.
        everyone = set(self.presence.users()) | set(self._local_users())
        return [escape(user) for user in sorted(everyone)]

    # ------------------------------------------------------------------ one connection

    async def serve(self, websocket: Any, username: str, since: int | None) -> None:
        """Run one connection until it closes: replay, then relay its messages.

        Args:
            websocket: the open connection.
            username: the accepted user name (unescaped).
            since: replay every message with a greater seq first; None for live ones only.
        """
        limits = self.limits
        bucket = TokenBucket(limits.message_rate, limits.message_burst, self._clock())
        client = ChatClient(websocket, username, next(self._keys), bucket)
        self._add_client(client)
        try:
            self._update_presence()
            users = self._users_to_show()
            client.greeted = True
            client.users_shown = users
            await websocket.send(_dumps({"messageType": "presence", "users": users}))
            if since is None:
                client.live = True
            else:
                await self._replay(client, since)
            async for raw in websocket:
                await self._receive(client, raw)
        except framewire.ConnectionClosed:
            pass
        finally:
            self._remove_client(client)
            self._update_presence()

    async def _replay(self, client: ChatClient, since: int) -> None:
        websocket = client.websocket
        client.last_seq = since
        try:
            missed = await self.store.after(since, self.limits.replay_limit + 1)
        except StoreUnavailable as error:
            await self._send_error(client, "not_delivered", f"history unavailable: {error}")
            missed = []
        newest = None if missed else await self.store.last_seq()
        if len(missed) > self.limits.replay_limit or (newest is not None and since > newest):
            # Too much to replay, or a since= from another history (a restored data dir):
            # the page reloads /chat-history and goes on from the newest message.
            await websocket.send(_dumps({"messageType": "resync"}))
            client.last_seq = await self.store.last_seq() if newest is None else newest
            missed = []
        if missed and missed[0].seq > since + 1:
            # The store no longer holds everything after since= (Redis trimmed its stream):
            # the page reloads /chat-history rather than show a hole, and replay goes on.
            await websocket.send(_dumps({"messageType": "resync"}))
        for message in missed:
            if message.seq > client.last_seq:
                await websocket.send(_dumps(message.to_wire()))
                client.last_seq = message.seq
        while client.queued:
            queued, client.queued = client.queued, []
            for seq, text in queued:
                if seq > client.last_seq:
                    await websocket.send(text)
                    client.last_seq = seq
        client.live = True  # no await since the queue was seen empty

    async def _receive(self, client: ChatClient, raw: str | bytes) -> None:
        if not isinstance(raw, str):
            await self._send_error(client, "invalid", "binary messages are not accepted")
            return
        try:
            request = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep
            await self._send_error(client, "invalid", "message is not valid JSON")
            return
        if not isinstance(request, dict):
            await self._send_error(client, "invalid", "message must be a JSON object")
            return
        kind = request.get("messageType")
        if kind == "chatMessage":
            await self._chat_message(client, request)
        elif kind == "typing":
            self._typing(client)
        else:
            shown = kind[:64] if isinstance(kind, str) else json.dumps(kind)[:64]
            await self._send_error(client, "invalid", f"unknown messageType {shown!r}")

    async def _chat_message(self, client: ChatClient, request: dict[str, Any]) -> None:
        client_id = request.get("clientId")
        if client_id is not None and (
            not isinstance(client_id, str)
            or not 1 <= len(client_id) <= _MAX_CLIENT_ID
            or not _is_unicode(client_id)
        ):
            await self._send_error(
                client, "invalid", f"clientId must be a string of 1-{_MAX_CLIENT_ID} characters"
            )
            return
        text = request.get("message")
        if not isinstance(text, str):
            reason = "missing field 'message'" if text is None else "'message' must be a string"
            await self._send_error(client, "invalid", reason, client_id)
            return
        if not _is_unicode(text):
            # JSON can carry lone surrogates ("\ud800"), which no UTF-8 store or peer accepts.
            await self._send_error(client, "invalid", "message is not valid Unicode", client_id)
            return
        if not text.strip():
            await self._send_error(client, "invalid", "message is empty", client_id)
            return
        size = len(text.encode("utf-8"))
        if size > self.limits.max_message:
            await self._send_error(
                client,
                "too_long",
                f"message of {size} bytes exceeds max_message={self.limits.max_message}",
                client_id,
            )
            return
        if not client.bucket.take(self._clock()):
            await self._send_error(
                client,
                "rate_limited",
                f"too many messages: at most {self.limits.message_rate:g} per second"
                f" (burst {self.limits.message_burst}); this one was not sent",
                client_id,
            )
            return
        try:
            outcome = await self.store.append(Draft(client.username, text, client_id))
        except StoreUnavailable as error:
            await self._send_error(
                client, "not_delivered", f"message not delivered: {error}", client_id
            )
            return
        if outcome.duplicate:
            # The sender alone gets the stored copy again, as its acknowledgement.
            await client.websocket.send(_dumps(outcome.message.to_wire()))

    def _typing(self, client: ChatClient) -> None:
        now = self._clock()
        if now - client.last_typing < self.limits.typing_interval:
            return
        client.last_typing = now
        self.presence.typing(client.username, client.key)

    async def _send_error(
        self, client: ChatClient, code: str, reason: str, client_id: str | None = None
    ) -> None:
        error: dict[str, Any] = {"messageType": "error", "error": reason, "code": code}
        if client_id is not None:
            error["clientId"] = client_id
        await client.websocket.send(_dumps(error))
