"""broadcast(): one message to many connections, framed once, never slowed by a slow peer."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal

from framewire.aio.ws.websocket import WebSocket
from framewire.sansio.connection import Role, State
from framewire.sansio.frames import Opcode, encode_frame_header

__all__ = ["broadcast"]

# Enum members as globals, read per message or per connection: see _OPEN in sansio/connection.py.
_OPEN = State.OPEN
_CLIENT = Role.CLIENT
_TEXT, _BINARY = Opcode.TEXT, Opcode.BINARY

logger = logging.getLogger("framewire")

BytesLike = bytes | bytearray | memoryview


def broadcast(
    connections: Iterable[WebSocket],
    message: str | BytesLike,
    *,
    on_overflow: Literal["skip", "close"] = "skip",
    buffer_limit: int | None = None,
) -> int:
    """Send ``message`` to every open connection without waiting; return how many got it.

    The frame is built once and the same bytes are written to every server-side connection
    whose compression settings allow sharing (no compression, or no context takeover on the
    server side: then it is compressed once per set of parameters). Other connections go
    through their own state machine.

    A slow client never slows the others: each connection's write buffer is checked first, and
    when it holds more than ``buffer_limit`` bytes (default: that connection's write_limit) the
    policy applies: ``"skip"`` drops this message for that client only, ``"close"`` closes it
    with 1008 ("too slow to keep up with broadcast").
    """
    if isinstance(message, str):
        opcode, payload = _TEXT, message.encode("utf-8")
        direct: str | bytes = message
    else:
        opcode, payload = _BINARY, bytes(message)
        direct = payload
    plain_frame: bytes | None = None
    compressed_frames: dict[tuple[int, int, int], bytes] = {}
    delivered = 0
    for websocket in connections:
        # The commonest case: an open, uncompressed server connection whose socket has nothing
        # queued (so no buffer limit can be exceeded) frames and sends the message in one C
        # call, as ws.send() does (benchmarks/run.py, broadcast rows).
        if websocket.try_send_now(direct):
            delivered += 1
            continue
        connection = websocket.connection
        transport = websocket.transport
        if (
            transport is None
            or transport.is_closing()
            or connection.state is not _OPEN
            or connection.close_sent is not None
            or connection.sending_opcode is not None  # mid-way through a fragmented send
        ):
            continue
        limit = websocket.write_limit if buffer_limit is None else buffer_limit
        if transport.get_write_buffer_size() > limit:
            if on_overflow == "close":
                connection.fail(1008, "too slow to keep up with broadcast")
                websocket.flush()
            continue
        deflate = connection.deflate
        if connection.role is _CLIENT or (
            deflate is not None
            and deflate.should_compress(len(payload))
            and not deflate.can_share_output
        ):
            if opcode == _TEXT:
                connection.send_text(payload)
            else:
                connection.send_binary(payload)
            websocket.flush()
        elif deflate is not None and deflate.should_compress(len(payload)):
            # Without context takeover each message is compressed from a fresh context, so one
            # connection's output serves every connection with the same sharing key.
            frame = compressed_frames.get(deflate.sharing_key)
            if frame is None:
                body = deflate.compress(payload, final=True)
                frame = encode_frame_header(opcode, len(body), rsv1=True) + body
                compressed_frames[deflate.sharing_key] = frame
            websocket.write_frame(frame)
        else:
            if plain_frame is None:
                plain_frame = encode_frame_header(opcode, len(payload)) + payload
            websocket.write_frame(plain_frame)
        delivered += 1
    return delivered
