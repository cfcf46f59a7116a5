"""framewire's public names: what the issues and docs/reference/asyncio.md promise."""

from __future__ import annotations

import framewire

DOCUMENTED = {
    "serve",
    "connect",
    "broadcast",
    "Server",
    "WebSocket",
    "FramewireError",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "InvalidHandshake",
    "InvalidStatus",
    "NegotiationError",
    "ProtocolError",
    "PayloadTooBig",
    "HTTPError",
    "InvalidURI",
    "InvalidState",
    "DeflateConfig",
}


def test_all_matches_the_documented_api() -> None:
    assert set(framewire.__all__) == DOCUMENTED


def test_every_exported_name_resolves_and_has_a_docstring() -> None:
    for name in framewire.__all__:
        value = getattr(framewire, name)
        assert value.__doc__, f"framewire.{name} has no docstring"
