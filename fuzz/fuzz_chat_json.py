#!/usr/bin/env python3
"""Fuzz target: the chat protocol's JSON messages, as the hub validates them.

The hub's per-message entry point, Hub._receive(), runs without sockets: a fake store, presence
and websocket record what the hub does, and a manual clock drives the rate and typing limits.

Input: a flags byte (store down, clock step, amplified input), then messages, each a 2-byte
length and that many bytes (decoded as UTF-8 like a WebSocket text message, or passed as bytes
for a binary message when the length's top bit is set). Amplified input is one message
``prefix + unit * count + suffix``. For each message exactly one thing happens, and it is the
right one:

- an ``error`` reply with a known code and a short reason (never longer than a bound, whatever
  the input: no echo amplification), the clientId echoed only when it is a valid one;
- or a Draft appended to the store, with non-blank text of at most max_message UTF-8 bytes and
  no lone surrogate, the sender's name, and a valid clientId or none; a duplicate gets the stored
  copy back, HTML-escaped;
- or a typing notice, at most one per typing_interval.

Everything sent is a JSON object that encodes as UTF-8. Work per message stays within a linear
time budget.

Run long: python3 fuzz/fuzz_chat_json.py -max_total_time=3600 fuzz/corpus/chat_json
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from _harness import ByteReader, fuzz_main, instrumented

with instrumented(__name__):
    from _invariants import within_linear_time

    from framewire.chat.hub import ChatClient, Hub
    from framewire.chat.limits import ChatLimits, TokenBucket
    from framewire.chat.store import AppendOutcome, ChatMessage, Draft, StoreUnavailable

LIMITS = ChatLimits(max_message=256, message_rate=2.0, message_burst=4, typing_interval=1.0)
ERROR_CODES = {"invalid", "too_long", "rate_limited", "not_delivered"}
MAX_REPLY = 400  # characters of any error reply, whatever the message was
AMPLIFIED_MAX = 1 << 16
USERNAME = '<b>ann</b> & "co"'


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeStore:
    """Keeps drafts; remembers (username, clientId) pairs for idempotent send."""

    def __init__(self, down: bool) -> None:
        self.down = down
        self.drafts: list[Draft] = []
        self.by_client_id: dict[tuple[str, str], ChatMessage] = {}

    async def append(self, draft: Draft) -> AppendOutcome:
        if self.down:
            raise StoreUnavailable("database is locked")
        if draft.client_id is not None:
            earlier = self.by_client_id.get((draft.username, draft.client_id))
            if earlier is not None:
                return AppendOutcome(earlier, duplicate=True)
        self.drafts.append(draft)
        message = ChatMessage(
            f"id{len(self.drafts)}",
            len(self.drafts),
            draft.username,
            draft.message,
            1.5,
            draft.client_id,
        )
        if draft.client_id is not None:
            self.by_client_id[(draft.username, draft.client_id)] = message
        return AppendOutcome(message, duplicate=False)


class FakePresence:
    def __init__(self) -> None:
        self.typing_notices: list[tuple[str, str]] = []

    def typing(self, username: str, origin: str) -> None:
        self.typing_notices.append((username, origin))


class FakeWebSocket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, text: str) -> None:
        assert isinstance(text, str)
        text.encode("utf-8")  # a lone surrogate would fail the real send
        self.sent.append(text)


def _valid_client_id(value: Any) -> bool:
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Session:
    def __init__(self, store_down: bool) -> None:
        self.clock = Clock()
        self.store = FakeStore(store_down)
        self.presence = FakePresence()
        self.websocket = FakeWebSocket()
        self.hub = Hub(self.store, self.presence, LIMITS, clock=self.clock)  # type: ignore[arg-type]
        bucket = TokenBucket(LIMITS.message_rate, LIMITS.message_burst, self.clock())
        self.client = ChatClient(self.websocket, USERNAME, "local:1", bucket)
        self.last_typing = float("-inf")

    def receive(self, loop: asyncio.AbstractEventLoop, raw: str | bytes) -> None:
        sent, drafts, typing = (
            len(self.websocket.sent),
            len(self.store.drafts),
            len(self.presence.typing_notices),
        )
        loop.run_until_complete(self.hub._receive(self.client, raw))
        replies = self.websocket.sent[sent:]
        new_drafts = self.store.drafts[drafts:]
        new_typing = self.presence.typing_notices[typing:]
        outcomes = len(replies) + len(new_drafts) + len(new_typing)
        assert outcomes <= 1, f"one message did several things: {replies} {new_drafts} {new_typing}"
        request = _request(raw)
        for reply in replies:
            check_reply(reply, request)
        for draft in new_drafts:
            check_draft(draft, request)
        if new_typing:
            assert isinstance(request, dict) and request.get("messageType") == "typing"
            assert self.clock.now - self.last_typing >= LIMITS.typing_interval
            self.last_typing = self.clock.now
        if not replies and not new_drafts and not new_typing:
            # Silence is right only for a typing notice inside the interval.
            assert isinstance(request, dict) and request.get("messageType") == "typing"


def _request(raw: str | bytes) -> Any:
    if isinstance(raw, bytes):
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def check_reply(reply: str, request: Any) -> None:
    message = json.loads(reply)
    assert isinstance(message, dict), reply
    if message["messageType"] == "error":
        assert message["code"] in ERROR_CODES, message
        assert isinstance(message["error"], str) and len(reply) <= MAX_REPLY, len(reply)
        if "clientId" in message:
            assert isinstance(request, dict) and message["clientId"] == request.get("clientId")
            assert _valid_client_id(message["clientId"])
    else:
        # The acknowledgement of a duplicate: the stored copy, escaped for HTML.
        assert message["messageType"] == "chatMessage", message
        assert isinstance(request, dict) and message["clientId"] == request["clientId"]
        for field in ("message", "username"):
            assert not set(message[field]) & set("<>\"'"), message[field]


def check_draft(draft: Draft, request: Any) -> None:
    assert isinstance(request, dict) and request.get("messageType") == "chatMessage"
    assert draft.username == USERNAME
    assert draft.message == request["message"] and draft.message.strip()
    assert len(draft.message.encode("utf-8")) <= LIMITS.max_message
    client_id = request.get("clientId")
    assert draft.client_id == client_id and (client_id is None or _valid_client_id(client_id))


def read_messages(reader: ByteReader, amplify: bool) -> list[str | bytes]:
    if amplify:
        prefix, unit, count = reader.short_bytes(), reader.short_bytes() or b"[", reader.integer(2)
        suffix = reader.rest()
        count = min(count, (AMPLIFIED_MAX - len(prefix) - len(suffix)) // len(unit))
        return [(prefix + unit * max(count, 0) + suffix).decode("utf-8", "replace")]
    messages: list[str | bytes] = []
    while not reader.exhausted and len(messages) < 64:
        header = reader.integer(2)
        body = reader.take(header & 0x7FFF)
        messages.append(body if header & 0x8000 else body.decode("utf-8", "replace"))
    return messages


_LOOP: asyncio.AbstractEventLoop | None = None


def check(data: bytes) -> None:
    """Check every invariant of this target on one input."""
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
    reader = ByteReader(data)
    flags = reader.byte()
    step = (0.0, 0.1, 0.5, 2.0)[(flags >> 1) & 3]
    session = Session(store_down=bool(flags & 1))
    for raw in read_messages(reader, amplify=bool(flags & 8)):
        session.clock.now += step
        within_linear_time(
            lambda raw=raw, session=session: session.receive(_LOOP, raw),  # type: ignore[misc]
            len(raw),
            per_byte=20e-6,
            constant=0.05,
            what="Hub._receive()",
        )


if __name__ == "__main__":
    fuzz_main(check)
    sys.exit(0)
