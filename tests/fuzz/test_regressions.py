"""What the fuzz targets found in framewire, each as the smallest input that shows it.

Every finding is fixed (commit 9e22e5a, "Fixes from fuzzing", and after it the two outcomes of
compressed messages that depended on the reads) and stays as a regression test; STYLE.md would
have them beside the module they broke, where they can move when those test modules are next
touched.
"""

from __future__ import annotations

import asyncio
import json
import sys
import zlib
from typing import Any

import pytest

from framewire.chat.hub import ChatClient, Hub
from framewire.chat.limits import ChatLimits, TokenBucket
from framewire.exceptions import HTTPError, ProtocolError
from framewire.http.messages import Request
from framewire.sansio.connection import Connection, Role
from framewire.sansio.deflate import DeflateConfig, DeflateParameters, PerMessageDeflate
from framewire.sansio.handshake import build_request
from framewire.sansio.http11 import RequestParser
from framewire.sansio.limits import HTTPLimits, WebSocketLimits
from framewire.sansio.multipart import MultipartError, parse_boundary
from framewire.sansio.whole_frames import py_parse_whole_frames
from tests.conftest import c_twin_or_skip


def test_a_max_message_size_above_sys_maxsize_works_on_the_c_path_too() -> None:
    """Found by fuzz_frames (differential): the C twin raised OverflowError converting
    max_size to a C ssize_t where the Python twin accepted the frame."""
    c_parse = c_twin_or_skip("parse_whole_frames")
    frame = b"\x82\x80abcd"  # an empty masked binary frame
    python_out: list[Any] = []
    assert py_parse_whole_frames(frame, True, sys.maxsize + 1, python_out) == len(frame)
    c_out: list[Any] = []
    assert c_parse(frame, True, sys.maxsize + 1, c_out) == len(frame)
    assert c_out == python_out


def _inflating_client(max_message_size: int) -> Connection:
    deflate = PerMessageDeflate(DeflateParameters(), is_server=False, config=DeflateConfig())
    limits = WebSocketLimits(max_message_size=max_message_size)
    return Connection(Role.CLIENT, limits=limits, deflate=deflate)


def test_close_code_of_a_compressed_invalid_oversized_text_does_not_depend_on_reads() -> None:
    """Found by fuzz_frames (split): a compressed text message both invalid UTF-8 and over
    max_message_size failed 1009 in one read and 1007 byte by byte. Invalid UTF-8 before the
    limit now wins both ways."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    payload = (compressor.compress(b"\xff" * 200) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    frame = bytes((0xC1, len(payload))) + payload  # FIN, RSV1, text; unmasked (from a server)
    codes = []
    for chunks in ([frame], [frame[i : i + 1] for i in range(len(frame))]):
        connection = _inflating_client(max_message_size=125)
        for chunk in chunks:
            connection.receive_data(chunk)
        assert connection.failure is not None
        codes.append(connection.failure.code)
    assert codes == [1007, 1007], codes


def test_status_of_an_overlong_line_with_a_bare_lf_does_not_depend_on_reads() -> None:
    """Found by fuzz_http11 (byte by byte): the bare-LF rule was checked before the length,
    so the status (400 or 414) depended on whether the LF came in the same read."""
    data = b"GET /" + b"a" * 9000 + b" HTTP/1.1\nHost: a\n\n"
    statuses = []
    for chunks in ([data], [data[:8500], data[8500:]]):
        parser = RequestParser(HTTPLimits())
        for chunk in chunks:
            parser.receive_data(chunk)
        (event,) = parser.events_received()
        statuses.append(event.http_status)  # type: ignore[union-attr]
    assert statuses[0] == statuses[1], statuses


@pytest.mark.parametrize(
    "resource",
    ["/ HTTP/1.1\r\nX-Injected: 1\r\nX: y", "/a b", "/a\x00b", "/a\x7fb", "/é", "/\u0101"],
)
def test_build_request_refuses_a_resource_that_is_not_a_request_target(resource: str) -> None:
    """Found by fuzz_handshake: CR LF in the resource injected header lines; spaces, NUL, DEL
    and non-ASCII made a malformed request line."""
    with pytest.raises(ValueError) as caught:
        build_request("example.com", resource)
    assert not isinstance(caught.value, UnicodeError), "refused by accident, not by a check"


@pytest.mark.parametrize("name", ["X-A: 1; X-B", "X A", "", "X\x01"])
def test_build_request_refuses_a_header_name_that_is_not_a_token(name: str) -> None:
    """Found by fuzz_handshake: a name holding ":" sent another header than the one named."""
    with pytest.raises(ValueError):
        build_request("example.com", "/", extra_headers=[(name, "v")])


def test_parse_boundary_refuses_a_non_latin1_boundary_with_multipart_error() -> None:
    """Found writing fuzz_multipart: UnicodeEncodeError instead of MultipartError(400)."""
    with pytest.raises(MultipartError):
        parse_boundary("multipart/form-data; boundary=\u0101")


class _RecordingWebSocket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, text: str) -> None:
        self.sent.append(text)


def test_deeply_nested_json_chat_message_gets_an_invalid_reply() -> None:
    """Found by fuzz_chat_json (amplified): RecursionError escaped Hub._receive(), so the
    connection closed with 1011 and a logged traceback instead of an "invalid" reply."""
    limits = ChatLimits()
    hub = Hub(store=None, presence=None, limits=limits)  # type: ignore[arg-type]
    websocket = _RecordingWebSocket()
    client = ChatClient(websocket, "ann", "local:1", TokenBucket(10.0, 30, 0.0))
    asyncio.run(hub._receive(client, "[" * 100_000))
    (reply,) = websocket.sent
    assert json.loads(reply)["code"] == "invalid"


def test_request_json_refuses_deeply_nested_json_with_400() -> None:
    """The same root cause in Request.json(): a 500 and a traceback instead of 400."""
    request = Request.build("POST", "/api", body=b"[" * 100_000)
    with pytest.raises(HTTPError) as caught:
        asyncio.run(request.json())
    assert caught.value.http_status == 400


def test_a_message_breaking_the_negotiated_window_fails_the_same_way_whatever_the_reads() -> None:
    """Found by fuzz_deflate (inflate, split): below a 15-bit window zlib let a back-reference
    past the window through within one call and refused it across calls. framewire now inflates
    with a 15-bit window whatever was agreed, so such a message is taken both ways."""
    block = bytes(range(256)) + bytes(range(0, 256, 3))  # 342 bytes that do not repeat
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # the peer ignores the 8-bit window
    data = compressor.compress(block + block[:100]) + compressor.flush(zlib.Z_SYNC_FLUSH)
    payload = data[:-4]  # a back-reference 342 bytes back, past a 256-byte window
    params = DeflateParameters(client_max_window_bits=8)
    outcomes = []
    for chunks in ([payload], [payload[i : i + 1] for i in range(len(payload))]):
        receiver = PerMessageDeflate(params, is_server=True, config=DeflateConfig())
        try:
            for index, chunk in enumerate(chunks):
                receiver.decompress(chunk, final=index == len(chunks) - 1, max_size=None)
        except ProtocolError as error:
            outcomes.append(error.close_code)
        else:
            outcomes.append(None)
    assert outcomes == [None, None], outcomes


def _client_failure(chunks: list[bytes], max_message_size: int = 1 << 20) -> int:
    connection = _inflating_client(max_message_size=max_message_size)
    for chunk in chunks:
        connection.receive_data(chunk)
    assert connection.failure is not None
    return connection.failure.code


def _one_read_and_byte_by_byte(frame: bytes) -> list[list[bytes]]:
    return [[frame], [frame[index : index + 1] for index in range(len(frame))]]


def test_invalid_utf8_before_invalid_compressed_data_is_1007_whatever_the_reads() -> None:
    """Found while fixing the next one: zlib's failure dropped what the same call had inflated,
    so invalid UTF-8 followed by invalid DEFLATE failed 1002 in one read and 1007 in many."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    payload = compressor.compress(b"\xff" * 50) + compressor.flush(zlib.Z_FULL_FLUSH)
    payload += b"\xff" * 5  # a block of the reserved type 3: invalid
    frame = bytes((0xC1, len(payload))) + payload
    codes = [_client_failure(chunks) for chunks in _one_read_and_byte_by_byte(frame)]
    assert codes == [1007, 1007], codes


def test_output_past_max_size_before_invalid_compressed_data_is_1009_whatever_the_reads() -> None:
    """Found by fuzz_deflate (inflate, split): zlib decodes the next code even when its output
    is full, so one call inflated past max_size, met an invalid code and failed 1002, where
    smaller reads passed max_size first (1009)."""
    payload = bytes.fromhex("ca00000000") + b"W\xc8@'\x01\t"
    frame = bytes((0xC2, len(payload))) + payload  # binary: only the limit and the data count
    codes = [
        _client_failure(chunks, max_message_size=0) for chunks in _one_read_and_byte_by_byte(frame)
    ]
    assert codes == [1009, 1009], codes
