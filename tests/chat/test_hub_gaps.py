"""When the store lost messages (Redis trimmed its stream), clients get resync, never a hole.

A small in-memory Store stands in for Redis here: it can forget old messages and skip seqs,
which SQLite never does.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import framewire
from framewire.chat.app import build_app
from framewire.chat.config import ChatConfig
from framewire.chat.hub import Hub
from framewire.chat.presence import LocalPresence
from framewire.chat.store import AppendOutcome, ChatMessage, Draft, MessageListener
from tests.chat.conftest import chat_ws_url


class ForgetfulStore:
    """A Store in memory whose history may start after seq 1 (trimmed)."""

    kind = "memory"
    dedupe_window = 60.0

    def __init__(self, uploads_dir: Path) -> None:
        self.uploads_dir = uploads_dir
        self.messages: list[ChatMessage] = []
        self.on_message: MessageListener | None = None

    def commit(self, seq: int) -> ChatMessage:
        """Store message ``seq`` (whatever came before) and hand it to the hub."""
        message = ChatMessage(f"id{seq}", seq, "writer", f"text {seq}", 1.0)
        self.messages.append(message)
        assert self.on_message is not None
        self.on_message(message)
        return message

    def forget_up_to(self, seq: int) -> None:
        self.messages = [message for message in self.messages if message.seq > seq]

    async def open(self, on_message: MessageListener) -> None:
        self.on_message = on_message

    async def append(self, draft: Draft) -> AppendOutcome:
        raise AssertionError("not used here")

    async def after(self, seq: int, limit: int) -> list[ChatMessage]:
        return [message for message in self.messages if message.seq > seq][:limit]

    async def before(self, seq: int | None, limit: int) -> list[ChatMessage]:
        older = [m for m in self.messages if seq is None or m.seq < seq]
        return older[-limit:]

    async def last_seq(self) -> int:
        return self.messages[-1].seq if self.messages else 0

    async def health(self) -> str | None:
        return None

    async def close(self) -> None:
        self.on_message = None


async def next_not_presence(ws: Any) -> dict[str, Any]:
    while True:
        event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if event["messageType"] != "presence":
            return event


def run_with_store(tmp_path: Path, scenario: Any) -> None:
    async def main() -> None:
        store = ForgetfulStore(tmp_path)
        config = ChatConfig(port=0, data_dir=tmp_path)
        hub = Hub(store, LocalPresence(), config.limits)
        await hub.start()
        try:
            async with framewire.serve(build_app(hub, config), "127.0.0.1", 0) as server:
                await asyncio.wait_for(scenario(store, server.sockets[0].getsockname()[1]), 30)
        finally:
            await hub.close()

    asyncio.run(main())


def test_replay_from_a_trimmed_history_starts_with_resync(tmp_path: Path) -> None:
    async def scenario(store: ForgetfulStore, port: int) -> None:
        for seq in range(1, 11):
            store.commit(seq)
        store.forget_up_to(5)  # seqs 1-5 are gone
        async with framewire.connect(chat_ws_url(port, "late", since=2)) as ws:
            assert await next_not_presence(ws) == {"messageType": "resync"}
            replayed = [(await next_not_presence(ws))["seq"] for _ in range(5)]
            assert replayed == [6, 7, 8, 9, 10]

    run_with_store(tmp_path, scenario)


def test_a_hole_in_the_live_stream_sends_resync_before_the_next_message(tmp_path: Path) -> None:
    async def scenario(store: ForgetfulStore, port: int) -> None:
        async with framewire.connect(chat_ws_url(port, "live")) as ws:
            await ws.recv()  # presence: the client is live from here on
            store.commit(1)
            assert (await next_not_presence(ws))["seq"] == 1
            store.commit(5)  # 2-4 never reached this process
            assert await next_not_presence(ws) == {"messageType": "resync"}
            assert (await next_not_presence(ws))["seq"] == 5
            store.commit(6)
            assert (await next_not_presence(ws))["seq"] == 6  # no resync without a hole

    run_with_store(tmp_path, scenario)
