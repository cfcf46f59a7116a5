"""Every size, count and time limit of framewire, in one place.

Sizes are bytes, durations seconds. docs/topics/limits.md is the same table for users, and
tests/test_limits_doc.py fails when the two disagree. Each limit's field name appears in the
error raised when it is hit, so a user who sees "header block of 70000 bytes exceeds
max_head_size=65536" knows which option to change. Count limits sit beside byte limits on
purpose: the advisories of 2024-2026 against other servers were mostly about counts (fragments,
headers, chunks, parts). The chat app's own limits are ChatLimits (framewire/chat/limits.py).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConnectionLimits", "HTTPLimits", "WebSocketLimits"]


@dataclass(frozen=True, slots=True)
class WebSocketLimits:
    """Limits of one WebSocket connection.

    Attributes:
        max_message_size: largest message, in bytes after decompression (1009 past it);
            None for no limit.
        max_fragments: most frames in one fragmented message (1009 past it); None derives it
            from max_message_size as one fragment per 16 bytes, at least 4096, so a 4 MiB
            message in 65,536 fragments of 64 bytes passes with max_message_size >= 1 MiB.
        max_control_payload: RFC 6455 5.5 caps control frames at 125 bytes; not configurable.
    """

    max_message_size: int | None = 1 << 20
    max_fragments: int | None = None
    max_control_payload: int = 125

    def fragment_limit(self) -> int | None:
        """Return the effective cap on frames per message (None: unlimited)."""
        if self.max_fragments is not None:
            return self.max_fragments
        if self.max_message_size is None:
            return None
        return max(4096, self.max_message_size // 16)


@dataclass(frozen=True, slots=True)
class HTTPLimits:
    """Limits of HTTP/1.1 request parsing and the HTTP application layer.

    Attributes:
        max_request_line: longest request line, in bytes (414 past it).
        max_header_line: longest single header field line (431).
        max_headers: most header fields in one request, or trailer fields (431).
        max_head_size: largest whole header block, request line included (431).
        max_body_size: largest request body unless a route says otherwise (413).
        max_chunks: most chunks in one chunked body (413); every chunk costs a little bookkeeping,
            so a body of a million 1-byte chunks is refused before it costs much.
        max_chunk_line: longest chunk-size line, extensions included (400).
        max_multipart_parts: most parts in one multipart body (413).
        max_part_headers: most header fields in one multipart part (431 -> answered as 400/413).
        max_part_header_size: largest header block of one multipart part.
        max_form_size: total bytes of all non-file multipart fields together (413).
        max_upload_size: total bytes of all files in one multipart request (413).
        header_timeout: seconds to receive a complete request head (408).
        keepalive_timeout: seconds an idle keep-alive connection is kept open.
        body_timeout: seconds without any body bytes before the request fails (408).
        linger_timeout: seconds to keep draining a client's input after answering an error
            with a half-close, so that the client reads the answer instead of a TCP reset.
    """

    max_request_line: int = 8190
    max_header_line: int = 8190
    max_headers: int = 100
    max_head_size: int = 65536
    max_body_size: int = 1 << 20
    max_chunks: int = 1 << 20
    max_chunk_line: int = 1024
    max_multipart_parts: int = 1000
    max_part_headers: int = 16
    max_part_header_size: int = 8192
    max_form_size: int = 1 << 20
    max_upload_size: int = 1 << 30
    header_timeout: float = 10.0
    keepalive_timeout: float = 5.0
    body_timeout: float = 60.0
    linger_timeout: float = 2.0


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Limits of a server's connections, and of each WebSocket connection's buffers and timers.

    These are the defaults of the keyword arguments of ``serve()`` and ``connect()`` of the same
    names; this table only gives them one home.

    Attributes:
        max_connections: most open connections of one server, HTTP and WebSocket together; past
            it a new connection gets 503 ("server full") and is closed, while the others are
            served as before.
        max_queue: complete messages received and not yet read before reading pauses.
        max_queue_bytes: bytes received and not yet read before reading pauses (None: 4 x
            max_message_size, at least 1 MiB).
        write_limit: write-buffer high-water mark; ``send()`` waits above it.
        open_timeout: seconds for the opening handshake.
        ping_interval: seconds between keepalive pings (None: no keepalive).
        ping_timeout: seconds to wait for the pong before closing with 1011 (None: forever).
        close_timeout: seconds to wait for the closing handshake before dropping the connection.
    """

    max_connections: int = 10000
    max_queue: int = 16
    max_queue_bytes: int | None = None
    write_limit: int = 64 * 1024
    open_timeout: float = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = 10.0
