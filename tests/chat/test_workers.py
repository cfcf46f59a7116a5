"""run_workers() (chat/workers.py): several chat processes on one port (SO_REUSEPORT), a dead
worker replaced after a back-off, SIGTERM stopping every child, and giving up on a crash loop.
Every worker shares the room through the test's redis-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import threading
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.chat.redis_helpers import ChatProcess, Peer, connect_all, run
from tests.chat.redis_server import RedisServer, free_port
from tests.waiting import wait_until, wait_until_sync


@pytest.mark.slow
def test_two_workers_serve_one_port_and_messages_cross(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis.Redis(port=redis_server.port).flushall()
    parent = ChatProcess(tmp_path, redis_server.url, "--workers", "2")
    try:
        port = parent.wait_serving()
        wait_until_sync(
            lambda: len(re.findall(r"started \(pid (\d+)\)", parent.log())) >= 2,
            10,
            "two workers started",
        )
        children = [int(pid) for pid in re.findall(r"started \(pid (\d+)\)", parent.log())]

        def sockets(pid: int) -> int:
            count = 0
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                # An fd closed between the listing and the read is not open any more.
                with contextlib.suppress(FileNotFoundError):
                    count += os.readlink(fd).startswith("socket:")
            return count

        async def main() -> None:
            # Both children must be listening before clients spread over them.
            await asyncio.to_thread(parent.wait_serving, 2)
            before = {pid: sockets(pid) for pid in children}
            peers = [Peer(f"w{n}") for n in range(16)]
            await connect_all(peers, [port])
            after = {pid: sockets(pid) for pid in children}
            assert all(after[pid] > before[pid] for pid in children), (before, after)
            for peer in peers:
                await peer.send(f"hello from {peer.name}")
            await wait_until(lambda: all(len(p.seqs) == 16 for p in peers), 10, "crossed")
            assert all(peer.seqs == list(range(1, 17)) for peer in peers)
            await asyncio.gather(*(peer.close() for peer in peers))

        run(main, 40)
        # A worker killed with -9 is reported and replaced after the back-off (1 s).
        os.kill(children[0], signal.SIGKILL)
        wait_until_sync(
            lambda: len(re.findall(r"started \(pid (\d+)\)", parent.log())) >= 3,
            10,
            "the killed worker replaced",
        )
        assert f"(pid {children[0]}) exited with code -9" in parent.log()
        children = [int(pid) for pid in re.findall(r"started \(pid (\d+)\)", parent.log())][1:]
        parent.wait_serving(3)  # the new worker listens on the same port
        assert parent.port == port
        os.kill(parent.process.pid, signal.SIGTERM)
        assert parent.process.wait(15) == 0
        for pid in children:
            assert (
                not Path(f"/proc/{pid}").exists()
                or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
            ), f"worker {pid} still running"
    finally:
        parent.stop()


def test_run_workers_stops_its_children_on_sigterm(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    from framewire.chat.config import ChatConfig
    from framewire.chat.workers import run_workers

    port = free_port()
    config = ChatConfig(port=port, data_dir=tmp_path, redis_url=redis_server.url, workers=2)

    def serving() -> bool:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2),
        ):
            return True
        return False

    def stop_when_serving() -> None:
        # run_workers() installs its handler and starts both workers before either serves.
        try:
            wait_until_sync(serving, 20, "a worker serving")
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    handler_before = signal.getsignal(signal.SIGTERM)
    stopper = threading.Thread(target=stop_when_serving)
    stopper.start()
    try:
        assert run_workers(config) == 0
    finally:
        stopper.join()
    assert signal.getsignal(signal.SIGTERM) == handler_before
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_run_workers_gives_up_when_workers_keep_dying_at_start(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from framewire.chat import workers
    from framewire.chat.config import ChatConfig

    monkeypatch.setattr(workers, "RESTART_FIRST", 0.05)
    monkeypatch.setattr(workers, "RESTART_CAP", 0.1)
    monkeypatch.setattr(workers, "CRASH_LOOP_LIMIT", 3)
    with socket.socket() as taken:  # held without SO_REUSEPORT: every worker's bind fails
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = ChatConfig(port=port, data_dir=tmp_path, redis_url=redis_server.url, workers=2)
        reports: list[str] = []
        monkeypatch.setattr(workers, "_report", reports.append)
        assert workers.run_workers(config) == 1
        # Bounded work: the two first workers, then restarts until three died in a row.
        starts = [text for text in reports if " started (pid " in text]
        assert 3 <= len(starts) <= 2 + 3, reports
        assert reports[-1] == "3 workers in a row died at start; giving up"
