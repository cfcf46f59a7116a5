"""Redis scale-out, whole chat processes sharing one Redis: thirty clients over three
processes, kill -9 of a process, Redis restarted under load and gone for good.

The tests run ``python -m framewire chat --redis`` and talk to it like the page does: WebSocket
clients that send with a clientId, resend what was not acknowledged after a reconnect (``since=``
the last seq they saw) or an error, and de-duplicate acknowledgements by seq. RedisStore,
StreamFollower, RedisPresence and run_workers alone are tests/chat/test_redis_store.py,
test_redis_follower.py, test_redis_presence.py and test_workers.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.chat.redis_helpers import NO_HANG, ChatProcess, Peer, connect_all, run
from tests.chat.redis_server import RedisServer
from tests.waiting import wait_until


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
            # still in flight when Redis is killed. Each of its messages is refused
            # (not_delivered), or was stored just before the kill and is delivered, which is
            # its acknowledgement, once Redis is back: checked after the restart.
            for _ in range(3):
                await wait_until(answered(await send_round()), NO_HANG, "a round answered")
            in_flight = await send_round()
            await asyncio.to_thread(redis_server.kill)
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
            await wait_until(answered(in_flight), NO_HANG, "the round that met the kill")
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
