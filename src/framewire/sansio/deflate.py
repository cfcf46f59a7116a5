"""permessage-deflate (RFC 7692): per-message compression with a bounded decompressor.

Negotiation lives in deflate_negotiation.py and header parsing in deflate_header.py; this module
re-exports both, so ``framewire.sansio.deflate`` is the one import for the rest of the stack.

How memory stays bounded:

- zlib objects are made only when a message first needs one, and dropped after each message in
  a direction without context takeover, so an idle connection costs what an uncompressed one
  does. With context takeover they are kept: that is the price of the better ratio.
- Inflating never produces more than 64 KiB per zlib call (``max_length``), and never more than
  ``max_size + 1`` bytes in a message: each call asks for at most what is left of the limit plus
  one byte, so a bomb is caught one byte past the limit rather than after it has been inflated.
  Compressed input is fed in 64 KiB slices so zlib's ``unconsumed_tail`` (a copy of the input it
  has not read yet) stays small and total copying stays linear.

Framing is the caller's: RSV1 goes on the first frame of a compressed message only, and control
frames are never compressed.
"""

from __future__ import annotations

import zlib

from framewire.exceptions import PayloadTooBig, ProtocolError
from framewire.sansio.deflate_header import parse_extension_header, serialize_extension
from framewire.sansio.deflate_negotiation import (
    EXTENSION_NAME,
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
    "DeflateConfig",
    "DeflateParameters",
    "PerMessageDeflate",
    "client_offer",
    "client_verify",
    "compress_shared",
    "parse_extension_header",
    "serialize_extension",
    "server_negotiate",
]

# RFC 7692 7.2.1: the empty stored block every sync flush ends with; the sender strips it from a
# message, the receiver appends it back (7.2.2).
_TAIL = b"\x00\x00\xff\xff"
MAX_PIECE_SIZE = 64 * 1024
"""Largest piece decompress() returns, and largest compressed slice fed to zlib at once."""


def _new_compressor(window_bits: int, config: DeflateConfig) -> zlib._Compress:
    """Return a raw-deflate compressor that honours ``window_bits`` (8..15)."""
    # zlib refuses to deflate with a raw 8-bit window, but a 9-bit zlib compressor never refers
    # further back than 512 - 262 = 250 bytes (MAX_DIST in zlib's deflate.c: the window minus
    # the lookahead), so its streams are valid for a 256-byte window: 8 is honoured with 9.
    zlib_window_bits = max(window_bits, 9)
    return zlib.compressobj(
        config.compress_level, zlib.DEFLATED, -zlib_window_bits, config.mem_level
    )


def _compress_with(compressor: zlib._Compress, data: BytesLike, *, final: bool) -> bytes:
    """Compress one frame's data and sync-flush; on the message's last frame drop the tail."""
    output = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    # A sync flush right after another one produces nothing, so the tail may already have been
    # sent in an earlier frame; the receiver then inflates one extra empty block, which is valid.
    if final and output.endswith(_TAIL):
        output = output[: -len(_TAIL)]
    return output


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
    return _compress_with(_new_compressor(window_bits, config), data, final=True)


class PerMessageDeflate:
    """Per-connection compression state for one role (server or client).

    Args:
        params: what negotiation agreed.
        is_server: True on the server; decides which window and takeover apply to each direction.
        config: compression level, memLevel and min_size for what we send.
    """

    __slots__ = (
        "_compressor",
        "_config",
        "_decompressor",
        "_message_size",
        "_receive_reset",
        "_receive_window_bits",
        "_send_reset",
        "_send_window_bits",
    )

    def __init__(
        self, params: DeflateParameters, *, is_server: bool, config: DeflateConfig
    ) -> None:
        self._config = config
        self._send_window_bits, self._send_reset = _own_side(params, is_server=is_server)
        # zlib inflates raw streams with an 8-bit window (it only refuses to deflate with one).
        self._receive_window_bits, self._receive_reset = _own_side(params, is_server=not is_server)
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        self._message_size = 0

    # -- sending --------------------------------------------------------------------------------

    def should_compress(self, payload_length: int) -> bool:
        """Return True when a message of ``payload_length`` bytes is worth compressing."""
        return payload_length >= self._config.min_size

    def compress(self, data: BytesLike, *, final: bool) -> bytes:
        """Compress one data frame's worth of a message.

        Call with final=False for each frame but the last, then final=True. Each call's output
        is complete (sync-flushed), so the frame can be sent at once.
        """
        compressor = self._compressor
        if compressor is None:
            compressor = self._compressor = _new_compressor(self._send_window_bits, self._config)
        output = _compress_with(compressor, data, final=final)
        if final and self._send_reset:
            # No context takeover: release the compressor until the next message needs one.
            self._compressor = None
        return output

    @property
    def can_share_output(self) -> bool:
        """True when our sending side has no context takeover (compress_shared() output fits)."""
        return self._send_reset

    @property
    def sharing_key(self) -> tuple[int, int, int]:
        """Connections with equal keys (and can_share_output) get identical compress_shared()."""
        return self._send_window_bits, self._config.compress_level, self._config.mem_level

    # -- receiving ------------------------------------------------------------------------------

    def decompress(self, data: BytesLike, *, final: bool, max_size: int | None) -> list[bytes]:
        """Inflate a frame's payload, or a piece of one, of a compressed message.

        Args:
            data: compressed bytes, in order; pieces may be split anywhere.
            final: True only on the last piece of the message's last frame.
            max_size: max_message_size: most bytes the whole message may inflate to; None for
                no limit.

        Returns:
            Inflated pieces of at most MAX_PIECE_SIZE bytes each (possibly none).

        Raises:
            PayloadTooBig: the message inflates past max_size (close code 1009); no more than
                max_size + 1 bytes of it are ever inflated.
            ProtocolError: the data is not valid DEFLATE (close code 1002, RFC 7692 8).
        """
        pieces: list[bytes] = []
        view = memoryview(data).cast("B")
        for start in range(0, len(view), MAX_PIECE_SIZE):
            self._inflate(view[start : start + MAX_PIECE_SIZE], max_size, pieces)
        if final:
            self._inflate(_TAIL, max_size, pieces)  # RFC 7692 7.2.2
            self._message_size = 0
            if self._receive_reset:
                self._decompressor = None
        return pieces

    def _inflate(self, data: BytesLike, max_size: int | None, pieces: list[bytes]) -> None:
        """Inflate ``data`` into ``pieces``, never past max_size + 1 bytes in the message."""
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._decompressor = zlib.decompressobj(-self._receive_window_bits)
        pending: BytesLike = data
        while True:
            limit = MAX_PIECE_SIZE
            if max_size is not None:
                limit = min(limit, max_size - self._message_size + 1)
            try:
                output = decompressor.decompress(pending, limit)
            except zlib.error as exc:
                raise ProtocolError(f"invalid compressed data: {exc}", close_code=1002) from exc
            self._message_size += len(output)
            if max_size is not None and self._message_size > max_size:
                raise PayloadTooBig(
                    f"message inflates past max_message_size={max_size}", close_code=1009
                )
            if output:
                pieces.append(output)
            if decompressor.eof:
                # A block with BFINAL set ended the DEFLATE stream; what follows starts a new
                # one. Its history is lost, so a peer that keeps referring to it gets 1002.
                pending = decompressor.unused_data
                decompressor = self._decompressor = zlib.decompressobj(-self._receive_window_bits)
            else:
                pending = decompressor.unconsumed_tail
            # A full output may leave part of a match inside zlib even with no input left:
            # go round once more with nothing to feed so it comes out now, not with the next frame.
            if not pending and len(output) < limit:
                return

    def release(self) -> None:
        """Drop both zlib objects and any message in progress (call on close)."""
        self._compressor = None
        self._decompressor = None
        self._message_size = 0

    @property
    def holds_zlib_state(self) -> bool:
        """True while a compressor or decompressor is allocated (for tests and metrics)."""
        return self._compressor is not None or self._decompressor is not None
