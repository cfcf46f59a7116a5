"""Serializers for HTTP/1.1 heads and chunks; they refuse values that would split a message."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from http import HTTPStatus

from framewire.sansio.http11_grammar import INVALID_VALUE_RE, TOKEN_RE
from framewire.sansio.speedups import ENABLED

__all__ = [
    "LAST_CHUNK",
    "encode_chunk",
    "encode_request_head",
    "encode_response_head",
    "py_encode_fields",
    "simple_response",
    "status_phrase",
]

LAST_CHUNK = b"0\r\n\r\n"
"""The last chunk of a chunked body, with an empty trailer section."""

_TARGET_RE = re.compile(rb"[\x21-\x7e]+")


_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def status_phrase(status: int) -> str:
    """Return the standard reason phrase of ``status``, or '' when it has none."""
    return _PHRASES.get(status, "")


def py_encode_fields(fields: Iterable[tuple[str, str]]) -> bytes:
    """Return header fields as CRLF-terminated lines.

    Raises:
        ValueError: a name is not a token or a value holds CR, LF, NUL or another control
            character (this would let a value inject headers: response splitting).
    """
    lines = []
    for name, value in fields:
        if not name.isascii():
            raise ValueError(f"invalid header name: {name!r}")
        raw_name = name.encode("ascii")
        raw_value = value.encode("latin-1")
        if TOKEN_RE.fullmatch(raw_name) is None:
            raise ValueError(f"invalid header name: {name!r}")
        if INVALID_VALUE_RE.search(raw_value) is not None:
            raise ValueError(f"invalid character in the value of header {name!r}")
        lines.append(b"%s: %s\r\n" % (raw_name, raw_value))
    return b"".join(lines)


_c_encode_fields: Callable[[Iterable[tuple[str, str]]], bytes | None] | None = None
if ENABLED:
    from framewire._speedups import encode_fields as c_encode_fields

    _c_encode_fields = c_encode_fields


def _encode_fields(headers: Iterable[tuple[str, str]]) -> bytes:
    # The C twin takes a list or tuple of valid fields and returns None for anything else,
    # which py_encode_fields then encodes or names the error of.
    if _c_encode_fields is not None:
        encoded = _c_encode_fields(headers)
        if encoded is not None:
            return encoded
    return py_encode_fields(headers)


def encode_response_head(
    status: int, headers: Iterable[tuple[str, str]], reason: str | None = None
) -> bytes:
    """Return a response status line and header block, final blank line included.

    Args:
        status: a three-digit status code.
        headers: the header fields, in order; nothing is added.
        reason: the reason phrase; None uses the standard phrase of ``status``.

    Raises:
        ValueError: the status, reason or a header would produce an invalid head.
    """
    if not 100 <= status <= 999:
        raise ValueError(f"invalid status code: {status}")
    if reason is None:
        reason = status_phrase(status)
    raw_reason = reason.encode("latin-1")
    if INVALID_VALUE_RE.search(raw_reason) is not None:
        raise ValueError("invalid character in the reason phrase")
    return b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, raw_reason, _encode_fields(headers))


def encode_request_head(method: str, target: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """Return an HTTP/1.1 request line and header block, final blank line included.

    Raises:
        ValueError: the method is not a token, the target holds spaces or non-ASCII bytes, or
            a header is invalid.
    """
    if not (method.isascii() and target.isascii()):
        raise ValueError("the method and target of a request must be ASCII")
    raw_method = method.encode("ascii")
    raw_target = target.encode("ascii")
    if TOKEN_RE.fullmatch(raw_method) is None:
        raise ValueError(f"invalid method: {method!r}")
    if _TARGET_RE.fullmatch(raw_target) is None:
        raise ValueError(f"invalid request target: {target!r}")
    return b"%s %s HTTP/1.1\r\n%s\r\n" % (raw_method, raw_target, _encode_fields(headers))


def encode_chunk(data: bytes) -> bytes:
    """Return ``data`` framed as one chunk; empty data gives b"" (an empty chunk ends a body)."""
    if not data:
        return b""
    return b"%X\r\n%s\r\n" % (len(data), data)


def simple_response(status: int, text: str, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """Return a whole text/plain response with Content-Length (for errors and short answers).

    Args:
        status: the status code.
        text: the body; a newline is appended.
        headers: extra header fields (Connection: close, Upgrade ...).
    """
    body = (text + "\n").encode("utf-8")
    fields = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *headers,
    ]
    return encode_response_head(status, fields) + body
