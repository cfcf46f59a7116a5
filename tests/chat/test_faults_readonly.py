"""The chat on a database it cannot write (issue 18, "SQLite locked or read-only").

A database locked while the chat runs is tests/chat/test_faults.py. A file system that turns
read-only under a running chat cannot be simulated here: Linux refuses to remount read-only
while SQLite holds the file open for writing. What can happen is a chat started on a read-only
disk, or on a file that is not a database: it must refuse to start, saying which file and why,
rather than serve a room that stores nothing.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

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
