"""Redis scale-out: RedisStore and RedisPresence against a real redis-server, then whole chat
processes sharing one Redis (kill -9 of a process, Redis restarted and gone, --workers).

The in-process tests reach Redis through a TcpProxy, so an outage or a silent partition is cut
for one store only. The process tests run ``python -m framewire chat --redis`` and talk to it
like the page does: WebSocket clients that send with a clientId, resend what was not
acknowledged after a reconnect (``since=`` the last seq they saw) or an error, and de-duplicate
acknowledgements by seq.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import itertools
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import framewire
from framewire.chat.limits import ChatLimits
from framewire.chat.redis_link import Backoff, Keys
from framewire.chat.redis_presence import RedisPresence
from framewire.chat.redis_store import RedisStore
from framewire.chat.store import ChatMessage, Draft, StoreUnavailable
from tests.chat.redis_server import RedisServer, TcpProxy, free_port
from tests.waiting import wait_until, wait_until_sync

LIMITS = ChatLimits()
# Bounds that only catch a hang: the documented times (2 s to fail a send, 5 s liveness) are
# far below them, and a loaded 2-core machine must not fail the test on a slow turn.
NO_HANG = 10.0


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def keys() -> Keys:
    return Keys(prefix=f"test:{uuid.uuid4().hex}:")


def run(main: Callable[[], Awaitable[None]], timeout: float = 40) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(main(), timeout)

    asyncio.run(bounded())


@pytest.fixture
def backoff_delays(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """Every reconnection delay any Backoff hands out, as (delay, its cap), in seconds."""
    delays: list[tuple[float, float]] = []
    next_delay = Backoff.next_delay

    def recording(self: Backoff) -> float:
        delay = next_delay(self)
        delays.append((delay, self._cap))
        return delay

    monkeypatch.setattr(Backoff, "next_delay", recording)
    return delays


@contextlib.asynccontextmanager
async def proxy_to(server: RedisServer) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(server.port)
    await proxy.start()
    try:
        yield proxy
    finally:
        proxy.thaw()
        await proxy.stop()


# ---------------------------------------------------------------------- RedisStore alone


def test_append_fails_fast_while_redis_is_cut_off_and_works_after(
    redis_server: RedisServer,
    keys: Keys,
    tmp_path: Path,
    backoff_delays: list[tuple[float, float]],
) -> None:
    async def main() -> None:
        async with proxy_to(redis_server) as proxy:
            store = RedisStore(proxy.url, tmp_path, LIMITS, keys=keys)
            received: list[ChatMessage] = []
            await store.open(received.append)
            try:
                await store.append(Draft("ann", "before"))
                await proxy.stop()
                # Fails rather than hangs (2 s documented): NO_HANG only catches a hang.
                with pytest.raises(StoreUnavailable, match="unreachable"):
                    async with asyncio.timeout(NO_HANG):
                        await store.append(Draft("ann", "during", client_id="d1"))
                await wait_until(lambda: store._follower.error is not None, 3, "reader notices")
                reason = await store.health()
                assert reason is not None and "redis unreachable" in reason
                await proxy.start()
                await wait_until(lambda: store._follower.error is None, 5, "reader back")
                # The reader retried with back-off, capped at 2 s; the append's retries at 0.5 s.
                assert 2.0 in (cap for _, cap in backoff_delays), "the reader never backed off"
                assert all(delay <= cap for delay, cap in backoff_delays), backoff_delays
                outcome = await store.append(Draft("ann", "during", client_id="d1"))
                assert not outcome.duplicate and outcome.message.seq == 2
                await wait_until(lambda: len(received) == 2, 5, "delivery")
                await wait_until(lambda: store._follower.heard_own_heartbeat > 0, 3)
                assert await store.health() is None
            finally:
                await store.close()

    run(main)


def test_a_store_opened_while_redis_is_away_starts_from_the_newest_message_later(
    redis_server: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    async def main() -> None:
        other = RedisStore(redis_server.url, tmp_path, LIMITS, keys=keys)
        await other.open(lambda message: None)
        async with proxy_to(redis_server) as proxy:
            await proxy.stop()
            late = RedisStore(proxy.url, tmp_path, LIMITS, keys=keys)
            seen: list[int] = []
            try:
                for n in range(3):
                    await other.append(Draft("bob", f"old {n}"))
                async with asyncio.timeout(NO_HANG):  # opens without Redis, without hanging
                    await late.open(lambda message: seen.append(message.seq))
                assert "redis unreachable" in (await late.health() or "")
                with pytest.raises(StoreUnavailable):
                    await late.after(0, 10)  # nothing cached yet
                assert await late.before(None, 10) == []
                await proxy.start()
                await wait_until(lambda: late._follower.error is None, 5, "reader connected")
                assert [m.seq for m in await late.before(None, 10)] == [1, 2, 3]
                await other.append(Draft("bob", "new"))
                await wait_until(lambda: seen == [4], 5, "only the new message")
            finally:
                await late.close()
                await other.close()

    run(main)


def test_the_cache_keeps_the_newest_messages_within_its_bytes(
    redis_server: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    async def main() -> None:
        store = RedisStore(redis_server.url, tmp_path, LIMITS, keys=keys, cache_size=5)
        store._follower.cache_bytes = 3 * (1000 + 3 + 200)
        await store.open(lambda message: None)
        try:
            for n in range(8):
                await store.append(Draft("ann", str(n) * 1000))
            await wait_until(lambda: store._follower.last_seq == 8, 5)
            assert [m.seq for m in store._follower.cache] == [6, 7, 8]
            store._follower.cache_bytes = 10**9
            for _ in range(8):
                await store.append(Draft("ann", "short"))
            await wait_until(lambda: store._follower.last_seq == 16, 5)
            assert [m.seq for m in store._follower.cache] == [12, 13, 14, 15, 16]
        finally:
            await store.close()

    run(main)


def test_reader_catches_up_on_what_others_stored_while_it_was_cut_off(
    redis_server: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    async def main() -> None:
        async with proxy_to(redis_server) as proxy:
            cut = RedisStore(proxy.url, tmp_path, LIMITS, keys=keys)
            other = RedisStore(redis_server.url, tmp_path, LIMITS, keys=keys)
            seen: list[int] = []
            await cut.open(lambda message: seen.append(message.seq))
            await other.open(lambda message: None)
            try:
                await other.append(Draft("bob", "one"))
                await wait_until(lambda: seen == [1], 5)
                await proxy.stop()
                for n in range(20):
                    await other.append(Draft("bob", f"while away {n}"))
                # History still answers from the local cache meanwhile.
                await wait_until(lambda: cut._follower.error is not None, 3)
                assert [m.seq for m in await cut.before(None, 10)] == [1]
                assert [m.seq for m in await cut.after(0, 10)] == [1]
                await proxy.start()
                await wait_until(lambda: len(seen) == 21, 5, "catch-up")
                assert seen == list(range(1, 22))
                assert cut.gaps == 0
            finally:
                await cut.close()
                await other.close()

    run(main)


def test_a_stream_trimmed_past_the_readers_position_is_a_gap_it_reports(
    redis_server: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    async def main() -> None:
        async with proxy_to(redis_server) as proxy:
            cut = RedisStore(proxy.url, tmp_path, LIMITS, keys=keys)
            other = RedisStore(redis_server.url, tmp_path, LIMITS, keys=keys)
            seen: list[int] = []
            await cut.open(lambda message: seen.append(message.seq))
            await other.open(lambda message: None)
            direct = redis.Redis(port=redis_server.port)
            try:
                await other.append(Draft("bob", "one"))
                await wait_until(lambda: seen == [1], 5)
                await proxy.stop()
                for n in range(30):
                    await other.append(Draft("bob", f"m{n}"))
                direct.xtrim(keys.stream, maxlen=10, approximate=False)  # seqs 22-31 remain
                await proxy.start()
                await wait_until(lambda: len(seen) == 11, 5, "delivery after the gap")
                assert seen == [1, *range(22, 32)]
                assert cut.gaps == 1
                # since= recovery sees where history starts.
                assert (await cut.after(1, 100))[0].seq == 22
            finally:
                direct.close()
                await cut.close()
                await other.close()

    run(main)


def test_seq_never_goes_back_when_redis_loses_its_data(
    redis_server: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    async def main() -> None:
        async with proxy_to(redis_server) as proxy:
            veteran = RedisStore(proxy.url, tmp_path, LIMITS, keys=keys)
            seen: list[int] = []
            await veteran.open(lambda message: seen.append(message.seq))
            direct = redis.Redis(port=redis_server.port)
            newcomer = RedisStore(redis_server.url, tmp_path, LIMITS, keys=keys)
            try:
                for n in range(5):
                    await veteran.append(Draft("ann", f"m{n}"))
                await wait_until(lambda: len(seen) == 5, 5)
                await proxy.stop()
                await wait_until(lambda: veteran._follower.error is not None, 3)
                direct.delete(keys.stream, keys.seq)  # as after a restart without persistence
                await proxy.start()
                await wait_until(lambda: veteran._follower.error is None, 5)
                # A process that never saw seq 5 still numbers after it.
                await newcomer.open(lambda message: None)
                outcome = await newcomer.append(Draft("bob", "after the loss"))
                assert outcome.message.seq == 6
                await wait_until(lambda: seen[-1:] == [6], 5, "delivered to the veteran")
            finally:
                direct.close()
                await newcomer.close()
                await veteran.close()

    run(main)


def test_health_fails_when_the_reader_goes_deaf_and_recovers(
    redis_server: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    async def main() -> None:
        async with proxy_to(redis_server) as proxy:
            store = RedisStore(
                proxy.url, tmp_path, LIMITS, keys=keys, heartbeat_interval=0.2, liveness_window=1.0
            )
            await store.open(lambda message: None)
            try:
                await wait_until(lambda: store._follower.heard_own_heartbeat > 0, NO_HANG)
                assert await store.health() is None
                proxy.freeze()  # no error, no bytes: a silent partition
                reasons: list[str | None] = []

                async def unhealthy() -> bool:
                    reasons.append(await store.health())
                    return reasons[-1] is not None

                await wait_until(unhealthy, NO_HANG, "health to fail")
                reason = reasons[-1]
                assert reason is not None and ("heartbeat" in reason or "unreachable" in reason)
                proxy.thaw()
                await proxy.stop()  # drop the stalled connections
                await proxy.start()

                async def healthy() -> bool:
                    return await store.health() is None

                await wait_until(healthy, NO_HANG, "health to recover")
            finally:
                await store.close()

    run(main)


def test_a_lost_answer_is_retried_without_storing_twice(
    redis_server: RedisServer, keys: Keys, tmp_path: Path
) -> None:
    async def main() -> None:
        store = RedisStore(redis_server.url, tmp_path, LIMITS, keys=keys)
        received: list[ChatMessage] = []
        await store.open(received.append)
        original = store._append_script
        calls = 0

        async def lose_first_answer(**kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            reply = await original(**kwargs)
            if calls == 1:
                raise redis.exceptions.ConnectionError("connection lost before the answer")
            return reply

        store._append_script = lose_first_answer  # type: ignore[assignment]
        try:
            with_id = await store.append(Draft("ann", "x", client_id="c"))
            without_id = await store.append(Draft("ann", "y"))
            assert calls == 3
            assert not with_id.duplicate and not without_id.duplicate
            assert [with_id.message.seq, without_id.message.seq] == [1, 2]
            # A marker behind them: the stream is delivered in order, so a duplicate of 1 or 2
            # would arrive before it.
            marker = await store.append(Draft("ann", "marker"))
            await wait_until(lambda: received[-1:] == [marker.message], 5, "the marker")
            assert [m.seq for m in received] == [1, 2, 3]
        finally:
            store._append_script = original
            await store.close()

    run(main)


# ---------------------------------------------------------------------- RedisPresence alone


def test_presence_spans_processes_and_drops_a_silent_one(
    redis_server: RedisServer, keys: Keys
) -> None:
    async def main() -> None:
        async with proxy_to(redis_server) as proxy:
            doomed = RedisPresence(proxy.url, "doomed", ttl=1.5, refresh_interval=0.5, keys=keys)
            watcher = RedisPresence(
                redis_server.url, "watcher", ttl=1.5, refresh_interval=0.5, keys=keys
            )
            third = RedisPresence(
                redis_server.url, "third", ttl=1.5, refresh_interval=0.5, keys=keys
            )
            announced: list[list[str]] = []
            typed: list[tuple[str, str]] = []
            await doomed.open(lambda users: None, lambda user, origin: None)
            await watcher.open(announced.append, lambda user, origin: typed.append((user, origin)))
            await third.open(lambda users: None, lambda user, origin: None)
            try:
                watcher.set_local_users(["wendy"])
                assert watcher.users() == ["wendy"]  # at once, locally
                await wait_until(lambda: announced[-1:] == [["wendy"]], 1, "announced")
                doomed.set_local_users(["ann", "bob"])
                third.set_local_users(["bob", "cy"])
                # By the nudge (test_presence_changes_arrive_by_the_nudge...) or a refresh.
                await wait_until(
                    lambda: watcher.users() == ["ann", "bob", "cy", "wendy"], 2, "nudged"
                )
                await wait_until(lambda: announced[-1] == watcher.users(), 1, "announced")
                assert len(announced) <= 3  # joins close together are announced together
                doomed.typing("ann", "conn-1")
                watcher.typing("wendy", "conn-9")
                await wait_until(lambda: ("ann", "doomed/conn-1") in typed, 2, "typing relayed")
                assert ("wendy", "conn-9") in typed  # own notices go to the own listener
                await proxy.stop()  # doomed can no longer refresh: like kill -9
                # ttl 1.5 s in this test: 8 s only catches a hang.
                await wait_until(lambda: watcher.users() == ["bob", "cy", "wendy"], 8, "expiry")
                await third.close()  # a clean exit leaves at once
                await wait_until(lambda: watcher.users() == ["wendy"], 1, "leave on close")
            finally:
                for presence in (doomed, watcher, third):
                    if not presence._closed:
                        await presence.close()

    run(main)


def test_presence_changes_arrive_by_the_nudge_not_the_periodic_refresh(
    redis_server: RedisServer, keys: Keys
) -> None:
    """With refresh_interval an hour, only the nudge can bring another process's users: each
    one costs the watcher one refresh, counted."""

    async def main() -> None:
        hour = 3600.0
        joiner = RedisPresence(
            redis_server.url, "joiner", ttl=2 * hour, refresh_interval=hour, keys=keys
        )
        watcher = RedisPresence(
            redis_server.url, "watcher", ttl=2 * hour, refresh_interval=hour, keys=keys
        )
        refreshes = 0
        refresh = watcher._refresh

        async def counting_refresh() -> None:
            nonlocal refreshes
            await refresh()
            refreshes += 1

        watcher._refresh = counting_refresh  # type: ignore[method-assign]
        await joiner.open(lambda users: None, lambda user, origin: None)
        await watcher.open(lambda users: None, lambda user, origin: None)
        try:
            # One refresh at open, one once its listener subscribed: from then on only a
            # nudge wakes it within the hour.
            await wait_until(lambda: refreshes >= 2, NO_HANG, "the watcher subscribed")
            await wait_until(lambda: not watcher._wake.is_set(), NO_HANG, "the watcher idle")
            for users in (["ann"], ["ann", "bob"], []):
                before = refreshes
                joiner.set_local_users(users)
                await wait_until(lambda u=users: watcher.users() == u, NO_HANG, f"nudged: {users}")
                assert refreshes > before
        finally:
            await joiner.close()
            await watcher.close()

    run(main)


# ---------------------------------------------------------------------- chat processes


class ChatProcess:
    """``python -m framewire chat --redis URL`` on a free port, stopped by its PID."""

    def __init__(self, data_dir: Path, redis_url: str, *extra: str) -> None:
        self.log_path = data_dir / f"chat-{uuid.uuid4().hex[:8]}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "framewire", "chat", "--host", "127.0.0.1", "--port", "0",
             "--data-dir", str(data_dir), "--redis", redis_url, *extra],
            stdout=subprocess.PIPE,
            stderr=self.log_path.open("wb"),
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.port = 0
        self.output = b""

    def wait_serving(self, count: int = 1, timeout: float = 20) -> int:
        """Wait until ``count`` processes printed their URL (workers print one each)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        pattern = rb"serving http://127\.0\.0\.1:(\d+)/"
        while len(re.findall(pattern, self.output)) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0 and self.process.poll() is None, self.log()
            ready, _, _ = select.select([self.process.stdout], [], [], remaining)
            if ready:
                self.output += os.read(self.process.stdout.fileno(), 4096)
        self.port = int(re.findall(pattern, self.output)[0])
        return self.port

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.alive():
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def chat_processes(count: int, data_dir: Path, redis_url: str) -> Iterator[list[ChatProcess]]:
    processes = [ChatProcess(data_dir, redis_url) for _ in range(count)]
    try:
        for process in processes:
            process.wait_serving()
        yield processes
    finally:
        for process in processes:
            process.stop()


async def http_get(port: int, path: str) -> tuple[int, Any]:
    def fetch() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    status, body = await asyncio.to_thread(fetch)
    with contextlib.suppress(ValueError):
        return status, json.loads(body)
    return status, body


async def history(port: int) -> list[dict[str, Any]]:
    status, body = await http_get(port, "/chat-history?after=0&limit=1000")
    assert status == 200, body
    assert isinstance(body, list)
    return body


class Peer:
    """A chat client that behaves like the page: resends unacknowledged messages (same
    clientId) after an error or a reconnect, and resumes with ``since=``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seqs: list[int] = []  # every chatMessage received, in order, acks excluded
        self.doubles: list[int] = []  # a seq received twice that was not an acknowledgement
        self.unacked: dict[str, str] = {}  # clientId -> text
        self.acked: set[str] = set()
        self.errored: set[str] = set()  # clientIds answered not_delivered at least once
        self.retry: set[str] = set()  # clientIds to send again (not_delivered, rate_limited)
        self.users: list[str] = []
        self.ws: Any = None
        self.port = 0
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    @property
    def last_seq(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    async def connect(self, port: int, since: int | None = None) -> None:
        query = f"?username={self.name}" + ("" if since is None else f"&since={since}")
        self.ws = await framewire.connect(f"ws://127.0.0.1:{port}/websocket{query}")
        self.port = port
        self.closed.clear()
        self._reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                self._on(json.loads(raw))
        except framewire.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    def _on(self, message: dict[str, Any]) -> None:
        kind = message.get("messageType")
        if kind == "chatMessage":
            client_id = message.get("clientId")
            mine = message.get("username") == self.name and client_id is not None
            if mine:
                self.unacked.pop(client_id, None)
                self.acked.add(client_id)
            if message["seq"] > self.last_seq:
                self.seqs.append(message["seq"])
            elif not mine:
                self.doubles.append(message["seq"])
        elif kind == "presence":
            self.users = message["users"]
        elif kind == "error" and message.get("code") == "not_delivered":
            client_id = message.get("clientId")
            self.errored.add(client_id)
            self.retry.add(client_id)
        elif kind == "error" and message.get("code") == "rate_limited":
            self.retry.add(message.get("clientId"))

    async def send(self, text: str, client_id: str | None = None) -> str:
        client_id = client_id or f"{self.name}-{uuid.uuid4().hex[:8]}"
        self.unacked[client_id] = text
        with contextlib.suppress(framewire.ConnectionClosed):
            await self.ws.send(
                json.dumps({"messageType": "chatMessage", "message": text, "clientId": client_id})
            )
        return client_id

    async def resend_unacked(self) -> None:
        for client_id, text in list(self.unacked.items()):
            await self.send(text, client_id)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader


async def connect_all(peers: list[Peer], ports: list[int]) -> None:
    await asyncio.gather(*(peer.connect(ports[n % len(ports)]) for n, peer in enumerate(peers)))


async def send_marker(sender: Peer, peers: list[Peer], count: int) -> None:
    """Send one more message and wait until every peer saw ``count`` messages, the marker the
    last: every process fans the stream out in order, so a message delivered twice would have
    arrived before the marker (instead of sleeping to see whether one comes)."""
    await sender.send("marker")
    await wait_until(lambda: all(len(p.seqs) >= count for p in peers), 10, "the marker")


def healthz_is(port: int, status: int) -> Callable[[], Awaitable[bool]]:
    """A condition for wait_until(): /healthz of ``port`` answers ``status``."""

    async def check() -> bool:
        return (await http_get(port, "/healthz"))[0] == status

    return check


@pytest.mark.slow
def test_three_processes_thirty_clients_see_one_sequence(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis.Redis(port=redis_server.port).flushall()
    with chat_processes(3, tmp_path, redis_server.url) as processes:
        ports = [process.port for process in processes]

        async def main() -> None:
            peers = [Peer(f"user{n}") for n in range(30)]
            await connect_all(peers, ports)
            per_peer = 5
            total = len(peers) * per_peer

            async def chat(peer: Peer) -> None:
                for n in range(per_peer):
                    await peer.send(f"{peer.name} says {n} <b>&</b>")

            await asyncio.gather(*(chat(peer) for peer in peers))
            await wait_until(lambda: all(len(p.seqs) >= total for p in peers), 20, "fan-out")
            total += 1
            await send_marker(peers[0], peers, total)
            for peer in peers:
                assert peer.seqs == list(range(1, total + 1)), peer.name
                assert not peer.doubles and not peer.unacked and not peer.errored
            # Everyone is everywhere in presence.
            names = sorted(peer.name for peer in peers)
            await wait_until(lambda: all(sorted(p.users) == names for p in peers), 5, "presence")
            histories = [await history(port) for port in ports]
            assert histories[0] == histories[1] == histories[2]
            assert [m["seq"] for m in histories[0]] == list(range(1, total + 1))
            assert histories[0][0]["message"].endswith("&lt;b&gt;&amp;&lt;/b&gt;")
            # A process started later serves the same history.
            late = ChatProcess(tmp_path, redis_server.url)
            try:
                late_port = await asyncio.to_thread(late.wait_serving)
                assert await history(late_port) == histories[0]
                status, body = await http_get(late_port, "/healthz")
                assert status == 200 and body["store"] == "redis", body
            finally:
                await asyncio.to_thread(late.stop)
            await asyncio.gather(*(peer.close() for peer in peers))

        run(main, 60)


@pytest.mark.slow
def test_kill_9_of_a_process_loses_nothing_and_its_users_leave(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis.Redis(port=redis_server.port).flushall()
    with chat_processes(3, tmp_path, redis_server.url) as processes:
        victim, *survivors = processes
        ports = [process.port for process in processes]

        async def main() -> None:
            senders = [Peer(f"sender{n}") for n in range(12)]
            ghosts = [Peer(f"ghost{n}") for n in range(3)]
            await connect_all(senders, ports)
            await asyncio.gather(*(ghost.connect(victim.port) for ghost in ghosts))
            watcher = senders[1]  # on a survivor
            assert watcher.port != victim.port
            await wait_until(lambda: "ghost2" in watcher.users, 5, "ghosts present")
            per_sender = 15

            async def chat(peer: Peer, index: int) -> None:
                for n in range(per_sender):
                    if peer.closed.is_set():
                        # Its process died: go on elsewhere, from the last seq seen.
                        await peer.connect(survivors[index % 2].port, since=peer.last_seq)
                        await peer.resend_unacked()
                    client_id = await peer.send(f"{peer.name} {n}")
                    # Paced by acknowledgements, like a person typing (within the burst
                    # limit): the kill below falls in the middle of the stream.
                    await wait_until(
                        lambda cid=client_id: cid in peer.acked or peer.closed.is_set(),
                        NO_HANG,
                        f"{client_id} acknowledged or its connection lost",
                    )

            chatting = asyncio.gather(*(chat(peer, n) for n, peer in enumerate(senders)))
            await wait_until(
                lambda: sum(len(p.acked) for p in senders) >= 3 * len(senders), 20, "chatting"
            )
            await asyncio.to_thread(victim.kill)
            await chatting
            for peer in senders:  # those whose last send went to the dead process
                if peer.closed.is_set():
                    await peer.connect(survivors[0].port, since=peer.last_seq)
                    await peer.resend_unacked()
            total = len(senders) * per_sender
            await wait_until(lambda: all(not p.unacked for p in senders), 15, "all acknowledged")
            await wait_until(lambda: all(len(p.seqs) >= total for p in senders), 10, "all seen")
            total += 1
            await send_marker(watcher, senders, total)
            for peer in senders:
                assert peer.seqs == list(range(1, total + 1)), peer.name
                assert not peer.doubles, peer.name
            one, two = [await history(process.port) for process in survivors]
            assert one == two
            sent = {(p.name, cid) for p in senders for cid in p.acked}
            stored = [(m["username"], m["clientId"]) for m in one]
            assert len(stored) == len(set(stored)) == total and set(stored) == sent
            # Presence drops the killed process's users within ttl + refresh (15 s documented;
            # 30 s only catches a hang).
            await wait_until(lambda: not any("ghost" in u for u in watcher.users), 30, "ghosts")
            await asyncio.gather(*(peer.close() for peer in senders))

        run(main, 90)


@pytest.mark.slow
def test_redis_restart_under_load_resumes_and_loses_nothing_acknowledged(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis.Redis(port=redis_server.port).flushall()
    with chat_processes(2, tmp_path, redis_server.url) as processes:
        ports = [process.port for process in processes]

        async def main() -> None:
            peers = [Peer(f"p{n}") for n in range(8)]
            await connect_all(peers, ports)
            rounds = itertools.count()

            async def send_round() -> list[tuple[Peer, str]]:
                """Every peer sends one message; the messages are in flight together."""
                number = next(rounds)
                return [(peer, await peer.send(f"{peer.name} {number}")) for peer in peers]

            def answered(sent: list[tuple[Peer, str]]) -> Callable[[], bool]:
                """Each message acknowledged, or refused with not_delivered."""
                return lambda: all(cid in p.acked or cid in p.errored for p, cid in sent)

            # Rounds of messages (paced by their answers, within the burst limit), the last
            # still in flight when Redis is killed: its answers may be lost after the write.
            for _ in range(3):
                await wait_until(answered(await send_round()), NO_HANG, "a round answered")
            in_flight = await send_round()
            await asyncio.to_thread(redis_server.kill)
            await wait_until(answered(in_flight), NO_HANG, "the round that met the kill")
            for port in ports:
                await wait_until(healthz_is(port, 503), NO_HANG, f"healthz 503 on {port}")
            during = await send_round()  # sends that meet the outage are refused, not lost
            await wait_until(
                lambda: all(cid in p.errored for p, cid in during), NO_HANG, "not_delivered"
            )
            await asyncio.to_thread(redis_server.start)
            # Delivery resumes by itself: a message sent now reaches the other process.
            probe, observer = peers[0], peers[1]
            assert probe.port != observer.port
            probe_id = await probe.send("probe after the restart")
            await wait_until(lambda: probe_id in probe.acked, 10, "probe acknowledged")
            await wait_until(lambda: observer.last_seq >= probe.last_seq, 10, "probe crossed")
            for port in ports:
                await wait_until(healthz_is(port, 200), 10, f"healthz 200 on {port}")
            await wait_until(answered(await send_round()), NO_HANG, "a round after the restart")
            # What was refused is sent again with its clientId, as the page does.
            for peer in peers:
                for client_id in peer.retry & set(peer.unacked):
                    peer.retry.discard(client_id)
                    await peer.send(peer.unacked[client_id], client_id)
            await wait_until(
                lambda: all(not p.unacked for p in peers),
                15,
                "every resent message acknowledged",
            )
            assert all(process.alive() for process in processes)
            assert any(peer.errored for peer in peers), "no send met the outage"
            last = max(peer.last_seq for peer in peers)
            await wait_until(lambda: all(p.last_seq == last for p in peers), 10, "converged")
            for peer in peers:
                assert peer.seqs == list(range(1, last + 1)) and not peer.doubles, peer.name
            one, two = [await history(port) for port in ports]
            assert one == two and [m["seq"] for m in one] == list(range(1, last + 1))
            stored = [(m["username"], m["clientId"]) for m in one]
            assert len(stored) == len(set(stored))  # nothing stored twice
            assert {(p.name, cid) for p in peers for cid in p.acked} <= set(stored)
            await asyncio.gather(*(peer.close() for peer in peers))

        run(main, 90)


@pytest.mark.slow
def test_redis_gone_for_good_processes_serve_history_and_refuse_sends(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis.Redis(port=redis_server.port).flushall()
    with chat_processes(2, tmp_path, redis_server.url) as processes:
        ports = [process.port for process in processes]

        async def main() -> None:
            ann, bob = Peer("ann"), Peer("bob")
            await connect_all([ann, bob], ports)
            for n in range(5):
                await ann.send(f"m{n}")
            await wait_until(lambda: len(bob.seqs) == 5 and not ann.unacked, 10, "delivered")
            before = [await history(port) for port in ports]
            await asyncio.to_thread(redis_server.kill)
            try:
                for port in ports:
                    await wait_until(healthz_is(port, 503), NO_HANG, f"healthz 503 on {port}")
                    status, body = await http_get(port, "/healthz")
                    assert status == 503 and "redis" in body["reason"]
                client_id = await ann.send("into the void")
                await wait_until(lambda: client_id in ann.errored, 4, "not_delivered")
                # Ann's own connection would have carried a delivery before the error; Bob's
                # process could only get it from Redis, and its history shows it has nothing.
                assert client_id not in ann.acked and len(bob.seqs) == 5
                for port in ports:
                    status, _ = await http_get(port, "/")
                    assert status == 200
                    assert await history(port) == before[0]
                # since= recovery works from the process's own cache.
                late = Peer("late")
                await late.connect(ports[1], since=2)
                await wait_until(lambda: late.seqs == [3, 4, 5], 5, "replay from the cache")
                assert all(process.alive() for process in processes)
                await asyncio.gather(*(peer.close() for peer in (ann, bob, late)))
            finally:
                await asyncio.to_thread(redis_server.start)

        run(main, 60)


@pytest.mark.slow
def test_two_workers_serve_one_port_and_messages_cross(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis.Redis(port=redis_server.port).flushall()
    parent = ChatProcess(tmp_path, redis_server.url, "--workers", "2")
    try:
        port = parent.wait_serving()
        wait_until_sync(
            lambda: len(re.findall(r"started \(pid (\d+)\)", parent.log())) >= 2,
            10,
            "two workers started",
        )
        children = [int(pid) for pid in re.findall(r"started \(pid (\d+)\)", parent.log())]

        def sockets(pid: int) -> int:
            fd_dir = Path(f"/proc/{pid}/fd")
            return sum(1 for fd in fd_dir.iterdir() if os.readlink(fd).startswith("socket:"))

        async def main() -> None:
            # Both children must be listening before clients spread over them.
            await asyncio.to_thread(parent.wait_serving, 2)
            before = {pid: sockets(pid) for pid in children}
            peers = [Peer(f"w{n}") for n in range(16)]
            await connect_all(peers, [port])
            after = {pid: sockets(pid) for pid in children}
            assert all(after[pid] > before[pid] for pid in children), (before, after)
            for peer in peers:
                await peer.send(f"hello from {peer.name}")
            await wait_until(lambda: all(len(p.seqs) == 16 for p in peers), 10, "crossed")
            assert all(peer.seqs == list(range(1, 17)) for peer in peers)
            await asyncio.gather(*(peer.close() for peer in peers))

        run(main, 40)
        # A worker killed with -9 is reported and replaced after the back-off (1 s).
        os.kill(children[0], signal.SIGKILL)
        wait_until_sync(
            lambda: len(re.findall(r"started \(pid (\d+)\)", parent.log())) >= 3,
            10,
            "the killed worker replaced",
        )
        assert f"(pid {children[0]}) exited with code -9" in parent.log()
        children = [int(pid) for pid in re.findall(r"started \(pid (\d+)\)", parent.log())][1:]
        parent.wait_serving(3)  # the new worker listens on the same port
        assert parent.port == port
        os.kill(parent.process.pid, signal.SIGTERM)
        assert parent.process.wait(15) == 0
        for pid in children:
            assert (
                not Path(f"/proc/{pid}").exists()
                or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
            ), f"worker {pid} still running"
    finally:
        parent.stop()


def test_run_workers_stops_its_children_on_sigterm(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    from framewire.chat.config import ChatConfig
    from framewire.chat.workers import run_workers

    port = free_port()
    config = ChatConfig(port=port, data_dir=tmp_path, redis_url=redis_server.url, workers=2)

    def serving() -> bool:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2),
        ):
            return True
        return False

    def stop_when_serving() -> None:
        # run_workers() installs its handler and starts both workers before either serves.
        try:
            wait_until_sync(serving, 20, "a worker serving")
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    handler_before = signal.getsignal(signal.SIGTERM)
    stopper = threading.Thread(target=stop_when_serving)
    stopper.start()
    try:
        assert run_workers(config) == 0
    finally:
        stopper.join()
    assert signal.getsignal(signal.SIGTERM) == handler_before
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_run_workers_gives_up_when_workers_keep_dying_at_start(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from framewire.chat import workers
    from framewire.chat.config import ChatConfig

    monkeypatch.setattr(workers, "RESTART_FIRST", 0.05)
    monkeypatch.setattr(workers, "RESTART_CAP", 0.1)
    monkeypatch.setattr(workers, "CRASH_LOOP_LIMIT", 3)
    with socket.socket() as taken:  # held without SO_REUSEPORT: every worker's bind fails
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = ChatConfig(port=port, data_dir=tmp_path, redis_url=redis_server.url, workers=2)
        reports: list[str] = []
        monkeypatch.setattr(workers, "_report", reports.append)
        assert workers.run_workers(config) == 1
        # Bounded work: the two first workers, then restarts until three died in a row.
        starts = [text for text in reports if " started (pid " in text]
        assert 3 <= len(starts) <= 2 + 3, reports
        assert reports[-1] == "3 workers in a row died at start; giving up"


def test_only_the_redis_modules_import_redis() -> None:
    package = Path(framewire.__file__).parent
    importers = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            if any(name == "redis" or name.startswith("redis.") for name in names):
                importers.add(path.relative_to(package).as_posix())
    assert importers == {
        "chat/redis_follower.py",
        "chat/redis_link.py",
        "chat/redis_presence.py",
        "chat/redis_store.py",
    }
