"""The handlers an HTTP/1 connection calls: the HTTP handler through call_handler(), the
defaults when there is none, and the types of the upgrade handlers it hands a transport to.

call_handler() turns what a handler raises into a response (HTTPError: its status and reason;
anything else: 500, logged), as it does a return value that is not a Response; a
ConnectionError goes through, for the connection to close. Without an HTTP handler a server
answers plain requests with 426 (only WebSocket is served here), and without an upgrade handler
it answers upgrade requests with 426 too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from framewire.exceptions import HTTPError
from framewire.http.messages import HTTPHandler, Request, Response
from framewire.sansio.headers import Headers
from framewire.sansio.http11_events import RequestHead

__all__ = [
    "FastUpgradeHandler",
    "UpgradeHandler",
    "call_handler",
    "text_response",
    "upgrade_required",
    "upgrade_unsupported",
]

logger = logging.getLogger("framewire.http")

UpgradeHandler = Callable[[RequestHead, asyncio.Transport, bytes], None]
"""Called with the upgrade request's head, the transport, and the bytes received after the head.

It owns the transport from then on (it will call transport.set_protocol()).
"""

FastUpgradeHandler = Callable[[str, Headers, bytes, asyncio.Transport, bytes], None]
"""Called instead of the UpgradeHandler for a plain upgrade request that arrived whole (see
sansio/upgrade_request.py): with its target, headers, Sec-WebSocket-Accept value, the transport,
and the bytes received after the head.
"""


def text_response(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
    """Return a short text/plain Response (a newline is appended to ``text``)."""
    fields = [("Content-Type", "text/plain; charset=utf-8"), *(headers or [])]
    return Response(status, fields, (text + "\n").encode())


async def call_handler(request: Request, handler: HTTPHandler) -> Response:
    """Return ``handler(request)``'s response, or the response for what went wrong.

    Raises:
        ConnectionError: the client went away (the handler read its body, for instance).
    """
    try:
        response = await handler(request)
    except HTTPError as error:
        return text_response(error.http_status, error.reason)
    except ConnectionError:
        raise
    except Exception:
        logger.exception("error in HTTP handler for %s %s", request.method, request.target)
        return text_response(500, "internal server error")
    if not isinstance(response, Response):
        logger.error("HTTP handler returned %r, not a Response", type(response).__name__)
        return text_response(500, "internal server error")
    return response


async def upgrade_required(request: Request) -> Response:
    """Answer requests when the server has no HTTP handler: only WebSocket is served."""
    return text_response(
        426,
        "this server only accepts WebSocket connections",
        [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
    )


async def upgrade_unsupported(request: Request) -> Response:
    """Answer upgrade requests when the server has no upgrade handler."""
    return text_response(426, "WebSocket is not served here")
