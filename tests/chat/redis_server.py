"""A real redis-server for the tests: installed with apt-get when missing, started on a free
127.0.0.1 port in a temporary directory (appendonly, so a restart keeps the data), stopped by
its PID.

    server = RedisServer(tmp_dir)
    server.start()          # waits until it answers PING
    server.url              # redis://127.0.0.1:PORT/0
    server.kill()           # SIGKILL, as a crash
    server.start()          # same port, same data directory
    server.stop()           # SIGTERM, then SIGKILL after 10 s
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from tests.waiting import wait_until_sync

__all__ = ["RedisServer", "TcpProxy", "free_port", "redis_server_binary"]

_install_lock = threading.Lock()


def redis_server_binary() -> str:
    """Return the path of redis-server, installing Debian's package first when missing.

    Raises:
        RuntimeError: it is missing and could not be installed.
    """
    with _install_lock:
        found = shutil.which("redis-server")
        if found:
            return found
        if os.geteuid() != 0:
            raise RuntimeError("redis-server is missing: apt-get install redis-server")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "redis-server"],
            check=True,
            env=env,
            timeout=600,
            stdout=subprocess.DEVNULL,
        )
        found = shutil.which("redis-server")
        if not found:
            raise RuntimeError("apt-get installed redis-server but it is not on PATH")
        return found


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process under the test's control.

    Args:
        directory: its working directory (AOF and log live there).
        appendfsync: "always" (every acknowledged write survives a kill -9) or "everysec".
    """

    def __init__(self, directory: Path, *, appendfsync: str = "always") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        """Start it (again, on the same port and data) and wait until it answers PING."""
        if self.process is not None and self.process.poll() is None:
            return
        command = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            process = self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
            try:
                # Until it answers, or exits (the port may still be held by the previous run).
                wait_until_sync(
                    lambda process=process: process.poll() is not None or self._answers_ping(),
                    max(0.0, deadline - time.monotonic()),
                    "redis-server to answer PING",
                )
                if process.poll() is None:
                    return
                self._end(signal.SIGKILL)
                # Try again once the previous run let go of the port.
                wait_until_sync(
                    self._port_is_free,
                    max(0.0, deadline - time.monotonic()),
                    f"port {self.port} to be free",
                )
            except AssertionError as exc:
                self._end(signal.SIGKILL)
                raise RuntimeError(
                    f"redis-server did not start: {exc}; see {self.directory}/redis.log"
                ) from None

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _port_is_free(self) -> bool:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as redis-server
            try:
                sock.bind(("127.0.0.1", self.port))
            except OSError:
                return False
            return True

    def stop(self) -> None:
        """SIGTERM (Redis writes its AOF and exits), SIGKILL after 10 s."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: a crash."""
        self._end(signal.SIGKILL)

    def _end(self, signum: int) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signum)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class TcpProxy:
    """An asyncio TCP proxy from a free 127.0.0.1 port to ``target_port``, to cut a client off
    Redis without touching Redis: ``stop()`` drops every connection and refuses new ones,
    ``freeze()`` keeps them open but forwards nothing (a silent network partition),
    ``start()`` / ``thaw()`` undo them. Runs on the caller's event loop.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.frozen = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thawed = asyncio.Event()
        self._thawed.set()

    @property
    def url(self) -> str:
        """The redis:// URL that goes through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Accept connections (again) on the same port."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._serve, "127.0.0.1", self.port, reuse_address=True
            )

    async def stop(self) -> None:
        """Close the listener and every proxied connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    def freeze(self) -> None:
        """Stop forwarding bytes, leaving connections open."""
        self._thawed.clear()

    def thaw(self) -> None:
        """Forward bytes again."""
        self._thawed.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer),
            self._pipe(upstream_reader, writer),
            return_exceptions=True,
        )
        for each in (writer, upstream_writer):
            self._writers.discard(each)
            each.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                writer.transport.abort()
                return
            await self._thawed.wait()
            writer.write(data)
            await writer.drain()
