"""run_chat() (chat/run.py) in this process: the backend a ChatConfig asks for, the URL it
reports, and a stop on SIGTERM. `framewire chat` as a command is tests/chat/test_cli_chat.py."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import urllib.request
from pathlib import Path

import pytest

from framewire.chat.config import ChatConfig
from framewire.chat.presence import LocalPresence
from framewire.chat.run import make_backend, run_chat, serving_url
from framewire.chat.sqlite_store import SQLiteStore


def test_without_redis_the_backend_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    store, presence = make_backend(ChatConfig(data_dir=tmp_path), "process-1")
    assert isinstance(store, SQLiteStore) and isinstance(presence, LocalPresence)
    assert store.uploads_dir == tmp_path / "uploads"


def test_with_a_redis_url_the_backend_is_redis_for_this_process(tmp_path: Path) -> None:
    from framewire.chat.redis_presence import RedisPresence
    from framewire.chat.redis_store import RedisStore

    config = ChatConfig(data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0")
    store, presence = make_backend(config, "process-1")  # nothing connects before open()
    assert isinstance(store, RedisStore) and isinstance(presence, RedisPresence)
    assert presence.process_id == "process-1"


@pytest.mark.parametrize(
    ("family", "host", "shown"),
    [(socket.AF_INET, "127.0.0.1", "127.0.0.1"), (socket.AF_INET6, "::1", "[::1]")],
)
def test_serving_url_names_the_bound_port(family: int, host: str, shown: str) -> None:
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.bind((host, 0))
    except OSError:
        pytest.skip(f"{host} is not available here")
    with sock:
        assert serving_url(sock) == f"http://{shown}:{sock.getsockname()[1]}/"


def test_serves_at_the_url_it_reports_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = ChatConfig(port=0, data_dir=tmp_path)
    urls: list[str] = []

    def status(url: str) -> int:
        with urllib.request.urlopen(url + "healthz", timeout=5) as reply:
            return int(reply.status)

    async def main() -> None:
        ready = asyncio.Event()

        def on_ready(url: str) -> None:
            urls.append(url)
            ready.set()

        serving = asyncio.create_task(run_chat(config, on_ready=on_ready))
        await asyncio.wait_for(ready.wait(), 10)
        assert await asyncio.to_thread(status, urls[0]) == 200
        os.kill(os.getpid(), signal.SIGTERM)  # run_chat's handler closes the server
        await asyncio.wait_for(serving, 15)

    asyncio.run(main())
    assert urls[0].startswith("http://127.0.0.1:")
    assert (tmp_path / "chat.sqlite3").exists()
    with pytest.raises(OSError):
        status(urls[0])
