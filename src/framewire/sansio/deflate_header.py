"""Parse the Sec-WebSocket-Extensions header (RFC 6455 9.1, list syntax of RFC 9110 5.6).

The parser walks each header value once: one regular-expression call matches a whole extension
with its parameters, and one skips any run of spaces and commas. None of the expressions can
backtrack more than a character at a time, so the cost is linear in the header length, and runs
of separators cost one C-level scan: 64 KiB of commas or spaces parses in well under a
millisecond. Results are plain lists of tuples, never
dicts keyed by peer-supplied names, so parameters named ``__proto__`` or ``constructor`` are just
names.

Grammar, with optional whitespace (OWS: spaces and tabs) allowed around "," ";" and "="::

    Sec-WebSocket-Extensions = 1#extension     ; empty list elements are ignored (RFC 9110 5.6.1)
    extension       = extension-token *( ";" extension-param )
    extension-param = token [ "=" ( token / quoted-string ) ]   ; unescaped value must be a token
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from framewire.exceptions import InvalidHandshake

__all__ = ["ExtensionOffer", "ExtensionParam", "parse_extension_header", "serialize_extension"]

ExtensionParam = tuple[str, str | None]
ExtensionOffer = tuple[str, list[ExtensionParam]]

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# RFC 9110 5.6.4: qdtext or quoted-pair. The alternatives cannot match the same text, so a
# failed match backtracks at most once per character.
_QUOTED = r'"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)"'
_OWS = r"[ \t]*"


def _param_pattern(group: str) -> str:
    """Return the pattern of ``; name[=value]``, opening its groups with ``group``."""
    value = rf"{group}{_TOKEN})|{_QUOTED.replace('(', group, 1)}"
    return rf"{_OWS};{_OWS}{group}{_TOKEN})(?:{_OWS}={_OWS}(?:{value}))?"


_PARAM_RE = re.compile(_param_pattern("("))
# One extension with all its parameters in a single regex call. Every repetition starts with a
# ";" and the match is not anchored at its end, so the engine stops at the first character that
# does not fit instead of backtracking: the caller looks at that character. Parameters are
# matched without capturing (capturing inside a repetition made this regex ten times slower on
# 16k parameters) and split afterwards by _PARAM_RE.
_EXTENSION_RE = re.compile(rf"({_TOKEN})((?:{_param_pattern('(?:')})*){_OWS}")
# Whitespace and empty list elements between extensions (RFC 9110 5.6.1), skipped in one call.
_SEPARATORS_RE = re.compile(r"[ \t,]*")
_FULL_TOKEN_RE = re.compile(rf"{_TOKEN}\Z")
_UNESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)

# How much of an offending header value an error message quotes.
_ERROR_EXCERPT = 40


def _syntax_error(value: str, position: int, expected: str) -> InvalidHandshake:
    """Build the 400 error for a malformed header value, quoting a short excerpt."""
    excerpt = value[position : position + _ERROR_EXCERPT]
    return InvalidHandshake(
        f"invalid Sec-WebSocket-Extensions header: expected {expected} at position {position}"
        f" (found {excerpt!r})",
        http_status=400,
    )


def _parse_params(value: str, start: int, text: str) -> list[ExtensionParam]:
    """Split the parameter text matched by _EXTENSION_RE (which began at ``start``)."""
    params: list[ExtensionParam] = []
    for match in _PARAM_RE.finditer(text):
        name, token, quoted = match.groups()
        if quoted is not None:
            if "\\" in quoted:
                quoted = _UNESCAPE_RE.sub(r"\1", quoted)
            # RFC 6455 9.1: after unescaping, a quoted value must still be a token.
            if _FULL_TOKEN_RE.match(quoted) is None:
                raise _syntax_error(value, start + match.start(3) - 1, "a token in the quotes")
            token = quoted
        params.append((name, token))
    return params


def _parse_value(value: str, extensions: list[ExtensionOffer]) -> None:
    """Parse one header value, appending its extensions to ``extensions``."""
    length = len(value)
    position = 0
    after_extension = False
    while True:
        separators = _SEPARATORS_RE.match(value, position)
        assert separators is not None  # [ \t,]* always matches
        position = separators.end()
        if position >= length:
            return
        if after_extension and "," not in value[separators.start() : position]:
            raise _syntax_error(value, position, '";", "=" or ","')
        match = _EXTENSION_RE.match(value, position)
        if match is None:
            raise _syntax_error(value, position, "an extension name")
        params = _parse_params(value, match.start(2), match.group(2))
        extensions.append((match.group(1), params))
        position = match.end()
        after_extension = True


def parse_extension_header(values: Sequence[str]) -> list[ExtensionOffer]:
    """Parse every Sec-WebSocket-Extensions value into (name, [(param, value or None)]) pairs.

    Several values are read as if joined with commas, in order. Names and values are returned as
    written; quoted values are unescaped. Empty list elements are ignored, so a value of only
    commas and spaces gives no extensions.

    Args:
        values: the header's field values in arrival order (``Headers.get_all(...)``).

    Returns:
        The extensions in order, each with its parameters in order, duplicates kept.

    Raises:
        InvalidHandshake: with http_status 400, naming the position of the first syntax error.
    """
    extensions: list[ExtensionOffer] = []
    for value in values:
        _parse_value(value, extensions)
    return extensions


def serialize_extension(name: str, params: Sequence[ExtensionParam]) -> str:
    """Return one extension as header text: ``name; param; param=value`` (values are tokens)."""
    parts = [name]
    for param_name, param_value in params:
        parts.append(param_name if param_value is None else f"{param_name}={param_value}")
    return "; ".join(parts)
