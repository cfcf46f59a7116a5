"""HTTP benchmark: framewire's App + HTTP/1.1 server against aiohttp.web, two rows.

Each server runs alone in its own process on the default asyncio event loop (no uvloop for
either) and serves both rows:

- ``hello``: ``GET /hello``, a 13-byte text body from a route handler.
- ``static``: ``GET /static/big.bin``, a 1 MiB file from each library's static-file handler,
  ``App.static()`` (framewire.http.StaticFiles) against ``app.router.add_static()`` (aiohttp's
  FileResponse): both stat the file, send ETag and Last-Modified, and send the body with
  sendfile. The file is made in benchmarks/build/http/ at start-up.

The load generator is ``wrk`` when installed (``apt-get install -y wrk``), else a small
keep-alive asyncio client in another process (which reads every body; wrk does too).

    python benchmarks/http/bench_http.py [--rows hello,static] [--duration 10]
                                         [--connections 50] [--client asyncio]

Prints requests/s of each run (MiB/s too for the file), and the ratio framewire/aiohttp of the
best run of each (the machine may be shared: runs alternate between the servers and the best
one is kept).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

BODY = b"Hello, world!"
STATIC_DIRECTORY = Path(__file__).resolve().parent.parent / "build" / "http"
STATIC_FILE_SIZE = 1024 * 1024
# Row -> (path, response body bytes).
# Server on the first allowed CPU, load generator on the second (none pinned on one CPU).
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
ROWS = {"hello": ("/hello", len(BODY)), "static": ("/static/big.bin", STATIC_FILE_SIZE)}


def make_static_file() -> None:
    """Write the static row's 1 MiB file (incompressible bytes) unless it is there already."""
    path = STATIC_DIRECTORY / "big.bin"
    if path.exists() and path.stat().st_size == STATIC_FILE_SIZE:
        return
    STATIC_DIRECTORY.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(17).randbytes(STATIC_FILE_SIZE))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_framewire(port: int) -> None:
    """Run framewire's App on 127.0.0.1:port until killed."""
    import framewire
    from framewire.http.app import App
    from framewire.http.messages import Request, Response

    app = App()

    @app.get("/hello")
    async def hello(request: Request) -> Response:
        return Response(headers=[("Content-Type", "text/plain")], body=BODY)

    app.static("/static", str(STATIC_DIRECTORY))

    async def main() -> None:
        # As a user serves an App: framewire.serve() also takes WebSocket upgrades on the port.
        async with framewire.serve(app, "127.0.0.1", port, backlog=1024) as server:
            await server.serve_forever()

    asyncio.run(main())


def serve_aiohttp(port: int) -> None:
    """Run an aiohttp.web application on 127.0.0.1:port until killed."""
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_static("/static", STATIC_DIRECTORY)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=1024)


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def check_response(port: int, path: str, length: int) -> None:
    """Fetch ``path`` once: a 200 with a body of ``length`` bytes, or RuntimeError."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        body = response.read()
        if response.status != 200 or len(body) != length:
            raise RuntimeError(f"GET {path}: {response.status}, {len(body)} bytes, not {length}")


def run_wrk(port: int, duration: float, connections: int, path: str) -> float:
    output = subprocess.run(
        [
            *(["taskset", "-c", str(CPUS[1])] if len(CPUS) > 1 else []),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(duration)}s",
            "--latency",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None or "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk reported a problem:\n{output}")
    return float(match.group(1))


async def _client_connection(port: int, deadline: float, counts: list[int], path: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    try:
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            counts[0] += 1
    finally:
        writer.close()


def _asyncio_client(port: int, duration: float, connections: int, path: str, queue: object) -> None:
    counts = [0]

    async def main() -> None:
        deadline = time.monotonic() + duration
        await asyncio.gather(
            *(_client_connection(port, deadline, counts, path) for _ in range(connections))
        )

    started = time.monotonic()
    asyncio.run(main())
    queue.put(counts[0] / (time.monotonic() - started))  # type: ignore[attr-defined]


def run_asyncio_client(port: int, duration: float, connections: int, path: str) -> float:
    queue: multiprocessing.Queue[float] = multiprocessing.Queue()
    process = multiprocessing.Process(
        target=_asyncio_client, args=(port, duration, connections, path, queue)
    )
    process.start()
    result = queue.get(timeout=duration + 30)
    process.join()
    return result


def _pinned(target: Callable[[int], None], port: int) -> None:
    """Run ``target(port)`` on the first allowed CPU, as benchmarks/run.py pins its servers."""
    if CPUS:
        os.sched_setaffinity(0, {CPUS[0]})
    target(port)


def measure(name: str, target: Callable[[int], None], args: argparse.Namespace, row: str) -> float:
    """Start one server, load ``row`` on it (after a 1 s warm-up), return requests/s."""
    path, length = ROWS[row]
    port = free_port()
    server = multiprocessing.Process(target=_pinned, args=(target, port), daemon=True)
    server.start()
    try:
        wait_listening(port)
        check_response(port, path, length)
        load = run_wrk if args.client == "wrk" else run_asyncio_client
        load(port, 1, args.connections, path)  # warm-up
        rate = load(port, args.duration, args.connections, path)
    finally:
        server.terminate()
        server.join(5)
    throughput = f"  {rate * length / 2**20:>8.1f} MiB/s" if length >= 2**20 else ""
    print(f"{row:<7} {name:<10} {rate:>10.0f} requests/s{throughput}", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per server")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs; best is kept")
    parser.add_argument(
        "--rows",
        default=",".join(ROWS),
        help="comma-separated rows to run (default: %(default)s)",
    )
    parser.add_argument(
        "--client",
        choices=["wrk", "asyncio"],
        default="wrk" if shutil.which("wrk") else "asyncio",
    )
    args = parser.parse_args()
    rows = [row.strip() for row in args.rows.split(",") if row.strip()]
    unknown = set(rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}")
    make_static_file()
    print(
        f"rows {', '.join(rows)}; {args.connections} keep-alive connections, {args.duration:g} s"
        f" each, client: {args.client}, Python {sys.version.split()[0]}"
    )
    rates: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):  # alternate, so a noisy neighbour hurts both alike
        for row in rows:
            for name, target in (("framewire", serve_framewire), ("aiohttp", serve_aiohttp)):
                rates.setdefault((row, name), []).append(measure(name, target, args, row))
    for row in rows:
        best_framewire, best_aiohttp = max(rates[row, "framewire"]), max(rates[row, "aiohttp"])
        print(
            f"{row}: best of {args.rounds}: framewire {best_framewire:.0f}, aiohttp"
            f" {best_aiohttp:.0f} requests/s; ratio framewire/aiohttp:"
            f" {best_framewire / best_aiohttp:.2f}"
        )


if __name__ == "__main__":
    main()
