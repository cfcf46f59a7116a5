"""Tests of the streaming multipart/form-data parser (framewire.sansio.multipart)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framewire.exceptions import HTTPError
from framewire.sansio.limits import HTTPLimits
from framewire.sansio.multipart import (
    Finished,
    MultipartError,
    MultipartEvent,
    MultipartFailed,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    parse_boundary,
    parse_options_header,
)

BOUNDARY = b"----fwBoundary7MA4YWxkTrZu0gW"


def part(name: str, data: bytes, filename: str | None = None, extra: str = "") -> bytes:
    """Return one encoded part, delimiter line included."""
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{BOUNDARY.decode()}\r\nContent-Disposition: {disposition}\r\n{extra}\r\n"
    return head.encode() + data + b"\r\n"


def body(*parts: bytes, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    """Return a whole multipart body made of ``parts``."""
    return preamble + b"".join(parts) + b"--" + BOUNDARY + b"--\r\n" + epilogue


def normalize(events: Iterable[MultipartEvent]) -> list[object]:
    """Merge adjacent PartData events: how data is sliced depends on how it arrived."""
    merged: list[object] = []
    for event in events:
        if isinstance(event, PartData) and merged and isinstance(merged[-1], PartData):
            merged[-1] = PartData(merged[-1].data + event.data)
        elif isinstance(event, MultipartFailed):
            merged.append(("failed", event.error.http_status))
        else:
            merged.append(event)
    return merged


def feed(
    chunks: Sequence[bytes], limits: HTTPLimits | None = None, eof: bool = True
) -> list[object]:
    """Feed ``chunks`` one by one (then EOF) and return the normalized events."""
    parser = MultipartParser(BOUNDARY, limits)
    events: list[MultipartEvent] = []
    for chunk in chunks:
        parser.receive_data(chunk)
        events.extend(parser.events_received())
    if eof:
        parser.receive_eof()
        events.extend(parser.events_received())
    return normalize(events)


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Split ``data`` at the given offsets."""
    offsets = sorted({min(max(cut, 0), len(data)) for cut in cuts})
    pieces, start = [], 0
    for offset in offsets:
        pieces.append(data[start:offset])
        start = offset
    pieces.append(data[start:])
    return pieces


def check_all_splits(data: bytes, limits: HTTPLimits | None = None) -> list[object]:
    """Parse whole and byte by byte; both must give the same events; return them."""
    whole = feed([data], limits)
    assert feed([bytes([byte]) for byte in data], limits) == whole
    return whole


def failure_status(events: list[object]) -> int | None:
    """Return the status of the failure event, if any."""
    for event in events:
        if isinstance(event, tuple):
            return int(event[1])
    return None


SAMPLE = body(
    part("title", b"hello world"),
    part("upload", b"\x00\x01binary\r\n--not-the-boundary\r\n", filename="a.bin"),
    part("empty", b""),
    preamble=b"this preamble is ignored\r\n",
    epilogue=b"and so is this epilogue",
)


def test_fields_and_files_produce_events_in_order() -> None:
    events = check_all_splits(SAMPLE)
    assert [type(event) for event in events] == [
        PartStart,
        PartData,
        PartEnd,
        PartStart,
        PartData,
        PartEnd,
        PartStart,
        PartEnd,
        Finished,
    ]
    first, upload = events[0], events[3]
    assert isinstance(first, PartStart) and isinstance(upload, PartStart)
    assert (first.name, first.filename, first.content_type) == ("title", None, "text/plain")
    assert (upload.name, upload.filename) == ("upload", "a.bin")
    assert upload.content_type == "application/octet-stream"
    assert events[1] == PartData(b"hello world")
    assert events[4] == PartData(b"\x00\x01binary\r\n--not-the-boundary\r\n")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(SAMPLE)), max_size=30))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    assert feed(split_at(SAMPLE, cuts)) == feed([SAMPLE])


@pytest.mark.parametrize(
    "content",
    [
        b"\r\n--" + BOUNDARY[:-1],  # a delimiter missing its last byte
        b"\r\n--" + BOUNDARY[:-1] + b"X",
        b"--" + BOUNDARY,  # no CRLF in front: not a delimiter
        b"\r\r\r\n\r\n-\r\n--\r\n--" + BOUNDARY[:5],
        b"\r" * 200,
        b"ends with CR\r",
    ],
)
def test_boundary_like_data_inside_a_part_is_content(content: bytes) -> None:
    events = check_all_splits(body(part("field", content)))
    assert events[1] == PartData(content)
    assert isinstance(events[-1], Finished)


def test_first_delimiter_may_open_the_body_and_padding_is_allowed() -> None:
    data = b"--" + BOUNDARY + b"  \t\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n"
    data += b"--" + BOUNDARY + b"--"
    events = check_all_splits(data)
    assert isinstance(events[0], PartStart) and events[0].name == "x"
    assert events[1:] == [PartData(b"1"), PartEnd(), Finished()]


def test_body_without_parts_is_finished() -> None:
    assert check_all_splits(b"--" + BOUNDARY + b"--\r\n") == [Finished()]


def test_part_headers_are_kept_and_filename_star_wins() -> None:
    data = body(
        part(
            "f",
            b"x",
            filename="fallback.txt",
            extra="Content-Type: image/png\r\nX-Extra:  v \r\n",
        ).replace(
            b'filename="fallback.txt"', b"filename=\"a.txt\"; filename*=UTF-8''%C3%A9t%C3%A9.png"
        )
    )
    start = check_all_splits(data)[0]
    assert isinstance(start, PartStart)
    assert start.filename == "été.png"
    assert start.content_type == "image/png"
    assert start.headers.get("x-extra") == "v"


def test_parser_holds_back_no_more_than_the_delimiter_length() -> None:
    parser = MultipartParser(BOUNDARY)
    parser.receive_data(
        b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=f; filename=x\r\n\r\n"
    )
    assert isinstance(parser.events_received()[0], PartStart)
    fed = emitted = 0
    chunk = (b"\r\n--" + BOUNDARY[:-1] + b"\r" + bytes(range(256))) * 300
    for _ in range(40):
        parser.receive_data(chunk)
        fed += len(chunk)
        emitted += sum(len(e.data) for e in parser.events_received() if isinstance(e, PartData))
        assert fed - emitted <= len(BOUNDARY) + 4


def test_truncated_body_fails_with_400() -> None:
    assert failure_status(check_all_splits(SAMPLE[:-30])) == 400


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"--" + BOUNDARY + b"\r\nNo-Colon\r\n\r\n", 400),
        (b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n", 400),
        (b"--" + BOUNDARY + b"\r\nContent-Disposition: attachment; name=a\r\n\r\n", 400),
        (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data\r\n\r\n", 400),
        (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=a\rb\r\n\r\n", 400),
        (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=a\x00\r\n\r\n", 400),
        (b"--" + BOUNDARY + b"\r\n folded: line\r\n\r\n", 400),
        (b"--" + BOUNDARY + b"garbage\r\n", 400),
        (b"--" + BOUNDARY + b"-x", 400),
    ],
)
def test_malformed_parts_fail_with_400(data: bytes, status: int) -> None:
    events = check_all_splits(data)
    assert failure_status(events) == status
    assert not any(isinstance(event, PartStart) for event in events)


def test_nothing_follows_a_failure() -> None:
    parser = MultipartParser(BOUNDARY)
    parser.receive_data(b"--" + BOUNDARY + b"garbage\r\n")
    parser.receive_data(SAMPLE)
    parser.receive_eof()
    events = parser.events_received()
    assert len(events) == 1 and isinstance(events[0], MultipartFailed)
    assert isinstance(events[0].error, HTTPError)


# Limits: each is a count or a total, checked before the bytes that pass it are kept.


def test_part_count_over_max_multipart_parts_is_413() -> None:
    limits = HTTPLimits(max_multipart_parts=3)
    assert failure_status(feed([body(*[part(f"f{i}", b"x") for i in range(3)])], limits)) is None
    events = feed([body(*[part(f"f{i}", b"x") for i in range(4)])], limits)
    assert failure_status(events) == 413
    assert sum(isinstance(event, PartStart) for event in events) == 3


def test_part_header_count_over_max_part_headers_is_413() -> None:
    limits = HTTPLimits(max_part_headers=4)
    three_more = "".join(f"X-H{i}: v\r\n" for i in range(3))
    four_more = "".join(f"X-H{i}: v\r\n" for i in range(4))
    assert failure_status(feed([body(part("a", b"x", extra=three_more))], limits)) is None
    assert failure_status(check_all_splits(body(part("a", b"x", extra=four_more)), limits)) == 413


def test_part_header_block_over_max_part_header_size_is_413_before_buffering() -> None:
    limits = HTTPLimits(max_part_header_size=200)
    parser = MultipartParser(BOUNDARY, limits)
    parser.receive_data(b"--" + BOUNDARY + b"\r\nX-Long: ")
    for _ in range(50):
        parser.receive_data(b"a" * 10)  # one header line that never ends
    events = parser.events_received()
    assert len(events) == 1 and isinstance(events[0], MultipartFailed)
    assert events[0].error.http_status == 413
    assert "max_part_header_size=200" in str(events[0].error)


def test_many_small_fields_over_total_max_form_size_is_413() -> None:
    # CVE-2025-69228 (aiohttp): the size counter must not reset per field.
    limits = HTTPLimits(max_form_size=1000)
    under = body(*[part(f"f{i}", b"x" * 99) for i in range(10)])
    over = body(*[part(f"f{i}", b"x" * 99) for i in range(11)])
    assert failure_status(feed([under], limits)) is None
    assert failure_status(feed([over], limits)) == 413


def test_files_count_against_max_upload_size_not_max_form_size() -> None:
    limits = HTTPLimits(max_form_size=10, max_upload_size=100)
    assert failure_status(feed([body(part("f", b"y" * 100, filename="a"))], limits)) is None
    assert failure_status(feed([body(part("f", b"y" * 101, filename="a"))], limits)) == 413
    assert failure_status(feed([body(part("f", b"y" * 11))], limits)) == 413


# Content-Type parsing and the boundary.


@pytest.mark.parametrize(
    ("header", "boundary"),
    [
        ("multipart/form-data; boundary=abc", b"abc"),
        ('Multipart/Form-Data; charset=utf-8; BOUNDARY="a b:c"', b"a b:c"),
        ("multipart/form-data;boundary=" + "z" * 70, b"z" * 70),
        ('multipart/form-data; boundary="x"; boundary=y', b"x"),
    ],
)
def test_parse_boundary_accepts_quoted_and_unquoted(header: str, boundary: bytes) -> None:
    assert parse_boundary(header) == boundary


@pytest.mark.parametrize(
    "header",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=" + "z" * 71,
        "multipart/mixed; boundary=abc",
        'multipart/form-data; boundary="ab\r\n"',
        'multipart/form-data; boundary="ends with space "',
        "multipart/form-data; boundary=caf\u00e9",
    ],
)
def test_parse_boundary_rejects_bad_values_with_400(header: str) -> None:
    with pytest.raises(MultipartError) as caught:
        parse_boundary(header)
    assert caught.value.http_status == 400


def test_parse_options_header_handles_escapes_and_windows_paths() -> None:
    value = r'form-data; name="a\"b"; filename="C:\dir\x.txt"; flag; e=""'
    assert parse_options_header(value) == (
        "form-data",
        {"name": 'a"b', "filename": r"C:\dir\x.txt", "e": ""},
    )
    assert parse_options_header('x; a="unterminated') == ("x", {"a": "unterminated"})


@pytest.mark.perf  # timed: deselected by scripts/test.sh (run with -m perf)
@pytest.mark.parametrize(
    ("prefix", "unit"),
    [
        ("", ";a"),  # python-multipart CVE-2026-53539 shape
        ("; a=", '";'),  # quotes opening and closing around semicolons
        ('; a="', ";"),  # tornado CVE-2025-67726: semicolons inside one quoted string
        ('; a="', "\\;"),  # many escapes inside one open quote
        ('; a="', '\\"'),  # escaped quotes inside one open quote
        ("; a=", " "),
        (";", "="),
    ],
    ids=["semicolons", "quotes", "quoted-semicolons", "escapes", "escaped-quotes", "spaces", "eq"],
)
def test_content_type_parameter_parsing_is_linear(prefix: str, unit: str) -> None:
    # CVE-2024-24762 (python-multipart ReDoS): 64 KiB of hostile parameters parse in linear time.
    # Compared with 8 KiB of the same, 8 times more input may cost about 8 times more, not 64.
    def best_time(size: int) -> float:
        header = "multipart/form-data; boundary=abc" + prefix + unit * (size // len(unit))
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            parse_options_header(header)
            timings.append(time.perf_counter() - start)
        return min(timings)

    small, big = best_time(8192), best_time(65536)
    assert big < 20 * small + 0.005
    assert big < 0.5


# CVE-2024-30251 (aiohttp): a crafted body made the parser loop forever. Every input must end,
# quickly: the hypothesis deadline is the per-case timeout.

_ATOMS = [
    b"\r\n",
    b"\r",
    b"\n",
    b"-",
    b"--",
    b"--" + BOUNDARY,
    b"\r\n--" + BOUNDARY,
    b"\r\n--" + BOUNDARY + b"--",
    b"Content-Disposition: form-data; name=a",
    b'; filename="f"',
    b"Content-Type: text/plain",
    b" ",
    b"x",
    b"\x00",
    b":",
]


@settings(
    max_examples=300,
    deadline=500,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(st.sampled_from(_ATOMS) | st.binary(max_size=8), max_size=60),
    st.lists(st.integers(min_value=0, max_value=600), max_size=10),
)
def test_fuzzed_bodies_always_terminate_and_agree_across_splits(
    atoms: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(atoms)
    limits = HTTPLimits(max_multipart_parts=5, max_part_headers=3, max_form_size=64)
    whole = feed([data], limits)
    assert feed(split_at(data, cuts), limits) == whole
    # Exactly one of Finished / failure ends every body, and it is the last event.
    assert isinstance(whole[-1], Finished) or failure_status(whole) is not None


@pytest.mark.perf  # timed: deselected by scripts/test.sh (run with -m perf)
def test_one_byte_chunks_are_linear() -> None:
    # CVE-2025-69229 shape: many 1-byte chunks must not cost more than a constant each.
    data = body(part("f", b"\r\n-" * 40000, filename="x"))
    start = time.perf_counter()
    events = feed([data[i : i + 1] for i in range(len(data))])
    elapsed = time.perf_counter() - start
    assert isinstance(events[-1], Finished)
    assert elapsed < 5.0
