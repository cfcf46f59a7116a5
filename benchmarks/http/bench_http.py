"""Small-GET benchmark: framewire's App + HTTP/1.1 server against aiohttp.web.

Each server runs alone in its own process on the default asyncio event loop (no uvloop for
either), answering ``GET /hello`` with a 13-byte text body. The load generator is ``wrk`` when
installed (``apt-get install -y wrk``), else a small keep-alive asyncio client in another process.

    python benchmarks/http/bench_http.py [--duration 10] [--connections 50] [--client asyncio]

Prints requests/s of each run, and the ratio framewire/aiohttp of the best run of each (the
machine may be shared: runs alternate between the servers and the best one is kept).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable

BODY = b"Hello, world!"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_framewire(port: int) -> None:
    """Run framewire's App on 127.0.0.1:port until killed."""
    from framewire.aio.http1.protocol import HTTP1ServerProtocol
    from framewire.http.app import App
    from framewire.http.messages import Request, Response

    app = App()

    @app.get("/hello")
    async def hello(request: Request) -> Response:
        return Response(headers=[("Content-Type", "text/plain")], body=BODY)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: HTTP1ServerProtocol(app.handle_http, None), "127.0.0.1", port, backlog=1024
        )
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def serve_aiohttp(port: int) -> None:
    """Run an aiohttp.web application on 127.0.0.1:port until killed."""
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/hello", hello)
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


def run_wrk(port: int, duration: float, connections: int) -> float:
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(duration)}s",
            "--latency",
            f"http://127.0.0.1:{port}/hello",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None or "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk reported a problem:\n{output}")
    return float(match.group(1))


async def _client_connection(port: int, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET /hello HTTP/1.1\r\nHost: bench\r\n\r\n"
    try:
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            counts[0] += 1
    finally:
        writer.close()


def _asyncio_client(port: int, duration: float, connections: int, queue: object) -> None:
    counts = [0]

    async def main() -> None:
        deadline = time.monotonic() + duration
        await asyncio.gather(
            *(_client_connection(port, deadline, counts) for _ in range(connections))
        )

    started = time.monotonic()
    asyncio.run(main())
    queue.put(counts[0] / (time.monotonic() - started))  # type: ignore[attr-defined]


def run_asyncio_client(port: int, duration: float, connections: int) -> float:
    queue: multiprocessing.Queue[float] = multiprocessing.Queue()
    process = multiprocessing.Process(
        target=_asyncio_client, args=(port, duration, connections, queue)
    )
    process.start()
    result = queue.get(timeout=duration + 30)
    process.join()
    return result


def measure(name: str, target: Callable[[int], None], args: argparse.Namespace) -> float:
    port = free_port()
    server = multiprocessing.Process(target=target, args=(port,), daemon=True)
    server.start()
    try:
        wait_listening(port)
        load = run_wrk if args.client == "wrk" else run_asyncio_client
        load(port, 1, args.connections)  # warm-up
        rate = load(port, args.duration, args.connections)
    finally:
        server.terminate()
        server.join(5)
    print(f"{name:<10} {rate:>10.0f} requests/s", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per server")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs; best is kept")
    parser.add_argument(
        "--client",
        choices=["wrk", "asyncio"],
        default="wrk" if shutil.which("wrk") else "asyncio",
    )
    args = parser.parse_args()
    print(
        f"GET /hello, {args.connections} keep-alive connections, {args.duration:g} s each, "
        f"client: {args.client}, Python {sys.version.split()[0]}"
    )
    framewire_rates: list[float] = []
    aiohttp_rates: list[float] = []
    for _ in range(args.rounds):  # alternate, so a noisy neighbour hurts both alike
        framewire_rates.append(measure("framewire", serve_framewire, args))
        aiohttp_rates.append(measure("aiohttp", serve_aiohttp, args))
    best_framewire, best_aiohttp = max(framewire_rates), max(aiohttp_rates)
    print(f"best of {args.rounds}: framewire {best_framewire:.0f}, aiohttp {best_aiohttp:.0f}")
    print(f"ratio framewire/aiohttp: {best_framewire / best_aiohttp:.2f}")


if __name__ == "__main__":
    main()
