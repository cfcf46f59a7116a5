"""Interop with Node's ws (issue 3): ws's client against framewire's server, and the reverse.

Needs node and `npm ci --prefix tests/interop`; skipped (with the reason) otherwise.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import framewire
from framewire import ConnectionClosedError
from tests.interop.helpers import (
    BASIC_MESSAGES,
    MAX_MESSAGE_SIZE,
    TIMEOUT,
    EchoRecorder,
    framewire_client_round,
    node_echo_server,
    run_node_client,
)

pytestmark = pytest.mark.usefixtures("node")


def run_node_client_against_framewire(
    recorder: EchoRecorder, config: dict[str, Any], **options: Any
) -> dict[str, Any]:
    """Serve ``recorder`` with framewire and run node/client.js against it; return its result."""

    async def main() -> dict[str, Any]:
        options.setdefault("max_message_size", MAX_MESSAGE_SIZE)
        async with framewire.serve(recorder, "127.0.0.1", 0, **options) as server:
            port = server.sockets[0].getsockname()[1]
            return await run_node_client({"url": f"ws://127.0.0.1:{port}/", **config})

    return asyncio.run(main())


def assert_all_steps_ok(result: dict[str, Any]) -> None:
    """Assert the node client ran without error and every echo and pong matched."""
    assert result["error"] is None, result["error"]
    failed = [step for step in result["results"] if not step["ok"]]
    assert not failed, failed


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_ws_client_echoes_through_framewire_server(compression: str | None) -> None:
    recorder = EchoRecorder()
    steps = [message.node_step() for message in BASIC_MESSAGES]
    steps.append({"type": "ping", "data": "interop"})
    result = run_node_client_against_framewire(
        recorder,
        {
            "perMessageDeflate": compression is not None and {},
            "steps": steps,
            "close": {"code": 4001, "reason": "client bye"},
        },
        compression=compression,
    )
    assert_all_steps_ok(result)
    assert len(result["results"]) == len(steps)
    assert result["close"]["code"] == 4001  # RFC 6455 5.5.1: the answer echoes the code
    [record] = recorder.records
    assert record.deflate is (compression is not None)
    assert (result["extensions"] is not None) is (compression is not None)
    assert record.messages == len(BASIC_MESSAGES)
    assert (record.close_code, record.close_reason) == (4001, "client bye")


def test_ws_client_sees_framewire_server_close_code_and_reason() -> None:
    recorder = EchoRecorder()
    result = run_node_client_against_framewire(
        recorder, {"steps": [{"type": "expect_close", "send": "!close 4002 server bye"}]}
    )
    assert_all_steps_ok(result)
    assert result["close"] == {"code": 4002, "reason": "server bye"}
    assert recorder.records[0].close_code == 4002


@pytest.mark.parametrize("compression", [None, "deflate"])
def test_framewire_client_echoes_through_ws_server(compression: str | None) -> None:
    async def main() -> list[dict[str, Any]]:
        config: dict[str, Any] = {"perMessageDeflate": compression is not None and {}}
        async with node_echo_server(config) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            async with framewire.connect(
                url, compression=compression, max_message_size=MAX_MESSAGE_SIZE
            ) as ws:
                await framewire_client_round(ws, compression)
                await ws.close(4001, "client bye")
                assert ws.close_code == 4001  # echoed by ws
            return await server.read_events(closes=1)

    events = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    closes = [event for event in events if event["event"] == "close"]
    assert closes == [{"event": "close", "code": 4001, "reason": "client bye"}]
    [opened] = [event for event in events if event["event"] == "open"]
    assert (opened["extensions"] == "permessage-deflate") is (compression is not None)


def test_framewire_client_sees_ws_server_close_code_and_reason() -> None:
    async def main() -> list[dict[str, Any]]:
        async with node_echo_server({}) as server:
            async with framewire.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("!close 4002 server bye")
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert (info.value.code, info.value.reason) == (4002, "server bye")
                assert (ws.close_code, ws.close_reason) == (4002, "server bye")
            return await server.read_events(closes=1)

    events = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert [event["code"] for event in events if event["event"] == "close"] == [4002]
