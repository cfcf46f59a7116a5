"""Events of the HTTP/1.1 parsers: frozen, slotted dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from framewire.sansio.headers import Headers, split_tokens

__all__ = [
    "BadRequest",
    "BadResponse",
    "BodyData",
    "EndOfMessage",
    "RequestHead",
    "ResponseHead",
]


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A complete request line and header block.

    Attributes:
        method: the request method, case preserved ("GET").
        target: the request target as sent, still percent-encoded ("/a%20b?x=1").
        http_version: "1.1" or "1.0".
        headers: the header fields; names are case-insensitive.
    """

    method: str
    target: str
    http_version: str
    headers: Headers

    @property
    def path(self) -> str:
        """Return the target before any '?', still percent-encoded."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        """Return the target after the first '?', or '' when there is none."""
        return self.target.partition("?")[2]

    @property
    def keep_alive(self) -> bool:
        """Return whether the client allows another request on this connection (RFC 9112 9.3)."""
        values = self.headers.get_all("Connection")
        if not values:  # the commonest case
            return self.http_version != "1.0"
        tokens = split_tokens(values)
        if "close" in tokens:
            return False
        if self.http_version == "1.0":
            return "keep-alive" in tokens
        return True

    @property
    def expects_continue(self) -> bool:
        """Return whether the client waits for "100 Continue" before sending the body."""
        values = self.headers.get_all("Expect")
        return bool(values) and any(
            value.strip(" \t").lower() == "100-continue" for value in values
        )


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """A complete status line and header block (client side).

    Attributes:
        http_version: "1.1" or "1.0".
        status: the three-digit status code.
        reason: the reason phrase, possibly empty.
        headers: the header fields.
    """

    http_version: str
    status: int
    reason: str
    headers: Headers


@dataclass(frozen=True, slots=True)
class BodyData:
    """Some bytes of a message body, in order; a body may arrive in any number of pieces."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The message is complete.

    Attributes:
        trailers: trailer fields of a chunked body (empty otherwise).
    """

    trailers: Headers


@dataclass(frozen=True, slots=True)
class BadRequest:
    """The request was malformed or went past a limit; the parser stops after this event.

    Attributes:
        http_status: the status to answer with (400, 413, 414, 431, 501, 505).
        reason: a short reason naming the problem, safe to echo to the client.
    """

    http_status: int
    reason: str


@dataclass(frozen=True, slots=True)
class BadResponse:
    """The response was malformed or went past a limit (client side); the parser stops after it.

    Attributes:
        reason: a short reason naming the problem.
    """

    reason: str
