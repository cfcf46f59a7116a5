"""The chat on a database it cannot write (issue 18, "SQLite locked or read-only").

A database locked while the chat runs is tests/chat/test_faults.py. Here the disk turns
read-only under a running chat, as ext4 does on an I/O error with errors=remount-ro (a small
ext4 image on a loop device, and ext4's trigger_fs_error): a send gets an error, nothing is
broadcast, /healthz says 503. And a chat started on a read-only disk, or on a file that is not a
database, refuses to start, saying which file and why, rather than serve a room that stores
nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import framewire
from tests.chat.conftest import (
    ChatServer,
    RunChat,
    full_history,
    http_request,
    recv_json,
    recv_kind,
    send_chat,
    wait_for_presence,
)

BOUND = 30.0  # seconds the refusal may take before the test fails instead of hanging


def _mount(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *arguments], capture_output=True, text=True, check=False)


def _run_chat(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "framewire", "chat", "--port", "0", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs holding a chat's data directory (made by a first run), remounted read-only."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = _mount("-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        data = mount_point / "data"
        (data / "uploads").mkdir(parents=True)
        database = data / "chat.sqlite3"
        database.write_bytes(b"")  # SQLite makes an empty file a database on first write
        remounted = _mount("-o", "remount,ro", str(mount_point))
        assert remounted.returncode == 0, remounted.stderr
        yield data
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_chat_on_a_read_only_disk_refuses_to_start_and_says_why(read_only_disk: Path) -> None:
    refused = _run_chat(read_only_disk)
    assert refused.returncode == 1
    database = read_only_disk / "chat.sqlite3"
    assert f"cannot open the chat database {database}" in refused.stderr
    assert "--data-dir must be writable" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_chat_whose_database_file_is_not_a_database_refuses_to_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "chat.sqlite3").write_bytes(b"this is not an SQLite database, but a text file\n" * 100)
    refused = _run_chat(data)
    assert refused.returncode == 1
    assert "cannot open the chat database" in refused.stderr
    assert "not a database" in refused.stderr
    assert "Traceback" not in refused.stderr


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False)


@pytest.fixture
def ext4_disk(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A 32 MiB ext4 file system on a loop device, mounted with errors=remount-ro (root only).

    Yields the mount point and the loop device's name (its /sys/fs/ext4 directory).
    """
    if shutil.which("mkfs.ext4") is None or shutil.which("losetup") is None:
        pytest.skip("needs mkfs.ext4 and losetup")
    image = tmp_path / "disk.img"
    with open(image, "wb") as file:
        file.truncate(32 << 20)
    made = _run("mkfs.ext4", "-q", "-F", str(image))
    if made.returncode != 0:
        pytest.skip(f"cannot make an ext4 image: {made.stderr.strip()}")
    attached = _run("losetup", "-f", "--show", str(image))
    if attached.returncode != 0:
        pytest.skip(f"cannot attach a loop device here: {attached.stderr.strip()}")
    device = attached.stdout.strip()
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    try:
        _run("blockdev", "--setrw", device)  # a loop device may keep an earlier user's flag
        mounted = _run("mount", "-o", "errors=remount-ro", device, str(mount_point))
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount ext4 here: {mounted.stderr.strip()}")
        try:
            yield mount_point, Path(device).name
        finally:
            _run("umount", "-l", str(mount_point))
    finally:
        _run("losetup", "-d", device)


def test_a_disk_turning_read_only_under_the_chat_fails_sends_and_broadcasts_nothing(
    run_chat: RunChat, ext4_disk: tuple[Path, str]
) -> None:
    mount_point, device = ext4_disk
    trigger = Path("/sys/fs/ext4") / device / "trigger_fs_error"
    if not trigger.exists():
        pytest.skip("this kernel has no ext4 trigger_fs_error")

    async def scenario(server: ChatServer) -> None:
        async with server.connect("alice") as alice, server.connect("bob") as bob:
            await wait_for_presence(bob, ["alice", "bob"])
            await wait_for_presence(alice, ["alice", "bob"])
            await send_chat(alice, "before", "ro-0")
            assert (await recv_kind(bob, "chatMessage"))["seq"] == 1
            assert (await recv_kind(alice, "chatMessage"))["seq"] == 1
            trigger.write_text("framewire test: the disk fails\n")  # ext4 turns read-only
            await send_chat(alice, "while read-only", "ro-1")
            error = await recv_kind(alice, "error", timeout=15)
            assert error["code"] == "not_delivered" and error["clientId"] == "ro-1"
            health = await http_request(server.port, "GET", "/healthz", timeout=15)
            assert health.status == 503 and "not writable" in health.json()["reason"]
            await bob.close()
            # A wrong broadcast would have been written to bob before alice's error was.
            while True:
                try:
                    received = await recv_json(bob, timeout=5)
                except framewire.ConnectionClosed:  # the drain ends at the close
                    break
                assert received.get("clientId") != "ro-1", received
        history = await full_history(server.port)
        assert [message["message"] for message in history] == ["before"]

    run_chat(scenario, data_dir=mount_point / "data")
