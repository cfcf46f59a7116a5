"""Benchmark `framewire chat`: message throughput with fan-out, and mass reconnect with replay.

    python3 benchmarks/chat_bench.py                    # both scenarios, about 1 minute
    python3 benchmarks/chat_bench.py --only throughput --senders 10 --receivers 100 --duration 10
    python3 benchmarks/chat_bench.py --only reconnect --clients 1000 --missed 100

The server is the real command (`python -m framewire chat`, SQLite in a temporary --data-dir)
in a subprocess pinned to the first allowed CPU; the clients (framewire.connect) run here,
pinned to the second, in one event loop. The server's rate limit is raised for the benchmark
(--message-rate/--message-burst), nothing else. The clients do not negotiate compression unless
--deflate is given: the server compresses a broadcast once for everyone anyway, while inflating
it in each of 110 clients would make this process, not the server, the bottleneck.

throughput: N senders each keep up to --window messages in flight (a message is in flight
until the sender gets its own copy back), every message is stored and broadcast to all
connections; R more clients only receive. Reported over the measured window (after a warm-up):
messages stored per second, chat messages delivered per second at the R receivers, and the
server's CPU time per stored message.

reconnect: K messages are sent while nobody listens, then C clients connect at once with
since=<seq before them>; timed until every client holds all K (each checks it got exactly the
seqs it missed, in order). Reported: the total time, when the last handshake finished, and the
presence notices the clients received meanwhile (each arrival changes the room's user list,
which goes to everyone: with distinct names that is about C^2/2 notices).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from procs import cpu_seconds, raise_open_file_limit, rss_bytes  # benchmarks/procs.py

import framewire

CHAT_PREFIX = '{"messageType":"chatMessage"'
PRESENCE_PREFIX = '{"messageType":"presence"'


# ---------------------------------------------------------------------------- the server


@dataclass
class ChatServer:
    process: subprocess.Popen[str]
    port: int
    data_dir: Path

    def url(self, username: str, since: int | None = None) -> str:
        query = f"?username={username}" + ("" if since is None else f"&since={since}")
        return f"ws://127.0.0.1:{self.port}/websocket{query}"


def start_server(data_dir: Path, cpu: int | None, *extra: str) -> ChatServer:
    command = [
        sys.executable,
        "-m",
        "framewire",
        "chat",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--message-rate",
        "1000000",
        "--message-burst",
        "1000000",
        "--max-connections",
        "100000",
        *extra,
    ]

    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=pin,
        env=environment,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if match is None:
        process.kill()
        raise SystemExit(f"framewire chat did not start: {line!r}")
    return ChatServer(process, int(match.group(1)), data_dir)


def stop_server(server: ChatServer) -> None:
    """SIGTERM the server we started (by its pid), SIGKILL if it lingers."""
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait()


COMPRESSION: str | None = None  # --deflate sets "deflate"


async def connect_all(urls: list[str], concurrency: int = 200) -> list[framewire.WebSocket]:
    """Open one connection per URL, at most ``concurrency`` handshakes at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(url: str) -> framewire.WebSocket:
        async with gate:
            return await framewire.connect(
                url, open_timeout=60, max_message_size=None, compression=COMPRESSION
            )

    return list(await asyncio.gather(*(one(url) for url in urls)))


# ---------------------------------------------------------------------------- throughput


@dataclass
class Receiver:
    chat_messages: int = 0


@dataclass
class Sender:
    name: str
    window: asyncio.Semaphore
    acked: int = 0
    sent: int = 0
    marker: str = ""

    def __post_init__(self) -> None:
        self.marker = f'"clientId":"{self.name}-'


async def receive(ws: framewire.WebSocket, receiver: Receiver) -> None:
    try:
        async for raw in ws:
            if isinstance(raw, str) and raw.startswith(CHAT_PREFIX):
                receiver.chat_messages += 1
    except framewire.ConnectionClosed:
        pass


async def sender_reads(ws: framewire.WebSocket, sender: Sender) -> None:
    try:
        async for raw in ws:
            if isinstance(raw, str) and sender.marker in raw:
                sender.acked += 1
                sender.window.release()
    except framewire.ConnectionClosed:
        pass


async def sender_writes(
    ws: framewire.WebSocket, sender: Sender, text: str, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        await sender.window.acquire()
        if stop.is_set():
            return
        request = {"messageType": "chatMessage", "message": text, "clientId": f"{sender.name}-"}
        request["clientId"] += str(sender.sent)
        sender.sent += 1
        await ws.send(json.dumps(request))


async def throughput(args: argparse.Namespace, server: ChatServer) -> dict[str, float]:
    receivers = [Receiver() for _ in range(args.receivers)]
    senders = [Sender(f"s{n}", asyncio.Semaphore(args.window)) for n in range(args.senders)]
    receiver_sockets = await connect_all([server.url(f"r{n}") for n in range(args.receivers)])
    sender_sockets = await connect_all([server.url(s.name) for s in senders])
    tasks = [
        asyncio.create_task(receive(ws, receiver))
        for ws, receiver in zip(receiver_sockets, receivers, strict=True)
    ]
    tasks += [
        asyncio.create_task(sender_reads(ws, sender))
        for ws, sender in zip(sender_sockets, senders, strict=True)
    ]
    stop = asyncio.Event()
    text = "x" * args.size
    writers = [
        asyncio.create_task(sender_writes(ws, s, text, stop))
        for ws, s in zip(sender_sockets, senders, strict=True)
    ]

    def snapshot() -> tuple[float, int, int, float, float]:
        return (
            time.perf_counter(),
            sum(s.acked for s in senders),
            sum(r.chat_messages for r in receivers),
            cpu_seconds(server.process.pid),
            cpu_seconds(os.getpid()),
        )

    await asyncio.sleep(args.warmup)
    start = snapshot()
    await asyncio.sleep(args.duration)
    end = snapshot()
    stop.set()
    for sender in senders:
        sender.window.release()  # wake writers blocked on a full window
    await asyncio.gather(*writers)
    # Drain: every receiver ends with every stored message.
    total_sent = sum(s.sent for s in senders)
    deadline = time.perf_counter() + 60
    while sum(s.acked for s in senders) < total_sent or any(
        r.chat_messages < total_sent for r in receivers
    ):
        if time.perf_counter() > deadline:
            raise SystemExit("throughput: not every message reached every receiver")
        await asyncio.sleep(0.05)
    rss = rss_bytes(server.process.pid)
    await asyncio.gather(*(ws.close() for ws in receiver_sockets + sender_sockets))
    await asyncio.gather(*tasks)
    elapsed = end[0] - start[0]
    stored = end[1] - start[1]
    delivered = end[2] - start[2]
    return {
        "stored_per_s": stored / elapsed,
        "delivered_per_s": delivered / elapsed,
        "server_cpu_us_per_stored": (end[3] - start[3]) / max(stored, 1) * 1e6,
        "server_cpu_share": (end[3] - start[3]) / elapsed,
        "client_cpu_share": (end[4] - start[4]) / elapsed,
        "total_messages": total_sent,
        "server_rss_mib": rss / (1 << 20),
    }


# ---------------------------------------------------------------------------- reconnect


@dataclass
class Recovering:
    since: int
    missed: int
    got: list[int] = field(default_factory=list)
    presence: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


async def recover(ws: framewire.WebSocket, client: Recovering) -> None:
    last = client.since + client.missed
    try:
        async for raw in ws:
            assert isinstance(raw, str)
            if raw.startswith(PRESENCE_PREFIX):
                client.presence += 1
            elif raw.startswith(CHAT_PREFIX):
                seq = json.loads(raw)["seq"]
                client.got.append(seq)
                if seq == last:
                    client.done.set()
    except framewire.ConnectionClosed:
        pass


async def reconnect(args: argparse.Namespace, server: ChatServer) -> dict[str, float]:
    async with framewire.connect(server.url("writer"), compression=COMPRESSION) as writer:
        for n in range(args.missed):
            await writer.send(json.dumps({"messageType": "chatMessage", "message": f"m{n}"}))
        seen = 0
        while seen < args.missed:  # all stored (the writer gets its own copies back)
            if (await writer.recv()).startswith(CHAT_PREFIX):  # type: ignore[union-attr]
                seen += 1
    since = 0
    names = [
        f"user{n:04d}" if args.distinct_names else f"user{n % 10}" for n in range(args.clients)
    ]
    clients = [Recovering(since, args.missed) for _ in names]
    started = time.perf_counter()
    sockets = await connect_all(
        [server.url(name, since) for name in names], concurrency=args.clients
    )
    connected = time.perf_counter() - started
    tasks = [asyncio.create_task(recover(ws, c)) for ws, c in zip(sockets, clients, strict=True)]
    await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in clients)), 300)
    recovered = time.perf_counter() - started
    for client in clients:
        if client.got != list(range(since + 1, since + args.missed + 1)):
            raise SystemExit(f"reconnect: a client got {client.got[:5]}...")
    rss = rss_bytes(server.process.pid)
    presence = sum(c.presence for c in clients)
    await asyncio.gather(*(ws.close() for ws in sockets))
    await asyncio.gather(*tasks)
    return {
        "seconds_until_all_recovered": recovered,
        "seconds_until_all_connected": connected,
        "messages_replayed": args.clients * args.missed,
        "presence_notices_received": presence,
        "server_rss_mib": rss / (1 << 20),
    }


# ---------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["throughput", "reconnect"])
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--receivers", type=int, default=100)
    parser.add_argument("--window", type=int, default=16, help="messages in flight per sender")
    parser.add_argument("--size", type=int, default=100, help="characters per message")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--missed", type=int, default=100)
    parser.add_argument(
        "--same-names",
        dest="distinct_names",
        action="store_false",
        help="reconnect as 10 names shared by all clients (presence changes 10 times only)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and clients")
    parser.add_argument("--uvloop", action="store_true", help="run the clients on uvloop")
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="clients negotiate permessage-deflate as browsers do (costs the clients' CPU)",
    )
    args = parser.parse_args()
    global COMPRESSION
    COMPRESSION = "deflate" if args.deflate else None

    limit = raise_open_file_limit(2 * args.clients + 1000)
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu = None if args.no_pin or len(cpus) < 2 else cpus[0]
    if server_cpu is not None:
        os.sched_setaffinity(0, {cpus[1]})
    print(
        f"# {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"RLIMIT_NOFILE {limit}, server on CPU {server_cpu}, clients on the other"
    )
    print("# " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]))
    runner = asyncio.run
    if args.uvloop:
        import uvloop

        runner = uvloop.run  # type: ignore[assignment]

    for name, scenario in (("throughput", throughput), ("reconnect", reconnect)):
        if args.only not in (None, name):
            continue
        with tempfile.TemporaryDirectory(prefix="chat-bench-") as directory:
            server = start_server(Path(directory) / "data", server_cpu)
            try:
                results = runner(scenario(args, server))
            finally:
                stop_server(server)
        print(f"{name}:")
        for key, value in results.items():
            print(
                f"  {key:34} {value:12.1f}"
                if isinstance(value, float)
                else f"  {key:34} {value:12}"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
