"""WebSocketOptions (aio/ws/options.py): the settings serve() and connect() share, checked when
given, and the Connection and WebSocket they make. That every default is the limits table's is
tests/test_limits_doc.py."""

from __future__ import annotations

import asyncio

import pytest

from framewire.aio.ws.options import WebSocketOptions, deflate_config_for
from framewire.sansio.connection import Role
from framewire.sansio.deflate import DeflateConfig, DeflateParameters


def test_compression_names_a_deflate_config_or_none() -> None:
    config = DeflateConfig(server_no_context_takeover=True)
    assert deflate_config_for(config) is config
    assert deflate_config_for("deflate") == DeflateConfig()
    assert deflate_config_for(None) is None
    with pytest.raises(ValueError, match="unsupported compression 'gzip'"):
        deflate_config_for("gzip")


def test_unknown_or_bad_options_are_refused_when_given() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument\\(s\\): max_size, pong"):
        WebSocketOptions.from_kwargs({"pong": 1, "max_size": 2, "max_queue": 3})
    with pytest.raises(ValueError, match="unsupported compression"):
        WebSocketOptions.from_kwargs({"compression": "brotli"})
    assert WebSocketOptions.from_kwargs({"max_queue": 3}).max_queue == 3


def test_equal_settings_share_one_frozen_limits() -> None:
    one = WebSocketOptions(max_message_size=1000, max_fragments=7).limits()
    assert one is WebSocketOptions(max_message_size=1000, max_fragments=7, max_queue=1).limits()
    assert (one.max_message_size, one.fragment_limit()) == (1000, 7)


def test_the_connection_has_the_limits_and_the_agreed_deflate() -> None:
    options = WebSocketOptions(max_message_size=1000)
    plain = options.make_connection(Role.CLIENT, None)
    assert plain.deflate is None and plain.limits.max_message_size == 1000
    agreed = DeflateParameters(server_no_context_takeover=True)
    server = options.make_connection(Role.SERVER, agreed)
    assert server.deflate is not None and server.deflate.can_share_output


def test_the_websocket_has_these_settings() -> None:
    async def main() -> None:
        options = WebSocketOptions(write_limit=4096, ping_interval=None, close_timeout=3)
        ws = options.make_websocket(options.make_connection(Role.SERVER, None), None, "chat")
        assert (ws.subprotocol, ws.request) == ("chat", None)
        assert ws.close_timeout == 3

    asyncio.run(main())
