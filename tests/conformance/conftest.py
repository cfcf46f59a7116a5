"""Start `framewire echo` once for the conformance tests, on a free port of 127.0.0.1."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest


def start_echo(*args: str) -> tuple[subprocess.Popen[str], int]:
    """Start `python -m framewire echo --port 0 ...`; return the process and its port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "framewire", "echo", "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"ws://127\.0\.0\.1:(\d+)/", line)
    if match is None:
        process.kill()
        raise AssertionError(f"echo server did not start: {line!r}")
    return process, int(match.group(1))


def stop(process: subprocess.Popen[str]) -> None:
    """Stop the process we started, by PID: SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture(scope="session")
def echo_port() -> Iterator[int]:
    """The port of a `framewire echo --no-compression` server."""
    process, port = start_echo("--no-compression")
    yield port
    stop(process)


@pytest.fixture(scope="session")
def deflate_echo_port() -> Iterator[int]:
    """The port of a `framewire echo` server with compression (the default)."""
    process, port = start_echo()
    yield port
    stop(process)
