"""Tests for framewire.sansio.mask: both implementations through the mask_impl fixture."""

from __future__ import annotations

import array
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framewire.sansio import mask

MaskFunction = Callable[[bytes | bytearray | memoryview, bytes], bytes]

MASK = b"\x37\xfa\x21\x3d"


def reference_mask(data: bytes, mask_key: bytes) -> bytes:
    """Byte-at-a-time XOR straight from RFC 6455 5.3: the oracle for both implementations."""
    return bytes(byte ^ mask_key[index % 4] for index, byte in enumerate(data))


def test_rfc_6455_example_masked_hello(mask_impl: MaskFunction) -> None:
    # RFC 6455 5.7: "Hello" masked with 37 fa 21 3d.
    assert mask_impl(b"Hello", MASK) == b"\x7f\x9f\x4d\x51\x58"


@pytest.mark.parametrize("length", range(65))
def test_every_length_up_to_64_matches_reference(mask_impl: MaskFunction, length: int) -> None:
    data = bytes((index * 7 + 3) & 0xFF for index in range(length))
    assert mask_impl(data, MASK) == reference_mask(data, MASK)


@pytest.mark.parametrize("length", [1 << 16, (1 << 20) + 3])
def test_large_payload_round_trips(mask_impl: MaskFunction, length: int) -> None:
    data = os.urandom(length)
    masked = mask_impl(data, MASK)
    assert len(masked) == length
    assert masked[:64] == reference_mask(data[:64], MASK)
    tail_start = length - 61
    rotated_mask = MASK[tail_start % 4 :] + MASK[: tail_start % 4]
    assert masked[tail_start:] == reference_mask(data[tail_start:], rotated_mask)
    assert mask_impl(masked, MASK) == data


@pytest.mark.parametrize("offset", range(16))
@pytest.mark.parametrize("length", [0, 1, 7, 8, 9, 31, 32, 33, 100])
def test_every_alignment_of_a_memoryview_slice(
    mask_impl: MaskFunction, offset: int, length: int
) -> None:
    backing = bytearray(os.urandom(offset + length + 16))
    view = memoryview(backing)[offset : offset + length]
    expected = reference_mask(bytes(view), MASK)
    assert mask_impl(view, MASK) == expected


def test_strided_memoryview_is_masked_like_its_bytes(mask_impl: MaskFunction) -> None:
    data = bytes(range(40))
    strided = memoryview(data)[::3]
    assert mask_impl(strided, MASK) == reference_mask(bytes(strided), MASK)


def test_result_is_bytes_for_every_input_type(mask_impl: MaskFunction) -> None:
    data = b"framewire masks any bytes-like payload"
    expected = reference_mask(data, MASK)
    for payload in (data, bytearray(data), memoryview(data)):
        result = mask_impl(payload, MASK)
        assert type(result) is bytes
        assert result == expected


def test_input_is_not_modified(mask_impl: MaskFunction) -> None:
    data = bytearray(b"unchanged payload of some length")
    original = bytes(data)
    mask_impl(data, MASK)
    assert data == original


def test_zero_mask_is_identity_and_empty_data_is_empty(mask_impl: MaskFunction) -> None:
    assert mask_impl(b"payload", b"\x00\x00\x00\x00") == b"payload"
    assert mask_impl(b"", MASK) == b""


def test_memoryview_of_wider_items_is_masked_bytewise(mask_impl: MaskFunction) -> None:
    # len() of this view counts 4-byte items; the mask applies to its 12 bytes.
    items = array.array("I", [1, 2, 3])
    view = memoryview(items)
    assert mask_impl(view, MASK) == reference_mask(items.tobytes(), MASK)


@pytest.mark.parametrize("bad_mask", [b"", b"\x01", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05"])
@pytest.mark.parametrize("data", [b"", b"payload"])
def test_mask_of_wrong_length_is_value_error(
    mask_impl: MaskFunction, bad_mask: bytes, data: bytes
) -> None:
    with pytest.raises(ValueError, match=f"mask must be 4 bytes, got {len(bad_mask)}"):
        mask_impl(data, bad_mask)


@pytest.mark.parametrize("data", ["text is not bytes", 1234, None])
def test_non_buffer_data_is_type_error(mask_impl: MaskFunction, data: object) -> None:
    with pytest.raises(TypeError):
        mask_impl(data, MASK)  # type: ignore[arg-type]


def test_keyword_arguments_match_the_python_signature(mask_impl: MaskFunction) -> None:
    apply: Callable[..., bytes] = mask_impl
    assert apply(data=b"Hello", mask=MASK) == b"\x7f\x9f\x4d\x51\x58"


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=300),
    mask_key=st.binary(min_size=4, max_size=4),
    offset=st.integers(min_value=0, max_value=15),
)
def test_python_and_c_agree(data: bytes, mask_key: bytes, offset: int) -> None:
    speedups = pytest.importorskip("framewire._speedups")
    view = memoryview(bytes(offset) + data)[offset:]
    assert speedups.apply_mask(view, mask_key) == mask.py_apply_mask(view, mask_key)
    assert mask.py_apply_mask(data, mask_key) == reference_mask(data, mask_key)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200), mask_key=st.binary(min_size=4, max_size=4))
def test_masking_twice_round_trips(data: bytes, mask_key: bytes) -> None:
    assert mask.apply_mask(mask.apply_mask(data, mask_key), mask_key) == data


def test_no_speedups_environment_variable_selects_pure_python() -> None:
    code = "from framewire.sansio import mask; print(mask.SPEEDUPS, mask.apply_mask.__module__)"
    environment = {**os.environ, "FRAMEWIRE_NO_SPEEDUPS": "1"}
    output = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60
    )
    assert output.returncode == 0, output.stderr
    assert output.stdout.split() == ["False", "framewire.sansio.mask"]


def test_speedups_are_used_by_default_when_built() -> None:
    pytest.importorskip("framewire._speedups")
    if os.environ.get("FRAMEWIRE_NO_SPEEDUPS"):
        pytest.skip("FRAMEWIRE_NO_SPEEDUPS is set for this run")
    assert mask.SPEEDUPS is True
    assert mask.apply_mask is not mask.py_apply_mask


@pytest.mark.parametrize("length", [65535, 65536, 65537, 65539, 200_003])
@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview-slice"])
def test_python_path_matches_reference_on_both_sides_of_the_translate_threshold(
    length: int, kind: str
) -> None:
    payload = bytes((index * 7 + 3) % 256 for index in range(length + 5))
    data: bytes | bytearray | memoryview = payload[5:]
    if kind == "bytearray":
        data = bytearray(payload[5:])
    elif kind == "memoryview-slice":
        data = memoryview(payload)[5:]
    assert mask.py_apply_mask(data, b"\x9a\x01\xff\x42") == reference_mask(
        payload[5:], b"\x9a\x01\xff\x42"
    )


def test_mask_may_be_a_view_of_a_receive_buffer(mask_impl: MaskFunction) -> None:
    buffer = bytearray(b"\x00\x01key!payload bytes")
    view = memoryview(buffer)
    expected = mask_impl(bytes(buffer[6:]), b"key!")
    assert mask_impl(view[6:], view[2:6]) == expected
    assert mask_impl(view[6:], bytearray(b"key!")) == expected
