"""Invariants and oracles the fuzz targets share.

- implementation("c") / implementation("python"): run framewire's sans-I/O code with every C
  twin, or every pure-Python twin, whatever FRAMEWIRE_NO_SPEEDUPS says, so one process can
  compare the two paths on the same input (the differential check).
- deep_size(): the bytes an object holds, found by walking what it refers to. A parser's limit
  is checked against it after every chunk, so retained *counts* (a list entry per fragment)
  are caught as well as retained bytes.
- within_linear_time(): a time budget proportional to the input's size, re-measured once
  before failing so that a GC pause or a busy machine is not reported as a finding.
- reference_frames(): an independent, deliberately naive reading of RFC 6455 5.2 framing,
  used as the oracle for the frame decoder and to re-encode what it decoded.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import random
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from framewire.sansio import (
    connection,
    decoder,
    field_lines,
    http11_encode,
    http11_framing,
    mask,
    payload_buffer,
    sending,
    upgrade_request,
    whole_frames,
)
from framewire.sansio.events import MessageChunk

__all__ = [
    "C_SPEEDUPS",
    "RawFrame",
    "deep_size",
    "deterministic_masks",
    "encode_raw_frame",
    "event_values",
    "implementation",
    "implementations",
    "reference_frames",
    "whole_messages",
    "within_linear_time",
]


def _load_speedups() -> types.ModuleType | None:
    # Imported directly, whatever sansio/speedups.ENABLED says: the differential check compares
    # against the C twins even when FRAMEWIRE_NO_SPEEDUPS=1 selects Python for everything else.
    try:
        return importlib.import_module("framewire._speedups")
    except ImportError:
        return None


C_SPEEDUPS = _load_speedups()
T = TypeVar("T")

# Every module global that holds a C twin or its Python twin: (module, name, python, c name).
# A rename in framewire makes _set() fail loudly instead of comparing Python with Python.
_TWINS: list[tuple[types.ModuleType, str, Any, str]] = [
    (mask, "apply_mask", mask.py_apply_mask, "apply_mask"),
    (decoder, "apply_mask", mask.py_apply_mask, "apply_mask"),
    (sending, "apply_mask", mask.py_apply_mask, "apply_mask"),
    (whole_frames, "apply_mask", mask.py_apply_mask, "apply_mask"),
    (whole_frames, "parse_whole_frames", whole_frames.py_parse_whole_frames, "parse_whole_frames"),
    (connection, "parse_whole_frames", whole_frames.py_parse_whole_frames, "parse_whole_frames"),
    (decoder, "PayloadBuffer", None, "PayloadBuffer"),
    (payload_buffer, "PayloadBuffer", None, "PayloadBuffer"),
    (field_lines, "parse_field_lines", field_lines.py_parse_field_lines, "parse_field_lines"),
    (http11_framing, "parse_field_lines", field_lines.py_parse_field_lines, "parse_field_lines"),
    (
        upgrade_request,
        "parse_upgrade_request",
        upgrade_request.py_parse_upgrade_request,
        "parse_upgrade_request",
    ),
    (http11_encode, "_c_encode_fields", None, "encode_fields"),
]


def _set(values: list[Any]) -> None:
    for (module, name, _, _), value in zip(_TWINS, values, strict=True):
        if not hasattr(module, name):
            raise AssertionError(f"{module.__name__}.{name} is gone: update fuzz/_invariants.py")
        setattr(module, name, value)


@contextlib.contextmanager
def implementation(kind: str) -> Iterator[None]:
    """Run the block with every C twin (``"c"``) or every Python twin (``"python"``).

    Raises:
        LookupError: ``"c"`` was asked for and framewire._speedups was not built.
    """
    if kind == "c":
        if C_SPEEDUPS is None:
            raise LookupError("framewire._speedups was not built")
        chosen = [getattr(C_SPEEDUPS, c_name) for _, _, _, c_name in _TWINS]
    elif kind == "python":
        chosen = [python for _, _, python, _ in _TWINS]
    else:
        raise ValueError(f"unknown implementation {kind!r}")
    saved = [getattr(module, name) for module, name, _, _ in _TWINS]
    _set(chosen)
    try:
        yield
    finally:
        _set(saved)


@contextlib.contextmanager
def deterministic_masks(seed: int = 0) -> Iterator[None]:
    """Make client masking keys a fixed sequence in the block (they come from os.urandom).

    So that a client's output is the same on both paths, and a garbage frame that swallows
    masked bytes swallows the same ones each time.
    """
    generator = random.Random(seed)
    saved = mask.os
    mask.os = types.SimpleNamespace(urandom=generator.randbytes)  # type: ignore[assignment]
    try:
        yield
    finally:
        mask.os = saved


def implementations() -> list[str]:
    """The implementations this machine can run: both, or only Python without the extension."""
    return ["python", "c"] if C_SPEEDUPS is not None else ["python"]


def differential(run: Callable[[], Any]) -> Any:
    """Run ``run`` under each implementation; assert both give equal results; return one."""
    results = []
    for kind in implementations():
        with implementation(kind), deterministic_masks():
            results.append(run())
    for result in results[1:]:
        assert result == results[0], (
            f"C and Python differ:\n  python: {results[0]!r}\n  c: {result!r}"
        )
    return results[0]


# ------------------------------------------------------------------------------- memory


_NOT_HELD = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    enum.Enum,
    bool,
    int,
    float,
    type(None),
)


def deep_size(root: object, *, shared: tuple[object, ...] = ()) -> int:
    """Return the bytes held by ``root`` and everything it refers to, each object once.

    Follows __slots__, __dict__, containers and a memoryview's underlying object; counts a
    buffer-protocol object (a C PayloadBuffer) by its bytes. Objects in ``shared`` (a limits
    object, a config) are not counted. zlib's internal state is opaque here and not counted.
    """
    seen = {id(item) for item in shared}
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _NOT_HELD):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, str | bytes | bytearray):
            continue
        if isinstance(obj, memoryview):
            with contextlib.suppress(ValueError):  # a released view holds nothing
                stack.append(obj.obj)
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
            continue
        if isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
            continue
        for cls in type(obj).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if hasattr(obj, slot):
                    stack.append(getattr(obj, slot))
        if hasattr(obj, "__dict__") and not isinstance(obj, type):
            stack.append(vars(obj))
        with contextlib.suppress(TypeError, ValueError), memoryview(obj) as view:  # type: ignore[arg-type]
            total += view.nbytes
    return total


# ------------------------------------------------------------------------------- time


def within_linear_time(
    run: Callable[[], T], size: int, *, per_byte: float, constant: float, what: str
) -> T:
    """Return ``run()``, asserting it took at most ``constant + per_byte * size`` s of CPU.

    CPU time of this thread (time.thread_time), so other processes on a busy machine do not
    count. ``run`` must redo the whole job from fresh objects: when the first measure is over
    budget it is measured once more, and only a second miss is a finding.
    """
    budget = constant + per_byte * size
    for _ in range(2):
        start = time.thread_time()
        result = run()
        elapsed = time.thread_time() - start
        if elapsed <= budget:
            return result
    raise AssertionError(
        f"{what}: {elapsed * 1e3:.1f} ms for {size} bytes, over the linear budget of "
        f"{budget * 1e3:.1f} ms ({constant * 1e3:.0f} ms + {per_byte * 1e6:.0f} us per byte)"
    )


# ------------------------------------------------------------------------------- events


def event_values(events: list[Any]) -> list[Any]:
    """Events with any memoryview payload replaced by bytes, so that lists compare by value."""
    values = []
    for event in events:
        if isinstance(event, MessageChunk) and isinstance(event.data, memoryview):
            event = MessageChunk(bytes(event.data), event.is_text, event.first, event.last)
        values.append(event)
    return values


def whole_messages(events: list[Any]) -> list[Any]:
    """Events with each message's MessageChunks joined into one ("text"|"binary", payload).

    Streaming delivery may cut a message anywhere depending on the reads; the joined messages
    and every other event must not depend on them.
    """
    joined: list[Any] = []
    parts: list[Any] = []
    for event in event_values(events):
        if not isinstance(event, MessageChunk):
            joined.append(event)
            continue
        if event.first:
            parts = []
        parts.append(event.data)
        if event.last:
            payload = "".join(parts) if event.is_text else b"".join(parts)
            joined.append(("text" if event.is_text else "binary", payload))
    return joined


# ------------------------------------------------------------------------------- frames


def _xor(payload: bytes, key: bytes) -> bytes:
    """XOR with a repeating 4-byte key, written independently of framewire.sansio.mask."""
    if not key or not payload:
        return payload
    length = len(payload)
    repeated = (key * (length // 4 + 1))[:length]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return value.to_bytes(length, "big")


@dataclass(frozen=True)
class RawFrame:
    """One frame as RFC 6455 5.2 lays it out, read without judging it."""

    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    length: int
    mask: bytes  # empty when the MASK bit is clear
    payload: bytes  # unmasked; shorter than length for the incomplete last frame
    raw: bytes  # the frame's bytes as they were in the input
    minimal: bool  # the payload length used the shortest of the 7/16/64-bit forms
    complete: bool
    header_complete: bool


def reference_frames(data: bytes) -> list[RawFrame]:
    """Read frames off ``data`` until it ends; the last one may be incomplete."""
    frames = []
    position = 0
    end = len(data)
    while end - position >= 2:
        first, second = data[position], data[position + 1]
        length = second & 0x7F
        size_bytes = {126: 2, 127: 8}.get(length, 0)
        masked = bool(second & 0x80)
        header_length = 2 + size_bytes + (4 if masked else 0)
        header_complete = end - position >= header_length
        minimal = True
        key = b""
        if header_complete:
            if size_bytes:
                length = int.from_bytes(data[position + 2 : position + 2 + size_bytes], "big")
                minimal = length >= 126 if size_bytes == 2 else length >= 65536
            if masked:
                key = data[position + header_length - 4 : position + header_length]
        start = position + header_length
        stop = min(end, start + length) if header_complete else end
        complete = header_complete and start + length <= end
        frames.append(
            RawFrame(
                fin=bool(first & 0x80),
                rsv1=bool(first & 0x40),
                rsv2=bool(first & 0x20),
                rsv3=bool(first & 0x10),
                opcode=first & 0x0F,
                length=length,
                mask=key,
                payload=_xor(data[start:stop], key) if header_complete else b"",
                raw=data[position:stop],
                minimal=minimal,
                complete=complete,
                header_complete=header_complete,
            )
        )
        if not complete:
            return frames
        position = stop
    if position < end:
        frames.append(
            RawFrame(
                False, False, False, False, 0, 0, b"", b"", data[position:], True, False, False
            )
        )
    return frames


def encode_raw_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv1: bool = False,
    key: bytes = b"",
    length_form: int = 0,
) -> bytes:
    """Encode a frame independently of framewire, optionally with a non-minimal length form.

    ``length_form`` 0 picks the shortest form; 2 and 8 force the 16- and 64-bit forms.
    """
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    mask_bit = 0x80 if key else 0
    length = len(payload)
    if length_form == 2 and length >= 65536:
        length_form = 8
    if length_form == 8 or (length_form == 0 and length >= 65536):
        header = bytes((first, mask_bit | 127)) + length.to_bytes(8, "big")
    elif length_form == 2 or (length_form == 0 and length >= 126):
        header = bytes((first, mask_bit | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((first, mask_bit | length))
    return header + key + _xor(payload, key)
