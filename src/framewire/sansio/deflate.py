"""permessage-deflate (RFC 7692): per-message compression with a bounded decompressor.

Negotiation lives in deflate_negotiation.py and header parsing in deflate_header.py; this module
re-exports both, so ``framewire.sansio.deflate`` is the one import for the rest of the stack.

How compression stays cheap with many connections (benchmarks/README.md, "Compression negotiated
(issue 17)", has the numbers behind each point):

- A message compressed without context takeover on our side (a server's default: it answers
  server_no_context_takeover) uses no compressor of its connection's. It borrows the process's
  idle compressor for its settings and returns it after a full flush: zlib then forgets the
  message (the hash table is cleared, so nothing later can refer back to it) and the bytes are
  exactly those a fresh compressor gives. One compressor, warm in the CPU's caches, serves every
  connection, instead of 64 connections' 144 KiB each thrashing them, or a fresh one per message
  paying for malloc and page faults. Borrowing is a dict.pop, so two threads never hold the same
  one: a second borrower makes its own, and one of the two is kept.
- Those messages are compressed by ISA-L when the optional isal package is installed
  (DeflateConfig.backend "auto"): the same output size as zlib level 1 for 25-45 % of its CPU
  time. Its state is 100-600 KiB: fine once per process, not per connection, so
  compressors kept by a connection (context takeover) are always zlib's.

How memory stays bounded:

- zlib objects are made only when a message first needs one. A direction without context
  takeover holds none between messages, so an idle connection costs what an uncompressed one
  does; with context takeover they are kept: that is the price of the better ratio.
- Inflating never produces more than 64 KiB per zlib call (``max_length``), and never more than
  ``max_size + 1`` bytes in a message: each call asks for at most what is left of the limit plus
  one byte, so a bomb is caught one byte past the limit rather than after it has been inflated.
  Compressed input is fed in 64 KiB slices so zlib's ``unconsumed_tail`` (a copy of the input it
  has not read yet) stays small and total copying stays linear. Decompressors are never shared
  or reused across messages that must not see each other: a reference into another message's
  data must fail (1002), not read it.

Framing is the caller's: RSV1 goes on the first frame of a compressed message only, and control
frames are never compressed.
"""

from __future__ import annotations

import zlib

from framewire.exceptions import PayloadTooBig, ProtocolError
from framewire.sansio.deflate_compressors import (
    Compressor,
    borrow_compressor,
    compression_library,
    compressor_key,
    finish_alone,
    new_compressor,
)
from framewire.sansio.deflate_header import parse_extension_header, serialize_extension
from framewire.sansio.deflate_negotiation import (
    EXTENSION_NAME,
    DeflateBackend,
    DeflateConfig,
    DeflateParameters,
    client_offer,
    client_verify,
    server_negotiate,
)

BytesLike = bytes | bytearray | memoryview

__all__ = [
    "EXTENSION_NAME",
    "MAX_PIECE_SIZE",
    "DeflateBackend",
    "DeflateConfig",
    "DeflateParameters",
    "PerMessageDeflate",
    "client_offer",
    "client_verify",
    "compress_shared",
    "compression_library",
    "parse_extension_header",
    "serialize_extension",
    "server_negotiate",
]

# RFC 7692 7.2.1: the empty stored block every sync flush ends with; the sender strips it from a
# message, the receiver appends it back (7.2.2).
_TAIL = b"\x00\x00\xff\xff"
_INFLATE_WINDOW_BITS = 15  # whatever window was agreed: see PerMessageDeflate.__init__
# Most bytes one byte of DEFLATE input can inflate to (a 258-byte match per 2 bits), and the
# longest match zlib may hold back between calls.
_MAX_EXPANSION = 1032
_MAX_MATCH = 258
MAX_PIECE_SIZE = 64 * 1024
"""Largest piece decompress() returns, and largest compressed slice fed to zlib at once."""


def _strip_tail(output: bytes) -> bytes:
    """Drop the empty stored block a flush ends with, from a message's last frame (7.2.1)."""
    # A flush right after another one may produce nothing, so the tail may already have been
    # sent in an earlier frame; the receiver then inflates one extra empty block, which is valid.
    return output[: -len(_TAIL)] if output.endswith(_TAIL) else output


def _own_side(params: DeflateParameters, *, is_server: bool) -> tuple[int, bool]:
    """Return (window bits, no context takeover) for what this side compresses."""
    if is_server:
        return params.server_max_window_bits, params.server_no_context_takeover
    return params.client_max_window_bits, params.client_no_context_takeover


def compress_shared(
    data: bytes, params: DeflateParameters, *, is_server: bool, config: DeflateConfig
) -> bytes:
    """Compress one whole message with a fresh context, for sending to many peers (broadcast).

    The result is what PerMessageDeflate.compress(data, final=True) gives on a connection with the
    same parameters, role and config whose sending side has no context takeover.

    Raises:
        ValueError: our sending side keeps its context: the peer's window would then hold data
            our compressor never saw, and later messages would decode wrongly.
    """
    window_bits, no_takeover = _own_side(params, is_server=is_server)
    if not no_takeover:
        raise ValueError("compress_shared() needs no context takeover on the sending side")
    key = compressor_key(config, window_bits, no_context_takeover=True)
    return _strip_tail(finish_alone(borrow_compressor(key), key, data))


class PerMessageDeflate:
    """Per-connection compression state for one role (server or client).

    Args:
        params: what negotiation agreed.
        is_server: True on the server; decides which window and takeover apply to each direction.
        config: compression level, memLevel, min_size and backend for what we send.
    """

    __slots__ = (
        "_compressor",
        "_compressor_key",
        "_config",
        "_decompressor",
        "_message_size",
        "_min_size",
        "_receive_reset",
        "_send_reset",
        "_send_window_bits",
        "_text",
    )

    def __init__(
        self, params: DeflateParameters, *, is_server: bool, config: DeflateConfig
    ) -> None:
        self._config = config
        self._min_size = config.min_size
        self._send_window_bits, self._send_reset = _own_side(params, is_server=is_server)
        self._compressor_key = compressor_key(
            config, self._send_window_bits, no_context_takeover=self._send_reset
        )
        # The peer's negotiated window only bounds what it may send. We inflate with the full
        # 15-bit window whatever was agreed: zlib checks distances against a smaller window only
        # across calls, not within one, so with the agreed window a peer breaking it would be
        # accepted or refused (1002) depending on how TCP split its frames. The cost is a 32 KiB
        # inflate window instead of a smaller one, and only while a peer keeps its context.
        _, self._receive_reset = _own_side(params, is_server=not is_server)
        # Our own compressor: kept between messages with context takeover; without it, the
        # borrowed one, held only between the frames of a fragmented message.
        self._compressor: Compressor | None = None
        self._decompressor: zlib._Decompress | None = None
        self._message_size = 0
        self._text = False  # the message being inflated is text

    # -- sending --------------------------------------------------------------------------------

    def should_compress(self, payload_length: int) -> bool:
        """Return True when a message of ``payload_length`` bytes is worth compressing."""
        return payload_length >= self._min_size

    def compress(self, data: BytesLike, *, final: bool) -> bytes:
        """Compress one data frame's worth of a message.

        Call with final=False for each frame but the last, then final=True. Each call's output
        is complete (sync-flushed), so the frame can be sent at once.
        """
        compressor = self._compressor
        if self._send_reset:
            # No context takeover: the message borrows the process's idle compressor.
            if compressor is None:
                if final:  # a whole message in one call: the common case, kept short
                    key = self._compressor_key
                    return _strip_tail(finish_alone(borrow_compressor(key), key, data))
                compressor = self._compressor = borrow_compressor(self._compressor_key)
            if final:
                self._compressor = None
                return _strip_tail(finish_alone(compressor, self._compressor_key, data))
        elif compressor is None:
            compressor = self._compressor = new_compressor(self._compressor_key)
        output = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return _strip_tail(output) if final else output

    @property
    def can_share_output(self) -> bool:
        """True when our sending side has no context takeover (compress_shared() output fits)."""
        return self._send_reset

    @property
    def sharing_key(self) -> tuple[int, int, int]:
        """Connections with equal keys (and can_share_output) get identical compress_shared().

        (window bits, level, memLevel), with memLevel 0 where ISA-L compresses (it has none).
        """
        library, level, _, mem_level = self._compressor_key
        return self._send_window_bits, level, mem_level if library == "zlib" else 0

    # -- receiving ------------------------------------------------------------------------------

    def decompress(
        self, data: BytesLike, *, final: bool, max_size: int | None, text: bool = False
    ) -> list[bytes]:
        """Inflate a frame's payload, or a piece of one, of a compressed message.

        Whatever the reads, the outcome is the one feeding the message a byte at a time gives
        (see _retry_byte_by_byte()).

        Args:
            data: compressed bytes, in order; pieces may be split anywhere.
            final: True only on the last piece of the message's last frame.
            max_size: max_message_size: most bytes the whole message may inflate to; None for
                no limit.
            text: the message is text: when inflating fails, the error carries what was
                inflated before the failure (``ProtocolError.inflated``), for a UTF-8 check.

        Returns:
            Inflated pieces of at most MAX_PIECE_SIZE bytes each (possibly none).

        Raises:
            PayloadTooBig: the message inflates past max_size (close code 1009); no more than
                max_size + 1 bytes of it are ever inflated. ``inflated`` holds this call's
                payload within the limit.
            ProtocolError: the data is not valid DEFLATE (close code 1002, RFC 7692 8).
        """
        self._text = text
        pieces: list[bytes] = []
        if final and len(data) <= MAX_PIECE_SIZE:
            # The common case, a whole message in one frame: one zlib call, with the tail
            # appended (RFC 7692 7.2.2) instead of inflated by a second call.
            self._inflate(b"".join((data, _TAIL)), max_size, pieces)
        else:
            view = memoryview(data).cast("B")
            for start in range(0, len(view), MAX_PIECE_SIZE):
                self._inflate(view[start : start + MAX_PIECE_SIZE], max_size, pieces)
            if final:
                self._inflate(_TAIL, max_size, pieces)  # RFC 7692 7.2.2
        if final:
            self._message_size = 0
            if self._receive_reset:
                self._decompressor = None
        return pieces

    def inflate_whole(
        self, data: BytesLike, max_size: int | None, text: bool
    ) -> str | bytes | None:
        """The receive fast path's decompress(): a whole message of one frame, in one zlib call.

        Returns the message (``str`` when ``text``), or None, with this object as it was, when
        decompress() must take the frame instead: invalid data, past ``max_size``, invalid
        UTF-8, more than one call's output, or a DEFLATE stream that ends inside the message.
        So every message it returns is the one decompress() and the assembler give, and
        every error is still theirs to report.
        """
        if len(data) > MAX_PIECE_SIZE:
            return None
        decompressor = self._decompressor
        kept = decompressor is not None and not self._receive_reset
        if decompressor is None:
            decompressor = zlib.decompressobj(-_INFLATE_WINDOW_BITS)
        before = decompressor.copy() if kept else None  # to undo a call that fails
        limit = MAX_PIECE_SIZE if max_size is None else min(MAX_PIECE_SIZE, max_size + 1)
        message: str | bytes | None = None
        try:
            output = decompressor.decompress(b"".join((data, _TAIL)), limit)
            if len(output) < limit and not decompressor.unconsumed_tail and not decompressor.eof:
                message = output.decode("utf-8") if text else output
        except (zlib.error, UnicodeDecodeError):
            pass
        if message is None:
            self._decompressor = before
        elif not self._receive_reset:
            self._decompressor = decompressor
        return message

    def _inflate(
        self,
        data: BytesLike,
        max_size: int | None,
        pieces: list[bytes],
        *,
        byte_by_byte: bool = False,
    ) -> None:
        """Inflate ``data`` into ``pieces``, never past max_size + 1 bytes in the message.

        The outcome is what feeding ``data`` one byte at a time would give, however the reads
        split it: see _retry_byte_by_byte().
        """
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._decompressor = zlib.decompressobj(-_INFLATE_WINDOW_BITS)
        pending: BytesLike = data
        while True:
            limit = MAX_PIECE_SIZE
            before = None
            if max_size is not None:
                room = max_size - self._message_size + 1
                if room <= limit:
                    limit = room
                    if not byte_by_byte and room <= _MAX_EXPANSION * len(pending) + _MAX_MATCH:
                        before = decompressor.copy()  # this call may pass max_size
            if self._text and not byte_by_byte and before is None:
                before = decompressor.copy()  # a failure would hide text to check first
            try:
                output = decompressor.decompress(pending, limit)
            except zlib.error as exc:
                if before is not None:
                    self._decompressor = before
                    self._retry_byte_by_byte(pending, max_size, pieces)
                error = ProtocolError(f"invalid compressed data: {exc}", close_code=1002)
                error.inflated = pieces
                raise error from exc
            self._message_size += len(output)
            if max_size is not None and self._message_size > max_size:
                error = PayloadTooBig(
                    f"message inflates past max_message_size={max_size}", close_code=1009
                )
                error.inflated = [*pieces, output[:-1]]
                raise error
            if output:
                pieces.append(output)
            if decompressor.eof:
                # A block with BFINAL set ended the DEFLATE stream; what follows starts a new
                # one. Its history is lost, so a peer that keeps referring to it gets 1002.
                pending = decompressor.unused_data
                decompressor = self._decompressor = zlib.decompressobj(-_INFLATE_WINDOW_BITS)
            else:
                pending = decompressor.unconsumed_tail
            # A full output may leave part of a match inside zlib even with no input left:
            # go round once more with nothing to feed so it comes out now, not with the next frame.
            if not pending and len(output) < limit:
                return

    def _retry_byte_by_byte(
        self, data: BytesLike, max_size: int | None, pieces: list[bytes]
    ) -> None:
        """Inflate again, a byte at a time, input on which zlib failed.

        Python drops a call's output when zlib fails, and zlib decodes the next code even when
        its output is full. So one call can inflate invalid UTF-8 or past max_size and then
        meet invalid data, and fail (1002), where the same bytes in smaller reads fail 1007 or
        1009 first. Fed a byte at a time, the bytes give the answer the smallest reads would.
        Only calls that could matter keep a copy of the inflater to start again from: those
        of text messages, and those that may reach max_size (within 64 KiB of it).
        """
        view = memoryview(data).cast("B")
        for index in range(len(view)):
            self._inflate(view[index : index + 1], max_size, pieces, byte_by_byte=True)

    def release(self) -> None:
        """Drop both zlib objects and any message in progress (call on close)."""
        self._compressor = None
        self._decompressor = None
        self._message_size = 0

    @property
    def holds_zlib_state(self) -> bool:
        """True while a compressor or decompressor is allocated (for tests and metrics)."""
        return self._compressor is not None or self._decompressor is not None
