"""The receive fast path (sansio/whole_frames.py): C and Python agree, and both agree with the
general decoder on every byte they take."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framewire.sansio.connection import Connection, Role
from framewire.sansio.events import BinaryMessage, TextMessage
from framewire.sansio.whole_frames import py_parse_whole_frames
from tests.conftest import c_twin_or_skip
from tests.sansio.ws_helpers import MASK, frame

Parse = Callable[..., int]


@pytest.fixture(params=["python", "c"])
def parse(request: pytest.FixtureRequest) -> Parse:
    """py_parse_whole_frames, then the C twin (skipped when the extension was not built)."""
    if request.param == "python":
        return py_parse_whole_frames
    c_parse: Parse = c_twin_or_skip("parse_whole_frames")
    return c_parse


def test_whole_frames_become_pieces_and_the_rest_is_left(parse: Parse) -> None:
    data = frame(1, "héllo".encode()) + frame(2, b"\x00" * 300) + frame(9, b"ping") + b"junk"
    out: list[tuple[object, bool, bool]] = []
    used = parse(memoryview(data), True, None, out)
    assert out == [("héllo", True, True), (b"\x00" * 300, False, True)]
    assert data[used:] == frame(9, b"ping") + b"junk"


@pytest.mark.parametrize(
    ("data", "masked", "max_size"),
    [
        (frame(1, b"x", fin=False), True, None),  # a fragment
        (frame(1, b"x", rsv1=True), True, None),  # compressed
        (frame(2, b"x" * 70_000), True, None),  # 64-bit length
        (frame(2, b"x" * 200)[:-1], True, None),  # incomplete
        (frame(2, b"x" * 11), True, 10),  # over max_size
        (frame(1, b"\xff"), True, None),  # invalid UTF-8
        (frame(1, b"caf\xc3"), True, None),  # truncated UTF-8
        (frame(2, b"x"), False, None),  # masked frame on the client side
        (frame(2, b"x", mask=None), True, None),  # unmasked frame on the server side
        (b"\x82", True, None),  # not even a header
    ],
)
def test_anything_else_is_left_to_the_general_path(
    parse: Parse, data: bytes, masked: bool, max_size: int | None
) -> None:
    out: list[object] = []
    assert parse(data, masked, max_size, out) == 0
    assert out == []


def test_client_side_unmasked_frames_and_a_16_bit_length(parse: Parse) -> None:
    data = frame(2, b"a" * 126, mask=None) + frame(1, "é".encode() * 3000, mask=None)
    out: list[tuple[object, bool, bool]] = []
    assert parse(bytearray(data), False, 10_000, out) == len(data)
    assert out == [(b"a" * 126, False, True), ("é" * 3000, True, True)]


def test_bad_arguments_to_the_c_version_are_named(parse: Parse) -> None:
    if parse is py_parse_whole_frames:
        pytest.skip("the Python version relies on its type hints")
    with pytest.raises(TypeError, match="out must be a list"):
        parse(b"", True, None, ())
    with pytest.raises(TypeError, match="takes 4 arguments"):
        parse(b"", True)
    with pytest.raises(ValueError, match="max_size"):
        parse(b"", True, -1, [])


frames = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 2, 9, 10]),
        st.binary(max_size=300) | st.text(max_size=80).map(str.encode),
        st.booleans(),
        st.booleans(),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(frames=frames, masked=st.booleans(), max_size=st.none() | st.integers(0, 400))
def test_c_and_python_agree_and_match_the_general_decoder(
    frames: list[tuple[int, bytes, bool, bool]], masked: bool, max_size: int | None
) -> None:
    data = b"".join(
        frame(opcode, payload, fin=fin, rsv1=rsv1, mask=MASK if masked else None)
        for opcode, payload, fin, rsv1 in frames
    )
    python_out: list[tuple[object, bool, bool]] = []
    used = py_parse_whole_frames(data, masked, max_size, python_out)
    try:
        speedups = importlib.import_module("framewire._speedups")
    except ImportError:
        pass
    else:
        c_out: list[tuple[object, bool, bool]] = []
        assert speedups.parse_whole_frames(data, masked, max_size, c_out) == used
        assert c_out == python_out
    # What the fast path took, the general decoder reads as the same messages.
    general = Connection(Role.SERVER if masked else Role.CLIENT)
    for index in range(used):  # one byte at a time: the fast path never sees a whole frame
        general.receive_data(data[index : index + 1])
    expected = [
        (event.data, isinstance(event, TextMessage), True)
        for event in general.events_received()
        if isinstance(event, TextMessage | BinaryMessage)
    ]
    assert python_out == expected
