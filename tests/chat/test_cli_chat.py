"""`framewire chat`: its options, the URL it prints, what it keeps across restarts, and how it
stops on SIGINT/SIGTERM. Most tests run the real command in a subprocess."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import framewire
from framewire.chat.limits import ChatLimits
from framewire.cli import _parser, chat_config
from tests.chat.conftest import (
    MULTIPART_TYPE,
    FilePart,
    StartChatProcess,
    chat_ws_url,
    full_history,
    http_request,
    multipart,
    post_upload,
    recv_kind,
    recv_presence,
    send_chat,
    start_chat_process,
    stop_chat_process_by_pid,
)


def run_framewire(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "framewire", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
    )


# ---------------------------------------------------------------------------- options


def test_help_lists_the_options() -> None:
    result = run_framewire("chat", "--help")
    assert result.returncode == 0
    for option in ("--host", "--port", "--data-dir", "--max-upload", "--redis", "--allow-origin"):
        assert option in result.stdout
    for name in ChatLimits.names():
        assert "--" + name.replace("_", "-") in result.stdout
    text = re.sub(r"\s+", " ", result.stdout).replace("- ", "-")  # undo argparse's wrapping
    assert "(./framewire-data)" in text
    assert "(default 536870912)" in text
    # Each limit's help is its description from ChatLimits' docstring (3.13 dedents those).
    assert "longest user name in characters; longer names are truncated. (default 32)" in text
    assert "largest uploaded file, in bytes (413 past it). (default 536870912)" in text


def parse(*argv: str) -> object:
    return chat_config(_parser().parse_args(["chat", *argv]))


def test_defaults() -> None:
    config = parse()
    assert (config.host, config.port) == ("127.0.0.1", 8080)  # type: ignore[attr-defined]
    assert config.data_dir == Path("framewire-data")  # type: ignore[attr-defined]
    assert config.redis_url is None  # type: ignore[attr-defined]
    assert config.allow_origins == ()  # type: ignore[attr-defined]
    assert config.limits == ChatLimits()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "size"),
    [("4096", 4096), ("64K", 64 << 10), ("512M", 512 << 20), ("1G", 1 << 30), ("2GiB", 2 << 30)],
)
def test_sizes_take_units(text: str, size: int) -> None:
    assert parse("--max-upload", text).limits.max_upload == size  # type: ignore[attr-defined]


def test_every_limit_has_its_option() -> None:
    config = parse(
        "--max-username", "8",
        "--max-message", "1K",
        "--message-rate", "2.5",
        "--message-burst", "4",
        "--slow-reader-bytes", "1M",
        "--replay-limit", "9",
        "--allow-origin", "https://a.example",
        "--allow-origin", "https://b.example",
        "--data-dir", "/tmp/somewhere",
    )  # fmt: skip
    limits = config.limits  # type: ignore[attr-defined]
    assert (limits.max_username, limits.max_message, limits.message_rate) == (8, 1024, 2.5)
    assert (limits.message_burst, limits.slow_reader_bytes, limits.replay_limit) == (4, 1 << 20, 9)
    assert config.allow_origins == ("https://a.example", "https://b.example")  # type: ignore[attr-defined]
    assert config.data_dir == Path("/tmp/somewhere")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["--max-upload", "lots"], 2, "'lots' is not a size"),
        (["--max-upload", "0"], 2, "size must be positive"),
        (["--message-rate", "-1"], 2, "must be positive"),
        (["--port", "eighty"], 2, "invalid int value"),
        (["--allow-origin", "null"], 1, "is not an origin"),
        (["--allow-origin", "chat.example"], 1, "is not an origin"),
        (["--workers", "2"], 1, "needs --redis"),
        (["--redis", "http://127.0.0.1:6379"], 1, "is not a redis:// URL"),
    ],
)
def test_bad_options_are_explained(
    tmp_path: Path, argv: list[str], status: int, message: str
) -> None:
    result = run_framewire("chat", "--port", "0", "--data-dir", str(tmp_path / "d"), *argv)
    assert result.returncode == status
    assert message in result.stderr


def test_a_port_in_use_is_reported(chat_process: StartChatProcess, tmp_path: Path) -> None:
    chat = chat_process()
    result = run_framewire("chat", "--port", str(chat.port), "--data-dir", str(tmp_path / "other"))
    assert result.returncode == 1
    assert result.stderr.startswith("framewire: ")
    assert "address already in use" in result.stderr.lower()


# ---------------------------------------------------------------------------- serving


def test_prints_its_url_and_serves_the_page_there(chat_process: StartChatProcess) -> None:
    chat = chat_process()
    assert chat.first_line == f"framewire chat serving http://127.0.0.1:{chat.port}/\n"

    async def main() -> None:
        page = await http_request(chat.port, "GET", "/")
        assert page.status == 200
        assert page.headers["content-type"].startswith("text/html")
        async with framewire.connect(chat_ws_url(chat.port, "cli")) as ws:
            assert await recv_presence(ws) == ["cli"]

    asyncio.run(asyncio.wait_for(main(), 30))
    assert (chat.data_dir / "chat.sqlite3").is_file()
    assert (chat.data_dir / "uploads").is_dir()


def test_default_data_dir_is_framewire_data_in_the_working_directory(tmp_path: Path) -> None:
    chat = start_chat_process(None, cwd=tmp_path, log_path=tmp_path / "chat.log")
    try:
        assert chat.data_dir == tmp_path / "framewire-data"
        assert (tmp_path / "framewire-data" / "chat.sqlite3").is_file()
    finally:
        stop_chat_process_by_pid(chat.process)
    assert chat.process.returncode == 0


def test_max_upload_option_is_applied(chat_process: StartChatProcess) -> None:
    chat = chat_process("--max-upload", "1K")

    async def main() -> None:
        small = multipart([FilePart("upload", "ok.txt", b"k" * 1024)])
        assert (await post_upload(chat.port, small)).status == 201
        big = multipart([FilePart("upload", "big.txt", b"k" * 1025)])
        reply = await post_upload(chat.port, big)
        assert reply.status == 413
        assert b"max_upload=1024" in reply.body

    asyncio.run(asyncio.wait_for(main(), 30))


def test_allow_origin_option_is_applied(chat_process: StartChatProcess) -> None:
    chat = chat_process("--allow-origin", "https://app.example")

    async def main() -> None:
        url = chat_ws_url(chat.port)
        async with framewire.connect(url, origin="https://app.example") as ws:
            await recv_presence(ws)
        with pytest.raises(framewire.InvalidStatus) as refused:
            await framewire.connect(url, origin="https://evil.example")
        assert refused.value.status == 403

    asyncio.run(asyncio.wait_for(main(), 30))


# ---------------------------------------------------------------------------- restarts and signals


def test_history_and_uploads_survive_a_restart(
    chat_process: StartChatProcess, tmp_path: Path
) -> None:
    data_dir = tmp_path / "kept"
    content = os.urandom(50_000)

    async def before_restart(port: int) -> tuple[list[dict[str, object]], str]:
        async with framewire.connect(chat_ws_url(port, "ann")) as ws:
            for text in ("one", "two", "three"):
                await send_chat(ws, text, client_id=text)
                await recv_kind(ws, "chatMessage")
        body = multipart([("username", "ann"), FilePart("upload", "keep.bin", content)])
        reply = await post_upload(port, body)
        assert reply.status == 201
        return await full_history(port), reply.json()["url"]

    first = chat_process(data_dir=data_dir)
    history, url = asyncio.run(asyncio.wait_for(before_restart(first.port), 30))
    os.kill(first.pid, signal.SIGTERM)
    assert first.process.wait(timeout=15) == 0

    database = sqlite3.connect(data_dir / "chat.sqlite3")
    try:
        assert database.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        database.close()

    second = chat_process(data_dir=data_dir)

    async def after_restart(port: int) -> None:
        assert await full_history(port) == history
        served = await http_request(port, "GET", url)
        assert served.status == 200 and served.body == content
        async with framewire.connect(chat_ws_url(port, "ann", since=2)) as ws:
            assert [(await recv_kind(ws, "chatMessage"))["seq"] for _ in range(2)] == [3, 4]
            # A resend from before the restart is still recognised.
            await send_chat(ws, "two", client_id="two")
            assert (await recv_kind(ws, "chatMessage"))["seq"] == 2
            await send_chat(ws, "five")
            assert (await recv_kind(ws, "chatMessage"))["seq"] == 5

    asyncio.run(asyncio.wait_for(after_restart(second.port), 30))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_closes_every_socket_with_1001_and_exits_0(
    chat_process: StartChatProcess, signum: int
) -> None:
    chat = chat_process()

    async def main() -> None:
        clients = [await framewire.connect(chat_ws_url(chat.port, f"u{n}")) for n in range(3)]
        for ws in clients:
            await recv_presence(ws)
        # An idle keep-alive HTTP connection is closed too.
        reader, writer = await asyncio.open_connection("127.0.0.1", chat.port)
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{chat.port}\r\n\r\n".encode())
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).startswith(
            b"HTTP/1.1 200"
        )
        os.kill(chat.pid, signum)
        for ws in clients:
            with pytest.raises(framewire.ConnectionClosedOK):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1001
        await asyncio.wait_for(reader.read(-1), 10)  # the rest of the body, then EOF
        assert reader.at_eof()
        writer.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert chat.process.wait(timeout=15) == 0


def test_signal_during_an_upload_still_exits(chat_process: StartChatProcess) -> None:
    chat = chat_process()

    async def main() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", chat.port)
        head = (
            f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{chat.port}\r\n"
            f"Content-Type: {MULTIPART_TYPE}\r\nContent-Length: 10000000\r\n\r\n"
        )
        body = multipart([FilePart("upload", "x.bin", b"\x00" * 100_000)])
        writer.write(head.encode() + body[:50_000])
        await writer.drain()
        os.kill(chat.pid, signal.SIGTERM)
        await asyncio.wait_for(reader.read(-1), 15)
        writer.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert chat.process.wait(timeout=15) == 0
    assert [name for name in os.listdir(chat.data_dir / "uploads") if name != ".health"] == []
