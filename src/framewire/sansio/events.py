"""Events the WebSocket connection hands to the layer above: frozen, slotted dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BinaryMessage",
    "CloseReceived",
    "ConnectionFailed",
    "Event",
    "MessageChunk",
    "Ping",
    "Pong",
    "TextMessage",
]


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A whole text message (message delivery mode)."""

    data: str


@dataclass(frozen=True, slots=True)
class BinaryMessage:
    """A whole binary message (message delivery mode)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class MessageChunk:
    """A piece of a message, as it arrived (streaming delivery mode).

    Attributes:
        data: ``str`` for a text message (always whole code points), else bytes or a read-only
            memoryview over the received bytes.
        is_text: whether the message is a text message.
        first: this is the message's first piece.
        last: this is the message's last piece: the message is complete.
    """

    data: str | bytes | memoryview
    is_text: bool
    first: bool
    last: bool


@dataclass(frozen=True, slots=True)
class Ping:
    """A ping was received; the connection has already queued the pong."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """A pong was received."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer sent a close frame (code 1005 when it carried none)."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """The peer broke the protocol; a close frame with ``code`` was queued and input stops.

    Attributes:
        code: the close code sent (1002, 1007, 1008, 1009 ...).
        reason: what was wrong, also sent as the close reason (truncated to fit).
    """

    code: int
    reason: str


Event = TextMessage | BinaryMessage | MessageChunk | Ping | Pong | CloseReceived | ConnectionFailed
