"""permessage-deflate negotiation (RFC 7692 5 and 7.1): what is asked for, offered and agreed.

A client offers parameters, the server accepts the first offer it can honour and answers with the
parameters it chose, and the client checks that answer against its offer. Both sides end with the
same DeflateParameters. The server never fails a handshake over an offer it dislikes: it declines
it (no compression) and tries the next one; only bad header syntax is a 400. The client is strict:
an answer it did not offer fails the handshake with NegotiationError (RFC 7692 5).

About window bits 8: zlib refuses to deflate with a raw 256-byte window, yet framewire agrees to
8 like any other value, so it never has to decline an offer or bend the RFC's answering rules.
Whoever must compress with 8 bits uses a 9-bit zlib compressor, which never refers back more than
250 bytes (zlib keeps 262 bytes of lookahead out of its window), so its output is valid for an
8-bit window; see deflate.py and the strict-inflate tests.

About server_no_context_takeover: by default (config value None) a server answers it even when
the client did not ask, as RFC 7692 7.1.1.1 lets a server choose; a client does not ask for it.
That is what makes the server's compression cheap with many connections (deflate.py, and
docs/topics/compression.md for the measurements).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from framewire.exceptions import InvalidHandshake, NegotiationError
from framewire.sansio.deflate_header import (
    ExtensionParam,
    parse_extension_header,
    serialize_extension,
)

__all__ = [
    "EXTENSION_NAME",
    "DeflateBackend",
    "DeflateConfig",
    "DeflateParameters",
    "client_offer",
    "client_verify",
    "server_negotiate",
]

EXTENSION_NAME = "permessage-deflate"
SERVER_NO_CONTEXT_TAKEOVER = "server_no_context_takeover"
CLIENT_NO_CONTEXT_TAKEOVER = "client_no_context_takeover"
SERVER_MAX_WINDOW_BITS = "server_max_window_bits"
CLIENT_MAX_WINDOW_BITS = "client_max_window_bits"
_KNOWN_PARAMS = frozenset(
    {
        SERVER_NO_CONTEXT_TAKEOVER,
        CLIENT_NO_CONTEXT_TAKEOVER,
        SERVER_MAX_WINDOW_BITS,
        CLIENT_MAX_WINDOW_BITS,
    }
)
# RFC 7692 7.1.2: a decimal integer 8..15; leading zeros, signs and spaces are not allowed.
_WINDOW_BITS_VALUE = re.compile(r"(?:[89]|1[0-5])\Z")
DEFAULT_WINDOW_BITS = 15
DeflateBackend = Literal["auto", "zlib", "isal"]
"""DeflateConfig.backend: which deflate implementation compresses (see deflate.py)."""
BACKENDS: tuple[str, ...] = get_args(DeflateBackend)


def _check_window_bits(name: str, bits: int | None) -> None:
    """Raise ValueError unless ``bits`` is None or within 8..15."""
    if bits is not None and not 8 <= bits <= 15:
        raise ValueError(f"{name}={bits} is outside 8..15")


@dataclass(frozen=True, slots=True)
class DeflateConfig:
    """What the user asks for when permessage-deflate is enabled.

    The defaults suit a server holding many connections, where compression's CPU time and the
    memory kept per connection are what count (docs/topics/compression.md; benchmarks/README.md,
    "Compression negotiated (issue 17)", has the measurements):

    - A server compresses every message on its own: it answers server_no_context_takeover
      unasked (RFC 7692 7.1.1.1), so no connection keeps a compressor between messages and one
      compressor per process does all the work (deflate.py). On 1 KiB JSON messages with 64
      connections, replies were 38 % larger than with a kept context, for about a third less
      server CPU per message.
    - Level 1: the level is most of deflate's cost. Level 6 with a kept context cost the server
      2.3-2.5x the CPU per 1 KiB message of level 1; compressing alone, zlib runs 118,000
      instructions per 1 KiB JSON message at level 1 and 148,000 at level 6, for 4 % fewer bytes.
    - ``backend="auto"`` compresses those messages with ISA-L when the optional ``isal`` package
      is installed (``pip install framewire[isal]``): the same output size as zlib level 1 for
      58 % of its instructions on 1 KiB and 37 % on 16 KiB. Without it, the standard library's
      zlib does it all.

    Attributes:
        server_no_context_takeover: True: a client offers it and requires it; a server always
            answers it. False: a client does not offer it; a server answers it only when the
            client offered it, and otherwise keeps its compressor per connection (better ratio
            on repetitive messages, and ``2 ** (window_bits + 2) + 2 ** (mem_level + 9)`` bytes
            per connection). None (the default): a server answers it, a client does not offer it.
        client_no_context_takeover: the client compresses each message on its own. Offered by a
            client and answered by a server when True; a server also grants it when offered.
        server_max_window_bits: largest LZ77 window the server compresses with, 8..15;
            None: 15.
        client_max_window_bits: the same for the client. On a client, None offers the
            parameter without a value (the server may pick); on a server, None accepts what
            the client offers. A server's decompressor keeps ``2 ** bits`` bytes plus 7 KiB per
            connection while the client keeps its context: 12 saves 28 KiB of 39.
        compress_level: zlib level 0..9 for outgoing messages (ISA-L: 1 -> 1, 2 -> 2, 3..9 ->
            3, its best; level 0 always uses zlib).
        mem_level: zlib memLevel 1..9 for outgoing messages (the size of zlib's hash table).
        min_size: messages shorter than this many bytes are sent uncompressed (RSV1 clear):
            below ~64 bytes deflate's own overhead eats most of the saving.
        backend: "auto" (default): ISA-L (the ``isal`` package) for messages compressed without
            context takeover when it is installed and FRAMEWIRE_NO_SPEEDUPS is not set, zlib
            otherwise; "zlib": always the standard library; "isal": as "auto", but the package
            must be installed. Decompression always uses the standard library's zlib.
    """

    server_no_context_takeover: bool | None = None
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None
    compress_level: int = 1
    mem_level: int = 5
    min_size: int = 64
    backend: DeflateBackend = "auto"

    def __post_init__(self) -> None:
        _check_window_bits("server_max_window_bits", self.server_max_window_bits)
        _check_window_bits("client_max_window_bits", self.client_max_window_bits)
        if not 0 <= self.compress_level <= 9:
            raise ValueError(f"compress_level={self.compress_level} is outside 0..9")
        if not 1 <= self.mem_level <= 9:
            raise ValueError(f"mem_level={self.mem_level} is outside 1..9")
        if self.min_size < 0:
            raise ValueError(f"min_size={self.min_size} is negative")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r} is not one of {', '.join(BACKENDS)}")
        if self.backend == "isal" and importlib.util.find_spec("isal") is None:
            raise ValueError("backend='isal' needs the isal package: pip install framewire[isal]")


@dataclass(frozen=True, slots=True)
class DeflateParameters:
    """The parameters both sides agreed on; window bits are 15 when the answer omitted them."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = DEFAULT_WINDOW_BITS
    client_max_window_bits: int = DEFAULT_WINDOW_BITS

    def __post_init__(self) -> None:
        _check_window_bits("server_max_window_bits", self.server_max_window_bits)
        _check_window_bits("client_max_window_bits", self.client_max_window_bits)


class _Unacceptable(ValueError):
    """An offer or answer whose parameters break RFC 7692 (message says which)."""


def _collect_params(params: Sequence[ExtensionParam]) -> dict[str, str | None]:
    """Map lower-cased parameter names to values; reject unknown and repeated names.

    Parameter names are compared without regard to case (RFC 9110 5.6.6). The dict is keyed
    only by the four known names, never by arbitrary peer-chosen ones.
    """
    found: dict[str, str | None] = {}
    for name, value in params:
        key = name.lower()
        if key not in _KNOWN_PARAMS:
            raise _Unacceptable(f"unknown parameter {name!r}")
        if key in found:
            raise _Unacceptable(f"duplicate parameter {name!r}")
        found[key] = value
    for flag in (SERVER_NO_CONTEXT_TAKEOVER, CLIENT_NO_CONTEXT_TAKEOVER):
        if found.get(flag) is not None:
            raise _Unacceptable(f"{flag} takes no value, got {found[flag]!r}")
    return found


def _window_bits(found: dict[str, str | None], name: str, *, value_required: bool) -> int | None:
    """Return the validated value of a window-bits parameter, None when absent or valueless."""
    if name not in found:
        return None
    value = found[name]
    if value is None:
        if value_required:
            raise _Unacceptable(f"{name} needs a value")
        return None
    if _WINDOW_BITS_VALUE.match(value) is None:
        raise _Unacceptable(f"{name}={value!r} is not an integer in 8..15")
    return int(value)


def _smaller(first: int | None, second: int | None) -> int | None:
    """Return the smaller of two optional window sizes (None means no limit)."""
    if first is None:
        return second
    if second is None:
        return first
    return min(first, second)


def _accept_offer(
    params: Sequence[ExtensionParam], config: DeflateConfig
) -> tuple[list[ExtensionParam], DeflateParameters]:
    """Choose the answer to one offer, or raise _Unacceptable to decline it (RFC 7692 7.1)."""
    found = _collect_params(params)
    offered_server_bits = _window_bits(found, SERVER_MAX_WINDOW_BITS, value_required=True)
    offered_client_bits = _window_bits(found, CLIENT_MAX_WINDOW_BITS, value_required=False)
    # RFC 7692 7.1.1: the server may declare either no_context_takeover even when not offered;
    # one the client offered is always granted. None (the default) declares the server's.
    server_reset = (
        SERVER_NO_CONTEXT_TAKEOVER in found or config.server_no_context_takeover is not False
    )
    client_reset = CLIENT_NO_CONTEXT_TAKEOVER in found or config.client_no_context_takeover
    # RFC 7692 7.1.2.1: answer with the offered value or smaller; may limit ourselves unasked.
    server_bits = _smaller(offered_server_bits, config.server_max_window_bits)
    # RFC 7692 7.1.2.2: client_max_window_bits may be answered only when offered. If the client
    # cannot take a limit, the server still accepts and inflates with a 15-bit window.
    client_bits: int | None = None
    if CLIENT_MAX_WINDOW_BITS in found:
        client_bits = _smaller(offered_client_bits, config.client_max_window_bits)
    answer: list[ExtensionParam] = []
    if server_reset:
        answer.append((SERVER_NO_CONTEXT_TAKEOVER, None))
    if client_reset:
        answer.append((CLIENT_NO_CONTEXT_TAKEOVER, None))
    if server_bits is not None:
        answer.append((SERVER_MAX_WINDOW_BITS, str(server_bits)))
    if client_bits is not None:
        answer.append((CLIENT_MAX_WINDOW_BITS, str(client_bits)))
    agreed = DeflateParameters(
        server_no_context_takeover=server_reset,
        client_no_context_takeover=client_reset,
        server_max_window_bits=DEFAULT_WINDOW_BITS if server_bits is None else server_bits,
        client_max_window_bits=DEFAULT_WINDOW_BITS if client_bits is None else client_bits,
    )
    return answer, agreed


def server_negotiate(
    offer_values: Sequence[str], config: DeflateConfig
) -> tuple[str, DeflateParameters] | None:
    """Accept the first acceptable permessage-deflate offer of a client's request.

    Offers of other extensions are skipped. An offer with an unknown or repeated parameter, or an
    invalid value, is declined and the next one is tried.

    Args:
        offer_values: every Sec-WebSocket-Extensions value of the request, in order.
        config: what this server wants.

    Returns:
        The Sec-WebSocket-Extensions value to answer with and the agreed parameters, or None when
        no offer is acceptable: the connection then goes on without compression.

    Raises:
        InvalidHandshake: (http_status 400) when the header is not valid syntax.
    """
    for name, params in parse_extension_header(offer_values):
        if name.lower() != EXTENSION_NAME:
            continue
        try:
            answer, agreed = _accept_offer(params, config)
        except _Unacceptable:
            continue
        return serialize_extension(EXTENSION_NAME, answer), agreed
    return None


def client_offer(config: DeflateConfig) -> str:
    """Return the Sec-WebSocket-Extensions value a client sends to offer permessage-deflate."""
    params: list[ExtensionParam] = []
    if config.server_no_context_takeover:  # None: a client does not ask for it
        params.append((SERVER_NO_CONTEXT_TAKEOVER, None))
    if config.client_no_context_takeover:
        params.append((CLIENT_NO_CONTEXT_TAKEOVER, None))
    if config.server_max_window_bits is not None:
        params.append((SERVER_MAX_WINDOW_BITS, str(config.server_max_window_bits)))
    # RFC 7692 7.1.2.2: without a value, this tells the server it may choose our window.
    client_bits = config.client_max_window_bits
    params.append((CLIENT_MAX_WINDOW_BITS, None if client_bits is None else str(client_bits)))
    return serialize_extension(EXTENSION_NAME, params)


def _check_answer(params: Sequence[ExtensionParam], config: DeflateConfig) -> DeflateParameters:
    """Check a server's answer against the offer client_offer(config) made (RFC 7692 7.1)."""
    found = _collect_params(params)
    server_bits = _window_bits(found, SERVER_MAX_WINDOW_BITS, value_required=True)
    client_bits = _window_bits(found, CLIENT_MAX_WINDOW_BITS, value_required=True)
    server_reset = SERVER_NO_CONTEXT_TAKEOVER in found
    if config.server_no_context_takeover and not server_reset:
        raise _Unacceptable(f"{SERVER_NO_CONTEXT_TAKEOVER} was offered but not accepted")
    wanted_server_bits = config.server_max_window_bits
    if wanted_server_bits is not None:
        if server_bits is None:
            raise _Unacceptable(f"{SERVER_MAX_WINDOW_BITS} was offered but not accepted")
        if server_bits > wanted_server_bits:
            raise _Unacceptable(
                f"{SERVER_MAX_WINDOW_BITS}={server_bits} exceeds the offered {wanted_server_bits}"
            )
    wanted_client_bits = config.client_max_window_bits
    if wanted_client_bits is not None:
        if client_bits is not None and client_bits > wanted_client_bits:
            raise _Unacceptable(
                f"{CLIENT_MAX_WINDOW_BITS}={client_bits} exceeds the offered {wanted_client_bits}"
            )
        # Unanswered, our offered limit still holds: it only constrains our own compressor.
        client_bits = _smaller(client_bits, wanted_client_bits)
    return DeflateParameters(
        server_no_context_takeover=server_reset,
        # Offered by us, it holds whether or not the server repeats it (RFC 7692 7.1.1.2).
        client_no_context_takeover=(
            CLIENT_NO_CONTEXT_TAKEOVER in found or config.client_no_context_takeover
        ),
        server_max_window_bits=DEFAULT_WINDOW_BITS if server_bits is None else server_bits,
        client_max_window_bits=DEFAULT_WINDOW_BITS if client_bits is None else client_bits,
    )


def client_verify(
    response_values: Sequence[str], config: DeflateConfig
) -> DeflateParameters | None:
    """Check the server's Sec-WebSocket-Extensions answer to client_offer(config).

    Args:
        response_values: every Sec-WebSocket-Extensions value of the 101 response.
        config: the configuration the offer was made from.

    Returns:
        The agreed parameters, or None when the server did not accept compression.

    Raises:
        NegotiationError: the server answered an extension we did not offer, accepted
            permessage-deflate more than once, or sent a parameter or value we did not offer or
            that RFC 7692 forbids (bad syntax included).
    """
    try:
        extensions = parse_extension_header(response_values)
    except InvalidHandshake as exc:
        raise NegotiationError(str(exc)) from exc
    agreed: DeflateParameters | None = None
    for name, params in extensions:
        if name.lower() != EXTENSION_NAME:
            raise NegotiationError(f"server accepted extension {name!r}, which was not offered")
        if agreed is not None:
            raise NegotiationError(f"server accepted {EXTENSION_NAME} more than once")
        try:
            agreed = _check_answer(params, config)
        except _Unacceptable as exc:
            raise NegotiationError(f"invalid {EXTENSION_NAME} answer: {exc}") from exc
    return agreed
