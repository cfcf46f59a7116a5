"""Server memory per idle WebSocket connection, with and without permessage-deflate.

    python benchmarks/memory/idle_memory.py [--connections 2000]   (needs websockets installed)

For framewire and websockets, each with compression off and on (negotiated by the client's
offer "permessage-deflate; client_max_window_bits", as browsers send), it starts a fresh echo
server process, opens N connections, and reads the server's RSS (VmRSS) before and after:
  - idle: right after the handshakes;
  - after one message: each client sent one 300-byte JSON message and got the echo (so the
    server's compressor has been used once on every connection).
Prints KiB per connection for each, in one table. Run from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import struct
import subprocess
import sys
import time
from pathlib import Path

SERVER = r"""
import asyncio, sys
contender, compression, port = sys.argv[1], sys.argv[2] == "on", int(sys.argv[3])
async def echo(ws):
    async for message in ws:
        await ws.send(message)
async def main():
    if contender == "framewire":
        import framewire
        server = framewire.serve(echo, "127.0.0.1", port,
            compression="deflate" if compression else None, ping_interval=None)
    else:
        from websockets.asyncio.server import serve
        server = serve(echo, "127.0.0.1", port, compression="deflate" if compression else None,
                       ping_interval=None)
    async with server:
        print("ready", flush=True)
        await asyncio.Future()
asyncio.run(main())
"""

MESSAGE = (b'{"type":"message","room":"general","user":"ada","text":"' + b"hello " * 40)[
    :296
] + b'"}\n'


def rss_kib(pid: int) -> int:
    """Return a process's resident set size in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def open_connection(
    port: int, compression: bool
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    offer = (
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        if compression
        else ""
    )
    writer.write(
        (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"{offer}\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    assert (b"permessage-deflate" in head) == compression, head
    return reader, writer


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    mask = os.urandom(4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(MESSAGE))
    writer.write(struct.pack("!BBH", 0x81, 0x80 | 126, len(MESSAGE)) + mask + payload)
    header = await reader.readexactly(2)
    length = header[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    await reader.readexactly(length)


async def measure(contender: str, compression: bool, connections: int) -> tuple[float, float]:
    port = 20000 + (os.getpid() % 20000)
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, contender, "on" if compression else "off", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        warm = [await open_connection(port, compression) for _ in range(50)]
        await asyncio.gather(*(exchange(r, w) for r, w in warm))
        await asyncio.sleep(0.3)
        before = rss_kib(process.pid)
        streams = []
        for start in range(0, connections, 100):
            streams += await asyncio.gather(
                *(open_connection(port, compression) for _ in range(min(100, connections - start)))
            )
        await asyncio.sleep(0.5)
        idle = (rss_kib(process.pid) - before) / connections
        for start in range(0, connections, 200):
            await asyncio.gather(*(exchange(r, w) for r, w in streams[start : start + 200]))
        await asyncio.sleep(0.5)
        after_message = (rss_kib(process.pid) - before) / connections
        for _, writer in streams + warm:
            writer.close()
        return idle, after_message
    finally:
        process.terminate()
        process.wait(timeout=10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    options = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    print(f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {options.connections} connections")
    print(f"{'server':<12} {'compression':<12} {'idle KiB/conn':>14} {'after 1 msg KiB/conn':>22}")
    for contender in ("framewire", "websockets"):
        for compression in (False, True):
            idle, after = await measure(contender, compression, options.connections)
            label = "negotiated" if compression else "off"
            print(f"{contender:<12} {label:<12} {idle:>14.1f} {after:>22.1f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
