"""The chat scaled out through Redis: framewire against python-socketio's AsyncRedisManager.

Two jobs, each run with both contenders in the same run, on one machine:

1. Fan-out: 3 server processes share one redis-server; 300 WebSocket clients spread evenly over
   them; 30 of them send at a fixed total rate; every message must reach all 300. Reported per
   rate: delivered messages per second, fan-out latency p50/p99 (send -> each receiver), and
   the CPU seconds the servers and Redis spent per 1,000 deliveries.
2. Resume: 1,000 clients on one of the 3 processes, a sender on another at 20 msg/s; kill -9
   the clients' process; each client reconnects at once to a survivor. Reported: seconds from
   the kill until every client is back and caught up (p50/p99/max), and messages a client
   missed for good. framewire reconnects with ``since=`` (replay); Socket.IO's Redis manager
   has no recovery, so its clients come back without what was sent meanwhile.

The contenders do different amounts of work and the tables say so: framewire stores every
message in a Redis stream (Lua: INCR + XADD + a dedupe key) and numbers it, then each process
reads it back with XREAD; Socket.IO PUBLISHes each event on one Redis pub/sub channel and stores
nothing. Both servers run under the same Python; both are driven by the same client code
(framewire.connect, speaking Engine.IO v4 / Socket.IO v5 framing by hand for Socket.IO), so the
client's cost is the same on both sides.

Usage (benchmarks/.venv made by benchmarks/setup_env.sh, plus the two extra packages):
    benchmarks/.venv/bin/pip install redis python-socketio
    benchmarks/.venv/bin/python benchmarks/chat_redis.py                  # about 6 minutes
    benchmarks/.venv/bin/python benchmarks/chat_redis.py --rates 50 --resume-clients 200 --quick

redis-server comes from Debian's package (apt-get install redis-server); it runs on a free
port in a temporary directory and is stopped by its PID, like every server started here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import json
import os
import platform
import re
import resource
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.chat.redis_server import RedisServer, free_port  # noqa: E402

CONTENDERS = ("framewire", "socketio")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------- the Socket.IO server


def serve_socketio(port: int, redis_url: str) -> None:
    """Run one python-socketio server (aiohttp) that re-emits every "chat" event to all."""
    import socketio
    from aiohttp import web

    manager = socketio.AsyncRedisManager(redis_url)
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins="*",
        logger=False,
        engineio_logger=False,
    )
    app = web.Application()
    sio.attach(app)

    @sio.on("chat")  # type: ignore[misc]
    async def chat(sid: str, data: Any) -> None:
        await sio.emit("chat", data)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
        print(f"socketio serving http://127.0.0.1:{port}/", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# ---------------------------------------------------------------------- server processes


class ServerProcess:
    """One contender's server process on 127.0.0.1, stopped by its PID."""

    def __init__(self, kind: str, redis_url: str, data_dir: Path) -> None:
        self.kind = kind
        if kind == "framewire":
            command = [
                sys.executable, "-m", "framewire", "chat", "--host", "127.0.0.1",
                "--port", "0", "--data-dir", str(data_dir), "--redis", redis_url,
                "--message-rate", "100000", "--message-burst", "100000",
            ]  # fmt: skip
        else:
            command = [
                sys.executable, __file__, "--serve-socketio", str(free_port()), redis_url,
            ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        self.port = self._wait_serving()

    def _wait_serving(self, timeout: float = 30) -> int:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        output = b""
        while not (found := re.search(rb"serving http://127\.0\.0\.1:(\d+)/", output)):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} server did not start: {output!r}")
            ready, _, _ = select.select([self.process.stdout], [], [], remaining)
            if ready:
                output += os.read(self.process.stdout.fileno(), 4096)
        return int(found.group(1))

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (/proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# ---------------------------------------------------------------------- the clients


@dataclass
class Client:
    """One chat client of either contender; records what it receives."""

    kind: str
    name: str
    ws: Any = None
    port: int = 0
    last_seq: int = 0  # framewire: the newest seq received
    numbers: set[int] = field(default_factory=set)  # sender counters received
    latencies: list[int] | None = None  # ns, appended while measuring
    gaps: int = 0
    doubles: int = 0
    last_received: int = 0  # monotonic ns of the newest chat message
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None
    pending: set[asyncio.Future[None]] = field(default_factory=set)

    async def connect(self, port: int, resume: bool = False) -> None:
        if self.kind == "framewire":
            since = f"&since={self.last_seq}" if resume else ""
            url = f"ws://127.0.0.1:{port}/websocket?username={self.name}{since}"
            self.ws = await framewire_connect(url)
        else:
            url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
            self.ws = await framewire_connect(url)
            opened = await self.ws.recv()  # Engine.IO "0{...}" open packet
            assert opened.startswith("0"), opened
            await self.ws.send("40")  # Socket.IO CONNECT to "/"
            while not (await self.ws.recv()).startswith("40"):
                pass
        self.port = port
        self.closed.clear()
        self.reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                self._on(raw, ws)
        except Exception:  # the server was killed: any close counts
            pass
        finally:
            self.closed.set()

    def _on(self, raw: str, ws: Any) -> None:
        now = time.monotonic_ns()
        if self.kind == "framewire":
            if '"chatMessage"' not in raw:
                return
            message = json.loads(raw)
            seq = message["seq"]
            if seq <= self.last_seq:
                self.doubles += 1
                return
            if self.last_seq and seq != self.last_seq + 1:
                self.gaps += 1
            self.last_seq = seq
            number, sent = (int(part) for part in message["message"].split())
        else:
            if raw == "2":  # Engine.IO ping
                pong = asyncio.ensure_future(ws.send("3"))
                self.pending.add(pong)
                pong.add_done_callback(self.pending.discard)
                return
            if not raw.startswith("42"):
                return
            _, data = json.loads(raw[2:])
            number, sent = data["n"], data["t"]
        if number in self.numbers:
            self.doubles += 1
        self.numbers.add(number)
        self.last_received = now
        if self.latencies is not None:
            self.latencies.append(now - sent)

    async def send(self, number: int) -> None:
        sent = time.monotonic_ns()
        if self.kind == "framewire":
            text = json.dumps(
                {
                    "messageType": "chatMessage",
                    "message": f"{number} {sent}",
                    "clientId": f"{self.name}-{number}",
                }
            )
        else:
            text = "42" + json.dumps(["chat", {"n": number, "t": sent}])
        with contextlib.suppress(Exception):
            await self.ws.send(text)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.reader, 5)


async def framewire_connect(url: str) -> Any:
    import framewire

    return await framewire.connect(url, compression=None, open_timeout=30)


async def connect_many(clients: list[Client], ports: list[int], batch: int = 100) -> None:
    for start in range(0, len(clients), batch):
        await asyncio.gather(
            *(
                client.connect(ports[(start + n) % len(ports)])
                for n, client in enumerate(clients[start : start + batch])
            )
        )


# ---------------------------------------------------------------------- the two jobs


async def fan_out(
    kind: str, servers: list[ServerProcess], redis_pid: int, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Job 1: every rate of ``args.rates`` for ``args.duration`` seconds; one row per rate."""
    ports = [server.port for server in servers]
    clients = [Client(kind, f"c{n}") for n in range(args.clients)]
    await connect_many(clients, ports)
    await asyncio.sleep(3.0)  # let the connection storm's presence updates settle
    rows = []
    numbers = itertools.count(1)
    for rate in args.rates:
        rows.append(await one_rate(kind, clients, servers, redis_pid, rate, numbers, args))
        print_row(rows[-1])
        await asyncio.sleep(0.5)
    await asyncio.gather(*(client.close() for client in clients))
    return rows


async def send_at_rate(
    sender: Client, numbers: Iterator[int], offset: float, interval: float, until: float
) -> list[int]:
    """Send a numbered message every ``interval`` seconds from ``offset`` until ``until``."""
    sent = []
    next_at = time.monotonic() + offset
    while next_at < until:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        number = next(numbers)
        await sender.send(number)
        sent.append(number)
        next_at += interval
    return sent


async def one_rate(
    kind: str,
    clients: list[Client],
    servers: list[ServerProcess],
    redis_pid: int,
    rate: float,
    numbers: Iterator[int],
    args: argparse.Namespace,
) -> dict[str, Any]:
    senders = clients[: args.senders]
    interval = len(senders) / rate  # each sender's pause between two sends
    for client in clients:
        client.latencies = []
    cpu_before = sum(s.cpu_seconds() for s in servers) + cpu_seconds(redis_pid)
    client_cpu_before = time.process_time()
    started = time.monotonic()
    until = started + args.duration
    sent_lists = await asyncio.gather(
        *(
            send_at_rate(sender, numbers, n * interval / len(senders), interval, until)
            for n, sender in enumerate(senders)
        )
    )
    sent = {number for each in sent_lists for number in each}
    expected = len(sent) * len(clients)

    def delivered() -> int:
        return sum(len(sent & client.numbers) for client in clients)

    deadline = time.monotonic() + 10
    while delivered() < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    # Until the last delivery, not until this loop noticed it.
    elapsed = max(client.last_received for client in clients) / 1e9 - started
    cpu = sum(s.cpu_seconds() for s in servers) + cpu_seconds(redis_pid) - cpu_before
    latencies = sorted(ns for client in clients for ns in client.latencies or [])
    got = delivered()
    for client in clients:
        client.latencies = None
    return {
        "contender": kind,
        "rate": rate,
        "sent": len(sent),
        "expected": expected,
        "delivered": got,
        "offered_per_s": rate * len(clients),
        "delivered_per_s": got / elapsed,
        "p50_ms": percentile(latencies, 50) / 1e6,
        "p99_ms": percentile(latencies, 99) / 1e6,
        "server_cpu_per_1000": 1000 * cpu / max(1, got),
        "client_cpu_share": (time.process_time() - client_cpu_before) / elapsed,
    }


async def resume(
    kind: str, servers: list[ServerProcess], args: argparse.Namespace
) -> dict[str, Any]:
    victim, *survivors = servers
    clients = [Client(kind, f"r{n}") for n in range(args.resume_clients)]
    await connect_many(clients, [victim.port])
    sender = Client(kind, "sender")
    await sender.connect(survivors[0].port)
    counter = 0
    stop = asyncio.Event()

    async def send_forever() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1
            await sender.send(counter)
            await asyncio.sleep(0.05)

    sending = asyncio.create_task(send_forever())
    await asyncio.sleep(1.5)
    resumed_at: dict[str, float] = {}
    reconnected_at: dict[str, float] = {}

    async def come_back(client: Client, index: int) -> None:
        await client.closed.wait()
        await client.connect(survivors[index % len(survivors)].port, resume=True)
        reconnected_at[client.name] = time.monotonic()
        target = counter  # caught up when it holds the newest message sent when it returned
        while max(client.numbers, default=0) < target:
            await asyncio.sleep(0.01)
        resumed_at[client.name] = time.monotonic()

    returning = [asyncio.create_task(come_back(c, n)) for n, c in enumerate(clients)]
    await asyncio.sleep(0.2)
    killed_at = time.monotonic()
    victim.kill()
    await asyncio.wait_for(asyncio.gather(*returning), 120)
    await asyncio.sleep(1.0)
    stop.set()
    await sending
    await asyncio.sleep(0.5)
    first = min(min(c.numbers) for c in clients)
    last_seen = min(max(c.numbers) for c in clients)
    missed = [
        sum(1 for n in range(first, last_seen + 1) if n not in client.numbers) for client in clients
    ]
    times = sorted(resumed_at[c.name] - killed_at for c in clients)
    reconnects = sorted(reconnected_at[c.name] - killed_at for c in clients)
    row = {
        "contender": kind,
        "clients": len(clients),
        "reconnected_p50_s": percentile(reconnects, 50),
        "reconnected_max_s": reconnects[-1],
        "p50_s": percentile(times, 50),
        "p99_s": percentile(times, 99),
        "max_s": times[-1],
        "clients_missing_messages": sum(1 for m in missed if m),
        "messages_missed_max": max(missed),
        "doubles": sum(c.doubles for c in clients),
    }
    print_row(row)
    await asyncio.gather(*(c.close() for c in [*clients, sender]))
    return row


def percentile(values: list[float] | list[int], pct: float) -> float:
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(pct / 100 * (len(values) - 1))))
    return float(values[index])


def print_row(row: dict[str, Any]) -> None:
    shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
    print("  " + json.dumps(shown), flush=True)


# ---------------------------------------------------------------------- the run


def run_contender(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run both jobs for one contender on a fresh redis-server and fresh processes."""
    redis_server = RedisServer(workdir / f"redis-{kind}", appendfsync="everysec")
    redis_server.start()
    servers: list[ServerProcess] = []
    load_before = os.getloadavg()[0]
    try:
        assert redis_server.process is not None
        servers = [ServerProcess(kind, redis_server.url, workdir / kind) for _ in range(3)]
        print(f"{kind}: fan-out, {args.clients} clients over 3 processes", flush=True)
        rows = asyncio.run(fan_out(kind, servers, redis_server.process.pid, args))
        result: dict[str, Any] = {"fan_out": rows}
        if args.resume_clients:
            print(f"{kind}: resume of {args.resume_clients} clients after kill -9", flush=True)
            result["resume"] = asyncio.run(resume(kind, servers, args))
        result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        return result
    finally:
        for server in servers:
            server.stop()
        redis_server.stop()


def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per contender: the median of every number over the rounds, row by row."""

    def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for key, value in rows[0].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                merged[key] = statistics.median(row[key] for row in rows)
            else:
                merged[key] = value
        return merged

    summary: dict[str, Any] = {}
    for kind in rounds[0]:
        runs = [each[kind] for each in rounds]
        summary[kind] = {
            "fan_out": [
                median_row(list(rows)) for rows in zip(*(r["fan_out"] for r in runs), strict=True)
            ],
            "load_average": [r["load_average"] for r in runs],
        }
        if "resume" in runs[0]:
            summary[kind]["resume"] = median_row([r["resume"] for r in runs])
    return summary


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    redis_version = (
        subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False)
        .stdout.split(" v=")[-1]
        .split()[0]
    )
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, redis-server {redis_version}"
    )


def versions() -> dict[str, str]:
    import importlib.metadata as metadata

    found = {}
    for name in ("framewire", "python-socketio", "python-engineio", "aiohttp", "redis"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-socketio", nargs=2, metavar=("PORT", "REDIS_URL"))
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--senders", type=int, default=30)
    parser.add_argument("--rates", default="50,100,200", help="total messages/s, comma-separated")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per rate")
    parser.add_argument("--resume-clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s per rate")
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    if args.serve_socketio:
        serve_socketio(int(args.serve_socketio[0]), args.serve_socketio[1])
        return
    args.rates = [float(rate) for rate in args.rates.split(",")]
    if args.quick:
        args.duration, args.rounds = 3.0, 1
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("serve_socketio", "output")},
    }
    print(f"{results['date']}  {results['machine']}\n{results['versions']}", flush=True)
    contenders = args.contenders.split(",")
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="chat-redis-bench-") as workdir:
        for number in range(args.rounds):
            # Rotate the order so that neither contender always runs on a warmer machine.
            order = contenders[number % len(contenders) :] + contenders[: number % len(contenders)]
            print(f"round {number + 1} of {args.rounds}: {', '.join(order)}", flush=True)
            rounds.append(
                {kind: run_contender(kind, args, Path(workdir) / str(number)) for kind in order}
            )
    results["rounds"] = rounds
    results["median"] = medians(rounds)
    print("median over rounds:")
    for summary in results["median"].values():
        for row in summary["fan_out"]:
            print_row(row)
        if "resume" in summary:
            print_row(summary["resume"])
    if args.output:
        args.output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
