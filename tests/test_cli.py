"""The `framewire` command: echo (with its signals) and client."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

import framewire
from tests.conformance.conftest import start_echo, stop


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_echo_closes_clients_with_1001_on_signal(signum: int) -> None:
    process, port = start_echo()

    async def main() -> None:
        async with framewire.connect(f"ws://127.0.0.1:{port}/any/path") as ws:
            await ws.send("text")
            assert await ws.recv() == "text"
            await ws.send(b"binary")
            assert await ws.recv() == b"binary"
            os.kill(process.pid, signum)
            with pytest.raises(framewire.ConnectionClosedOK):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1001

    try:
        asyncio.run(main())
        assert process.wait(timeout=10) == 0
    finally:
        stop(process)


def test_echo_default_message_limit_is_64_mib() -> None:
    process, port = start_echo("--no-compression")

    async def main() -> None:
        async with framewire.connect(
            f"ws://127.0.0.1:{port}/", max_message_size=None, compression=None
        ) as ws:
            big = b"\x07" * (20 << 20)
            await ws.send(big)
            assert await ws.recv() == big

    try:
        asyncio.run(main())
    finally:
        stop(process)


def test_client_sends_typed_lines_and_prints_messages() -> None:
    process, port = start_echo()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "framewire", "client", f"ws://127.0.0.1:{port}/"],
            input="hello\nworld\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        stop(process)
    assert result.returncode == 0, result.stderr
    assert "< hello" in result.stdout and "< world" in result.stdout


def test_client_exits_when_the_server_closes_while_stdin_stays_open() -> None:
    process, port = start_echo()
    client = subprocess.Popen(
        [sys.executable, "-m", "framewire", "client", f"ws://127.0.0.1:{port}/"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdin is not None and client.stdout is not None
        client.stdin.write("ping\n")
        client.stdin.flush()
        assert client.stdout.readline().strip() == "< ping"  # connected, and echoing
        os.kill(process.pid, signal.SIGTERM)  # the server closes with 1001; stdin stays open
        assert client.wait(timeout=15) == 0
        assert client.stderr is not None
        assert "connection closed: code 1001" in client.stderr.read()
    finally:
        stop(process)
        if client.poll() is None:
            client.kill()
            client.wait()


def test_bad_arguments_are_explained() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "framewire", "echo", "--max-message-size", "lots"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "'lots' is not a whole number of bytes" in result.stderr


def test_top_level_help_says_what_each_command_does_with_examples_that_parse() -> None:
    """`framewire --help` is for users: the three commands, and examples that really parse."""
    from framewire.cli import _EXAMPLES, _parser

    shown = subprocess.run(
        [sys.executable, "-m", "framewire", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for command in ("chat", "echo", "client"):
        assert f"framewire {command} " in shown
    parser = _parser()
    for line in _EXAMPLES.splitlines():
        if line.startswith("  framewire "):
            words = line.split("  ", 2)[1].split()[1:]  # the command line, not its comment
            parser.parse_args(words)  # an example that stopped parsing would exit here
