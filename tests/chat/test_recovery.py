"""Recovery over /websocket?since=SEQ: replay then live, with no gap and no duplicate, while
others keep sending; idempotent resends across reconnects; slow readers dropped and recovered.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

import pytest

import framewire
from tests.chat.conftest import (
    ChatServer,
    RunChat,
    chat_and_wait,
    full_history,
    open_chat_server,
    recv_json,
    recv_kind,
    send_chat,
    wait_for_presence,
    wait_until,
)


async def seed_messages(server: ChatServer, count: int, username: str = "seeder") -> None:
    """Store ``count`` messages through a WebSocket, each acknowledged before the next."""
    async with server.connect(username) as ws:
        for k in range(count):
            await chat_and_wait(ws, f"seed {k}")


async def collect_until(ws: Any, last_seq: int) -> list[dict[str, Any]]:
    """Return every message (but presence) until a chatMessage with ``last_seq`` arrives."""
    messages: list[dict[str, Any]] = []
    while True:
        message = await recv_json(ws)
        if message["messageType"] == "presence":
            continue
        messages.append(message)
        if message["messageType"] == "chatMessage" and message["seq"] == last_seq:
            return messages


def seqs(messages: list[dict[str, Any]]) -> list[int]:
    return [message["seq"] for message in messages]


# ---------------------------------------------------------------------------- since=


def test_since_replays_what_was_missed_oldest_first_then_live(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        await seed_messages(server, 10)
        history = await full_history(server.port)
        async with server.connect("late", since=6) as late:
            replayed = [await recv_kind(late, "chatMessage") for _ in range(4)]
            assert replayed == history[6:]
            async with server.connect("live") as live:
                await send_chat(live, "new")
                assert (await recv_kind(late, "chatMessage"))["seq"] == 11

    run_chat(scenario)


def test_since_zero_replays_everything(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        await seed_messages(server, 12)
        async with server.connect("new", since=0) as ws:
            assert seqs(await collect_until(ws, 12)) == list(range(1, 13))

    run_chat(scenario)


def test_without_since_only_live_messages_arrive(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        await seed_messages(server, 3)
        async with server.connect("now") as ws:
            assert (await chat_and_wait(ws, "live"))["seq"] == 4

    run_chat(scenario)


def test_since_the_newest_seq_replays_nothing(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        await seed_messages(server, 3)
        async with server.connect("up-to-date", since=3) as ws:
            assert (await chat_and_wait(ws, "live"))["seq"] == 4

    run_chat(scenario)


def test_past_replay_limit_the_client_gets_resync_then_live_messages(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        await seed_messages(server, 8)
        # 5 missed: exactly replay_limit, replayed.
        async with server.connect("five-behind", since=3) as ws:
            assert seqs(await collect_until(ws, 8)) == [4, 5, 6, 7, 8]
        # 6 missed: too many; resync first, then only what comes next.
        for since in (2, 0):
            async with server.connect("far-behind", since=since) as ws:
                assert await recv_kind(ws, ("resync", "chatMessage")) == {"messageType": "resync"}
                live = await chat_and_wait(ws, "after resync")
                assert live["seq"] == 9 + (since == 0)

    run_chat(scenario, replay_limit=5)


@pytest.mark.parametrize("since", ["-1", "abc", "1.5", "", "1e3", "%EF%BC%91"])
def test_bad_since_refuses_the_handshake_with_400(run_chat: RunChat, since: str) -> None:
    async def scenario(server: ChatServer) -> None:
        with pytest.raises(framewire.InvalidStatus) as caught:
            await framewire.connect(f"ws://127.0.0.1:{server.port}/websocket?since={since}")
        assert caught.value.status == 400
        assert b"since must be a whole number" in caught.value.body

    run_chat(scenario)


def test_since_past_the_newest_seq_gets_resync_then_new_messages(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        await seed_messages(server, 2)
        # A page that last saw seq 50 on a server whose history was since reset.
        async with server.connect("stale", since=50) as stale, server.connect("bob") as bob:
            assert await recv_kind(stale, ("chatMessage", "resync")) == {"messageType": "resync"}
            await wait_for_presence(bob, ["bob", "stale"])
            await send_chat(bob, "new message")
            assert (await recv_kind(stale, "chatMessage"))["seq"] == 3

    run_chat(scenario)


def test_replay_while_others_keep_sending_has_no_gap_and_no_duplicate(run_chat: RunChat) -> None:
    total = 400
    reconnect_at = [10, 60, 120, 200, 260, 330]

    async def scenario(server: ChatServer) -> None:
        async with server.connect("sender") as sender, server.connect("watcher") as watcher:
            await wait_for_presence(watcher, ["sender", "watcher"])

            async def send_all() -> None:
                for k in range(total):
                    await send_chat(sender, f"busy {k}")
                    if k % 8 == 0:
                        await asyncio.sleep(0)  # let the reconnects interleave

            async def reconnect(since: int) -> list[int]:
                async with server.connect(f"back-{since}", since=since) as ws:
                    return seqs(
                        [m for m in await collect_until(ws, total) if m["messageType"] != "error"]
                    )

            sending = asyncio.create_task(send_all())
            reconnects = []
            seen = 0
            for point in reconnect_at:
                # Reconnect with a since= well behind the live edge, while the sender runs.
                while seen < point:
                    seen = (await recv_kind(watcher, "chatMessage"))["seq"]
                reconnects.append((point // 2, asyncio.create_task(reconnect(point // 2))))
            await sending
            # Read the rest: unread messages would hold up the clients' closing handshakes.
            await collect_until(sender, total)
            while seen < total:
                seen = (await recv_kind(watcher, "chatMessage"))["seq"]
            for since, task in reconnects:
                assert await task == list(range(since + 1, total + 1)), since
            assert seqs(await full_history(server.port)) == list(range(1, total + 1))

    run_chat(scenario, message_rate=1e6, message_burst=1_000_000)


def test_history_survives_a_restart_and_seq_goes_on(tmp_path: Any) -> None:
    async def main() -> None:
        data_dir = tmp_path / "data"
        async with open_chat_server(data_dir) as server:
            await seed_messages(server, 3)
            before = await full_history(server.port)
        async with open_chat_server(data_dir) as server:
            assert await full_history(server.port) == before
            async with server.connect("back", since=1) as ws:
                assert seqs(await collect_until(ws, 3)) == [2, 3]
                assert (await chat_and_wait(ws, "after restart"))["seq"] == 4

    asyncio.run(asyncio.wait_for(main(), 60))


# ---------------------------------------------------------------------------- clientId


def test_resend_after_reconnect_returns_the_stored_copy_to_the_sender_alone(
    run_chat: RunChat,
) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("bob") as bob:
            alice = await server.connect("alice")
            original = await chat_and_wait(alice, "did this arrive?", "alice-1")
            alice.abort()  # as if the network dropped before the page saw its copy
            async with server.connect("alice", since=original["seq"]) as alice:
                again = await chat_and_wait(alice, "did this arrive?", "alice-1")
                assert again == original
                # bob: the original once, then the next message, nothing in between.
                assert await recv_kind(bob, "chatMessage") == original
                await send_chat(alice, "next")
                assert (await recv_kind(bob, "chatMessage"))["message"] == "next"
            history = await full_history(server.port)
            assert [m["clientId"] for m in history if "clientId" in m] == ["alice-1"]

    run_chat(scenario)


# ---------------------------------------------------------------------------- many clients


@dataclass
class FlakyClient:
    """A chat client that drops its connection at random, reconnects with since=<last seq
    seen> and resends what was not acknowledged, with the same clientId."""

    server: ChatServer
    name: str
    rng: random.Random
    to_send: int
    received: list[dict[str, Any]] = field(default_factory=list)
    last_seq: int = 0
    unacked: dict[str, str] = field(default_factory=dict)  # clientId -> text, in send order
    resent: set[str] = field(default_factory=set)
    problems: list[dict[str, Any]] = field(default_factory=list)
    reconnects: int = 0
    ws: Any = None
    reader: asyncio.Task[None] | None = None
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self) -> None:
        self.ws = await self.server.connect(self.name, since=self.last_seq)
        self.reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                message = json.loads(raw)
                kind = message["messageType"]
                if kind == "chatMessage":
                    self.received.append(message)
                    self.last_seq = max(self.last_seq, message["seq"])
                    if message["username"] == self.name:
                        self.unacked.pop(message.get("clientId"), None)
                    self.progress.set()
                elif kind != "presence":
                    self.problems.append(message)
        except framewire.ConnectionClosed:
            pass

    async def drop_and_reconnect(self) -> None:
        assert self.reader is not None
        self.ws.abort()
        await self.reader  # what arrived before the drop is counted, then since= goes on
        self.reconnects += 1
        await self.connect()
        for client_id, text in list(self.unacked.items()):
            self.resent.add(client_id)
            await send_chat(self.ws, text, client_id)

    async def run(self) -> None:
        await self.connect()
        sent = 0
        while sent < self.to_send or self.unacked:
            if sent < self.to_send:
                client_id = f"{self.name}-{sent}"
                self.unacked[client_id] = f"{self.name} says {sent}"
                await send_chat(self.ws, self.unacked[client_id], client_id)
                sent += 1
            else:
                self.progress.clear()
                await asyncio.wait_for(self.progress.wait(), 10)
            roll = self.rng.random()
            if roll < 0.1:
                await self.drop_and_reconnect()
            elif roll < 0.6:
                await asyncio.sleep(0)

    async def wait_for_seq(self, seq: int) -> None:
        while self.last_seq < seq:
            self.progress.clear()
            await asyncio.wait_for(self.progress.wait(), 10)

    def live_sequence(self) -> list[dict[str, Any]]:
        """What was received, minus the acknowledgements of our own resends (a stored copy
        sent again to us alone, so with a seq we had already seen)."""
        kept: list[dict[str, Any]] = []
        for message in self.received:
            if kept and message["seq"] <= kept[-1]["seq"]:
                assert message["username"] == self.name, message
                assert message["clientId"] in self.resent, message
                continue
            kept.append(message)
        return kept


@pytest.mark.parametrize("seed", [1, 2])
def test_many_clients_dropping_and_recovering_each_see_every_message_once(
    run_chat: RunChat, seed: int
) -> None:
    clients_count, per_client = 20, 15
    total = clients_count * per_client

    async def scenario(server: ChatServer) -> None:
        master = random.Random(seed)
        clients = [
            FlakyClient(server, f"user{n:02d}", random.Random(master.random()), per_client)
            for n in range(clients_count)
        ]
        try:
            await asyncio.gather(*(client.run() for client in clients))
            history = await full_history(server.port)
            assert seqs(history) == list(range(1, total + 1))
            stored_ids = [(m["username"], m["clientId"]) for m in history]
            assert sorted(stored_ids) == sorted(
                (c.name, f"{c.name}-{k}") for c in clients for k in range(per_client)
            )
            for client in clients:
                await client.wait_for_seq(total)
        finally:
            for client in clients:
                if client.ws is not None:
                    await client.ws.close()
                if client.reader is not None:
                    await client.reader
        assert sum(client.reconnects for client in clients) > clients_count
        for client in clients:
            assert client.problems == []
            assert client.live_sequence() == history, client.name

    run_chat(scenario, timeout=90, message_rate=1e6, message_burst=1_000_000)


# ---------------------------------------------------------------------------- slow readers


class RawWebSocket:
    """A WebSocket client over asyncio streams that reads only when told to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, target: str, receive_buffer: int) -> RawWebSocket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        # A small stream limit: the transport stops reading from the socket at twice this.
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101 "), head
        return cls(reader, writer)

    async def read_frame(self) -> tuple[int, bytes]:
        first, second = await self.reader.readexactly(2)
        assert first & 0x80, "the server does not fragment"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)

    async def read_until_close(self) -> tuple[list[dict[str, Any]], int, str]:
        """Read every frame up to the close frame: the text messages, the code and reason."""
        messages = []
        while True:
            opcode, payload = await asyncio.wait_for(self.read_frame(), 10)
            if opcode == 0x1:
                messages.append(json.loads(payload))
            elif opcode == 0x8:
                (code,) = struct.unpack("!H", payload[:2])
                return messages, code, payload[2:].decode()

    def close(self) -> None:
        self.writer.close()


def test_slow_reader_is_closed_with_1008_others_go_on_and_it_recovers(run_chat: RunChat) -> None:
    size = 200 << 10  # bytes per message: the kernel buffers fill after a few MiB

    async def scenario(server: ChatServer) -> None:
        async with server.connect("sender") as sender, server.connect("watcher") as watcher:
            watched: list[dict[str, Any]] = []

            async def watch() -> None:
                async for raw in watcher:
                    message = json.loads(raw)
                    if message["messageType"] == "chatMessage":
                        watched.append(message)

            watching = asyncio.create_task(watch())
            slow = await RawWebSocket.open(server.port, "/websocket?username=slow", 4096)
            try:
                await wait_until(lambda: any(c.username == "slow" for c in server.hub.clients))

                def slow_one_was_closed() -> bool:
                    return not any(
                        client.username == "slow" and client.websocket.connection.close_sent is None
                        for client in server.hub.clients
                    )

                sent = 0
                while not slow_one_was_closed():
                    assert sent < 200, "the slow reader was never closed"
                    await chat_and_wait(sender, f"{sent} " + "x" * size)
                    sent += 1
                for _ in range(5):  # the slow reader misses these
                    await chat_and_wait(sender, f"{sent} after")
                    sent += 1

                # The slow reader now reads what it was sent before the close frame.
                messages, code, reason = await slow.read_until_close()
            finally:
                slow.close()
            assert code == 1008
            assert "too slow" in reason
            before_close = [m for m in messages if m["messageType"] == "chatMessage"]
            assert seqs(before_close) == list(range(1, len(before_close) + 1))
            assert len(before_close) < sent
            last = before_close[-1]["seq"] if before_close else 0

            async with server.connect("slow", since=last, max_message_size=None) as again:
                recovered = await collect_until(again, sent)
            assert seqs(before_close + recovered) == list(range(1, sent + 1))

            # The others were served all along.
            await wait_until(lambda: len(watched) == sent)
            assert seqs(watched) == list(range(1, sent + 1))
            assert sender.close_code is None and watcher.close_code is None
            watching.cancel()

    run_chat(scenario, slow_reader_bytes=256 << 10, message_rate=1e6, message_burst=1_000_000)
