"""Helpers for the chat's real-browser tests: a ``framewire chat`` subprocess, one chat page per
browser context (with its console errors), and a PNG writer.

The server runs as a real subprocess (``python -m framewire chat``) so the tests see exactly what
a user sees, and so a test can SIGKILL it and start it again on the same port and data directory.
Its stdout goes to a file, polled for the "serving" line: a pipe nobody reads could fill up.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.waiting import wait_until_sync

if TYPE_CHECKING:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Page,
        ViewportSize,
        WebSocket,
    )

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 10_000  # the default for every playwright wait
SERVER_START_TIMEOUT = 20.0  # seconds
SERVER_STOP_TIMEOUT = 5.0  # seconds before SIGTERM becomes SIGKILL
SERVING_LINE = re.compile(r"framewire chat serving (http://\S+)")

# Chromium logs a refused connection, and any HTTP error answer, as a console error. While a test
# has the server down on purpose (or asks for a 413), those are expected; anything else is a bug.
SERVER_DOWN_ERRORS = (
    re.compile(r"^WebSocket connection to 'ws://[^']+' failed"),
    re.compile(r"^Failed to load resource: net::ERR_CONNECTION_(REFUSED|RESET|CLOSED)"),
)
TOO_LARGE_ERRORS = (re.compile(r"^Failed to load resource: .* status of 413 "),)


@dataclass
class ChatServer:
    """One ``framewire chat`` subprocess on 127.0.0.1, restartable on the same port."""

    data_dir: Path
    log_dir: Path
    extra_args: tuple[str, ...] = ()
    port: int = 0
    url: str = ""
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> ChatServer:
        """Start the server (on ``self.port``, 0 the first time) and wait for its URL."""
        assert self.process is None, "already running"
        self.starts += 1
        stdout_path = self.log_dir / f"server-{self.starts}.out"
        stderr_path = self.log_dir / f"server-{self.starts}.err"
        command = [
            sys.executable,
            "-m",
            "framewire",
            "chat",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        process = self.process

        def started_or_exited() -> bool:
            serving = SERVING_LINE.search(stdout_path.read_text(errors="replace"))
            return serving is not None or process.poll() is not None

        with contextlib.suppress(AssertionError):  # the RuntimeError below says more
            wait_until_sync(started_or_exited, SERVER_START_TIMEOUT, "framewire chat to start")
        match = SERVING_LINE.search(stdout_path.read_text(errors="replace"))
        if match:
            self.url = match.group(1)
            self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])
            return self
        self.stop()
        raise RuntimeError(
            f"framewire chat did not start within {SERVER_START_TIMEOUT} s:\n"
            + stderr_path.read_text(errors="replace")[-3000:]
        )

    def stop(self) -> None:
        """SIGTERM (the server closes its clients with 1001), then SIGKILL after a timeout."""
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(SERVER_STOP_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL: the server vanishes without closing anything, as in a crash."""
        assert self.process is not None, "not running"
        process, self.process = self.process, None
        process.send_signal(signal.SIGKILL)
        process.wait(SERVER_STOP_TIMEOUT)

    @property
    def ws_url(self) -> str:
        """The chat's WebSocket URL, without query."""
        return self.url.replace("http://", "ws://", 1) + "websocket"


@dataclass
class ChatPage:
    """The chat page in its own browser context (its own localStorage: one person)."""

    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    socket_urls: list[str] = field(default_factory=list)  # every WebSocket the page opened
    received: list[dict[str, Any]] = field(default_factory=list)  # non-chat frames it got

    @classmethod
    def open(
        cls,
        browser: Browser,
        url: str,
        name: str | None,
        viewport: ViewportSize | None = None,
    ) -> ChatPage:
        """Open the page; when ``name`` is given, pick it and wait until connected."""
        context = browser.new_context(viewport=viewport or {"width": 1000, "height": 700})
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        chat = cls(context, page)
        page.on("console", chat._on_console)
        page.on("pageerror", lambda error: chat.errors.append(f"pageerror: {error}"))
        page.on("websocket", chat._on_websocket)
        page.goto(url, wait_until="load")
        if name is not None:
            chat.join(name)
        return chat

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _on_websocket(self, socket: WebSocket) -> None:
        self.socket_urls.append(socket.url)
        socket.on("framereceived", self._on_frame)

    def _on_frame(self, payload: str | bytes) -> None:
        # Chat messages are checked in the DOM; keep the rest (errors, resync, presence).
        frame = json.loads(payload)
        if frame.get("messageType") != "chatMessage":
            self.received.append(frame)

    def received_types(self) -> list[str]:
        """The messageType (and code, for errors) of every non-chat frame received."""
        return [
            f"{frame['messageType']}:{frame['code']}" if "code" in frame else frame["messageType"]
            for frame in self.received
        ]

    def join(self, name: str) -> None:
        """Type a name in the name dialog and wait until the page is connected."""
        self.page.fill("#name-input", name)
        self.page.click("#name-submit")
        self.wait_connected()

    def wait_connected(self, timeout_ms: int = TIMEOUT_MS) -> None:
        """Wait until the connection state says connected."""
        self.page.wait_for_selector('#status[data-state="connected"]', timeout=timeout_ms)

    def send(self, text: str) -> None:
        """Type text in the composer and press Enter."""
        self.page.fill("#message-input", text)
        self.page.press("#message-input", "Enter")

    def messages(self) -> list[dict[str, Any]]:
        """Return every shown (stored) message: seq, author and text, in page order."""
        result: list[dict[str, Any]] = self.page.eval_on_selector_all(
            "#messages > li[data-seq]",
            """items => items.map(item => ({
                seq: Number(item.dataset.seq),
                author: item.querySelector('.author').textContent,
                text: item.querySelector('.text')?.textContent ?? '',
                mine: item.classList.contains('mine'),
            }))""",
        )
        return result

    def wait_for_message(self, text: str, author: str | None = None) -> None:
        """Wait until a stored message with exactly this text (and author) is shown."""
        self.page.wait_for_function(
            """([text, author]) => [...document.querySelectorAll('#messages > li[data-seq]')]
                .some((item) => item.querySelector('.text')?.textContent === text
                    && (author === null
                        || item.querySelector('.author').textContent === author))""",
            arg=[text, author],
        )

    def wait_for_seq_count(self, count: int, timeout_ms: int = TIMEOUT_MS) -> None:
        """Wait until exactly ``count`` stored messages are shown."""
        self.page.wait_for_function(
            "count => document.querySelectorAll('#messages > li[data-seq]').length === count",
            arg=count,
            timeout=timeout_ms,
        )

    def unexpected_errors(self, allowed: Iterable[re.Pattern[str]] = ()) -> list[str]:
        """Console errors and uncaught exceptions, less those matching an allowed pattern."""
        patterns = list(allowed)
        return [error for error in self.errors if not any(p.search(error) for p in patterns)]

    def close(self) -> None:
        """Close the browser context (and so the page and its WebSocket)."""
        self.context.close()


def assert_no_console_errors(
    pages: Iterable[ChatPage], allowed: Iterable[re.Pattern[str]] = ()
) -> None:
    """Fail listing every console error or page exception of the given pages, except those
    matching an ``allowed`` pattern (SERVER_DOWN_ERRORS, TOO_LARGE_ERRORS)."""
    patterns = list(allowed)
    errors = [error for chat in pages for error in chat.unexpected_errors(patterns)]
    assert errors == [], "console errors:\n" + "\n".join(errors)


def png(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    """Return an RGB PNG of the given size; ``pixel(x, y)`` gives each pixel's colour."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type 0: the row as is
        for x in range(width):
            rows.extend(pixel(x, y))
    return png_from_rows(width, height, bytes(rows))


def png_from_rows(width: int, height: int, rows: bytes, level: int = 6) -> bytes:
    """Return an RGB PNG from raw scanlines (each a 0 filter byte then width*3 bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, level))
        + chunk(b"IEND", b"")
    )


def noisy_png(width: int, height: int, seed: int = 1) -> bytes:
    """Return a PNG of deterministic noise: it barely compresses, so it is large on the wire."""
    row_bytes = width * 3
    noise = bytearray()
    state = seed
    # A xorshift generator filling 8 bytes at a time: fast enough for a few MB, and repeatable.
    while len(noise) < row_bytes * height:
        state ^= (state << 13) & 0xFFFFFFFFFFFFFFFF
        state ^= state >> 7
        state ^= (state << 17) & 0xFFFFFFFFFFFFFFFF
        noise.extend(state.to_bytes(8, "little"))
    rows = b"".join(
        b"\x00" + bytes(noise[y * row_bytes : (y + 1) * row_bytes]) for y in range(height)
    )
    return png_from_rows(width, height, rows, level=1)


def send_with_websocket(server: ChatServer, username: str, texts: Iterable[str]) -> None:
    """Send messages as another client (a plain WebSocket, no browser); return once each one
    came back stored (the server echoes it with our clientId)."""
    from websockets.sync.client import connect

    with connect(f"{server.ws_url}?username={username}", open_timeout=5, close_timeout=2) as ws:
        for index, text in enumerate(texts):
            client_id = f"{username}-{index}-{time.monotonic_ns()}"
            ws.send(
                json.dumps({"messageType": "chatMessage", "message": text, "clientId": client_id})
            )
            deadline = time.monotonic() + TIMEOUT_MS / 1000
            while True:
                reply = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                if reply.get("messageType") == "error":
                    raise AssertionError(f"server refused {text!r}: {reply}")
                if reply.get("messageType") == "chatMessage" and reply.get("clientId") == client_id:
                    break
