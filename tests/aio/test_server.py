"""Server: what a client is answered when the server's own hooks fail."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import framewire
from framewire.exceptions import InvalidStatus
from tests.waiting import wait_until


async def _echo(websocket: framewire.WebSocket) -> None:
    async for message in websocket:
        await websocket.send(message)


async def _allow(request: Any) -> None:
    return None


def _failing_selector(offered: Any) -> str | None:
    raise RuntimeError("select_subprotocol fails")


@pytest.mark.parametrize("with_process_request", [False, True])
def test_a_failing_select_subprotocol_answers_500_and_leaves_nothing_open(
    with_process_request: bool,
) -> None:
    """Found by the header-injection tests: with a process_request hook, the connection stayed
    open and unanswered forever; without one, it was closed without an answer."""
    hooks: dict[str, Any] = {"process_request": _allow} if with_process_request else {}

    async def main() -> None:
        async with framewire.serve(
            _echo, "127.0.0.1", 0, select_subprotocol=_failing_selector, **hooks
        ) as server:
            url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
            with pytest.raises(InvalidStatus) as failed:
                await framewire.connect(url, subprotocols=["chat"], open_timeout=5)
            assert failed.value.status == 500
            await wait_until(
                lambda: not server._tasks and not server._http_protocols,
                what="the failed connection to be gone",
            )

    asyncio.run(asyncio.wait_for(main(), 20))
