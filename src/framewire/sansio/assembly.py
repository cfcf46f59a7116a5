"""MessageAssembler: data frame pieces -> whole messages or streamed message chunks.

How memory stays bounded: in message mode the payload is appended to one bytearray (never a
list of parts, whose per-part overhead is what a flood of one-byte fragments exploits), and
both its byte size and its fragment count are checked when each frame header arrives, before
its payload is kept. In streaming mode nothing is kept at all: each piece goes out as it came.
Text is validated as UTF-8 incrementally, so an invalid sequence fails the connection as soon
as it is certain, not when the message ends.
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING

from framewire.exceptions import PayloadTooBig, ProtocolError
from framewire.sansio.events import BinaryMessage, Event, MessageChunk, TextMessage
from framewire.sansio.limits import WebSocketLimits

if TYPE_CHECKING:
    from framewire.sansio.decoder import FramePiece
    from framewire.sansio.deflate import PerMessageDeflate

__all__ = ["MessageAssembler"]

_CONTINUATION, _TEXT = 0, 1
_utf8_decoder = codecs.getincrementaldecoder("utf-8")


def _invalid_utf8(exc: UnicodeDecodeError) -> ProtocolError:
    return ProtocolError(f"invalid UTF-8 in text message: {exc.reason}", close_code=1007)


class MessageAssembler:
    """Check message-level rules (RFC 6455 5.4, 8.1) and put data frames together.

    Args:
        limits: max_message_size and the fragment cap.
        deflate: the permessage-deflate state, when negotiated.
        stream: True to deliver MessageChunk events as payload arrives; False for whole
            TextMessage / BinaryMessage events.
    """

    __slots__ = (
        "_buffer",
        "_compressed",
        "_declared",
        "_decoder",
        "_first_chunk",
        "_fragments",
        "_in_message",
        "_is_text",
        "_size",
        "deflate",
        "max_fragments",
        "max_message_size",
        "stream",
    )

    def __init__(
        self,
        limits: WebSocketLimits,
        deflate: PerMessageDeflate | None = None,
        *,
        stream: bool = False,
    ) -> None:
        self.max_message_size = limits.max_message_size
        self.max_fragments = limits.fragment_limit()
        self.deflate = deflate
        self.stream = stream
        self._in_message = False
        self._is_text = False
        self._compressed = False
        self._fragments = 0
        self._size = 0  # bytes of payload received so far (decompressed)
        self._declared = 0  # bytes promised by frame headers so far (uncompressed messages)
        self._buffer = bytearray()
        self._decoder: codecs.IncrementalDecoder | None = None
        self._first_chunk = True

    @property
    def in_message(self) -> bool:
        """True while a fragmented message is being received."""
        return self._in_message

    def add(self, piece: FramePiece, out: list[Event]) -> None:
        """Take one data frame piece; append any event it completes to ``out``.

        Raises:
            ProtocolError: a rule was broken (close_code 1002, 1007) or a limit was hit
                (PayloadTooBig, 1009).
        """
        if piece.first:
            self._start_frame(piece)
        final = piece.last and piece.fin
        data = piece.data
        if self._compressed:
            assert self.deflate is not None
            remaining = None if self.max_message_size is None else self.max_message_size
            try:
                pieces = self.deflate.decompress(
                    data, final=final, max_size=remaining, text=self._is_text
                )
            except ProtocolError as failure:
                # Invalid UTF-8 before the failure (the limit, or invalid compressed data) is
                # the earlier error: answer 1007 whether the bytes came in one read or many.
                if self._is_text:
                    for inflated in failure.inflated:
                        self._check_utf8(inflated, False)
                raise
            for index, inflated in enumerate(pieces):
                self._take(inflated, final and index == len(pieces) - 1, out)
            if final and not pieces:
                self._take(b"", True, out)
        else:
            self._take(data, final, out)
        if final:
            self._in_message = False

    def _start_frame(self, piece: FramePiece) -> None:
        opcode = piece.opcode
        if opcode == _CONTINUATION:
            if not self._in_message:
                raise ProtocolError("continuation frame without a message to continue")
            if piece.rsv1:
                raise ProtocolError("RSV1 set on a continuation frame (RFC 7692 6.1)")
            self._fragments += 1
            if self.max_fragments is not None and self._fragments > self.max_fragments:
                raise PayloadTooBig(
                    f"message in more than {self.max_fragments} fragments exceeds "
                    f"max_fragments={self.max_fragments}"
                )
        else:
            if self._in_message:
                raise ProtocolError("new data frame while a fragmented message is in progress")
            self._in_message = True
            self._is_text = opcode == _TEXT
            self._compressed = piece.rsv1
            self._fragments = 1
            self._size = 0
            self._declared = 0
            self._decoder = None
            self._first_chunk = True
            self._buffer.clear()
        if not self._compressed and self.max_message_size is not None:
            self._declared += piece.frame_length
            if self._declared > self.max_message_size:
                raise PayloadTooBig(
                    f"message of at least {self._declared} bytes exceeds "
                    f"max_message_size={self.max_message_size}"
                )

    def _take(self, data: bytes | memoryview, final: bool, out: list[Event]) -> None:
        """Account for one piece of message payload (already inflated)."""
        self._size += len(data)
        if self.max_message_size is not None and self._size > self.max_message_size:
            raise PayloadTooBig(
                f"message of at least {self._size} bytes exceeds "
                f"max_message_size={self.max_message_size}"
            )
        if self.stream:
            self._emit_chunk(data, final, out)
        elif final:
            if self._buffer:
                self._buffer += data
                data = bytes(self._buffer)
                self._buffer.clear()
            self._emit_whole(data, out)
        else:
            if self._is_text:
                self._check_utf8(data, False)
            self._buffer += data

    def _emit_whole(self, data: bytes | memoryview, out: list[Event]) -> None:
        if self._is_text:
            try:
                out.append(TextMessage(str(data, "utf-8")))
            except UnicodeDecodeError as exc:
                raise _invalid_utf8(exc) from exc
        else:
            out.append(BinaryMessage(bytes(data)))

    def _check_utf8(self, data: bytes | memoryview, final: bool) -> str:
        """Decode ``data`` as the next piece of the text message; fail fast on invalid UTF-8."""
        if self._decoder is None:
            self._decoder = _utf8_decoder()
        try:
            return self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise _invalid_utf8(exc) from exc

    def _emit_chunk(self, data: bytes | memoryview, final: bool, out: list[Event]) -> None:
        first = self._first_chunk
        if self._is_text:
            text = self._check_utf8(data, final)
            if text or final or first:
                out.append(MessageChunk(text, True, first, final))
                self._first_chunk = False
        else:
            if data or final or first:
                out.append(MessageChunk(data, False, first, final))
                self._first_chunk = False
