"""WebSocket.send() and __anext__: the C WebSocketMethods and its Python twin behave alike."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from framewire.aio.ws import websocket_methods as websocket_module
from framewire.aio.ws.websocket import WebSocket
from framewire.aio.ws.websocket_methods import PyWebSocketMethods
from framewire.sansio.speedups import ENABLED
from tests.conftest import c_twin_or_skip


def twin(name: str) -> Any:
    if name == "python":
        return PyWebSocketMethods
    return c_twin_or_skip("WebSocketMethods")


def sent_marker(name: str) -> Any:
    """What send() returns when the frame went out during the call."""
    return websocket_module.SENT if name == "python" else c_twin_or_skip("SENT")


class Polled:
    """A PolledSocket's send_message(), recorded; ``sends`` says whether it sends at once."""

    def __init__(self, sends: bool, error: BaseException | None = None) -> None:
        self.sends = sends
        self.error = error
        self.calls: list[tuple[Any, Any]] = []

    def send_message(self, connection: Any, message: Any) -> bool:
        self.calls.append((connection, message))
        if self.error is not None:
            raise self.error
        return self.sends


class FakeInbox:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []

    def anext(self, websocket: Any, loop: Any) -> str:
        self.calls.append((websocket, loop))
        return "the awaitable"


def make(name: str, polled: Polled | None) -> Any:
    class Socket(twin(name)):  # type: ignore[misc]
        def __init__(self, connection: str, *, loop: str) -> None:
            self.connection = connection
            self._polled = polled
            self._inbox = FakeInbox()
            self._loop = loop
            self.general: list[tuple[Any, Any]] = []

        def _send(self, message: Any, compress: Any) -> str:
            self.general.append((message, compress))
            return "the general coroutine"

    return Socket("the connection", loop="the loop")


TWINS = ["python", "c"]


@pytest.mark.parametrize("name", TWINS)
def test_a_message_sent_at_once_returns_the_finished_coroutine(name: str) -> None:
    polled = Polled(sends=True)
    socket = make(name, polled)
    assert socket.send("hello") is sent_marker(name)
    assert socket.send(b"bytes", compress=False) is sent_marker(name)
    assert polled.calls == [("the connection", "hello"), ("the connection", b"bytes")]
    assert socket.general == []


@pytest.mark.parametrize("name", TWINS)
@pytest.mark.parametrize("polled", [None, Polled(sends=False)])
def test_otherwise_send_returns_the_general_path_with_compress(
    name: str, polled: Polled | None
) -> None:
    socket = make(name, polled)
    assert socket.send("a") == "the general coroutine"
    assert socket.send("b", compress=False) == "the general coroutine"
    assert socket.general == [("a", True), ("b", False)]


@pytest.mark.parametrize("name", TWINS)
def test_an_error_of_send_message_reaches_the_caller(name: str) -> None:
    socket = make(name, Polled(sends=True, error=OSError("broken pipe")))
    with pytest.raises(OSError, match="broken pipe"):
        socket.send("x")


@pytest.mark.parametrize("name", TWINS)
@pytest.mark.parametrize(
    "args, kwargs",
    [((), {}), (("a", "b"), {}), (("a",), {"bogus": 1}), (("a",), {"compress": 1, "bogus": 2})],
)
def test_send_rejects_other_arguments_with_a_type_error(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    socket = make(name, Polled(sends=True))
    with pytest.raises(TypeError):
        socket.send(*args, **kwargs)


@pytest.mark.parametrize("name", TWINS)
def test_anext_asks_the_inbox_with_the_websocket_and_its_loop(name: str) -> None:
    socket = make(name, None)
    assert socket.__anext__() == "the awaitable"
    assert type(socket).__anext__(socket) == "the awaitable"
    assert socket._inbox.calls == [(socket, "the loop")] * 2


def test_websocket_derives_from_the_c_twin_when_it_is_built() -> None:
    expected = PyWebSocketMethods
    if ENABLED and sys.platform == "linux":
        expected = c_twin_or_skip("WebSocketMethods")
    assert WebSocket.__mro__[1] is expected
    assert WebSocket.send.__doc__ is not None and "high-water mark" in WebSocket.send.__doc__
