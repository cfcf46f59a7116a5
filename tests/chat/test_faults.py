"""The chat under faults: the server killed -9 while clients send, a full disk during an
upload, a locked database. Whatever happens, a message anyone saw is stored, nothing is left
half-written, and the room keeps working once the fault is gone."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

import framewire
from tests.chat.conftest import (
    MULTIPART_TYPE,
    ChatServer,
    FilePart,
    RunChat,
    StartChatProcess,
    chat_ws_url,
    full_history,
    http_request,
    multipart,
    recv_kind,
    send_chat,
    wait_for_presence,
    wait_until,
)

CLIENTS = 50
WINDOW = 8  # messages a client may have sent and not yet seen acknowledged


def test_kill_9_while_50_clients_send_loses_no_message_anyone_saw(
    chat_process: StartChatProcess,
) -> None:
    chat = chat_process("--message-rate", "10000", "--message-burst", "10000")
    seen: dict[int, str] = {}  # seq -> id, as any client received it

    async def client(number: int) -> None:
        with contextlib.suppress(framewire.ConnectionClosed, OSError):
            async with framewire.connect(chat_ws_url(chat.port, f"user{number}")) as ws:
                # Up to WINDOW messages of each client unacknowledged at any time: paced by
                # the server's answers, not by a sleep, with a backlog for the kill to meet.
                window = asyncio.Semaphore(WINDOW)

                async def read() -> None:
                    try:
                        async for raw in ws:
                            event = json.loads(raw)
                            if event["messageType"] == "chatMessage":
                                assert seen.setdefault(event["seq"], event["id"]) == event["id"]
                                if event["username"] == f"user{number}":
                                    window.release()
                    finally:
                        for _ in range(WINDOW):
                            window.release()  # the server is gone: let the sender find out

                reader = asyncio.create_task(read())
                try:
                    for index in range(10_000):
                        await window.acquire()
                        await send_chat(ws, f"m{index} from {number}", f"{number}-{index}")
                finally:
                    with contextlib.suppress(framewire.ConnectionClosed, OSError):
                        await reader

    async def main() -> None:
        clients = [asyncio.create_task(client(number)) for number in range(CLIENTS)]
        await wait_until(lambda: len(seen) >= 500, timeout=60)
        os.kill(chat.pid, signal.SIGKILL)
        done, pending = await asyncio.wait(clients, timeout=20)
        assert not pending, "clients did not notice the server died"
        for task in done:
            task.result()  # an assertion in a reader fails the test here

    asyncio.run(main())
    assert chat.process.wait(timeout=10) == -signal.SIGKILL
    restarted = chat_process(data_dir=chat.data_dir)
    history = asyncio.run(full_history(restarted.port))
    seqs = [message["seq"] for message in history]
    assert seqs == list(range(1, len(seqs) + 1)), "the stored seqs have a gap"
    stored = {message["seq"]: message["id"] for message in history}
    missing = {seq: id_ for seq, id_ in seen.items() if stored.get(seq) != id_}
    assert not missing, f"{len(missing)} messages were seen but are not stored"
    assert len(seen) >= 500


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 2 MiB tmpfs mounted for the test (root only), unmounted after it."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_full_disk_during_upload_gets_507_leaves_nothing_and_chat_goes_on(
    run_chat: RunChat, small_disk: Path
) -> None:
    async def scenario(server: ChatServer) -> None:
        body = multipart(
            [FilePart("upload", "big.bin", os.urandom(4 << 20))]
        )  # 4 MiB on a 2 MiB disk
        reply = await http_request(
            server.port, "POST", "/upload", headers=[("Content-Type", MULTIPART_TYPE)], body=body
        )
        assert reply.status == 507, reply.body
        assert b"disk space" in reply.body
        entries = [name for name in os.listdir(server.uploads_dir) if name != ".health"]
        assert entries == [], f"a partial upload was left behind: {entries}"
        async with server.connect("alice") as ws:
            await wait_for_presence(ws, ["alice"])
            await send_chat(ws, "still here", "after-full-disk")
            message = await recv_kind(ws, "chatMessage")
            assert message["message"] == "still here" and message["seq"] == 1
        assert [m["message"] for m in await full_history(server.port)] == ["still here"]
        small = await http_request(
            server.port,
            "POST",
            "/upload",
            headers=[("Content-Type", MULTIPART_TYPE)],
            body=multipart([FilePart("upload", "small.txt", b"small")]),
        )
        assert small.status == 201, small.body

    run_chat(scenario, data_dir=small_disk / "data")


def test_locked_database_answers_sends_with_an_error_and_broadcasts_nothing(
    run_chat: RunChat,
) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("alice") as alice, server.connect("bob") as bob:
            await wait_for_presence(bob, ["alice", "bob"])
            await wait_for_presence(alice, ["alice", "bob"])
            blocker = sqlite3.connect(server.config.database_path, isolation_level=None)
            try:
                blocker.execute("BEGIN EXCLUSIVE")
                await send_chat(alice, "while locked", "locked-1")
                error = await recv_kind(alice, "error", timeout=15)
                assert error["code"] == "not_delivered" and error["clientId"] == "locked-1"
                assert "not delivered" in error["error"]
                health = await http_request(server.port, "GET", "/healthz", timeout=15)
                assert health.status == 503 and health.json()["status"] == "unavailable"
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            # The resend after the fault is stored once; bob never saw the failed attempt.
            await send_chat(alice, "while locked", "locked-1")
            stored = await recv_kind(bob, "chatMessage")
            assert stored["seq"] == 1 and stored["clientId"] == "locked-1"
            assert (await http_request(server.port, "GET", "/healthz")).status == 200
        assert len(await full_history(server.port)) == 1

    run_chat(scenario)
