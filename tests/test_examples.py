"""The examples in examples/ (shown in the docs) run against a real `framewire echo`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.conftest import start_echo, stop

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    process, port = start_echo()
    yield port
    stop(process)


def run_example(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


def test_sansio_plain_socket_client(port: int) -> None:
    assert run_example("sansio_socket_client.py", "127.0.0.1", str(port), "héllo") == "héllo\n"


def test_asyncio_client(port: int) -> None:
    output = run_example("client.py", f"ws://127.0.0.1:{port}/")
    assert "reply: hello" in output
    assert "ping round trip" in output
