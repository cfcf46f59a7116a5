"""WebSocketOptions: the per-connection settings shared by serve() and connect()."""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any

from framewire.aio.timers import Scheduler
from framewire.aio.ws.websocket import Request, WebSocket
from framewire.sansio.connection import Connection, Role
from framewire.sansio.deflate import DeflateConfig, DeflateParameters, PerMessageDeflate
from framewire.sansio.headers import Headers
from framewire.sansio.limits import ConnectionLimits, WebSocketLimits

__all__ = ["WebSocketOptions", "deflate_config_for"]

_DEFAULT_DEFLATE = DeflateConfig()
_WS = WebSocketLimits()
_CONNECTION = ConnectionLimits()


@functools.lru_cache(maxsize=64)
def _limits(max_message_size: int | None, max_fragments: int | None) -> WebSocketLimits:
    """One WebSocketLimits per setting, shared (it is frozen): made per connection, it showed
    in benchmarks/run.py's handshakes per second."""
    return WebSocketLimits(max_message_size=max_message_size, max_fragments=max_fragments)


def deflate_config_for(compression: str | DeflateConfig | None) -> DeflateConfig | None:
    """Return the DeflateConfig for a ``compression`` option ("deflate", None or a config).

    Raises:
        ValueError: an unknown compression name.
    """
    if compression is None:
        return None
    if isinstance(compression, DeflateConfig):
        return compression
    if compression == "deflate":
        return _DEFAULT_DEFLATE
    raise ValueError(f"unsupported compression {compression!r}: use 'deflate' or None")


@dataclass(frozen=True, slots=True)
class WebSocketOptions:
    """Settings of each WebSocket connection (sizes in bytes, durations in seconds).

    See serve() for what each one means; the defaults come from WebSocketLimits and
    ConnectionLimits (framewire/sansio/limits.py).
    """

    compression: str | DeflateConfig | None = "deflate"
    max_message_size: int | None = _WS.max_message_size
    max_fragments: int | None = _WS.max_fragments
    max_queue: int = _CONNECTION.max_queue
    max_queue_bytes: int | None = _CONNECTION.max_queue_bytes
    write_limit: int = _CONNECTION.write_limit
    ping_interval: float | None = _CONNECTION.ping_interval
    ping_timeout: float | None = _CONNECTION.ping_timeout
    open_timeout: float = _CONNECTION.open_timeout
    close_timeout: float = _CONNECTION.close_timeout

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> WebSocketOptions:
        """Build options from keyword arguments; TypeError names any unknown one."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
        options = cls(**kwargs)
        deflate_config_for(options.compression)  # validate early
        return options

    def limits(self) -> WebSocketLimits:
        """Return the sans-I/O limits these options imply."""
        return _limits(self.max_message_size, self.max_fragments)

    def make_connection(self, role: Role, agreed: DeflateParameters | None) -> Connection:
        """Return the sans-I/O connection for a finished handshake.

        Args:
            role: which end this is.
            agreed: the permessage-deflate parameters the handshake agreed, or None.
        """
        deflate = None
        if agreed is not None:
            config = deflate_config_for(self.compression)
            assert config is not None, "deflate agreed without a compression config"
            deflate = PerMessageDeflate(agreed, is_server=role is Role.SERVER, config=config)
        return Connection(
            role,
            limits=self.limits(),
            deflate=deflate,
            stream_messages=True,
            defer_failure=True,
        )

    def make_websocket(
        self,
        connection: Connection,
        request: Request | None,
        subprotocol: str | None,
        response_headers: Headers | None = None,
        timers: Scheduler | None = None,
    ) -> WebSocket:
        """Return a WebSocket for ``connection`` with these settings (``timers``: see
        WebSocket)."""
        return WebSocket(
            connection,
            request=request,
            subprotocol=subprotocol,
            response_headers=response_headers,
            max_queue=self.max_queue,
            max_queue_bytes=self.max_queue_bytes,
            write_limit=self.write_limit,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=self.close_timeout,
            timers=timers,
        )
