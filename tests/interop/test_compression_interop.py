"""permessage-deflate interop (issue 4): websockets and Node ws as client and as server.

Each DeflateCase (helpers.py) sets what the client offers and what the server is configured to
impose; the peer library plays one role and framewire the other. Every message is echoed and
compared, and both sides must have negotiated compression: framewire's ``connection.deflate``
and the server's Sec-WebSocket-Extensions answer, checked for the parameters the case expects.
framewire sends with min_size=0 and ws with threshold 0, so 0 B and 1 B messages are compressed
too. Cases marked ``full`` run the whole 16-message matrix; the others a smaller one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as websockets_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as websockets_serve
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

import framewire
from framewire.aio.ws.websocket import WebSocket
from framewire.sansio.deflate import DeflateConfig
from tests.interop.helpers import (
    CMWB,
    CNCT,
    DEFLATE_CASES,
    FULL_MATRIX,
    MAX_MESSAGE_SIZE,
    SMALL_MATRIX,
    SMWB,
    SNCT,
    TIMEOUT,
    DeflateCase,
    EchoRecorder,
    Message,
    assert_extensions,
    make_payload,
    node_deflate_options,
    node_echo_server,
    node_skip_reason,
    run_node_client,
    split_payload,
)

CASES = [pytest.param(case, id=case.name) for case in DEFLATE_CASES]


def messages_for(case: DeflateCase) -> list[Message]:
    """Return the message matrix a case runs."""
    return FULL_MATRIX if case.full else SMALL_MATRIX


def framewire_config(params: dict[str, bool | int]) -> DeflateConfig:
    """Return framewire's DeflateConfig for a case's offer or accept parameters."""
    return DeflateConfig(
        server_no_context_takeover=bool(params.get(SNCT, False)),
        client_no_context_takeover=bool(params.get(CNCT, False)),
        server_max_window_bits=_bits(params.get(SMWB)),
        client_max_window_bits=_bits(params.get(CMWB)),
        min_size=0,
    )


def _bits(value: bool | int | None) -> int | None:
    return None if value is None else int(value)


def skip_unless_node() -> None:
    """Skip when node or Node ws is missing."""
    reason = node_skip_reason()
    if reason is not None:
        pytest.skip(reason)


def run(coroutine_function: Any, *args: Any) -> Any:
    """Run one scenario in a fresh event loop, bounded by TIMEOUT."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coroutine_function(*args), TIMEOUT)

    return asyncio.run(bounded())


async def echo_messages(ws: WebSocket | ClientConnection, messages: list[Message]) -> None:
    """Send each message (whole or fragmented) and check the echo is identical, type included."""
    for message in messages:
        payload = make_payload(message.kind, message.size)
        if message.fragments > 1:
            await ws.send(split_payload(payload, message.fragments))
        else:
            await ws.send(payload)
        echoed = await ws.recv()
        assert type(echoed) is type(payload), message.label
        assert echoed == payload, message.label


# -- peer as client, framewire as server ---------------------------------------------------------


async def _framewire_server(recorder: EchoRecorder, case: DeflateCase) -> Any:
    return framewire.serve(
        recorder,
        "127.0.0.1",
        0,
        compression=framewire_config(case.accept),
        max_message_size=MAX_MESSAGE_SIZE,
    )


@pytest.mark.parametrize("case", CASES)
def test_websockets_client_with_framewire_server(case: DeflateCase) -> None:
    if case.accept.get(CMWB) == 8:
        # RFC 7692 7.1.2.2 lets the server pick 8 for a client offering client_max_window_bits
        # without a value, but websockets cannot deflate with 8 and fails the handshake.
        pytest.skip("websockets rejects client_max_window_bits=8 (cannot compress with it)")
    try:
        factory = ClientPerMessageDeflateFactory(
            server_no_context_takeover=bool(case.offer.get(SNCT, False)),
            client_no_context_takeover=bool(case.offer.get(CNCT, False)),
            server_max_window_bits=_bits(case.offer.get(SMWB)),
            client_max_window_bits=_bits(case.offer.get(CMWB)) or True,
        )
    except ValueError as exc:
        pytest.skip(f"websockets cannot offer this: {exc}")
    recorder = EchoRecorder()

    async def scenario() -> None:
        async with await _framewire_server(recorder, case) as server:
            port = server.sockets[0].getsockname()[1]
            async with websockets_connect(
                f"ws://127.0.0.1:{port}/",
                extensions=[factory],
                compression=None,
                max_size=MAX_MESSAGE_SIZE,
            ) as ws:
                assert ws.response is not None
                assert_extensions(ws.response.headers.get("Sec-WebSocket-Extensions"), case)
                await echo_messages(ws, messages_for(case))
                await ws.close(1000, "done")

    run(scenario)
    [record] = recorder.records
    assert record.deflate, "framewire's server did not negotiate permessage-deflate"
    assert (record.close_code, record.close_reason) == (1000, "done")


@pytest.mark.parametrize("case", CASES)
def test_ws_client_with_framewire_server(case: DeflateCase) -> None:
    skip_unless_node()
    recorder = EchoRecorder()
    messages = messages_for(case)

    async def scenario() -> dict[str, Any]:
        async with await _framewire_server(recorder, case) as server:
            port = server.sockets[0].getsockname()[1]
            return await run_node_client(
                {
                    "url": f"ws://127.0.0.1:{port}/",
                    "perMessageDeflate": node_deflate_options(case.offer),
                    "steps": [message.node_step() for message in messages],
                    "close": {"code": 1000, "reason": "done"},
                }
            )

    result = run(scenario)
    assert result["error"] is None, result["error"]
    assert_extensions(result["extensions"], case)
    failed = [step for step in result["results"] if not step["ok"]]
    assert not failed and len(result["results"]) == len(messages), failed
    [record] = recorder.records
    assert record.deflate, "framewire's server did not negotiate permessage-deflate"
    assert (record.close_code, record.close_reason) == (1000, "done")


# -- framewire as client, peer as server ---------------------------------------------------------


async def framewire_client_exchange(url: str, case: DeflateCase) -> None:
    """Connect with framewire offering the case's parameters; echo its messages; close."""
    async with framewire.connect(
        url, compression=framewire_config(case.offer), max_message_size=MAX_MESSAGE_SIZE
    ) as ws:
        assert ws.connection.deflate is not None, "framewire did not negotiate compression"
        assert ws.response_headers is not None
        assert_extensions(ws.response_headers.get("Sec-WebSocket-Extensions"), case)
        await echo_messages(ws, messages_for(case))
        await ws.close(1000, "done")
        assert ws.close_code == 1000


@pytest.mark.parametrize("case", CASES)
def test_framewire_client_with_websockets_server(case: DeflateCase) -> None:
    if case.offer.get(SMWB) == 8:
        pytest.skip("websockets declines server_max_window_bits=8 (cannot compress with it)")
    try:
        factory = ServerPerMessageDeflateFactory(
            server_no_context_takeover=bool(case.accept.get(SNCT, False)),
            client_no_context_takeover=bool(case.accept.get(CNCT, False)),
            server_max_window_bits=_bits(case.accept.get(SMWB)),
            client_max_window_bits=_bits(case.accept.get(CMWB)),
        )
    except ValueError as exc:
        pytest.skip(f"websockets cannot be configured so: {exc}")
    answers: list[str | None] = []

    async def echo(ws: ServerConnection) -> None:
        assert ws.response is not None
        answers.append(ws.response.headers.get("Sec-WebSocket-Extensions"))
        async for message in ws:
            await ws.send(message)

    async def scenario() -> None:
        async with websockets_serve(
            echo,
            "127.0.0.1",
            0,
            extensions=[factory],
            compression=None,
            max_size=MAX_MESSAGE_SIZE,
        ) as server:
            port = server.sockets[0].getsockname()[1]
            await framewire_client_exchange(f"ws://127.0.0.1:{port}/", case)

    run(scenario)
    [answer] = answers
    assert_extensions(answer, case)


@pytest.mark.parametrize("case", CASES)
def test_framewire_client_with_ws_server(case: DeflateCase) -> None:
    skip_unless_node()

    async def scenario() -> list[dict[str, Any]]:
        config = {"perMessageDeflate": node_deflate_options(case.accept)}
        async with node_echo_server(config) as server:
            await framewire_client_exchange(f"ws://127.0.0.1:{server.port}/", case)
            return await server.read_events(closes=1)

    events = run(scenario)
    [answer] = [event["extensions"] for event in events if event["event"] == "headers"]
    assert_extensions(answer, case)
    [opened] = [event for event in events if event["event"] == "open"]
    assert opened["extensions"] == "permessage-deflate"
    closes = [event for event in events if event["event"] == "close"]
    assert closes == [{"event": "close", "code": 1000, "reason": "done"}]
