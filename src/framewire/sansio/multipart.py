"""Streaming multipart/form-data parser (RFC 7578, RFC 2046 5.1), push style.

    parser = MultipartParser(parse_boundary(request.headers["Content-Type"]), limits)
    parser.receive_data(chunk)            # any size, split anywhere; then receive_eof()
    for event in parser.events_received(): ...

How memory stays bounded: the body is searched for the delimiter ``CRLF--boundary`` with
``bytes.find``. The boundary may not contain CR (RFC 2046 bchars), so the only place a
delimiter can begin in the unconsumed tail is the *last* CR of the buffer: everything before it
is part data and is handed out at once. The parser therefore keeps at most ``len(boundary) + 3``
bytes of part data, plus one incoming chunk, and never rescans a byte twice except for that tail.
Header lines are scanned from where the last scan stopped, and the header block is checked against
``max_part_header_size`` before more is kept.

Errors: a peer's bad bytes never raise out of ``receive_data()``. They become one
:class:`MultipartFailed` event carrying a :class:`MultipartError` (400 for malformed input, 413
for a limit), after which the parser ignores further input. ``MultipartError`` is an
``HTTPError``, so the layer above may simply raise it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import unquote

from framewire.exceptions import HTTPError
from framewire.sansio.headers import Headers
from framewire.sansio.limits import HTTPLimits

__all__ = [
    "Finished",
    "MultipartError",
    "MultipartEvent",
    "MultipartFailed",
    "MultipartParser",
    "PartData",
    "PartEnd",
    "PartStart",
    "parse_boundary",
    "parse_options_header",
]

BytesLike = bytes | bytearray | memoryview


class MultipartError(HTTPError):
    """A multipart body is malformed (400) or went past a limit (413)."""


@dataclass(frozen=True, slots=True)
class PartStart:
    """A part begins; its headers are complete.

    Attributes:
        name: the form field name (``name`` parameter of Content-Disposition).
        filename: the ``filename`` (or RFC 5987 ``filename*``) parameter, None for plain fields.
        content_type: the part's Content-Type; ``text/plain`` for fields and
            ``application/octet-stream`` for files when the part has none.
        headers: every header field of the part.
    """

    name: str
    filename: str | None
    content_type: str
    headers: Headers


@dataclass(frozen=True, slots=True)
class PartData:
    """A piece of the current part's content, in arrival order."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    """The current part is complete."""


@dataclass(frozen=True, slots=True)
class Finished:
    """The closing delimiter was seen; anything after it (the epilogue) is ignored."""


@dataclass(frozen=True, slots=True)
class MultipartFailed:
    """The body was malformed or over a limit; no further events follow."""

    error: MultipartError


MultipartEvent = PartStart | PartData | PartEnd | Finished | MultipartFailed

# RFC 2046 5.1.1: bchars := bcharsnospace / " ", 1 to 70 of them, not ending with a space.
_BOUNDARY_CHARS = frozenset(
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? "
)
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
# Single character classes only: each of these matches in linear time, no backtracking.
_SKIP_SEPARATORS = re.compile(r"[ \t;]*")
_PARAM_NAME = re.compile(r"[^=;]*")
_UNQUOTED_VALUE = re.compile(r"[^;]*")
_SPACES = re.compile(r"[ \t]*")
_FORBIDDEN_IN_HEADER = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read a quoted-string whose opening quote is at ``start``; return (value, next index).

    Only ``\\"`` and ``\\\\`` are escapes: browsers send Windows paths with bare backslashes.
    Linear: every ``find`` starts past the previous match of its own kind (tornado's
    CVE-2025-67726 was a rescan per escape).
    """
    pieces: list[str] = []
    position = start + 1
    quote = text.find('"', position)
    while True:
        end = quote if quote != -1 else len(text)
        backslash = text.find("\\", position, end)
        if backslash == -1 or backslash + 1 >= len(text):
            pieces.append(text[position:end])
            return "".join(pieces), end + 1
        pieces.append(text[position:backslash])
        escaped = text[backslash + 1]
        pieces.append(escaped if escaped in '"\\' else "\\" + escaped)
        position = backslash + 2
        if quote != -1 and position > quote:
            quote = text.find('"', position)  # the quote found was escaped: look further


def parse_options_header(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type/sub; a=1; b="x;y"`` into (``"type/sub"``, ``{"a": "1", "b": "x;y"}``).

    Parameter names are lower-cased; the first occurrence of a name wins. Runs in time linear in
    ``len(value)`` whatever the input (64 KiB of ``;a;a;a`` included).
    """
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    position = 0
    length = len(rest)
    while position < length:
        position = _SKIP_SEPARATORS.match(rest, position).end()  # type: ignore[union-attr]
        if position >= length:
            break
        name_match = _PARAM_NAME.match(rest, position)
        assert name_match is not None
        name = name_match.group().strip(" \t").lower()
        position = name_match.end()
        if position >= length or rest[position] == ";":
            continue  # a parameter without "=": ignored
        position = _SPACES.match(rest, position + 1).end()  # type: ignore[union-attr]
        if position < length and rest[position] == '"':
            param_value, position = _read_quoted(rest, position)
            position = _UNQUOTED_VALUE.match(rest, min(position, length)).end()  # type: ignore[union-attr]
        else:
            value_match = _UNQUOTED_VALUE.match(rest, position)
            assert value_match is not None
            param_value = value_match.group().strip(" \t")
            position = value_match.end()
        if name and name not in params:
            params[name] = param_value
    return main.strip(" \t").lower(), params


def parse_boundary(content_type: str) -> bytes:
    """Return the boundary of a ``multipart/form-data`` Content-Type value.

    Raises:
        MultipartError: 400 when the type is not multipart/form-data or the boundary is missing,
            longer than 70 characters or uses characters RFC 2046 forbids.
    """
    media_type, params = parse_options_header(content_type)
    if media_type != "multipart/form-data":
        raise MultipartError(400, f"expected multipart/form-data, got {media_type[:64]!r}")
    boundary = params.get("boundary")
    if boundary is None:
        raise MultipartError(400, "multipart/form-data without a boundary parameter")
    if not boundary.isascii():  # RFC 2046's bchars are ASCII
        raise MultipartError(400, "multipart boundary contains characters RFC 2046 forbids")
    raw = boundary.encode("ascii")
    _check_boundary(raw)
    return raw


def _check_boundary(boundary: bytes) -> None:
    if not 1 <= len(boundary) <= 70:
        raise MultipartError(400, f"multipart boundary of {len(boundary)} bytes (1 to 70 allowed)")
    if not _BOUNDARY_CHARS.issuperset(boundary) or boundary.endswith(b" "):
        raise MultipartError(400, "multipart boundary contains characters RFC 2046 forbids")


class _State(enum.Enum):
    PREAMBLE = enum.auto()
    AFTER_DELIMITER = enum.auto()
    HEADERS = enum.auto()
    BODY = enum.auto()
    EPILOGUE = enum.auto()
    FAILED = enum.auto()


class MultipartParser:
    """Turn a multipart/form-data body, fed in chunks, into PartStart/PartData/PartEnd events.

    Limits come from :class:`HTTPLimits`: ``max_multipart_parts``, ``max_part_headers``,
    ``max_part_header_size``, ``max_form_size`` (total of every non-file part together) and
    ``max_upload_size`` (total of every file part together). Each is checked before the bytes
    that would pass it are kept or handed out.
    """

    def __init__(self, boundary: bytes | str, limits: HTTPLimits | None = None) -> None:
        """Create a parser for ``boundary`` (as returned by :func:`parse_boundary`).

        Raises:
            MultipartError: if ``boundary`` is not a valid RFC 2046 boundary (a programming
                error when it came from parse_boundary, which checks it already).
        """
        boundary_bytes = boundary.encode("ascii") if isinstance(boundary, str) else boundary
        _check_boundary(boundary_bytes)
        self._limits = limits if limits is not None else HTTPLimits()
        self._delimiter = b"\r\n--" + boundary_bytes
        # RFC 2046 5.1.1: the first delimiter may open the body without a preceding CRLF; a
        # virtual CRLF in front lets one search handle both cases.
        self._buffer = bytearray(b"\r\n")
        self._scan_from = 0
        self._state = _State.PREAMBLE
        self._events: list[MultipartEvent] = []
        self._parts = 0
        self._form_bytes = 0
        self._upload_bytes = 0
        self._header_bytes = 0
        self._part_headers = Headers()
        self._in_file = False

    @property
    def finished(self) -> bool:
        """Whether the closing delimiter has been seen."""
        return self._state is _State.EPILOGUE

    def receive_data(self, data: BytesLike) -> None:
        """Feed the next piece of the body (any size; empty is allowed and ignored)."""
        if self._state in (_State.EPILOGUE, _State.FAILED) or not data:
            return
        self._buffer += data
        try:
            self._process()
        except MultipartError as error:
            self._fail(error)

    def receive_eof(self) -> None:
        """Signal the end of the body; a body without its closing delimiter fails with 400."""
        if self._state not in (_State.EPILOGUE, _State.FAILED):
            self._fail(MultipartError(400, "multipart body ended before the closing delimiter"))

    def events_received(self) -> list[MultipartEvent]:
        """Return and forget the events produced since the last call."""
        events, self._events = self._events, []
        return events

    def _fail(self, error: MultipartError) -> None:
        self._state = _State.FAILED
        self._buffer = bytearray()
        self._events.append(MultipartFailed(error))

    def _process(self) -> None:
        progress = True
        while progress:
            if self._state is _State.PREAMBLE or self._state is _State.BODY:
                progress = self._process_content()
            elif self._state is _State.AFTER_DELIMITER:
                progress = self._process_after_delimiter()
            elif self._state is _State.HEADERS:
                progress = self._process_header_line()
            else:
                self._buffer = bytearray()  # epilogue: ignored
                progress = False

    def _process_content(self) -> bool:
        """Find the next delimiter; hand out (BODY) or drop (PREAMBLE) the bytes before it."""
        buffer = self._buffer
        index = buffer.find(self._delimiter)
        if index == -1:
            # Only a suffix starting at the last CR can be the start of a delimiter.
            keep_from = buffer.rfind(b"\r", max(0, len(buffer) - len(self._delimiter) + 1))
            if keep_from != -1 and not self._delimiter.startswith(buffer[keep_from:]):
                keep_from = -1
            end = len(buffer) if keep_from == -1 else keep_from
            self._emit_content(end)
            del buffer[:end]
            return False
        self._emit_content(index)
        del buffer[: index + len(self._delimiter)]
        if self._state is _State.BODY:
            self._events.append(PartEnd())
        self._state = _State.AFTER_DELIMITER
        return True

    def _emit_content(self, end: int) -> None:
        if self._state is not _State.BODY or end == 0:
            return
        if self._in_file:
            self._upload_bytes += end
            if self._upload_bytes > self._limits.max_upload_size:
                limit = self._limits.max_upload_size
                raise MultipartError(413, f"files exceed max_upload_size={limit}")
        else:
            self._form_bytes += end
            if self._form_bytes > self._limits.max_form_size:
                limit = self._limits.max_form_size
                raise MultipartError(413, f"form fields exceed max_form_size={limit}")
        with memoryview(self._buffer) as view:  # one copy instead of two (slice, then bytes)
            self._events.append(PartData(bytes(view[:end])))

    def _process_after_delimiter(self) -> bool:
        """After a delimiter: ``--`` closes the body, else optional padding then CRLF."""
        buffer = self._buffer
        if len(buffer) < 2:
            if bytes(buffer[:1]) not in (b"", b"-", b"\r", b" ", b"\t"):
                raise MultipartError(400, "malformed multipart delimiter line")
            return False
        if buffer.startswith(b"--"):
            self._state = _State.EPILOGUE
            self._events.append(Finished())
            return True
        line_end = buffer.find(b"\r\n")
        if line_end == -1:
            # A CR at the very end may meet its LF in the next chunk.
            padding = buffer[:-1] if buffer.endswith(b"\r") else buffer
        else:
            padding = buffer[:line_end]
        if padding.strip(b" \t") or b"\r" in padding:
            raise MultipartError(400, "malformed multipart delimiter line")
        if line_end == -1:
            if len(buffer) > self._limits.max_part_header_size:
                limit = self._limits.max_part_header_size
                raise MultipartError(413, f"delimiter padding exceeds max_part_header_size={limit}")
            return False
        del buffer[: line_end + 2]
        self._parts += 1
        if self._parts > self._limits.max_multipart_parts:
            limit = self._limits.max_multipart_parts
            raise MultipartError(413, f"more than max_multipart_parts={limit} parts")
        self._state = _State.HEADERS
        self._scan_from = 0
        self._header_bytes = 0
        self._part_headers = Headers()
        return True

    def _process_header_line(self) -> bool:
        """Consume one header line of the current part, or the blank line ending them."""
        buffer = self._buffer
        line_end = buffer.find(b"\r\n", self._scan_from)
        consumed = len(buffer) if line_end == -1 else line_end + 2
        if self._header_bytes + consumed > self._limits.max_part_header_size:
            limit = self._limits.max_part_header_size
            raise MultipartError(413, f"part header block exceeds max_part_header_size={limit}")
        if line_end == -1:
            self._scan_from = max(0, len(buffer) - 1)  # a CR at the end may meet its LF later
            return False
        line = bytes(buffer[:line_end])
        del buffer[:consumed]
        self._header_bytes += consumed
        self._scan_from = 0
        if not line:
            self._start_part()
            return True
        if len(self._part_headers) >= self._limits.max_part_headers:
            limit = self._limits.max_part_headers
            raise MultipartError(413, f"part has more than max_part_headers={limit} header fields")
        self._part_headers.add(*_parse_header_line(line))
        return True

    def _start_part(self) -> None:
        headers = self._part_headers
        disposition = headers.get_all("Content-Disposition")
        if len(disposition) != 1:
            raise MultipartError(400, "part needs exactly one Content-Disposition header")
        kind, params = parse_options_header(disposition[0])
        if kind != "form-data" or "name" not in params:
            raise MultipartError(400, "part Content-Disposition is not form-data with a name")
        filename = params.get("filename")
        extended = params.get("filename*")
        if extended is not None:
            filename = _decode_extended_value(extended)
        self._in_file = filename is not None
        default_type = "application/octet-stream" if self._in_file else "text/plain"
        content_type = headers.get("Content-Type") or default_type
        self._events.append(PartStart(params["name"], filename, content_type, headers))
        self._state = _State.BODY


def _parse_header_line(line: bytes) -> tuple[str, str]:
    """Split ``Name: value`` (UTF-8, as browsers send filenames) or raise 400."""
    if _FORBIDDEN_IN_HEADER.search(line):
        raise MultipartError(400, "control character in a part header")
    name_bytes, colon, value_bytes = line.partition(b":")
    name = name_bytes.decode("latin-1")
    if not colon or not name or not _TOKEN_CHARS.issuperset(name):
        # RFC 9112 5.2: obsolete line folding is refused like any other malformed line.
        raise MultipartError(400, "malformed part header line")
    return name, value_bytes.decode("utf-8", "replace").strip(" \t")


def _decode_extended_value(value: str) -> str:
    """Decode an RFC 5987 ``charset'language'percent-encoded`` value (UTF-8 or latin-1)."""
    charset, _, rest = value.partition("'")
    _, _, encoded = rest.partition("'")
    encoding = "latin-1" if charset.lower() == "iso-8859-1" else "utf-8"
    return unquote(encoded, encoding=encoding, errors="replace")
