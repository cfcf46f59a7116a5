"""Tests for framewire.sansio.deflate: per-message compression, decompression and its limits."""

from __future__ import annotations

import importlib.util
import random
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framewire.exceptions import PayloadTooBig, ProtocolError
from framewire.sansio import deflate_compressors
from framewire.sansio.deflate import (
    MAX_PIECE_SIZE,
    DeflateBackend,
    DeflateConfig,
    DeflateParameters,
    PerMessageDeflate,
    compress_shared,
    compression_library,
)

KIB = 1024
MIB = 1024 * KIB
TAIL = b"\x00\x00\xff\xff"
CONFIG = DeflateConfig()
HAVE_ISAL = importlib.util.find_spec("isal") is not None
# Messages without context takeover are compressed by the chosen backend: every test that takes
# this fixture runs with the standard library's zlib and with ISA-L (skipped when not installed).
BACKENDS = [
    pytest.param("zlib", id="zlib"),
    pytest.param(
        "isal",
        id="isal",
        marks=pytest.mark.skipif(not HAVE_ISAL, reason="isal is not installed (framewire[isal])"),
    ),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> DeflateBackend:
    """Return each compression backend in turn."""
    name: DeflateBackend = request.param
    return name


def _text(size: int) -> bytes:
    """Return ``size`` bytes of compressible UTF-8 text (deterministic)."""
    rng = random.Random(size)
    words = ["hello", "world", "chat", "message", "framewire", "deflate", "é", "ü", "👋"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words).encode() + b" "
    return bytes(out[:size])  # may cut a character: compression does not care


def _binary(size: int) -> bytes:
    """Return ``size`` bytes of incompressible data (deterministic)."""
    return random.Random(size).randbytes(size)


DEFAULT_PARAMS = DeflateParameters()


def _pair(
    params: DeflateParameters = DEFAULT_PARAMS, config: DeflateConfig = CONFIG
) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    """Return a (server, client) pair that agreed on ``params``."""
    server = PerMessageDeflate(params, is_server=True, config=config)
    client = PerMessageDeflate(params, is_server=False, config=config)
    return server, client


def _send(sender: PerMessageDeflate, message: bytes, frame_sizes: list[int]) -> list[bytes]:
    """Compress ``message`` as frames of the given sizes (the rest goes in the last frame)."""
    frames = []
    position = 0
    for size in frame_sizes:
        frames.append(sender.compress(message[position : position + size], final=False))
        position += size
    frames.append(sender.compress(message[position:], final=True))
    return frames


def _receive(
    receiver: PerMessageDeflate, frames: list[bytes], max_size: int | None = None
) -> bytes:
    """Decompress every frame of one message and join the pieces."""
    pieces: list[bytes] = []
    for index, frame in enumerate(frames):
        pieces += receiver.decompress(frame, final=index == len(frames) - 1, max_size=max_size)
    assert all(len(piece) <= MAX_PIECE_SIZE for piece in pieces)
    return b"".join(pieces)


# -- round trips ----------------------------------------------------------------------------------

SIZES = [0, 1, 64 * KIB, MIB]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("make", [_text, _binary])
@pytest.mark.parametrize("fragmented", [False, True])
def test_round_trip_both_directions(size: int, make: object, fragmented: bool) -> None:
    assert callable(make)
    message: bytes = make(size)
    server, client = _pair()
    frame_sizes = [size // 3, size // 3] if fragmented else []
    for sender, receiver in ((server, client), (client, server)):
        for _ in range(2):  # the second message goes through the kept context
            frames = _send(sender, message, frame_sizes)
            assert _receive(receiver, frames, max_size=MIB) == message


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("fragmented", [False, True])
def test_round_trip_without_takeover(size: int, fragmented: bool, backend: DeflateBackend) -> None:
    message = _text(size)
    params = DeflateParameters(server_no_context_takeover=True, client_no_context_takeover=True)
    server, client = _pair(params, DeflateConfig(backend=backend))
    frame_sizes = [size // 3, size // 3] if fragmented else []
    for sender, receiver in ((server, client), (client, server)):
        for _ in range(2):
            assert _receive(receiver, _send(sender, message, frame_sizes), max_size=MIB) == message


@pytest.mark.parametrize("takeover", [True, False])
def test_empty_message_is_a_single_zero_byte(takeover: bool, backend: DeflateBackend) -> None:
    # RFC 7692 7.2.3.6 (zlib's output; ISA-L writes an empty fixed-Huffman block first)
    params = DeflateParameters(server_no_context_takeover=not takeover)
    server, client = _pair(params, DeflateConfig(backend=backend))
    compressed = server.compress(b"", final=True)
    if backend == "isal" and not takeover:
        assert compressed == b"\x02\x00"
    else:
        assert compressed == b"\x00"
    assert _receive(client, [compressed]) == b""


@pytest.mark.parametrize("takeover", [True, False])
def test_empty_last_frame_after_data_frames_round_trips(
    takeover: bool, backend: DeflateBackend
) -> None:
    params = DeflateParameters(server_no_context_takeover=not takeover)
    server, client = _pair(params, DeflateConfig(backend=backend))
    for _ in range(2):
        frames = [server.compress(b"abc" * 100, final=False), server.compress(b"", final=True)]
        assert _receive(client, frames) == b"abc" * 100


def test_compressible_text_gets_smaller() -> None:
    server, _ = _pair()
    assert len(server.compress(_text(64 * KIB), final=True)) < 32 * KIB


@settings(max_examples=60, deadline=None)
@given(
    message=st.binary(max_size=3000) | st.sampled_from([_text(200 * KIB), _binary(70 * KIB)]),
    data=st.data(),
)
def test_frames_fed_in_random_pieces_give_the_same_message(
    message: bytes, data: st.DataObject
) -> None:
    server, client = _pair()
    frame_sizes = data.draw(st.lists(st.integers(0, len(message)), max_size=4))
    compressed = b"".join(_send(server, message, frame_sizes))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(compressed)), max_size=8)))
    pieces = [
        compressed[start:end]
        for start, end in zip([0, *cuts], [*cuts, len(compressed)], strict=True)
    ]
    received: list[bytes] = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        received += client.decompress(piece, final=last, max_size=len(message))
    assert b"".join(received) == message
    assert all(len(piece) <= MAX_PIECE_SIZE for piece in received)


def test_accepts_bytearray_and_memoryview() -> None:
    server, client = _pair()
    message = _text(5000)
    compressed = server.compress(memoryview(bytearray(message)), final=True)
    assert _receive(client, [bytes(compressed)]) == message
    assert (
        b"".join(
            client.decompress(
                bytearray(server.compress(message, final=True)), final=True, max_size=None
            )
        )
        == message
    )


# -- context takeover -----------------------------------------------------------------------------


def _second_message_size(
    params: DeflateParameters, config: DeflateConfig = CONFIG
) -> tuple[int, int]:
    server, client = _pair(params, config)
    message = _text(2000)
    first = server.compress(message, final=True)
    second = server.compress(message, final=True)
    assert _receive(client, [first]) == message
    assert _receive(client, [second]) == message
    return len(first), len(second)


@pytest.mark.parametrize(("level", "at_most"), [(6, 0.25), (1, 0.75)])
def test_context_takeover_makes_a_repeated_message_smaller(level: int, at_most: float) -> None:
    # Level 1 searches 4 hash-chain entries, which mostly find the message's own repeats first.
    first, second = _second_message_size(DeflateParameters(), DeflateConfig(compress_level=level))
    assert second < first * at_most


def test_no_context_takeover_compresses_each_message_alone(backend: DeflateBackend) -> None:
    config = DeflateConfig(backend=backend)
    params = DeflateParameters(server_no_context_takeover=True)
    first, second = _second_message_size(params, config)
    assert second == first


ZLIB_ONLY = DeflateConfig(backend="zlib")  # tracemalloc sees zlib's allocations, not ISA-L's


@pytest.mark.parametrize("is_server", [True, False])
def test_no_context_takeover_holds_no_zlib_object_between_messages(is_server: bool) -> None:
    params = DeflateParameters(server_no_context_takeover=True, client_no_context_takeover=True)
    peer = PerMessageDeflate(params, is_server=not is_server, config=ZLIB_ONLY)
    incoming = peer.compress(_text(50 * KIB), final=True)  # the process's compressor exists now
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        endpoints = [PerMessageDeflate(params, is_server=is_server, config=ZLIB_ONLY)]
        endpoints *= 20
        assert not endpoints[0].holds_zlib_state  # created only when a message needs one
        for endpoint in endpoints:
            endpoint.compress(_text(50 * KIB), final=True)
            pieces = endpoint.decompress(incoming, final=True, max_size=None)
            del pieces
            assert not endpoint.holds_zlib_state
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # zlib allocates through Python's raw allocator, which tracemalloc sees: a decompressor lives
    # while a message is inflated (its 32 KiB window and 7 KiB state), and nothing of any zlib
    # object is left once the message is done.
    assert peak - before > 32 * KIB
    assert after - before < 2 * KIB


def test_connections_without_takeover_share_one_compressor() -> None:
    params = DeflateParameters(server_no_context_takeover=True)
    message = _text(5 * KIB)
    PerMessageDeflate(params, is_server=True, config=ZLIB_ONLY).compress(message, final=True)
    servers = [PerMessageDeflate(params, is_server=True, config=ZLIB_ONLY) for _ in range(20)]
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        outputs = {server.compress(message, final=True) for server in servers}
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A compressor with a 15-bit window and memLevel 5 is 144 KiB: no message made one, and all
    # 20 connections' messages came out as one fresh compressor's.
    assert peak - before < 64 * KIB
    fresh = zlib.compressobj(1, zlib.DEFLATED, -15, 5)
    assert outputs == {_zlib_message(fresh, message)}


def test_interleaved_fragmented_messages_without_takeover(backend: DeflateBackend) -> None:
    # Two connections without context takeover: one is mid-way through a fragmented message
    # (holding the process's idle compressor) while the other sends whole messages.
    config = DeflateConfig(backend=backend)
    params = DeflateParameters(server_no_context_takeover=True)
    first, second = _pair(params, config), _pair(params, config)
    long_message, short_message = _text(40 * KIB), _text(3 * KIB)
    frames = [first[0].compress(long_message[: 20 * KIB], final=False)]
    whole = [second[0].compress(short_message, final=True) for _ in range(2)]
    frames.append(first[0].compress(long_message[20 * KIB :], final=True))
    after = second[0].compress(short_message, final=True)
    assert _receive(first[1], frames) == long_message
    for compressed in [*whole, after]:
        assert _receive(second[1], [compressed]) == short_message
    assert whole[0] == whole[1] == after  # each compressed as if by a fresh compressor


def test_context_takeover_keeps_zlib_objects_until_release() -> None:
    server, client = _pair()
    _receive(client, [server.compress(b"x" * 100, final=True)])
    assert server.holds_zlib_state and client.holds_zlib_state
    server.release()
    client.release()
    assert not server.holds_zlib_state and not client.holds_zlib_state


def test_takeover_is_per_direction() -> None:
    params = DeflateParameters(client_no_context_takeover=True)
    server, client = _pair(params)
    _receive(server, [client.compress(b"x" * 100, final=True)])
    # the client's compressor and the server's decompressor reset; the server keeps nothing
    assert not client.holds_zlib_state and not server.holds_zlib_state
    _receive(client, [server.compress(b"y" * 100, final=True)])
    assert server.holds_zlib_state and client.holds_zlib_state


# -- interop with plain zlib ----------------------------------------------------------------------


def _zlib_message(compressor: zlib._Compress, message: bytes) -> bytes:
    """Compress a message the way other libraries do: sync flush, tail stripped."""
    output = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert output.endswith(TAIL)
    return output[:-4]


def test_decompresses_plain_zlib_messages_with_context_takeover() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    _, client = _pair()
    for message in (_text(3000), _text(3000), _binary(1000), b""):
        assert _receive(client, [_zlib_message(compressor, message)]) == message


def test_plain_zlib_decompresses_our_messages() -> None:
    server, _ = _pair()
    decompressor = zlib.decompressobj(-15)
    for message in (_text(3000), _text(3000), _binary(1000), b""):
        assert decompressor.decompress(server.compress(message, final=True) + TAIL) == message


def test_message_made_of_complete_deflate_streams() -> None:
    # RFC 7692 7.2.3.4 allows blocks with BFINAL set (a full zlib flush per message).
    _, client = _pair(DeflateParameters(server_no_context_takeover=True))
    for message in (_text(3000), b"second"):
        stream = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = stream.compress(message) + stream.flush(zlib.Z_FINISH)
        assert _receive(client, [payload]) == message
    # two complete streams in one message
    streams = []
    for part in (b"abc" * 50, b"def" * 50):
        stream = zlib.compressobj(6, zlib.DEFLATED, -15)
        streams.append(stream.compress(part) + stream.flush(zlib.Z_FINISH))
    assert _receive(client, [b"".join(streams)]) == b"abc" * 50 + b"def" * 50


# -- window bits ----------------------------------------------------------------------------------


def _strict_inflate(decompressor: zlib._Decompress, data: bytes) -> bytes:
    """Inflate one byte per call, so that zlib checks every reference against its window.

    zlib accepts a distance up to its window size plus what the current call has written, so
    only one byte per call makes it check the window size exactly.
    """
    output = []
    pending = data
    while True:
        piece = decompressor.decompress(pending, 1)
        output.append(piece)
        pending = decompressor.unconsumed_tail
        if not pending and not piece:
            return b"".join(output)


def test_strict_inflate_catches_a_too_distant_reference() -> None:
    stream = _fixed_block(LITERALS, 257) + TAIL
    with pytest.raises(zlib.error, match="too far back"):
        _strict_inflate(zlib.decompressobj(-8), stream)
    assert _strict_inflate(zlib.decompressobj(-9), stream) == LITERALS + LITERALS[-257:-254]


def test_zlib_9_bit_streams_fit_an_8_bit_window() -> None:
    # Why window 8 is honoured with a 9-bit compressor: zlib's MAX_DIST is 2**bits - 262.
    message = (_binary(200) * 3 + _binary(300) * 3) * 4
    compressor = zlib.compressobj(9, zlib.DEFLATED, -9)
    compressed = _zlib_message(compressor, message)
    assert len(compressed) < len(message) * 0.8  # the 200-byte repeats were found
    assert _strict_inflate(zlib.decompressobj(-8), compressed + TAIL) == message


@pytest.mark.parametrize("bits", range(8, 16))
@pytest.mark.parametrize("takeover", [True, False], ids=["takeover", "no-takeover"])
def test_our_stream_fits_the_agreed_window(
    bits: int, takeover: bool, backend: DeflateBackend
) -> None:
    # Repeats 300 and 4200 bytes apart: a compressor with a bigger window than agreed would
    # refer back further than an inflater with the agreed window accepts.
    message = (_binary(300) * 4 + _text(3000)) * 2
    params = DeflateParameters(server_no_context_takeover=not takeover, server_max_window_bits=bits)
    server, client = _pair(params, DeflateConfig(backend=backend))
    strict = zlib.decompressobj(-bits)
    for _ in range(2):
        compressed = server.compress(message, final=True)
        assert _strict_inflate(strict, compressed + TAIL) == message
        assert _receive(client, [compressed]) == message


class _BitWriter:
    """Write DEFLATE bits (RFC 1951 3.1.1): Huffman codes MSB first, other values LSB first."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def value(self, number: int, width: int) -> None:
        self.bits += [(number >> index) & 1 for index in range(width)]

    def code(self, number: int, width: int) -> None:
        self.bits += [(number >> index) & 1 for index in reversed(range(width))]

    def to_bytes(self) -> bytes:
        padded = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(
            sum(bit << index for index, bit in enumerate(padded[start : start + 8]))
            for start in range(0, len(padded), 8)
        )


# RFC 1951 3.2.5: (distance code, first distance, extra bits) for the distances used below.
_DISTANCE_CODES = [(15, 193, 6), (16, 257, 7), (17, 385, 7), (18, 513, 8)]


def _fixed_block(literals: bytes, distance: int | None) -> bytes:
    """Return a fixed-Huffman block of literals, then a 3-byte match at ``distance`` if given.

    The block is followed by the header of an empty stored block (a sync flush), so the message
    ends on a byte boundary and the receiver's appended tail completes it.
    """
    writer = _BitWriter()
    writer.value(0, 1)  # BFINAL = 0
    writer.value(1, 2)  # BTYPE = fixed Huffman
    for literal in literals:
        assert literal < 144
        writer.code(0x30 + literal, 8)
    if distance is not None:
        writer.code(1, 7)  # symbol 257: length 3
        code, first, extra_bits = max(e for e in _DISTANCE_CODES if distance >= e[1])
        writer.code(code, 5)
        writer.value(distance - first, extra_bits)
    writer.code(0, 7)  # end of block
    writer.value(0, 3)  # stored block header; LEN/NLEN come from the appended tail
    return writer.to_bytes()


LITERALS = bytes(index % 97 for index in range(600))


def _receive_reference(window_bits: int, distance: int) -> bytes:
    """Send LITERALS, then a message that copies 3 bytes from ``distance`` back (in the window)."""
    server, _ = _pair(DeflateParameters(client_max_window_bits=window_bits))
    assert _receive(server, [_fixed_block(LITERALS, None)]) == LITERALS
    return _receive(server, [_fixed_block(b"", distance)])


def test_window_8_accepts_references_256_bytes_back_across_messages() -> None:
    assert _receive_reference(8, 256) == LITERALS[-256:-253]


@pytest.mark.parametrize(("window_bits", "distance"), [(8, 257), (9, 513)])
def test_reference_past_the_agreed_window_is_taken(window_bits: int, distance: int) -> None:
    """A peer breaking the window it agreed to is inflated with the full window: zlib would
    refuse it across calls but take it within one, so refusing would depend on the reads
    (tests/fuzz/test_regressions.py)."""
    assert _receive_reference(window_bits, distance) == LITERALS[-distance : -distance + 3]


@pytest.mark.parametrize(("window_bits", "distance"), [(9, 257), (9, 512), (10, 513)])
def test_reference_within_the_window_is_accepted(window_bits: int, distance: int) -> None:
    assert _receive_reference(window_bits, distance) == LITERALS[-distance : -distance + 3]


# -- limits and errors ----------------------------------------------------------------------------


def _bomb(inflated_size: int) -> bytes:
    """Return a small compressed message of ``inflated_size`` zero bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return _zlib_message(compressor, bytes(inflated_size))


def test_bomb_raises_payload_too_big_before_inflating_past_the_limit() -> None:
    # CVE-2018-1000518 (websockets), tornado #2391, autobahn GHSA-hxp9-w8x3-p566: the limit must
    # apply to inflated bytes, and be enforced while inflating.
    bomb = _bomb(64 * MIB)
    assert len(bomb) < 100 * KIB
    _, client = _pair()
    inflated = 0
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooBig) as caught:
            for start in range(0, len(bomb), 1000):
                chunk = bomb[start : start + 1000]
                last = start + 1000 >= len(bomb)
                for piece in client.decompress(chunk, final=last, max_size=MIB):
                    inflated += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.close_code == 1009
    assert "max_message_size=1048576" in str(caught.value)
    assert inflated <= MIB
    assert peak < MIB + 64 * KIB + 256 * KIB  # the inflated bytes, one piece, zlib's state


def test_bomb_in_one_frame_raises_with_bounded_memory() -> None:
    bomb = _bomb(64 * MIB)
    _, client = _pair()
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooBig):
            client.decompress(bomb, final=True, max_size=MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MIB + 64 * KIB + 256 * KIB


@pytest.mark.parametrize("size", [MIB, MIB + 1])
def test_limit_counts_the_whole_fragmented_message(size: int) -> None:
    server, client = _pair()
    frames = _send(server, bytes(size), [size // 4] * 3)
    if size <= MIB:
        assert _receive(client, frames, max_size=MIB) == bytes(size)
    else:
        with pytest.raises(PayloadTooBig):
            _receive(client, frames, max_size=MIB)


def test_limit_applies_per_message() -> None:
    server, client = _pair()
    for _ in range(3):
        assert _receive(client, _send(server, bytes(1000), [300]), max_size=1000) == bytes(1000)


@pytest.mark.parametrize(
    "payload", [b"\xff\xff\xff", b"\x07", _fixed_block(b"ab", 257), b"\x02\x00" * 2]
)
def test_corrupt_data_is_a_protocol_error_1002(payload: bytes) -> None:
    _, client = _pair()
    with pytest.raises(ProtocolError) as caught:
        client.decompress(payload, final=True, max_size=MIB)
    assert caught.value.close_code == 1002
    assert not isinstance(caught.value, PayloadTooBig)


# -- sending policy and sharing -------------------------------------------------------------------


def test_should_compress_uses_min_size() -> None:
    endpoint = PerMessageDeflate(
        DeflateParameters(), is_server=True, config=DeflateConfig(min_size=100)
    )
    assert not endpoint.should_compress(99)
    assert endpoint.should_compress(100)
    assert PerMessageDeflate(
        DeflateParameters(), is_server=True, config=DeflateConfig(min_size=0)
    ).should_compress(0)


@pytest.mark.parametrize("bits", [8, 12, 15])
@pytest.mark.parametrize("is_server", [True, False])
def test_compress_shared_matches_a_connection_without_takeover(
    bits: int, is_server: bool, backend: DeflateBackend
) -> None:
    config = DeflateConfig(backend=backend)
    params = DeflateParameters(True, True, bits, bits)
    endpoint = PerMessageDeflate(params, is_server=is_server, config=config)
    assert endpoint.can_share_output
    message = _text(10 * KIB)
    shared = compress_shared(message, params, is_server=is_server, config=config)
    assert endpoint.compress(message, final=True) == shared
    assert endpoint.compress(message, final=True) == shared
    peer = PerMessageDeflate(params, is_server=not is_server, config=config)
    assert _receive(peer, [shared]) == message


def test_compress_shared_refuses_context_takeover() -> None:
    params = DeflateParameters(server_no_context_takeover=False, client_no_context_takeover=True)
    assert not PerMessageDeflate(params, is_server=True, config=CONFIG).can_share_output
    assert PerMessageDeflate(params, is_server=False, config=CONFIG).can_share_output
    with pytest.raises(ValueError):
        compress_shared(b"x", params, is_server=True, config=CONFIG)
    assert compress_shared(b"x", params, is_server=False, config=CONFIG)


def test_sharing_key_separates_different_compressors() -> None:
    params = DeflateParameters(True, True, 12, 12)
    key = PerMessageDeflate(params, is_server=True, config=CONFIG).sharing_key
    same = PerMessageDeflate(params, is_server=False, config=CONFIG).sharing_key
    other = PerMessageDeflate(params, is_server=True, config=DeflateConfig(compress_level=6))
    assert key == same
    assert key != other.sharing_key


@pytest.mark.skipif(not HAVE_ISAL, reason="isal is not installed (framewire[isal])")
def test_sharing_key_separates_isal_from_zlib() -> None:
    params = DeflateParameters(True, True, 12, 12)
    with_isal = PerMessageDeflate(params, is_server=True, config=DeflateConfig(backend="isal"))
    with_zlib = PerMessageDeflate(params, is_server=True, config=DeflateConfig(backend="zlib"))
    assert with_isal.sharing_key != with_zlib.sharing_key


# -- which library compresses ---------------------------------------------------------------------


def test_auto_without_isal_uses_zlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deflate_compressors, "SPEEDUPS_DISABLED", False)
    monkeypatch.setattr(deflate_compressors, "_isal_compressobj", lambda: None)
    assert compression_library(CONFIG, 15, no_context_takeover=True) == "zlib"
    params = DeflateParameters(server_no_context_takeover=True)
    server, client = _pair(params)
    assert _receive(client, [server.compress(_text(3 * KIB), final=True)]) == _text(3 * KIB)


@pytest.mark.parametrize("level", [1, 2, 3, 6, 9])
def test_every_level_round_trips_without_takeover(level: int, backend: DeflateBackend) -> None:
    params = DeflateParameters(True, True)
    server, client = _pair(params, DeflateConfig(compress_level=level, backend=backend))
    for message in (_text(20 * KIB), _binary(3 * KIB), b"", b"x"):
        for sender, receiver in ((server, client), (client, server)):
            assert _receive(receiver, _send(sender, message, [len(message) // 2])) == message


@settings(max_examples=200, deadline=None)
@given(
    garbage=st.lists(st.binary(max_size=64), max_size=4), max_size=st.none() | st.integers(0, 4096)
)
def test_arbitrary_bytes_inflate_or_fail_with_a_close_code(
    garbage: list[bytes], max_size: int | None
) -> None:
    _, client = _pair()
    received = 0
    try:
        for index, piece in enumerate(garbage):
            last = index == len(garbage) - 1
            received += sum(map(len, client.decompress(piece, final=last, max_size=max_size)))
    except ProtocolError as exc:
        assert exc.close_code in (1002, 1009)
    if max_size is not None:
        assert received <= max_size
