#!/usr/bin/env python3
"""Fuzz target: Sec-WebSocket-Extensions parsing and negotiation, and permessage-deflate.

Input: a flags byte (bits 0-1 choose the mode below, 3 meaning 0; bit 7 amplifies the header
of mode 0 to ``prefix + unit * count + suffix``), then bytes.

0. Header: the bytes (latin-1, several values split at LF, or amplified) go to
   parse_extension_header(). It accepts exactly what an independent character-by-character
   reading of the grammar (below) accepts, with the same result (values up to 8 KiB, the
   reference being slow); a result serializes and parses
   back to itself; time is linear in the length (ws's 3.3.1 DoS and CVE-2021-32640 were not).
   server_negotiate() answers only with what the offer allows.
1. Inflate: fuzzed compressed frames go to PerMessageDeflate.decompress() with a window size,
   context takeover and max_size from the input. Only ProtocolError and PayloadTooBig come
   out; no message ever inflates past max_size (websockets CVE-2018-1000518, autobahn
   GHSA-hxp9-w8x3-p566); pieces are at most MAX_PIECE_SIZE; the output and the error do not
   depend on how the frames were split, and match zlib used directly.
2. Round trip: messages from the input, compressed frame by frame by one side, inflate back
   to themselves on the other, for every window size (8 included) and takeover setting;
   compress_shared() equals compress() on a sending side without context takeover.

Run long: python3 fuzz/fuzz_deflate.py -max_total_time=3600 fuzz/corpus/deflate
"""

from __future__ import annotations

import sys
import zlib
from typing import Any

from _harness import ByteReader, fuzz_main, instrumented, pieces

with instrumented(__name__):
    from _invariants import within_linear_time

    from framewire.exceptions import InvalidHandshake, PayloadTooBig, ProtocolError
    from framewire.sansio.deflate import (
        MAX_PIECE_SIZE,
        DeflateConfig,
        DeflateParameters,
        PerMessageDeflate,
        compress_shared,
        parse_extension_header,
        serialize_extension,
        server_negotiate,
    )

TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
QDTEXT = frozenset(chr(c) for c in (0x09, 0x20, 0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)))
QDTEXT |= frozenset(chr(c) for c in range(0x80, 0x100))
QUOTED_PAIR = frozenset(chr(c) for c in (0x09, 0x20, *range(0x21, 0x7F), *range(0x80, 0x100)))
MAX_SIZES = (None, 0, 100, 1 << 16, 1 << 20)
AMPLIFIED_MAX = 1 << 16
SERVER_CONFIGS = (
    DeflateConfig(),
    DeflateConfig(server_max_window_bits=10, client_max_window_bits=12),
    DeflateConfig(server_no_context_takeover=True, client_no_context_takeover=True),
)
_TAIL = b"\x00\x00\xff\xff"


# ----------------------------------------------------------------------------- header


class _Reject(Exception):
    pass


class ReferenceHeaderParser:
    """RFC 9110 5.6 list syntax with RFC 6455 9.1 extension elements, one character at a time."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.position = 0

    def peek(self) -> str:
        return self.value[self.position] if self.position < len(self.value) else ""

    def skip(self, characters: str) -> str:
        start = self.position
        while self.peek() and self.peek() in characters:
            self.position += 1
        return self.value[start : self.position]

    def token(self) -> str:
        start = self.position
        while self.peek() and self.peek() in TCHAR:
            self.position += 1
        if self.position == start:
            raise _Reject
        return self.value[start : self.position]

    def quoted(self) -> str:
        self.position += 1  # the opening quote
        text = []
        while True:
            character = self.peek()
            self.position += 1
            if character == '"':
                break
            if character == "\\" and self.peek() in QUOTED_PAIR and self.peek():
                text.append(self.peek())
                self.position += 1
            elif character and character in QDTEXT:
                text.append(character)
            else:
                raise _Reject
        joined = "".join(text)
        if not joined or not set(joined) <= TCHAR:
            raise _Reject
        return joined

    def parse(self) -> list[Any]:
        extensions: list[Any] = []
        while True:
            separators = self.skip(" \t,")
            if not self.peek():
                return extensions
            if extensions and "," not in separators:
                raise _Reject
            name = self.token()
            params = []
            while True:
                before = self.position
                self.skip(" \t")
                if self.peek() != ";":
                    self.position = before
                    break
                self.position += 1
                self.skip(" \t")
                param = self.token()
                after_name = self.position
                self.skip(" \t")
                if self.peek() == "=":
                    self.position += 1
                    self.skip(" \t")
                    value = self.quoted() if self.peek() == '"' else self.token()
                    params.append((param, value))
                else:
                    self.position = after_name
                    params.append((param, None))
            self.skip(" \t")
            if self.peek() not in ("", ","):
                raise _Reject
            extensions.append((name, params))


def reference_parse(values: list[str]) -> list[Any] | None:
    extensions: list[Any] = []
    for value in values:
        try:
            extensions.extend(ReferenceHeaderParser(value).parse())
        except _Reject:
            return None
    return extensions


def check_header(reader: ByteReader, amplify: bool) -> None:
    if amplify:
        prefix, unit, count = reader.short_bytes(), reader.short_bytes() or b",", reader.integer(2)
        suffix = reader.rest()
        count = min(count, (AMPLIFIED_MAX - len(prefix) - len(suffix)) // len(unit))
        text = (prefix + unit * max(count, 0) + suffix).decode("latin-1")
        values = [text]
    else:
        values = reader.rest().decode("latin-1").split("\n")

    def parse() -> list[Any] | None:
        try:
            return parse_extension_header(values)
        except InvalidHandshake as error:
            assert error.http_status == 400
            return None

    parsed = within_linear_time(
        parse, sum(map(len, values)), per_byte=5e-6, constant=0.05, what="extension header"
    )
    if sum(map(len, values)) <= 8192:  # the reference reads a character at a time: slow
        expected = reference_parse(values)
        assert parsed == expected, f"{values!r}: framewire {parsed!r}, reference {expected!r}"
    if parsed is None:
        return
    serialized = ", ".join(serialize_extension(name, params) for name, params in parsed)
    assert parse_extension_header([serialized]) == parsed, "serialized header parses otherwise"
    for config in SERVER_CONFIGS:
        check_negotiation(values, parsed, config)


def check_negotiation(values: list[str], parsed: list[Any], config: DeflateConfig) -> None:
    """The answer is one the first acceptable offer allows (RFC 7692 7.1)."""
    negotiated = server_negotiate(values, config)
    if negotiated is None:
        return
    answer, agreed = negotiated
    ((name, params),) = parse_extension_header([answer])
    assert name == "permessage-deflate"
    offers = [dict((k.lower(), v) for k, v in p) for n, p in parsed if n.lower() == name]
    assert offers, "negotiated without an offer"
    answered = dict(params)
    assert any(_allows(offer, answered) for offer in offers), f"{answer!r} answers no offer"
    assert isinstance(agreed, DeflateParameters)


def _allows(offer: dict[str, str | None], answer: dict[str, str | None]) -> bool:
    """Whether ``answer`` is a valid answer to ``offer`` (an invalid offer allows nothing)."""
    if "client_max_window_bits" in answer and "client_max_window_bits" not in offer:
        return False
    if "server_max_window_bits" in offer:
        offered, answered = (
            _bits(offer["server_max_window_bits"]),
            _bits(answer.get("server_max_window_bits")),
        )
        if offered is None or answered is None or answered > offered:
            return False
    if "server_no_context_takeover" in offer and "server_no_context_takeover" not in answer:
        return False
    if offer.get("client_max_window_bits") is not None and "client_max_window_bits" in answer:
        offered, answered = (
            _bits(offer["client_max_window_bits"]),
            _bits(answer["client_max_window_bits"]),
        )
        return offered is not None and answered is not None and answered <= offered
    return True


def _bits(value: str | None) -> int | None:
    """A window-bits value as RFC 7692 7.1.2 allows it (8..15, plain digits), else None."""
    if value is None or value not in {str(bits) for bits in range(8, 16)}:
        return None
    return int(value)


# ----------------------------------------------------------------------------- inflate


def _deflate(reader: ByteReader) -> tuple[PerMessageDeflate, DeflateParameters, bool, int]:
    choice = reader.byte()
    bits = 8 + choice % 8
    reset = bool(choice & 0x08)
    is_server = bool(choice & 0x10)
    params = DeflateParameters(
        server_max_window_bits=bits,
        client_max_window_bits=bits,
        server_no_context_takeover=reset,
        client_no_context_takeover=reset,
    )
    return (
        PerMessageDeflate(params, is_server=is_server, config=DeflateConfig()),
        params,
        is_server,
        bits,
    )


def inflate(
    frames: list[tuple[bytes, bool]], bits: int, reset: bool, max_size: int | None, split: int
) -> Any:
    """Inflate (payload, final) frames; return the messages and the error, if any."""
    params = DeflateParameters(
        server_max_window_bits=bits,
        client_max_window_bits=bits,
        server_no_context_takeover=reset,
        client_no_context_takeover=reset,
    )
    deflate = PerMessageDeflate(params, is_server=True, config=DeflateConfig())
    messages: list[bytes] = []
    current = bytearray()
    try:
        for payload, final in frames:
            chunks = list(pieces(payload, split))
            for index, chunk in enumerate(chunks):
                last = final and index == len(chunks) - 1
                for piece in deflate.decompress(chunk, final=last, max_size=max_size):
                    assert 0 < len(piece) <= MAX_PIECE_SIZE, f"piece of {len(piece)} bytes"
                    current += piece
                    assert max_size is None or len(current) <= max_size, "inflated past max_size"
            if final:
                messages.append(bytes(current))
                current.clear()
    except PayloadTooBig as error:
        assert error.close_code == 1009 and max_size is not None
        return messages, 1009
    except ProtocolError as error:
        assert error.close_code == 1002
        return messages, 1002
    return messages, None


def zlib_inflate(frames: list[tuple[bytes, bool]], reset: bool, max_size: int | None) -> Any:
    """What zlib itself makes of the frames fed a byte at a time (the finest split, whose
    answer framewire gives for every split), stream restarts after BFINAL included, with the
    full 15-bit window that framewire inflates with whatever window was agreed."""
    messages: list[bytes] = []
    current = bytearray()
    inflater = None
    for payload, final in frames:
        whole = payload + _TAIL if final else payload
        for index in range(len(whole)):
            data = whole[index : index + 1]
            outcome = _zlib_feed(data, inflater, current, max_size)
            if isinstance(outcome, int):
                return messages, outcome
            inflater = outcome
        if final:
            messages.append(bytes(current))
            current.clear()
            if reset:
                inflater = None
    return messages, None


def _zlib_feed(data: bytes, inflater: Any, current: bytearray, max_size: int | None) -> Any:
    """Feed ``data`` to ``inflater`` (None: a new one) into ``current``; return the inflater
    to go on with, or the close code of a failure."""
    while data:
        if inflater is None:
            inflater = zlib.decompressobj(-15)
        try:
            room = (1 << 30) if max_size is None else max_size - len(current) + 1
            output = inflater.decompress(data, room)
        except zlib.error:
            return 1002
        current += output
        if max_size is not None and len(current) > max_size:
            return 1009
        if inflater.eof:
            data, inflater = inflater.unused_data, None
        else:
            data = inflater.unconsumed_tail
    return inflater


def check_inflate(reader: ByteReader) -> None:
    choice = reader.byte()
    bits = 8 + choice % 8
    reset = bool(choice & 0x08)
    max_size = MAX_SIZES[(choice >> 4) % len(MAX_SIZES)]
    split = reader.byte()
    frames = []
    while not reader.exhausted and len(frames) < 32:
        final = reader.flag()
        frames.append((reader.short_bytes(), final))
    whole = inflate(frames, bits, reset, max_size, 0)
    split_result = inflate(frames, bits, reset, max_size, split)
    assert split_result == whole, f"inflation depends on the split: {split_result!r} {whole!r}"
    expected = zlib_inflate(frames, reset, max_size)
    assert whole == expected, f"framewire {whole!r}\nzlib {expected!r}"


def check_round_trip(reader: ByteReader) -> None:
    sender, params, is_server, bits = _deflate(reader)
    receiver = PerMessageDeflate(params, is_server=not is_server, config=DeflateConfig())
    level = reader.byte() % 10
    if level != 6:
        sender = PerMessageDeflate(
            params, is_server=is_server, config=DeflateConfig(compress_level=level)
        )
    repeat = 1 + reader.byte() % 64
    messages = 0
    while not reader.exhausted and messages < 16:
        messages += 1
        frames = [reader.short_bytes() * repeat for _ in range(1 + reader.byte() % 4)]
        received = bytearray()
        for index, frame in enumerate(frames):
            final = index == len(frames) - 1
            compressed = sender.compress(frame, final=final)
            for piece in receiver.decompress(compressed, final=final, max_size=None):
                received += piece
        assert bytes(received) == b"".join(frames), f"round trip with {bits}-bit window failed"
        if len(frames) == 1 and sender.can_share_output:
            shared = compress_shared(
                frames[0], params, is_server=is_server, config=DeflateConfig(compress_level=level)
            )
            fresh = PerMessageDeflate(
                params, is_server=is_server, config=DeflateConfig(compress_level=level)
            )
            assert shared == fresh.compress(frames[0], final=True)


def check(data: bytes) -> None:
    """Check every invariant of this target on one input."""
    reader = ByteReader(data)
    flags = reader.byte()
    mode = (flags & 3) % 3
    if mode == 0:
        check_header(reader, amplify=bool(flags & 0x80))
    elif mode == 1:
        check_inflate(reader)
    else:
        check_round_trip(reader)


if __name__ == "__main__":
    fuzz_main(check)
    sys.exit(0)
