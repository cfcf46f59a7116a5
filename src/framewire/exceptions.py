"""The one exception tree of framewire.

::

    FramewireError
    ├── ProtocolError            the peer broke RFC 6455 / RFC 7692 (carries close_code)
    │   └── PayloadTooBig        a message or frame went past a size or count limit (1009)
    ├── InvalidHandshake         the opening handshake failed (carries http_status)
    │   ├── InvalidStatus        client side: the server did not answer 101
    │   └── NegotiationError     subprotocol or extension negotiation failed
    ├── HTTPError                an HTTP request was malformed or over a limit (carries http_status)
    ├── InvalidURI               a ws:// or wss:// URI could not be used
    ├── InvalidState             an operation the connection's state does not allow (our misuse)
    └── ConnectionClosed         the WebSocket is closed (carries code and reason)
        ├── ConnectionClosedOK   closed with 1000 or 1001
        └── ConnectionClosedError closed with anything else, or without a close frame

Errors raised from the sans-I/O core name the offending value and the limit that was hit; the
asyncio layer keeps the original error as ``__cause__`` when it translates.
"""

from __future__ import annotations

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "FramewireError",
    "HTTPError",
    "InvalidHandshake",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "NegotiationError",
    "PayloadTooBig",
    "ProtocolError",
]


class FramewireError(Exception):
    """Base class of every error framewire raises on purpose."""


class ProtocolError(FramewireError):
    """The peer violated the WebSocket protocol.

    Attributes:
        close_code: the RFC 6455 close code to fail the connection with (1002 by default,
            1007 for invalid UTF-8, 1008 for a policy violation, 1009 for too big).
        inflated: when inflating a compressed message failed, the payload inflated before the
            failure in that call (so a text message can be checked for invalid UTF-8 first,
            whatever the reads); empty otherwise.
    """

    def __init__(self, message: str, close_code: int = 1002) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.inflated: list[bytes] = []


class PayloadTooBig(ProtocolError):
    """A message, frame or fragment count went past its configured limit (close code 1009)."""

    def __init__(self, message: str, close_code: int = 1009) -> None:
        super().__init__(message, close_code)


class InvalidHandshake(FramewireError):
    """The opening handshake failed.

    Attributes:
        http_status: on the server, the status to answer with (400, 403, 426 ...).
        headers: extra response headers the server should send, as (name, value) pairs.
    """

    def __init__(
        self,
        message: str,
        http_status: int = 400,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.headers = headers


class InvalidStatus(InvalidHandshake):
    """The server answered the opening handshake with a status other than 101.

    Attributes:
        status: the status code the server sent.
        body: up to the first few KiB of the response body, for the error message.
    """

    def __init__(self, status: int, reason: str = "", body: bytes = b"") -> None:
        super().__init__(f"server rejected WebSocket connection: HTTP {status} {reason}".rstrip())
        self.status = status
        self.body = body


class NegotiationError(InvalidHandshake):
    """Subprotocol or extension negotiation failed."""


class HTTPError(FramewireError):
    """An HTTP request was malformed, or went past a limit.

    Attributes:
        http_status: the status to answer with (400, 408, 413, 414, 431 ...).
        reason: a short reason, safe to send to the client in the response body.
    """

    def __init__(self, http_status: int, reason: str) -> None:
        super().__init__(f"{http_status} {reason}")
        self.http_status = http_status
        self.reason = reason


class InvalidURI(FramewireError):
    """A URI given to connect() is not a usable ws:// or wss:// URI."""


class InvalidState(FramewireError):
    """An operation was attempted that the connection's current state does not allow.

    For example sending a data frame after the close frame, or starting a message while a
    fragmented one is still being sent. This is a bug in the calling code, not the peer's fault.
    """


class ConnectionClosed(FramewireError):
    """The WebSocket connection is closed.

    Attributes:
        code: the close code received from the peer (or 1006 when the connection dropped
            without a close frame).
        reason: the close reason received from the peer.
    """

    def __init__(self, code: int, reason: str = "", detail: str = "") -> None:
        text = f"connection closed: code {code}"
        if reason:
            text += f", reason {reason!r}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)
        self.code = code
        self.reason = reason


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally (1000 or 1001)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error code, or without a closing handshake."""
