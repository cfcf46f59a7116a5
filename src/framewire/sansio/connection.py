"""Connection: the WebSocket state machine for either role (RFC 6455 5-7).

    conn.receive_data(chunk)                  # or conn.receive_eof()
    for event in conn.events_received(): ...
    transport.write(b"".join(conn.data_to_send()))

States: CONNECTING (handshake not done; not used by this class once built), OPEN, CLOSING (a close
frame was sent or received), CLOSED (the byte stream ended). A peer's bad bytes never raise out
of receive_data(): they queue a close frame with the RFC code, emit ConnectionFailed, and all
further input is ignored (RFC 6455 7.1.7). Exceptions from send_*() mean the caller misused
the protocol.

Connection holds the state, what arrives and the changes of state (the closing handshake,
failing); what it sends (send_text() ... send_pong(), data_to_send(), frame_now()) comes from
its base SendingSide, in sansio/sending.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from framewire.exceptions import InvalidState, ProtocolError
from framewire.sansio.assembly import MessageAssembler
from framewire.sansio.decoder import FrameDecoder, FramePiece, parse_control_frame
from framewire.sansio.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    Event,
    MessageChunk,
    Ping,
    Pong,
    TextMessage,
)
from framewire.sansio.frames import CloseCode, Opcode, parse_close_payload, truncate_reason
from framewire.sansio.limits import WebSocketLimits
from framewire.sansio.mask import MaskSource
from framewire.sansio.sending import SendingSide
from framewire.sansio.speedups import BUILT
from framewire.sansio.state import Role, State
from framewire.sansio.whole_frames import parse_whole_frames, take_compressed_messages

if TYPE_CHECKING:
    from framewire.sansio.deflate import PerMessageDeflate

__all__ = ["Connection", "Role", "State"]

BytesLike = bytes | bytearray | memoryview


# On Python 3.11 reading an Enum member through its class costs about 0.1 µs, ten times a global
# (EnumType has a __getattr__ hook, gone in 3.12): code that runs per message or per connection
# reads these aliases instead. Other modules keep their own, pointing here.
_OPEN, _CLOSING, _CLOSED = State.OPEN, State.CLOSING, State.CLOSED
_CLIENT = Role.CLIENT
_PING, _PONG = Opcode.PING, Opcode.PONG
_NO_STATUS_RECEIVED = CloseCode.NO_STATUS_RECEIVED


class Connection(SendingSide):
    """A WebSocket connection's protocol state, after the opening handshake.

    Args:
        role: Role.SERVER or Role.CLIENT; decides masking in both directions.
        limits: message size and fragment limits.
        deflate: permessage-deflate state when the extension was negotiated.
        stream_messages: deliver MessageChunk events as payload arrives instead of whole
            TextMessage / BinaryMessage events.
        defer_failure: when the peer breaks the protocol, stop reading at once but hold the
            close frame back until apply_pending_failure() is called, so that the application
            can still answer the messages that arrived before the bad bytes (what a strict
            conformance suite expects). Sending stays possible until then.

    Attributes:
        state: OPEN, CLOSING or CLOSED.
        close_received, close_sent: ``(code, reason)`` of each close frame, or None.
        failure: the ConnectionFailed event once the connection failed, else None.
        sending_opcode: the opcode (TEXT or BINARY) of the fragmented message being sent, or
            None; no other data message may start until it ends (RFC 6455 5.4).
    """

    __slots__ = (
        "_assembler",
        "_decoder",
        "_eof_received",
        "_events",
        "_frame_now_ok",
        "_input_done",
        "_is_client",
        "_pieces",
        "_stream_messages",
        "_whole_frames_ok",
        "close_received",
        "defer_failure",
        "deflate",
        "failure",
        "limits",
        "pending_failure",
        "role",
        "state",
    )

    def __init__(
        self,
        role: Role,
        *,
        limits: WebSocketLimits | None = None,
        deflate: PerMessageDeflate | None = None,
        stream_messages: bool = False,
        defer_failure: bool = False,
    ) -> None:
        limits = limits or WebSocketLimits()
        self.defer_failure = defer_failure
        self.pending_failure: ConnectionFailed | None = None
        self.role = role
        self.limits = limits
        self.deflate = deflate
        self.state = _OPEN
        self._is_client = role is _CLIENT
        # Made by the first read that is not only whole data frames or one control frame:
        # see _decode() (benchmarks/run.py, handshakes per second: the close frame needs none).
        self._decoder: FrameDecoder | None = None
        self._stream_messages = stream_messages
        # Made by the first data frame that is not a whole message: receive_messages() takes
        # those (benchmarks/run.py, handshakes per second: a closing handshake needs none).
        self._assembler: MessageAssembler | None = None
        self._events: list[Event] = []
        self._pieces: list[FramePiece] = []
        self._input_done = False
        self._eof_received = False
        self.close_received: tuple[int, str] | None = None
        self.failure: ConnectionFailed | None = None
        # SendingSide's slots.
        self._outgoing: list[bytes] = []
        self.sending_opcode: int | None = None
        self._sending_compressed = False
        self.close_sent: tuple[int, str] | None = None
        self._masks = MaskSource() if self._is_client else None
        # What frame_now() and receive_messages() check first: see _update_fast_paths().
        self._frame_now_ok: bool
        self._whole_frames_ok: bool
        self._update_fast_paths()

    # ----------------------------------------------------------------- receiving

    def receive_data(self, data: BytesLike) -> None:
        """Feed bytes received from the peer; never raises on bad input.

        ``data`` is not kept: the caller may reuse its buffer (a bytearray or a memoryview of
        one) as soon as this returns.
        """
        if self._input_done or not data:
            return
        if type(data) is memoryview and (data.ndim != 1 or data.itemsize != 1):
            data = data.tobytes()
        messages: list[tuple[str | bytes, bool, bool]] = []
        position = self.receive_messages(data, messages)
        if messages:
            self._add_message_events(messages)
            if position == len(data):
                return
            data = data[position:]
        pieces = self._pieces
        try:
            self._decode(data, pieces)
        except ProtocolError as exc:
            decode_error: ProtocolError | None = exc
        else:
            decode_error = None
        try:
            for piece in pieces:
                self._handle_piece(piece)
                if self._input_done:
                    break
        except ProtocolError as exc:
            decode_error = exc
        finally:
            pieces.clear()
            self._update_fast_paths()
        if decode_error is not None and not self._input_done:
            if self.defer_failure:
                self._input_done = True
                self._update_fast_paths()
                self.pending_failure = ConnectionFailed(
                    decode_error.close_code, truncate_reason(str(decode_error))
                )
            else:
                self.fail(decode_error.close_code, str(decode_error))

    def _decode(self, data: BytesLike, pieces: list[FramePiece]) -> None:
        """Decode ``data`` into ``pieces``; raise ProtocolError for bad framing."""
        decoder = self._decoder
        if decoder is None:
            # Nothing partly received yet, so a lone whole control frame needs no decoder.
            control = parse_control_frame(data, not self._is_client)
            if control is not None:
                pieces.append(control)
                return
            decoder = self._decoder = FrameDecoder(
                expect_masked=not self._is_client,
                allow_rsv1=self.deflate is not None,
                max_frame_size=self.limits.max_message_size,
            )
        decoder.feed(data, pieces)

    def _add_message_events(self, messages: list[tuple[str | bytes, bool, bool]]) -> None:
        """Turn what receive_messages() took into events, as the general path would."""
        events = self._events
        if self._stream_messages:
            for payload, is_text, _ in messages:
                events.append(MessageChunk(payload, is_text, True, True))
        else:
            for payload, is_text, _ in messages:
                events.append(TextMessage(payload) if is_text else BinaryMessage(payload))  # type: ignore[arg-type]

    def receive_messages(self, data: BytesLike, out: list[tuple[str | bytes, bool, bool]]) -> int:
        """Fast path for integrations that queue messages themselves, as the asyncio layer does.

        Appends ``(payload, is_text, True)`` for each complete, unfragmented text or binary
        frame at the start of ``data`` (``str`` for text, ``bytes`` for binary), uncompressed
        or, with permessage-deflate, compressed and inflated in one call, and returns how many
        bytes they took; the caller passes the rest, ``data[returned:]``, to receive_data().
        Returns 0 while a frame or message is partly received or after the input ended. Call
        it only once events_received() is drained, so order is kept.
        """
        if not self._whole_frames_ok:
            return 0
        masked = not self._is_client
        max_size = self.limits.max_message_size
        position = parse_whole_frames(data, masked, max_size, out)
        deflate = self.deflate
        end = len(data)
        while deflate is not None and position < end:
            taken = take_compressed_messages(data, position, masked, deflate, max_size, out)
            if taken in (position, end):
                return taken
            view = data if type(data) is memoryview else memoryview(data)
            position = taken + parse_whole_frames(view[taken:], masked, max_size, out)
            if position == taken:
                return position
        return position

    def apply_pending_failure(self) -> None:
        """Fail the connection now for the protocol error held back by ``defer_failure``."""
        failure, self.pending_failure = self.pending_failure, None
        if failure is not None and self.failure is None:
            self.fail(failure.code, failure.reason)

    def receive_eof(self) -> None:
        """Note that the peer closed its side of the byte stream."""
        self._eof_received = True
        self._input_done = True
        self.state = _CLOSED
        self._update_fast_paths()

    def events_received(self) -> list[Event]:
        """Return the events decoded since the last call, oldest first."""
        events = self._events
        self._events = []
        return events

    def _handle_piece(self, piece: FramePiece) -> None:
        opcode = piece.opcode
        if opcode < 8:
            assembler = self._assembler
            if assembler is None:
                assembler = self._assembler = MessageAssembler(
                    self.limits, self.deflate, stream=self._stream_messages
                )
            assembler.add(piece, self._events)
        elif opcode == _PING:
            payload = bytes(piece.data)
            if self.close_sent is None:
                self._write_frame(_PONG, payload)
            self._events.append(Ping(payload))
        elif opcode == _PONG:
            self._events.append(Pong(bytes(piece.data)))
        else:
            self._handle_close(piece.data)

    def _handle_close(self, payload: bytes | memoryview) -> None:
        code, reason = parse_close_payload(payload)
        self.close_received = (code, reason)
        self._input_done = True  # RFC 6455 5.5.1: nothing may follow a close frame
        if self.close_sent is None:
            # RFC 6455 5.5.1: echo the status code received.
            echo = None if code == _NO_STATUS_RECEIVED else code
            self._send_close_frame(echo, "")
        self.state = _CLOSING  # receive_data() updates the fast paths once the read is done
        self._events.append(CloseReceived(code, reason))

    # ------------------------------------------------------ the fast paths and changes of state

    def _update_fast_paths(self) -> None:
        """Decide from the connection's state whether the fast paths may run: the one place
        that sets their two flags (tests/sansio/test_fast_paths.py checks that).

        ``_frame_now_ok``: frame_now() may frame a data message at once, because nothing is
        queued, frames go unmasked (server side) and uncompressed, no fragmented message is
        being sent, no close frame was sent, and the state is OPEN.

        ``_whole_frames_ok``: receive_messages() may take whole frames, because the input goes
        on and nothing is partly received (no frame, no fragmented message).

        Flags rather than properties, because the fast paths read them once per message, the C
        ones straight from the slots (_speedups_c/connection_flags.c). Called after every change
        of what they depend on, before the caller can read them again: at the end of a read
        that the fast path did not take all of (what the read queued or changed, a pong or a
        close frame, is covered then), when data_to_send() empties the queue, when a send
        queues a frame while frame_now() could run, and at each change of state by a call
        (receive_eof(), send_close(), fail()).
        """
        decoder, assembler = self._decoder, self._assembler
        self._whole_frames_ok = not (
            self._input_done
            or (decoder is not None and (decoder._pending or decoder._remaining))
            or (assembler is not None and assembler._in_message)
        )
        self._frame_now_ok = (
            not self._outgoing
            and self._masks is None
            and self.deflate is None
            and self.sending_opcode is None
            and self.close_sent is None
            and self.state is _OPEN
        )

    def close_expected(self) -> bool:
        """Return True once the byte stream should be closed.

        A server closes the TCP connection first once close frames went both ways, or after
        failing (RFC 6455 7.1.1); a client waits for the server to do it.
        """
        return self.close_sent is not None and (
            self.close_received is not None or self.failure is not None
        )

    def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        """Start the closing handshake (RFC 6455 7.1.2) with ``code`` and ``reason``.

        Raises:
            ValueError: the code may not be sent, or the reason is too long (123 bytes).
            InvalidState: a close frame was already sent.
        """
        if not isinstance(reason, str):
            raise TypeError(f"close reason must be str, not {type(reason).__name__}")
        if self.close_sent is not None or self.state is _CLOSED:
            raise InvalidState("close frame already sent")
        self._send_close_frame(code, reason)
        self.state = _CLOSING
        self._update_fast_paths()

    def fail(self, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 7.1.7): send a close frame, then ignore all input."""
        reason = truncate_reason(reason)
        self.failure = ConnectionFailed(code, reason)
        self._events.append(self.failure)
        self._input_done = True
        if self.close_sent is None and self.state is not _CLOSED:
            self._send_close_frame(code, reason)
        if self.state is not _CLOSED:
            self.state = _CLOSING
        self._update_fast_paths()


# The C accelerator reads the two fast-path flags straight from these slots, once per message
# (_speedups_c/connection_flags.c): hand it the class and the slots, so that it looks up no name.
if BUILT:
    from framewire._speedups import use_connection_flags

    _slots = vars(Connection)
    use_connection_flags(Connection, _slots["_frame_now_ok"], _slots["_whole_frames_ok"])
