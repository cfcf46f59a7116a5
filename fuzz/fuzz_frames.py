#!/usr/bin/env python3
"""Fuzz target: the WebSocket frame decoder and message assembly, C and Python paths.

Input: a flags byte, a split seed, then either raw bytes from the peer or (flag bit 3) frame
descriptions that are encoded here first (which reaches large frames, the C PayloadBuffer path,
and valid compressed messages). For each input:

1. FrameDecoder, fed the whole stream, decodes exactly the frames an independent reading of
   RFC 6455 5.2 finds (reference_frames), fails only where a rule is broken, and each frame it
   decodes re-encodes to the input bytes (framewire's own encoder and mask).
2. FrameDecoder and Connection give the same pieces, events, output bytes and errors on the C
   and the Python paths, for the same split (differential).
3. Connection gives the same messages and failure code whole and split, and those are what a
   reference assembler (below) expects from the reference frames.
4. After every chunk, the connection holds at most max_message_size plus a constant.
5. Fed one byte at a time, the work stays within a linear time budget.

Run long: python3 fuzz/fuzz_frames.py -max_total_time=3600 fuzz/corpus/frames
"""

from __future__ import annotations

import codecs
import sys
import zlib
from typing import Any

from _harness import ByteReader, fuzz_main, instrumented, pieces

with instrumented(__name__):
    from _invariants import (
        RawFrame,
        deep_size,
        differential,
        encode_raw_frame,
        event_values,
        reference_frames,
        whole_messages,
        within_linear_time,
    )

    from framewire.exceptions import ProtocolError
    from framewire.sansio.connection import Connection, Role
    from framewire.sansio.decoder import FrameDecoder, FramePiece
    from framewire.sansio.deflate import DeflateConfig, DeflateParameters, PerMessageDeflate
    from framewire.sansio.events import (
        BinaryMessage,
        CloseReceived,
        ConnectionFailed,
        Ping,
        Pong,
        TextMessage,
    )
    from framewire.sansio.frames import encode_frame_header, is_valid_close_code
    from framewire.sansio.limits import WebSocketLimits
    from framewire.sansio.mask import apply_mask

MAX_SIZES = (1 << 20, 125, 1000, None)
MAX_FRAGMENTS = (None, 3)
HELD_OVERHEAD = 6144  # bytes a connection may hold beyond its message buffer (objects, state)
_TAIL = b"\x00\x00\xff\xff"


class Config:
    """The choices of one input's first byte."""

    def __init__(self, flags: int) -> None:
        self.client = bool(flags & 1)
        self.deflate = bool(flags & 2)
        self.stream = bool(flags & 4)
        self.structured = bool(flags & 8)
        self.max_size = MAX_SIZES[(flags >> 4) & 3]
        self.max_fragments = MAX_FRAGMENTS[(flags >> 6) & 1]
        self.defer_failure = bool(flags & 0x80)
        self.limits = WebSocketLimits(
            max_message_size=self.max_size, max_fragments=self.max_fragments
        )

    def connection(self) -> Connection:
        deflate = None
        if self.deflate:
            deflate = PerMessageDeflate(
                DeflateParameters(), is_server=not self.client, config=DeflateConfig()
            )
        return Connection(
            Role.CLIENT if self.client else Role.SERVER,
            limits=self.limits,
            deflate=deflate,
            stream_messages=self.stream,
            defer_failure=self.defer_failure,
        )


# ------------------------------------------------------------------------- structured input


def synthesize(reader: ByteReader, config: Config) -> bytes:
    """Encode the frames described by the rest of the input (masked as the role expects)."""
    stream = []
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    while not reader.exhausted and len(stream) < 64:
        kind = reader.byte()
        opcode = (0, 1, 2, 8, 9, 10, 3, 0xB)[kind & 7]
        fin = not kind & 0x08
        # A compressed message's continuation frames are compressed too; RSV1 is on the first.
        compress = bool(kind & 0x10) and opcode in (0, 1, 2)
        length_form = (0, 0, 2, 8)[(kind >> 5) & 3]
        if kind & 0x80:  # a large payload: a short pattern repeated
            size = reader.integer(3) % 140_000
            pattern = reader.short_bytes() or b"\0"
            payload = (pattern * (size // len(pattern) + 1))[:size]
        else:
            payload = reader.short_bytes()
        if compress:
            payload = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
            if fin and payload.endswith(_TAIL):
                payload = payload[: -len(_TAIL)]
        key = b"" if config.client else (reader.take(4).ljust(4, b"\0"))
        stream.append(
            encode_raw_frame(
                opcode,
                payload,
                fin=fin,
                rsv1=compress and opcode != 0,
                key=key,
                length_form=length_form,
            )
        )
    return b"".join(stream)


# ------------------------------------------------------------------------- decoder oracle


def _frame_rule(frame: RawFrame, *, server: bool, allow_rsv1: bool) -> str | None:
    """The RFC 6455 rule the first two header bytes break, if any (the decoder's order)."""
    if frame.rsv2 or frame.rsv3:
        return "RSV2/RSV3"
    if frame.opcode in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
        return "reserved opcode"
    if frame.rsv1 and (frame.opcode >= 8 or not allow_rsv1):
        return "RSV1"
    if bool(frame.raw[1] & 0x80) != server:
        return "masking"
    if frame.opcode >= 8 and (not frame.fin or frame.raw[1] & 0x7F > 125):
        return "control frame"
    return None


def _expected_decoder_error(frame: RawFrame, config: Config) -> int | None:
    """The close code FrameDecoder must fail with at ``frame``, or None."""
    if len(frame.raw) < 2:
        return None
    if _frame_rule(frame, server=not config.client, allow_rsv1=config.deflate):
        return 1002
    if not frame.header_complete:
        return None
    if frame.length >> 63:
        return 1002
    if (
        frame.opcode < 8
        and not frame.rsv1
        and config.max_size is not None
        and frame.length > config.max_size
    ):
        return 1009
    return None


def decode(data_pieces: list[bytes], config: Config) -> tuple[list[Any], Any]:
    """Feed FrameDecoder; return its pieces as tuples and the error it raised, if any."""
    frame_decoder = FrameDecoder(
        expect_masked=not config.client,
        allow_rsv1=config.deflate,
        max_frame_size=config.max_size,
    )
    out: list[FramePiece] = []
    error = None
    try:
        for piece in data_pieces:
            frame_decoder.feed(piece, out)
    except ProtocolError as exc:
        error = (type(exc).__name__, exc.close_code, str(exc))
    decoded = [
        (p.opcode, p.fin, p.rsv1, bytes(p.data), p.first, p.last, p.frame_length) for p in out
    ]
    return decoded, error


def _frames_of(decoded: list[Any]) -> list[tuple[int, bool, bool, bytes, bool]]:
    """Join pieces into (opcode, fin, rsv1, payload, complete) frames."""
    frames: list[tuple[int, bool, bool, bytes, bool]] = []
    parts: list[bytes] = []
    for opcode, fin, rsv1, data, first, last, _ in decoded:
        if first:
            parts = []
        parts.append(data)
        if last:
            frames.append((opcode, fin, rsv1, b"".join(parts), True))
    if decoded and not decoded[-1][5]:
        opcode, fin, rsv1 = decoded[-1][:3]
        frames.append((opcode, fin, rsv1, b"".join(parts), False))
    return frames


def check_decoder(data: bytes, config: Config, split_seed: int) -> None:
    whole, whole_error = differential(lambda: decode([data], config))
    split, split_error = differential(lambda: decode(list(pieces(data, split_seed)), config))
    assert _frames_of(split) == _frames_of(whole), "frames depend on how the bytes were split"
    assert split_error == whole_error, f"errors depend on the split: {split_error} {whole_error}"

    reference = reference_frames(data)
    decoded = _frames_of(whole)
    expected_error = None
    checked = 0
    for index, frame in enumerate(reference):
        expected_error = _expected_decoder_error(frame, config)
        if expected_error is not None or not frame.header_complete:
            break
        if frame.opcode >= 8 and not frame.complete:
            break  # control frames are delivered whole
        if not frame.complete and not frame.payload:
            break  # no payload byte of it yet: no piece
        assert index < len(decoded), f"frame {index} was not decoded: {frame}"
        opcode, fin, rsv1, payload, complete = decoded[index]
        assert (opcode, fin, rsv1, payload, complete) == (
            frame.opcode,
            frame.fin,
            frame.rsv1,
            frame.payload,
            frame.complete,
        ), f"frame {index} decoded as {decoded[index]!r}, the bytes say {frame}"
        checked = index + 1
        if frame.complete:
            check_reencodes(frame)
    assert len(decoded) == checked, f"{len(decoded)} frames decoded, {checked} expected"
    got = None if whole_error is None else whole_error[1]
    assert got == expected_error, (
        f"decoder error {whole_error}, expected close code {expected_error}"
    )
    if whole_error is not None and whole_error[1] == 1009:
        assert "max_message_size" in whole_error[2], "a size error must name its limit"


def check_reencodes(frame: RawFrame) -> None:
    """framewire's encoder turns the decoded frame back into the bytes it came from."""
    header = encode_frame_header(
        frame.opcode, len(frame.payload), fin=frame.fin, rsv1=frame.rsv1, mask=frame.mask
    )
    body = apply_mask(frame.payload, frame.mask) if frame.mask else frame.payload
    encoded = header + body
    if frame.minimal:
        assert encoded == frame.raw, f"re-encoded {encoded[:20]!r} != input {frame.raw[:20]!r}"
    else:
        # RFC 6455 5.2 asks senders for the shortest length form; receivers accept any, and
        # framewire's encoder always writes the shortest.
        (again,) = reference_frames(encoded)
        assert again.minimal and again.payload == frame.payload


# ------------------------------------------------------------------------- message oracle


class ReferenceAssembler:
    """What RFC 6455 5.4, 5.5, 7.4 and 8.1 (and RFC 7692 6) say the reference frames mean."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.events: list[Any] = []
        self.pongs: list[bytes] = []
        self.in_message = False
        self.text = False
        self.compressed = False
        self.parts: list[bytes] = []
        self.fragments = 0
        self.size = 0
        self.utf8: Any = None
        self.inflater: Any = None

    def run(self, frames: list[RawFrame]) -> tuple[list[Any], int | None, bool]:
        """Return (events, failure code or None, close received)."""
        for frame in frames:
            code = _expected_decoder_error(frame, self.config)
            if code is not None:
                return self.events, code, False
            if not frame.header_complete or (frame.opcode >= 8 and not frame.complete):
                break
            if not frame.complete and not frame.payload:
                break  # the decoder hands out a data frame with its first payload byte
            try:
                if frame.opcode >= 8:
                    if self.control(frame):
                        return self.events, None, True
                else:
                    self.data(frame)
            except _Fail as fail:
                return self.events, fail.code, False
            if not frame.complete:
                break
        return self.events, None, False

    def control(self, frame: RawFrame) -> bool:
        if frame.opcode == 9:
            self.events.append(Ping(frame.payload))
            self.pongs.append(frame.payload)
            return False
        if frame.opcode == 10:
            self.events.append(Pong(frame.payload))
            return False
        payload = frame.payload
        if len(payload) == 1:
            raise _Fail(1002)
        code = 1005 if not payload else int.from_bytes(payload[:2], "big")
        if payload and not is_valid_close_code(code):
            raise _Fail(1002)
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise _Fail(1007) from None
        self.events.append(CloseReceived(code, reason))
        return True

    def data(self, frame: RawFrame) -> None:
        limit = self.config.max_size
        if frame.opcode == 0:
            if not self.in_message or frame.rsv1:
                raise _Fail(1002)
            self.fragments += 1
            fragment_limit = self.config.limits.fragment_limit()
            if fragment_limit is not None and self.fragments > fragment_limit:
                raise _Fail(1009)
        else:
            if self.in_message:
                raise _Fail(1002)
            self.in_message, self.text, self.compressed = True, frame.opcode == 1, frame.rsv1
            self.parts, self.fragments, self.size = [], 1, 0
            self.utf8 = codecs.getincrementaldecoder("utf-8")()
        final = frame.fin and frame.complete
        payload = frame.payload
        if self.compressed:
            payload = self.inflate(payload, final)
        elif limit is not None:
            self.size += frame.length
            if self.size > limit:
                raise _Fail(1009)
        if self.text:
            try:
                self.utf8.decode(payload, final)
            except UnicodeDecodeError:
                raise _Fail(1007) from None
        self.parts.append(payload)
        if final:
            self.in_message = False
            message = b"".join(self.parts)
            self.events.append(("text", message.decode()) if self.text else ("binary", message))

    def inflate(self, payload: bytes, final: bool) -> bytes:
        """Inflate a byte at a time: framewire answers as the finest split would."""
        limit = self.config.max_size
        output = []
        whole = payload + _TAIL if final else payload
        for data in (whole[index : index + 1] for index in range(len(whole))):
            while True:
                if self.inflater is None:
                    self.inflater = zlib.decompressobj(-15)
                room = 1 << 30 if limit is None else limit - self.size + 1
                try:
                    piece = self.inflater.decompress(data, room)
                except zlib.error:
                    if self.text:  # invalid UTF-8 before the invalid data is the earlier error
                        try:
                            self.utf8.decode(b"".join(output), False)
                        except UnicodeDecodeError:
                            raise _Fail(1007) from None
                    raise _Fail(1002) from None
                self.size += len(piece)
                if limit is not None and self.size > limit:
                    if self.text:  # invalid UTF-8 before the limit is the earlier error
                        try:
                            self.utf8.decode(b"".join(output) + piece[:-1], False)
                        except UnicodeDecodeError:
                            raise _Fail(1007) from None
                    raise _Fail(1009)
                output.append(piece)
                if self.inflater.eof:
                    data, self.inflater = self.inflater.unused_data, None
                else:
                    data = self.inflater.unconsumed_tail
                if not data and len(piece) < room:
                    break
        return b"".join(output)


class _Fail(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


# ------------------------------------------------------------------------- connection


def converse(data_pieces: list[bytes], config: Config, *, measure: bool = False) -> Any:
    """Feed a fresh Connection; return everything observable about what it did."""
    conn = config.connection()
    events: list[Any] = []
    output: list[bytes] = []
    for count, piece in enumerate(data_pieces):
        conn.receive_data(piece)
        events.extend(event_values(conn.events_received()))
        output.extend(conn.data_to_send())
        # Measured after every one of the first chunks, then every 16th: held memory that
        # grows with the chunk count shows either way, and deep_size() is not cheap.
        if measure and config.max_size is not None and (count < 64 or count % 16 == 0):
            # Compression state is a fixed per-connection cost (see fuzz_connection.py).
            held = deep_size(conn, shared=(config.limits, conn.deflate))
            assert held <= config.max_size + HELD_OVERHEAD, (
                f"connection holds {held} bytes with max_message_size={config.max_size}"
            )
    pending = conn.pending_failure
    conn.apply_pending_failure()
    events.extend(event_values(conn.events_received()))
    output.extend(conn.data_to_send())
    sent = b"".join(output)
    sent_view = [(f.opcode, f.fin, f.payload) for f in reference_frames(sent)]
    failure = conn.failure
    return (
        events,
        sent_view,
        conn.state,
        conn.close_sent,
        conn.close_received,
        None if failure is None else (failure.code, failure.reason),
        pending,
    )


def check_connection(data: bytes, config: Config, split_seed: int) -> None:
    chunks = list(pieces(data, split_seed))
    split = differential(lambda: converse(chunks, config, measure=True))
    whole = differential(lambda: converse([data], config))
    split_failure, whole_failure = split[5], whole[5]
    assert _messages(split[0]) == _messages(whole[0]), "messages depend on the split"
    assert (split_failure is None) == (whole_failure is None)
    if whole_failure is not None:
        codes = {split_failure[0], whole_failure[0]}
        assert len(codes) == 1, f"failure depends on the split: {split_failure} {whole_failure}"
    if split_failure == whole_failure:
        assert split[1] == whole[1], "what the connection sent depends on the split"

    reference = ReferenceAssembler(config)
    expected, expected_code, close_received = reference.run(reference_frames(data))
    got = [
        _as_tuple(event)
        for event in whole_messages(whole[0])
        if not isinstance(event, ConnectionFailed)
    ]
    assert got == expected, f"events {got!r}\nexpected {expected!r}"
    code = None if whole_failure is None else whole_failure[0]
    assert code == expected_code, f"failure {whole_failure}, expected close code {expected_code}"
    echo = None
    if close_received:
        received = next(e for e in expected if isinstance(e, CloseReceived))
        echo = received.code
    check_output(whole[1], reference, code, echo)


def _messages(events: list[Any]) -> list[Any]:
    """Whole messages and control events; failures are compared on their own."""
    return [e for e in whole_messages(events) if not isinstance(e, ConnectionFailed)]


def _as_tuple(event: Any) -> Any:
    if isinstance(event, TextMessage):
        return ("text", event.data)
    if isinstance(event, BinaryMessage):
        return ("binary", event.data)
    return event


def check_output(
    frames: list[Any], reference: ReferenceAssembler, failure: int | None, echo: int | None
) -> None:
    """Pongs answer pings in order, and one close frame (failure or echo) comes last."""
    pongs = [payload for opcode, _, payload in frames if opcode == 10]
    closes = [payload for opcode, _, payload in frames if opcode == 8]
    assert pongs == reference.pongs, "pongs do not echo the pings"
    assert len(closes) <= 1 and (not closes or frames[-1][0] == 8)
    if failure is not None:
        assert closes and int.from_bytes(closes[0][:2], "big") == failure
    elif echo is not None:
        # RFC 6455 5.5.1: echo the status code; a close without one is answered without one.
        assert closes == [b"" if echo == 1005 else echo.to_bytes(2, "big")], closes


def check(data: bytes) -> None:
    """Check every invariant of this target on one input."""
    reader = ByteReader(data)
    config = Config(reader.byte())
    split_seed = reader.byte()
    stream = synthesize(reader, config) if config.structured else reader.rest()
    check_decoder(stream, config, split_seed)
    check_connection(stream, config, split_seed)
    if len(stream) <= 16384:
        within_linear_time(
            lambda: converse(list(pieces(stream, 1)), config),
            len(stream),
            per_byte=200e-6,
            constant=0.1,
            what="Connection fed one byte at a time",
        )


if __name__ == "__main__":
    fuzz_main(check)
    sys.exit(0)
