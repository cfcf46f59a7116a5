"""HTTP1ServerProtocol: the asyncio HTTP/1.1 server connection.

The protocol pumps bytes from the transport into a sans-I/O RequestParser and acts on its
events. One task runs per request, and only while there is a request (none while idle).
Requests are answered in order: after a request's EndOfMessage the parser pauses, and the next
request is parsed only once the response is written, so pipelined requests are answered in
order and a WebSocket upgrade is handed off only after earlier responses went out.

Body memory is bounded by BodyChannel (reading pauses while the handler does not consume), and
bytes pipelined behind a busy request pause reading past max_head_size. A client that
disconnects mid-body makes Request.stream() raise ConnectionResetError.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable

from framewire.aio.http1.body import BodyChannel
from framewire.aio.http1.handler import (
    FastUpgradeHandler,
    UpgradeHandler,
    call_handler,
    upgrade_required,
    upgrade_unsupported,
)
from framewire.aio.http1.send import send_response
from framewire.aio.http1.transport import State, TransportProtocol
from framewire.aio.timers import Scheduler
from framewire.exceptions import HTTPError
from framewire.http.messages import HTTPHandler, Request
from framewire.sansio.handshake import is_websocket_upgrade
from framewire.sansio.headers import Headers
from framewire.sansio.http11 import (
    BadRequest,
    BodyData,
    EndOfMessage,
    RequestHead,
    RequestParser,
    simple_response,
)
from framewire.sansio.limits import HTTPLimits
from framewire.sansio.upgrade_request import parse_upgrade_request

__all__ = ["FastUpgradeHandler", "HTTP1ServerProtocol", "UpgradeHandler"]

# Enum members as globals, read per message or per connection: see _OPEN in sansio/connection.py.
_WAITING, _BUSY = State.WAITING, State.BUSY
_CLOSED, _HANDED_OFF = State.CLOSED, State.HANDED_OFF

logger = logging.getLogger("framewire.http")

DEFAULT_LIMITS = HTTPLimits()
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_PARSER_BODY_LIMIT = 1 << 62  # the parser's limit is set per request from Request.max_body_size


@functools.lru_cache(maxsize=16)
def _parser_limits(limits: HTTPLimits) -> HTTPLimits:
    """Return ``limits`` without a body limit, made once per limits object (per connection is
    measurably slow in benchmarks/run.py's handshakes-per-second scenario)."""
    return dataclasses.replace(limits, max_body_size=_PARSER_BODY_LIMIT)


class HTTP1ServerProtocol(TransportProtocol):
    """One HTTP/1.1 server connection: parse requests, run handlers, write responses.

    Args:
        http_handler: called with each non-upgrade request; None answers 426 Upgrade Required.
        upgrade_handler: called once for a WebSocket upgrade request, after which this protocol
            never touches the transport again; None answers such requests with 426.
        limits: size, count and time limits (see HTTPLimits).
        server_header: value of the Server header of responses, if any.
        fast_upgrade: called for a plain upgrade request that arrives whole, instead of
            ``upgrade_handler``; None sends every upgrade request to ``upgrade_handler``.
        timers: what arms the connection's timers (default: the event loop).
        registry: a set that holds this protocol from connection_made() until the connection
            is closed or handed off (a server closes those at shutdown).
        refusal: called by connection_made(), once this protocol is in ``registry``; when it
            returns a response, that response is sent and the connection closed (a server
            past max_connections).
    """

    _request_parser: RequestParser | None = None  # made when first needed
    _task: asyncio.Task[None] | None = None
    _head: RequestHead | None = None
    _channel: BodyChannel | None = None
    _upgrade_head: RequestHead | None = None
    _message_complete = False
    _continue_sent = False
    _closing = False
    _bytes_while_busy = 0
    _peer: tuple[str, int] | None = None
    _peer_known = False

    def __init__(
        self,
        http_handler: HTTPHandler | None,
        upgrade_handler: UpgradeHandler | None,
        limits: HTTPLimits = DEFAULT_LIMITS,
        *,
        server_header: str | None = None,
        fast_upgrade: FastUpgradeHandler | None = None,
        timers: Scheduler | None = None,
        registry: set[HTTP1ServerProtocol] | None = None,
        refusal: Callable[[], bytes | None] | None = None,
    ) -> None:
        super().__init__(timers)
        self._registry = registry
        self._refusal = refusal
        self._http_handler = http_handler
        self._upgrade_handler = upgrade_handler
        self._fast_upgrade = fast_upgrade if upgrade_handler is not None else None
        self._limits = limits
        self._linger_timeout = limits.linger_timeout
        self._server_header = server_header

    # asyncio.Protocol callbacks.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the header timer of the first request."""
        super().connection_made(transport)
        if self._registry is not None:
            self._registry.add(self)
        if self._refusal is not None:
            refusal = self._refusal()
            if refusal is not None:
                if self._registry is not None:
                    self._registry.discard(self)  # not served: it does not count
                self.write(refusal)
                self._close_transport()  # lingering: the client reads the answer, not a reset
                return
        self._start_timer(self._limits.header_timeout, self._on_header_timeout)

    @property
    def _parser(self) -> RequestParser:
        # Made on first use: a plain WebSocket upgrade never needs it (buffer_updated()).
        parser = self._request_parser
        if parser is None:
            parser = self._request_parser = RequestParser(_parser_limits(self._limits))
        return parser

    def _remote_address(self) -> tuple[str, int] | None:
        if not self._peer_known:  # asked once per connection, not per request
            transport = self._transport
            peer = transport.get_extra_info("peername") if transport is not None else None
            if isinstance(peer, tuple) and len(peer) >= 2:
                self._peer = (str(peer[0]), int(peer[1]))
            self._peer_known = transport is not None
        return self._peer

    def buffer_updated(self, nbytes: int) -> None:
        """Hand a plain upgrade request that arrived whole to fast_upgrade; else as any data."""
        view = self._receive_buffer[:nbytes]
        parser = self._request_parser
        if (
            self._fast_upgrade is not None
            and self._state is _WAITING
            and (parser is None or parser.is_idle)
        ):
            limits = self._limits
            upgrade = parse_upgrade_request(
                view,
                limits.max_request_line,
                limits.max_head_size,
                limits.max_header_line,
                limits.max_headers,
            )
            if upgrade is not None:
                target, fields, index, accept, head_length = upgrade
                self._hand_off(
                    self._fast_upgrade,
                    (target, Headers.from_parsed(fields, index), accept),
                    bytes(view[head_length:]),
                )
                return
        self.data_received(bytes(view))

    def data_received(self, data: bytes) -> None:
        """Feed the parser and act on its events."""
        if self._state in (_CLOSED, _HANDED_OFF):
            return  # lingering close: drop what the client still sends
        if self._state is _BUSY and self._message_complete:
            # Pipelined bytes wait in the parser: bound them by pausing the socket.
            self._bytes_while_busy += len(data)
            if self._bytes_while_busy > self._limits.max_head_size:
                self._set_reading_paused("pipelined", True)
        self._parser.receive_data(data)
        self._process_events()
        self._check_parse_budget()
        if self._state is _WAITING and self._timer_kind == "keepalive":
            # Part of a head arrived on an idle connection: it now has header_timeout to
            # finish. (A whole head cancelled the idle timer already, without this step.)
            self._start_timer(self._limits.header_timeout, self._on_header_timeout)

    def _check_parse_budget(self) -> None:
        """When the parser stopped at its step budget, finish parsing in later loop turns."""
        if self._parser.has_more_to_parse and self._state not in (_CLOSED, _HANDED_OFF):
            self._set_reading_paused("parse-budget", True)
            self._loop.call_soon(self._parse_more)
        else:
            self._set_reading_paused("parse-budget", False)

    def _parse_more(self) -> None:
        if self._state in (_CLOSED, _HANDED_OFF):
            return
        self._parser.parse_more()
        self._process_events()
        self._check_parse_budget()

    def eof_received(self) -> bool:
        """Handle a half-close: finish the current request, then close."""
        self._eof = True
        if self._state is _CLOSED:
            return False  # the end of a lingering close
        if self._channel is not None and not self._message_complete:
            self._channel.fail(ConnectionResetError("client closed the connection mid-body"))
            self._closing = True
        self._parser.receive_eof()
        self._process_events()
        if self._state is _WAITING:
            self._close_transport()
        return True  # keep the transport open to write the response in progress

    def connection_lost(self, exc: Exception | None) -> None:
        """Wake anything waiting on the connection; the request task ends on its own."""
        self._state = _CLOSED
        self._cancel_timer()
        if self._registry is not None:
            self._registry.discard(self)
        if self._channel is not None:
            self._channel.fail(ConnectionResetError("client disconnected"))
        self._fail_drain_waiter(ConnectionResetError("client disconnected"))

    # Public.

    def close(self) -> None:
        """Close gracefully: now when idle, else after the response in progress."""
        if self._state in (_HANDED_OFF, _CLOSED):
            return
        self._closing = True
        if self._state is _WAITING:
            self._close_transport()

    def abort(self) -> None:
        """Drop the connection now, even mid-request (a server's shutdown grace has passed).

        The request's handler sees the client as gone (ConnectionResetError from the body).
        """
        if self._state is _HANDED_OFF:
            return
        transport = self._transport
        if transport is not None and not transport.is_closing():
            self._cancel_timer()
            transport.abort()

    # Parser events.

    def _process_events(self) -> None:
        for event in self._parser.events_received():
            if isinstance(event, RequestHead):
                self._on_head(event)
            elif isinstance(event, BodyData):
                if self._channel is not None:
                    self._channel.feed(event.data)
            elif isinstance(event, EndOfMessage):
                self._on_end_of_message()
            else:
                self._on_bad_request(event)

    def _on_head(self, head: RequestHead) -> None:
        self._cancel_timer()
        self._state = _BUSY
        self._head = head
        self._message_complete = False
        self._continue_sent = False
        upgrade = is_websocket_upgrade(head)
        if upgrade and self._upgrade_handler is not None:
            self._upgrade_head = head  # handed off at EndOfMessage, which follows at once
            return
        if upgrade:
            handler: HTTPHandler = upgrade_unsupported
        else:
            handler = self._http_handler or upgrade_required
        self._channel = BodyChannel(
            self._set_body_paused,
            self._on_first_body_read,
            self._change_body_limit,
            self._limits.body_timeout,
        )
        request = Request(
            head,
            self._channel,
            remote_address=self._remote_address(),
            max_body_size=self._limits.max_body_size,
        )
        loop = self._loop
        self._task = loop.create_task(self._run_request(request, handler))

    def _on_end_of_message(self) -> None:
        self._message_complete = True
        if self._channel is not None:
            self._channel.finish()
        head = self._upgrade_head
        if head is not None and self._transport is not None:
            assert self._upgrade_handler is not None
            self._hand_off(self._upgrade_handler, (head,), self._parser.take_unparsed())

    def _hand_off(
        self, handler: Callable[..., None], request: tuple[object, ...], leftover: bytes
    ) -> None:
        """Give the transport to an upgrade handler: ``handler(*request, transport, leftover)``."""
        transport = self._transport
        assert transport is not None
        self._state = _HANDED_OFF
        self._cancel_timer()
        if self._registry is not None:
            self._registry.discard(self)
        if self._read_pause_reasons:
            self._read_pause_reasons = frozenset()
            transport.resume_reading()
        try:
            handler(*request, transport, leftover)
        except Exception:
            logger.exception("error in the upgrade handler")
            transport.close()

    def _on_bad_request(self, event: BadRequest) -> None:
        if self._channel is not None and not self._message_complete:
            # Mid-body: the handler sees the error when it reads; we close afterwards.
            self._channel.fail(HTTPError(event.http_status, event.reason))
            self._closing = True
            return
        if self._state is _WAITING:
            self.write(simple_response(event.http_status, event.reason, [("Connection", "close")]))
            self._close_transport()

    # Body callbacks.

    def _set_body_paused(self, paused: bool) -> None:
        self._set_reading_paused("body", paused)

    def _change_body_limit(self, max_body_size: int) -> None:
        self._parser.set_max_body_size(max_body_size)
        self._process_events()  # a body over the limit fails the channel now

    def _on_first_body_read(self, max_body_size: int) -> None:
        self._change_body_limit(max_body_size)
        channel = self._channel
        head = self._head
        if channel is None or head is None or channel.complete or channel.error is not None:
            return
        if head.expects_continue and head.http_version == "1.1":
            self._continue_sent = True
            self.write(_CONTINUE)

    # The request task.

    async def _run_request(self, request: Request, handler: HTTPHandler) -> None:
        keep_alive = False
        try:
            response = await call_handler(request, handler)
            keep_alive = self._prepare_body_end(request)
            try:
                keep_alive = await send_response(
                    self,
                    request.head,
                    response,
                    keep_alive=keep_alive,
                    server_header=self._server_header,
                )
            except ValueError:
                logger.exception("invalid response for %s %s", request.method, request.target)
                self.write(simple_response(500, "internal server error", [("Connection", "close")]))
                keep_alive = False
            if keep_alive and not self._message_complete:
                assert self._channel is not None
                keep_alive = await self._channel.wait_complete()
        except ConnectionError:
            keep_alive = False
        except asyncio.CancelledError:
            self._close_transport(linger=False)
            raise
        except Exception:
            logger.exception("error while sending the response to %s", request.target)
            keep_alive = False
        finally:
            self._task = None
        self._after_response(keep_alive)

    def _prepare_body_end(self, request: Request) -> bool:
        """Decide whether the connection can outlive this request; start discarding the body."""
        channel = self._channel
        keep_alive = request.head.keep_alive and not self._closing
        if channel is None or self._message_complete:
            return keep_alive and (channel is None or channel.error is None)
        if channel.error is not None or not keep_alive:
            return False
        head = request.head
        if head.expects_continue and not self._continue_sent:
            return False  # RFC 9110 10.1.1: the client may never send the body
        channel.discard()
        # Discard at most max_body_size: a bigger body costs less to cut by closing.
        self._parser.set_max_body_size(request.max_body_size)
        self._process_events()
        return channel.error is None

    def _after_response(self, keep_alive: bool) -> None:
        self._head = None
        self._channel = None
        if not keep_alive or self._closing or self._state is not _BUSY:
            self._close_transport()
            return
        self._state = _WAITING
        buffered = self._bytes_while_busy
        self._bytes_while_busy = 0
        self._set_reading_paused("pipelined", False)
        self._set_reading_paused("body", False)
        parser = self._parser
        parser.next_request()
        if not parser.is_idle:  # a pipelined request, or part of one, is buffered
            self._process_events()
        self._check_parse_budget()
        if self._state is not _WAITING:
            return
        if self._eof:
            self._close_transport()
        elif buffered:
            self._start_timer(self._limits.header_timeout, self._on_header_timeout)
        else:
            self._start_timer(self._limits.keepalive_timeout, self._close_idle, "keepalive")

    # Helpers.

    def _on_header_timeout(self) -> None:
        self._timer = None
        if self._state is _WAITING:
            timeout = self._limits.header_timeout
            reason = f"request head not received within header_timeout={timeout}"
            self.write(simple_response(408, reason, [("Connection", "close")]))
            self._close_transport()
