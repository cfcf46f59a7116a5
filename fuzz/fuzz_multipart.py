#!/usr/bin/env python3
"""Fuzz target: the multipart/form-data parser and the Content-Type parameter parser.

Input: a flags byte (small limits, end of body, structured or raw, amplified, boundary), a split
seed, then either a raw body or (structured) part descriptions encoded here into a valid body.
For each input:

- Whole, byte by byte and split as the seed says, the parser gives the same events (a part's
  PartData joined), so no outcome depends on how reads fall.
- A structured body parses back to exactly the parts it was built from.
- Totals never pass max_form_size / max_upload_size, nor the part and header counts; after
  every chunk the parser holds at most about twice max_part_header_size plus a constant.
- Work per input stays within a linear time budget (aiohttp CVE-2024-30251 was a loop).
- parse_options_header() and parse_boundary() on the same bytes read as a Content-Type value:
  MultipartError is the only error, and the time is linear in the value's length (tornado
  CVE-2025-67726, python-multipart CVE-2024-24762 and CVE-2026-53539 were not).

Run long: python3 fuzz/fuzz_multipart.py -max_total_time=3600 fuzz/corpus/multipart
"""

from __future__ import annotations

import sys
from typing import Any

from _harness import ByteReader, fuzz_main, instrumented, pieces

with instrumented(__name__):
    from _invariants import deep_size, within_linear_time

    from framewire.sansio.limits import HTTPLimits
    from framewire.sansio.multipart import (
        Finished,
        MultipartError,
        MultipartFailed,
        MultipartParser,
        PartData,
        PartEnd,
        PartStart,
        parse_boundary,
        parse_options_header,
    )

BOUNDARIES = (b"boundary", b"----WebKitFormBoundary7MA4YWxkTrZu0gW", b"a", b"x'()+_,-./:=? y")
SMALL_LIMITS = HTTPLimits(
    max_multipart_parts=3,
    max_part_headers=2,
    max_part_header_size=128,
    max_form_size=64,
    max_upload_size=256,
)
HELD_OVERHEAD = 12288
AMPLIFIED_MAX = 1 << 16


class Config:
    def __init__(self, flags: int) -> None:
        self.limits = SMALL_LIMITS if flags & 1 else HTTPLimits()
        self.eof = bool(flags & 2)
        self.structured = bool(flags & 4)
        self.amplify = bool(flags & 8)
        self.boundary = BOUNDARIES[(flags >> 4) & 3]


def build_body(reader: ByteReader, boundary: bytes) -> tuple[bytes, list[Any] | None]:
    """A valid body from the input's part descriptions, and the events it must give (None
    when a part's content happens to hold the delimiter, so that no round trip is promised)."""
    delimiter = b"\r\n--" + boundary
    body = [b"preamble\r\n"] if reader.flag() else []
    expected: list[Any] | None = []
    while not reader.exhausted and len(body) < 40:
        name = _quotable(reader.short_bytes())
        filename = _quotable(reader.short_bytes()) if reader.flag() else None
        content = reader.short_bytes()
        headers = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            headers += f'; filename="{filename}"\r\nContent-Type: image/png'
        body.append(b"--%s\r\n%s\r\n\r\n%s\r\n" % (boundary, headers.encode(), content))
        if delimiter in b"\r\n" + content + b"\r\n" or expected is None:
            expected = None
            continue
        content_type = "image/png" if filename is not None else "text/plain"
        expected.append(("start", name, filename, content_type))
        if content:
            expected.append(("data", content))
        expected.append(("end",))
    body.append(b"--%s--\r\nepilogue" % boundary)
    if expected is not None:
        expected.append(("finished",))
    return b"".join(body), expected


def _quotable(raw: bytes) -> str:
    """Text that survives a quoted-string in a part header: UTF-8, no quote, backslash, CTL."""
    text = raw.decode("utf-8", "replace")
    return "".join(c for c in text if c not in '"\\' and c >= " " and c != "\x7f")


def read_body(reader: ByteReader, config: Config) -> bytes:
    if not config.amplify:
        return reader.rest()
    prefix = reader.short_bytes()
    unit = reader.short_bytes() or b"-"
    count = reader.integer(2)
    suffix = reader.rest()
    count = min(count, (AMPLIFIED_MAX - len(prefix) - len(suffix)) // len(unit))
    return prefix + unit * max(count, 0) + suffix


def parse(chunks: list[bytes], config: Config, *, measure: bool = False) -> list[Any]:
    """Feed the parser; return its events with each part's data joined."""
    parser = MultipartParser(config.boundary, config.limits)
    events: list[Any] = []
    data = bytearray()
    totals = {True: 0, False: 0}
    in_file = False
    parts = 0

    def drain() -> None:
        nonlocal in_file, parts
        for event in parser.events_received():
            if isinstance(event, PartData):
                assert event.data, "empty PartData"
                data.extend(event.data)
                totals[in_file] += len(event.data)
                continue
            if data:
                events.append(("data", bytes(data)))
                data.clear()
            if isinstance(event, PartStart):
                parts += 1
                in_file = event.filename is not None
                assert len(event.headers) <= config.limits.max_part_headers
                events.append(("start", event.name, event.filename, event.content_type))
            elif isinstance(event, PartEnd):
                events.append(("end",))
            elif isinstance(event, Finished):
                events.append(("finished",))
            else:
                assert isinstance(event, MultipartFailed)
                error = event.error
                assert error.http_status in (400, 413), error
                events.append(("failed", error.http_status, str(error)))
        assert totals[True] <= config.limits.max_upload_size, "uploads past max_upload_size"
        assert totals[False] <= config.limits.max_form_size, "fields past max_form_size"
        assert parts <= config.limits.max_multipart_parts, "parts past max_multipart_parts"

    for chunk in chunks:
        parser.receive_data(chunk)
        drain()
        if measure:
            held = deep_size(parser, shared=(config.limits,))
            bound = 2 * config.limits.max_part_header_size + HELD_OVERHEAD
            assert held <= bound, f"multipart parser holds {held} bytes"
    if config.eof:
        parser.receive_eof()
        drain()
    if data:
        events.append(("data", bytes(data)))
    return events


def check_content_type(value: str) -> None:
    """parse_boundary() raises only MultipartError, in time linear in the value's length."""

    def run() -> None:
        parse_options_header(value)
        try:
            boundary = parse_boundary(value)
        except MultipartError as error:
            assert error.http_status == 400
        else:
            MultipartParser(boundary)

    within_linear_time(run, len(value), per_byte=20e-6, constant=0.02, what="parse_boundary()")


def comparable(events: list[Any]) -> list[Any]:
    """Events without the part data handed out just before a 413.

    The parser streams: data that arrived in earlier reads went out before the read that passed
    the limit, so how much of the offending part came out depends on the reads (never more than
    the limit: parse() checks the totals). Everything else must not.
    """
    if len(events) >= 2 and events[-1][:2] == ("failed", 413) and events[-2][0] == "data":
        return [*events[:-2], events[-1]]
    return events


def check(data: bytes) -> None:
    """Check every invariant of this target on one input."""
    reader = ByteReader(data)
    config = Config(reader.byte())
    split_seed = reader.byte()
    expected = None
    if config.structured:
        body, expected = build_body(reader, config.boundary)
    else:
        body = read_body(reader, config)
    whole = parse([body], config)
    split = parse(list(pieces(body, split_seed)), config, measure=True)
    assert comparable(split) == comparable(whole), f"split:\n{split!r}\nwhole:\n{whole!r}"
    small_pieces = within_linear_time(
        lambda: parse(list(pieces(body, 1 if len(body) <= 16384 else split_seed)), config),
        len(body),
        per_byte=100e-6,
        constant=0.05,
        what="multipart parser fed in small pieces",
    )
    assert comparable(small_pieces) == comparable(whole), "byte by byte differs"
    failed = any(event[0] == "failed" for event in whole)
    if expected is not None and not failed:
        assert whole == expected, f"round trip:\n{whole!r}\n{expected!r}"
    # The body's bytes as a Content-Type value too: all of an amplified one, else a start.
    value = body[: AMPLIFIED_MAX if config.amplify else 4096].decode("latin-1")
    check_content_type("multipart/form-data; " + value)


if __name__ == "__main__":
    fuzz_main(check)
    sys.exit(0)
