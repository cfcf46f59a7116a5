"""SendingSide: what a WebSocket Connection sends (RFC 6455 5.2-5.5).

Connection (sansio/connection.py) derives from SendingSide, which owns the sending state: the
queue of outgoing bytes, the client's masking keys (5.3), the fragmented message being sent
(5.4) and the close frame sent. Each send checks the connection's state first and raises
InvalidState when the caller misuses the protocol; what changes that state (send_close(),
fail(), whatever arrives) and what decides whether the fast paths may run
(_update_fast_paths()) belong to Connection. frame_now() is the fast path of send_text() and
send_binary() for the commonest message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from framewire.exceptions import InvalidState
from framewire.sansio.frames import (
    CloseCode,
    Opcode,
    encode_close_payload,
    encode_frame_header,
    pack_header_16,
)
from framewire.sansio.mask import MaskSource, apply_mask
from framewire.sansio.state import State

if TYPE_CHECKING:
    from framewire.sansio.deflate import PerMessageDeflate

__all__ = ["SendingSide"]

BytesLike = bytes | bytearray | memoryview

# Enum members as globals, read per message: see _OPEN in sansio/connection.py.
_OPEN, _CLOSED = State.OPEN, State.CLOSED
_PING, _PONG, _CLOSE = Opcode.PING, Opcode.PONG, Opcode.CLOSE
_TEXT, _BINARY, _CONTINUATION = Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION
_NO_STATUS_RECEIVED = CloseCode.NO_STATUS_RECEIVED


class SendingSide:
    """The sending half of Connection, which derives from it and initializes its slots."""

    __slots__ = ("_masks", "_outgoing", "_sending_compressed", "close_sent", "sending_opcode")

    _masks: MaskSource | None  # a client's masking keys; None on the server side
    _outgoing: list[bytes]
    _sending_compressed: bool  # the fragmented message being sent is compressed
    close_sent: tuple[int, str] | None
    sending_opcode: int | None

    # What Connection provides.
    state: State
    deflate: PerMessageDeflate | None
    _frame_now_ok: bool

    def _update_fast_paths(self) -> None:
        """Connection's: decide from the connection's state whether the fast paths may run."""
        raise NotImplementedError

    def data_to_send(self) -> list[bytes]:
        """Return the bytes to write to the peer since the last call, in order."""
        outgoing = self._outgoing
        if outgoing:
            self._outgoing = []
            self._update_fast_paths()
        return outgoing

    def send_text(self, data: str | BytesLike, *, fin: bool = True, compress: bool = True) -> None:
        """Send a text message, or the first frame of one when ``fin`` is False.

        Args:
            data: ``str``, or bytes already encoded as UTF-8.
            fin: False to start a fragmented message; continue it with send_continuation().
            compress: False to send this message uncompressed even if deflate was negotiated.
        """
        payload = data.encode("utf-8") if isinstance(data, str) else data
        self._send_data(_TEXT, payload, fin, compress)

    def send_binary(self, data: BytesLike, *, fin: bool = True, compress: bool = True) -> None:
        """Send a binary message, or the first frame of one when ``fin`` is False."""
        self._send_data(_BINARY, data, fin, compress)

    def frame_now(self, message: str | bytes) -> bytes | None:
        """Fast path for the commonest send: return the one frame of ``message``, to be written
        to the peer at once and before anything else, or None when the general path is needed.

        None when output is already queued (data_to_send() first), on the client side (frames
        are masked), with permessage-deflate, during a fragmented send, after a close frame, for
        payloads of 64 KiB or more, or for types other than ``str`` and ``bytes``. Then use
        send_text() or send_binary(), which cover every case.
        """
        if not self._frame_now_ok:
            return None
        if type(message) is bytes:
            first_byte = 0x82
            payload = message
        elif type(message) is str and len(message) < 16384:  # < 64 KiB once encoded
            first_byte = 0x81
            payload = message.encode()
        else:
            return None
        length = len(payload)
        if length < 126:
            return bytes((first_byte, length)) + payload
        if length < 65536:
            return pack_header_16(first_byte, 126, length) + payload
        return None

    def send_continuation(self, data: str | BytesLike, *, fin: bool) -> None:
        """Send the next frame of the fragmented message started with ``fin=False``."""
        if self.sending_opcode is None:
            raise InvalidState("send_continuation() without a fragmented message in progress")
        payload = data.encode("utf-8") if isinstance(data, str) else data
        self._send_data(_CONTINUATION, payload, fin, self._sending_compressed)

    def _send_data(self, opcode: int, payload: BytesLike, fin: bool, compress: bool) -> None:
        if self.state is not _OPEN or self.close_sent is not None:
            raise InvalidState(f"cannot send a data frame in state {self.state.name}")
        rsv1 = False
        if opcode != _CONTINUATION:
            if self.sending_opcode is not None:
                raise InvalidState("cannot start a message while a fragmented one is being sent")
            deflate = self.deflate
            self._sending_compressed = bool(
                compress and deflate is not None and deflate.should_compress(len(payload))
            )
            rsv1 = self._sending_compressed
        if self._sending_compressed:
            assert self.deflate is not None
            payload = self.deflate.compress(payload, final=fin)
        self.sending_opcode = None if fin else (self.sending_opcode or opcode)
        self._write_frame(opcode, payload, fin=fin, rsv1=rsv1)
        if self._frame_now_ok:  # output is queued now: frame_now() must wait for data_to_send()
            self._update_fast_paths()

    def send_ping(self, payload: BytesLike = b"") -> None:
        """Send a ping; ``payload`` is at most 125 bytes."""
        self._send_control(_PING, payload)

    def send_pong(self, payload: BytesLike = b"") -> None:
        """Send an unsolicited pong; ``payload`` is at most 125 bytes."""
        self._send_control(_PONG, payload)

    def _send_control(self, opcode: int, payload: BytesLike) -> None:
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(
                f"control frame payload must be bytes-like, not {type(payload).__name__}"
            )
        if len(payload) > 125:
            raise ValueError(f"control frame payload of {len(payload)} bytes exceeds 125 bytes")
        if self.close_sent is not None or self.state is _CLOSED:
            raise InvalidState(f"cannot send a control frame in state {self.state.name}")
        self._write_frame(opcode, payload)
        if self._frame_now_ok:  # as in _send_data()
            self._update_fast_paths()

    def _send_close_frame(self, code: int | None, reason: str) -> None:
        payload = encode_close_payload(code, reason)
        self.close_sent = (_NO_STATUS_RECEIVED if code is None else code, reason)
        self._write_frame(_CLOSE, payload)

    def _write_frame(
        self, opcode: int, payload: BytesLike, *, fin: bool = True, rsv1: bool = False
    ) -> None:
        length = len(payload)
        if self._masks is not None:
            mask = self._masks.next_mask()
            header = encode_frame_header(opcode, length, fin=fin, rsv1=rsv1, mask=mask)
            self._outgoing.append(header + apply_mask(payload, mask))
        elif length < 4096:
            header = encode_frame_header(opcode, length, fin=fin, rsv1=rsv1)
            self._outgoing.append(header + payload)
        else:
            # Large payloads are not copied into the header's buffer; the transport joins them.
            self._outgoing.append(encode_frame_header(opcode, length, fin=fin, rsv1=rsv1))
            self._outgoing.append(bytes(payload))
