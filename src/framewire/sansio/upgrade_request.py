"""The common WebSocket upgrade request in one call, with a C twin: the handshake's fast path.

A server's first read nearly always holds a whole upgrade request of one shape: ``GET`` and
``HTTP/1.1``, one Host, ``Upgrade: websocket``, a Connection list with ``upgrade``, version 13,
a Sec-WebSocket-Key of 22 base64 characters and ``==``, and no body. parse_upgrade_request()
parses and checks that shape and computes Sec-WebSocket-Accept in one step. For anything else,
including every malformed request, it returns None: the general path (RequestParser, then
handshake.accept_request) parses the same bytes again and answers with the precise error.

Shaped for speed (benchmarks/run.py, handshakes per second).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from framewire.sansio.field_lines import py_parse_field_lines
from framewire.sansio.handshake import accept_key
from framewire.sansio.headers import split_tokens
from framewire.sansio.speedups import ENABLED

__all__ = ["UpgradeRequest", "parse_upgrade_request", "py_parse_upgrade_request"]

# (target, fields, index, Sec-WebSocket-Accept value, length of the head in bytes); fields and
# index are what Headers.from_parsed() takes.
UpgradeRequest = tuple[str, list[tuple[str, str]], dict[str, list[str]], bytes, int]

_REQUEST_LINE_RE = re.compile(rb"GET ([\x21-\x7e]+) HTTP/1\.1\r\n")
_KEY_RE = re.compile(r"[A-Za-z0-9+/]{22}==")


def py_parse_upgrade_request(
    data: bytes | bytearray | memoryview,
    max_request_line: int,
    max_head_size: int,
    max_header_line: int,
    max_headers: int,
) -> UpgradeRequest | None:
    """Parse a whole plain upgrade request at the start of ``data``; None for anything else.

    The limits are HTTPLimits' of the same names: a request over any of them is left to the
    general path, which answers with the error that names the limit.
    """
    data = bytes(data)
    line = _REQUEST_LINE_RE.match(data)
    if line is None or line.end() - 2 > max_request_line:
        return None
    fields_start = line.end()
    blank = data.find(b"\r\n\r\n", fields_start - 2)
    if blank < fields_start or blank + 4 > max_head_size:
        return None
    parsed = py_parse_field_lines(data, fields_start, blank, max_header_line, max_headers)
    if parsed is None:
        return None
    fields, index = parsed
    key = _upgrade_key(index)
    if key is None:
        return None
    target = line.group(1).decode("ascii")
    return target, fields, index, accept_key(key).encode("ascii"), blank + 4


def _upgrade_key(index: dict[str, list[str]]) -> str | None:
    """The Sec-WebSocket-Key of a plain upgrade request's parsed fields, else None."""
    get = index.get
    host, upgrade, version, key = (
        get("host"),
        get("upgrade"),
        get("sec-websocket-version"),
        get("sec-websocket-key"),
    )
    if (
        host is None
        or len(host) != 1
        or "transfer-encoding" in index
        or "content-length" in index
        or upgrade is None
        or len(upgrade) != 1
        or upgrade[0].lower() != "websocket"
        or "upgrade" not in split_tokens(get("connection", ()))
        or version != ["13"]
        or key is None
        or len(key) != 1
        or _KEY_RE.fullmatch(key[0]) is None
    ):
        return None
    return key[0]


parse_upgrade_request: Callable[
    [bytes | bytearray | memoryview, int, int, int, int], UpgradeRequest | None
] = py_parse_upgrade_request
if ENABLED:
    from framewire._speedups import parse_upgrade_request as c_parse_upgrade_request

    parse_upgrade_request = c_parse_upgrade_request
