"""What a Connection sends (sansio/sending.py): masking on the client side, fragmented
messages, the refusals that mean the caller misused the protocol, and frame_now(), the fast path
that gives exactly the general path's bytes or declines. Which state lets frame_now() run is
Connection's (test_connection.py)."""

from __future__ import annotations

import pytest

from framewire.exceptions import InvalidState
from framewire.sansio.connection import Connection, Role
from framewire.sansio.events import Ping, TextMessage


def test_client_masks_every_frame_with_a_fresh_key() -> None:
    client = Connection(Role.CLIENT)
    client.send_text("same")
    client.send_text("same")
    first, second = client.data_to_send()
    assert first[1] & 0x80 and second[1] & 0x80
    assert first[2:6] != second[2:6]


def test_send_misuse_raises() -> None:
    conn = Connection(Role.CLIENT)
    with pytest.raises(ValueError, match="125"):
        conn.send_ping(b"x" * 126)
    with pytest.raises(TypeError, match="bytes-like"):
        conn.send_ping(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        conn.send_close(1000, b"bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidState):
        conn.send_continuation(b"x", fin=True)
    conn.send_text("a", fin=False)
    with pytest.raises(InvalidState, match="fragmented"):
        conn.send_binary(b"b")


def test_fragmented_send_round_trips() -> None:
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    client.send_text("ab", fin=False)
    client.send_ping(b"!")
    client.send_continuation("cd", fin=False)
    client.send_continuation("ef", fin=True)
    server.receive_data(b"".join(client.data_to_send()))
    assert server.events_received() == [Ping(b"!"), TextMessage("abcdef")]


def test_frame_now_is_the_general_send_path_for_the_common_case() -> None:
    for message in ["", "é" * 50, "x" * 16383, b"", b"\x00" * 125, b"\x01" * 126, b"b" * 65535]:
        general = Connection(Role.SERVER)
        if isinstance(message, str):
            general.send_text(message)
        else:
            general.send_binary(message)
        fast = Connection(Role.SERVER).frame_now(message)
        assert fast == b"".join(general.data_to_send()), len(message)


def test_frame_now_declines_what_needs_the_general_path() -> None:
    assert Connection(Role.CLIENT).frame_now(b"masked") is None
    assert Connection(Role.SERVER).frame_now(b"x" * 65536) is None
    assert Connection(Role.SERVER).frame_now("x" * 16384) is None
    assert Connection(Role.SERVER).frame_now(bytearray(b"x")) is None  # type: ignore[arg-type]
    queued = Connection(Role.SERVER)
    queued.send_ping(b"first")
    assert queued.frame_now(b"after the ping") is None
    fragmenting = Connection(Role.SERVER)
    fragmenting.send_binary(b"part", fin=False)
    fragmenting.data_to_send()
    assert fragmenting.frame_now(b"x") is None
    closing = Connection(Role.SERVER)
    closing.send_close()
    closing.data_to_send()
    assert closing.frame_now(b"x") is None
