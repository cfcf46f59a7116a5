"""ServerHandshake: the server's side of the opening handshake, over asyncio (RFC 6455 4.2).

aio/server.py hands it each WebSocket upgrade request that the HTTP/1 connection (aio/http1/)
parsed. accept() validates it with the sans-I/O handshake (sansio/handshake.py), writes the 101
or the refusal, and returns the WebSocket that is to take over the transport. A plain request
that sansio/upgrade_request.py parsed and checked whole goes to accept_plain() first: without a
subprotocol, an origin or an extension to negotiate, the 101 is accept_request()'s with only
its Sec-WebSocket-Accept value changed. The client's side is aio/ws/client.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from framewire.aio.timers import Scheduler
from framewire.aio.ws.options import WebSocketOptions, deflate_config_for
from framewire.aio.ws.websocket import Request, WebSocket
from framewire.exceptions import InvalidHandshake
from framewire.sansio.connection import Role
from framewire.sansio.handshake import SubprotocolSelector, accept_request
from framewire.sansio.headers import Headers
from framewire.sansio.http11 import encode_response_head, simple_response
from framewire.sansio.http11_events import RequestHead

__all__ = ["ServerHandshake", "plain_101_around_accept"]

# Enum members as globals, read per connection: see _OPEN in sansio/connection.py.
_SERVER = Role.SERVER

logger = logging.getLogger("framewire.server")

INTERNAL_ERROR = simple_response(500, "internal server error", [("Connection", "close")])


class ServerHandshake:
    """Accepts or refuses upgrade requests with one server's settings.

    Args:
        options: the settings of the WebSockets it makes (compression among them).
        subprotocols, select_subprotocol, origins: negotiation, as serve() takes them.
        extra_headers: more fields for the 101 response.

    Raises:
        ValueError: a field of ``extra_headers`` would split the 101 response (CR, LF, a name
            that is not a token); raised here rather than at every handshake.
    """

    def __init__(
        self,
        options: WebSocketOptions,
        *,
        subprotocols: Sequence[str] | None,
        select_subprotocol: SubprotocolSelector | None,
        origins: Sequence[str | None] | None,
        extra_headers: tuple[tuple[str, str], ...],
    ) -> None:
        encode_response_head(101, extra_headers)
        self.options = options
        self.subprotocols = subprotocols
        self.select_subprotocol = select_subprotocol
        self.origins = origins
        self.extra_headers = extra_headers
        self.deflate = deflate_config_for(options.compression)
        self._plain_101 = plain_101_around_accept(extra_headers)
        # Without these the fast path answers every plain upgrade request the same way.
        self._negotiates = bool(subprotocols or select_subprotocol or origins is not None)

    def accept(
        self, head: RequestHead, transport: asyncio.Transport, timers: Scheduler | None
    ) -> WebSocket | None:
        """Validate the upgrade request and write the 101; None when it was refused (the
        refusal is written and the transport closed)."""
        try:
            result = accept_request(
                head.method,
                head.http_version,
                head.headers,
                subprotocols=self.subprotocols,
                select_subprotocol=self.select_subprotocol,
                origins=self.origins,
                deflate_config=self.deflate,
                extra_headers=self.extra_headers,
            )
        except InvalidHandshake as exc:
            peer = transport.get_extra_info("peername")
            logger.debug("rejected handshake from %s: %s", peer, exc)
            headers = [*exc.headers, ("Connection", "close")]
            try:
                refusal = simple_response(exc.http_status, str(exc), headers)
            except ValueError:
                # Raised by a select_subprotocol with a field that would split the response.
                logger.exception("invalid InvalidHandshake status or headers")
                refusal = INTERNAL_ERROR
            transport.write(refusal)
            transport.close()
            return None
        except Exception:
            # A select_subprotocol (user code) that failed: answer rather than leave the
            # client waiting for a response that never comes.
            logger.exception("the opening handshake failed")
            transport.write(INTERNAL_ERROR)
            transport.close()
            return None
        options = self.options
        connection = options.make_connection(_SERVER, result.deflate)
        transport.write(result.response_bytes())
        return options.make_websocket(
            connection, Request(head.target, head.headers), result.subprotocol, None, timers
        )

    def accept_plain(
        self,
        target: str,
        headers: Headers,
        accept: bytes,
        transport: asyncio.Transport,
        timers: Scheduler | None,
    ) -> WebSocket | None:
        """Write the 101 for a plain upgrade request that sansio/upgrade_request.py parsed and
        checked, whose Sec-WebSocket-Accept value is ``accept``; return its WebSocket.

        None, with nothing written, when there is something to negotiate (subprotocols,
        origins, an extension offer with compression on): accept() the request then.
        """
        if self._negotiates or (self.deflate is not None and "Sec-WebSocket-Extensions" in headers):
            return None
        before, after = self._plain_101
        transport.write(before + accept + after)
        options = self.options
        return options.make_websocket(
            options.make_connection(_SERVER, None), Request(target, headers), None, None, timers
        )


def plain_101_around_accept(extra_headers: Iterable[tuple[str, str]]) -> tuple[bytes, bytes]:
    """accept_request()'s 101 response when there is no subprotocol and no extension, split
    where its Sec-WebSocket-Accept value goes."""
    marker = "<accept>"  # the first field after two fixed ones: nothing before it can hold this
    head = encode_response_head(
        101,
        [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", marker),
            *extra_headers,
        ],
    )
    before, _, after = head.partition(marker.encode("ascii"))
    return before, after
