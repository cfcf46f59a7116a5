"""The opening handshake (RFC 6455 4), both sides, without I/O.

Server: ``accept_request()`` validates a parsed upgrade request and returns what to answer with,
or raises InvalidHandshake carrying the HTTP status (400, 403, 405, 426) and a reason naming what
was wrong. Client: ``build_request()`` makes the request bytes and key, ``verify_response()``
checks the server's 101.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from framewire.exceptions import InvalidHandshake, NegotiationError
from framewire.sansio import deflate as permessage_deflate
from framewire.sansio.headers import Headers, split_tokens
from framewire.sansio.http11_encode import encode_request_head, encode_response_head
from framewire.sansio.http11_events import RequestHead

__all__ = [
    "ClientHandshakeResult",
    "ServerHandshakeResult",
    "accept_key",
    "accept_request",
    "build_request",
    "is_websocket_upgrade",
    "verify_response",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
SubprotocolSelector = Callable[[Sequence[str]], "str | None"]


def accept_key(key: str) -> str:
    """Return the Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def _single(headers: Headers, name: str) -> str:
    """Return the one value of a header that must appear exactly once, else raise (400)."""
    values = headers.get_all(name)
    if not values:
        raise InvalidHandshake(f"missing {name} header")
    if len(values) > 1:
        raise InvalidHandshake(f"more than one {name} header")
    return values[0]


def _check_key(key: str) -> None:
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raw = b""
    if len(raw) != 16:
        raise InvalidHandshake(f"Sec-WebSocket-Key {key[:40]!r} is not base64 of 16 bytes")


@dataclass(frozen=True, slots=True)
class ServerHandshakeResult:
    """What a server answers to an accepted upgrade request.

    Attributes:
        headers: the 101 response's header fields, in order.
        subprotocol: the subprotocol chosen, or None.
        deflate: the permessage-deflate parameters agreed, or None.
    """

    headers: tuple[tuple[str, str], ...]
    subprotocol: str | None
    deflate: permessage_deflate.DeflateParameters | None

    def response_bytes(self) -> bytes:
        """Return the whole 101 response head, ready to write.

        Raises:
            ValueError: a header field (from ``extra_headers``) would split the response.
        """
        return encode_response_head(101, self.headers)


def is_websocket_upgrade(head: RequestHead) -> bool:
    """Return whether ``head`` asks for a WebSocket upgrade and carries no body."""
    headers = head.headers
    if "Upgrade" not in headers:  # a plain request: the commonest case
        return False
    if "websocket" not in split_tokens(headers.get_all("Upgrade")):
        return False
    if "Transfer-Encoding" in headers:
        return False
    length = headers.get("Content-Length")
    return length is None or int(length) == 0


def accept_request(
    method: str,
    http_version: str,
    headers: Headers,
    *,
    subprotocols: Sequence[str] | None = None,
    select_subprotocol: SubprotocolSelector | None = None,
    origins: Sequence[str | None] | None = None,
    deflate_config: permessage_deflate.DeflateConfig | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> ServerHandshakeResult:
    """Validate an upgrade request and decide the 101 response (RFC 6455 4.2).

    Args:
        method, http_version, headers: the parsed request head.
        subprotocols: the server's subprotocols in order of preference; the first one the client
            also offered is chosen.
        select_subprotocol: instead of ``subprotocols``, a callable given the client's offered
            subprotocols that returns the one to use, or None.
        origins: allowed Origin values (None in the list allows requests without Origin);
            None allows every origin.
        deflate_config: permessage-deflate settings, or None to never negotiate it.
        extra_headers: more header fields for the 101 response.

    Raises:
        InvalidHandshake: with http_status 400, 403, 405 or 426 and the reason.
    """
    if method != "GET":
        raise InvalidHandshake(
            f"WebSocket handshake requires GET, not {method}", 405, (("Allow", "GET"),)
        )
    if http_version in ("0.9", "1.0"):
        raise InvalidHandshake(f"WebSocket handshake requires HTTP/1.1, not HTTP/{http_version}")
    _single(headers, "Host")
    if "websocket" not in split_tokens(headers.get_all("Upgrade")):
        raise InvalidHandshake(
            "Upgrade header must include websocket", 426, (("Upgrade", "websocket"),)
        )
    if "upgrade" not in split_tokens(headers.get_all("Connection")):
        raise InvalidHandshake("Connection header must include Upgrade")
    version_values = headers.get_all("Sec-WebSocket-Version")
    if version_values != ["13"]:
        found = ", ".join(version_values) or "none"
        raise InvalidHandshake(
            f"unsupported Sec-WebSocket-Version {found}; this server speaks 13",
            426,
            (("Sec-WebSocket-Version", "13"),),
        )
    key = _single(headers, "Sec-WebSocket-Key")
    _check_key(key)
    if origins is not None:
        origin = headers.get("Origin")
        if origin not in origins:
            raise InvalidHandshake(f"Origin {origin!r} is not allowed", 403)

    response: list[tuple[str, str]] = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
    subprotocol = _choose_subprotocol(headers, subprotocols, select_subprotocol)
    if subprotocol is not None:
        response.append(("Sec-WebSocket-Protocol", subprotocol))
    agreed = None
    offers = headers.get_all("Sec-WebSocket-Extensions")
    if deflate_config is not None and offers:
        negotiated = permessage_deflate.server_negotiate(offers, deflate_config)
        if negotiated is not None:
            value, agreed = negotiated
            response.append(("Sec-WebSocket-Extensions", value))
    response.extend(extra_headers)
    return ServerHandshakeResult(tuple(response), subprotocol, agreed)


def _choose_subprotocol(
    headers: Headers,
    subprotocols: Sequence[str] | None,
    select_subprotocol: SubprotocolSelector | None,
) -> str | None:
    offered = [token for token in _comma_list(headers.get_all("Sec-WebSocket-Protocol"))]
    if select_subprotocol is not None:
        chosen = select_subprotocol(offered)
        if chosen is not None and chosen not in offered:
            raise InvalidHandshake(f"selected subprotocol {chosen!r} was not offered", 500)
        return chosen
    if not subprotocols or not offered:
        return None
    for candidate in subprotocols:
        if candidate in offered:
            return candidate
    return None


def _comma_list(values: Iterable[str]) -> list[str]:
    """Split comma-separated values, keeping case (subprotocol names are case-sensitive)."""
    items: list[str] = []
    for value in values:
        for part in value.split(","):
            item = part.strip(" \t")
            if item:
                items.append(item)
    return items


# ---------------------------------------------------------------------------- client side


def build_request(
    host: str,
    resource: str,
    *,
    key: str | None = None,
    origin: str | None = None,
    subprotocols: Sequence[str] | None = None,
    deflate_config: permessage_deflate.DeflateConfig | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> tuple[bytes, str]:
    """Return the upgrade request's bytes and the Sec-WebSocket-Key it carries.

    Args:
        host: the Host header value (with the port when it is not the scheme's default).
        resource: the request target, path and query ("/chat?room=1").

    Raises:
        ValueError: the resource is not a valid request target, or a header field is invalid
            (a name that is not a token; CR, LF or NUL in a value).
    """
    if key is None:
        key = base64.b64encode(os.urandom(16)).decode("ascii")
    fields: list[tuple[str, str]] = [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if origin is not None:
        fields.append(("Origin", origin))
    if subprotocols:
        fields.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    if deflate_config is not None:
        fields.append(("Sec-WebSocket-Extensions", permessage_deflate.client_offer(deflate_config)))
    fields.extend(extra_headers)
    # The HTTP encoder owns the rules of a request head: a target without spaces, controls or
    # non-ASCII, header names that are tokens, values without CR, LF or NUL.
    return encode_request_head("GET", resource, fields), key


@dataclass(frozen=True, slots=True)
class ClientHandshakeResult:
    """What the server agreed to in its 101 response."""

    subprotocol: str | None
    deflate: permessage_deflate.DeflateParameters | None


def verify_response(
    status: int,
    headers: Headers,
    *,
    key: str,
    subprotocols: Sequence[str] | None = None,
    deflate_config: permessage_deflate.DeflateConfig | None = None,
) -> ClientHandshakeResult:
    """Check the server's answer to the upgrade request (RFC 6455 4.1, client side).

    Raises:
        InvalidHandshake: naming the header or value that is wrong.
        NegotiationError: an unoffered subprotocol or extension.
    """
    if status != 101:
        raise InvalidHandshake(f"expected status 101, got {status}")
    if "websocket" not in split_tokens(headers.get_all("Upgrade")):
        raise InvalidHandshake("response Upgrade header does not include websocket")
    if "upgrade" not in split_tokens(headers.get_all("Connection")):
        raise InvalidHandshake("response Connection header does not include Upgrade")
    accept = _single(headers, "Sec-WebSocket-Accept")
    if accept != accept_key(key):
        raise InvalidHandshake(f"wrong Sec-WebSocket-Accept {accept[:40]!r}")
    chosen = _comma_list(headers.get_all("Sec-WebSocket-Protocol"))
    subprotocol = None
    if chosen:
        if len(chosen) > 1:
            raise NegotiationError(f"server chose several subprotocols: {', '.join(chosen)}")
        if not subprotocols or chosen[0] not in subprotocols:
            raise NegotiationError(f"server chose unoffered subprotocol {chosen[0]!r}")
        subprotocol = chosen[0]
    extensions = headers.get_all("Sec-WebSocket-Extensions")
    agreed = None
    if extensions:
        if deflate_config is None:
            raise NegotiationError(f"server accepted unoffered extensions {extensions!r}")
        agreed = permessage_deflate.client_verify(extensions, deflate_config)
    return ClientHandshakeResult(subprotocol, agreed)
