"""Write the seed corpora in fuzz/corpus/<target>/: python3 fuzz/make_corpus.py

Each seed is a target's configuration bytes followed by protocol bytes (see each target's
docstring), chosen so that fuzzing starts at valid traffic and at the edge of each rule. Seeds
are deterministic; rerunning rewrites the same files and leaves inputs added by long runs alone.
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _invariants import encode_raw_frame

CORPUS = Path(__file__).parent / "corpus"
KEY = b"\x37\xfa\x21\x3d"


def amplified(
    flags: int, split_seed: int | None, prefix: bytes, unit: bytes, count: int, suffix: bytes
) -> bytes:
    """An amplified input: configuration, then prefix, unit and count for prefix + unit *
    count + suffix (targets without a split seed pass None)."""
    head = bytes((flags,)) if split_seed is None else bytes((flags, split_seed))
    return b"".join(
        (
            head,
            bytes((len(prefix),)),
            prefix,
            bytes((len(unit),)),
            unit,
            count.to_bytes(2, "big"),
            suffix,
        )
    )


def frames_seeds() -> dict[str, bytes]:
    def stream(client: bool) -> bytes:
        key = b"" if client else KEY
        return b"".join(
            (
                encode_raw_frame(1, "héllo".encode(), key=key),
                encode_raw_frame(2, b"\x00\xff" * 100, fin=False, key=key),
                encode_raw_frame(9, b"ping", key=key),
                encode_raw_frame(0, b"end", key=key),
                encode_raw_frame(10, b"", key=key),
                encode_raw_frame(8, b"\x03\xe8bye", key=key),
            )
        )

    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    compressed = compressor.compress(b"hello hello hello") + compressor.flush(zlib.Z_SYNC_FLUSH)
    bomb = zlib.compress(b"\0" * 200_000, 9)[2:-4]
    seeds = {
        "server_messages": bytes((0x00, 0)) + stream(False),
        "client_messages": bytes((0x01, 0)) + stream(True),
        "server_stream_split": bytes((0x04, 7)) + stream(False),
        "server_byte_by_byte_small_limit": bytes((0x20, 1)) + stream(False),
        "client_fragment_limit": bytes((0x41, 3)) + stream(True),
        "server_deferred_failure": bytes((0x80, 5))
        + encode_raw_frame(1, b"\xff", key=KEY)
        + encode_raw_frame(9, b"", key=KEY),
        "server_deflate": bytes((0x02, 0))
        + encode_raw_frame(1, compressed[:-4], rsv1=True, key=KEY)
        + encode_raw_frame(1, compressed[:-4], rsv1=True, key=KEY),
        "client_deflate_bomb": bytes((0x13, 9)) + encode_raw_frame(2, bomb, rsv1=True),
        "server_non_minimal_lengths": bytes((0x00, 2))
        + encode_raw_frame(2, b"abc", key=KEY, length_form=2)
        + encode_raw_frame(2, b"abc", key=KEY, length_form=8),
        "server_bad_rsv2": bytes((0x00, 0)) + b"\xa1\x80" + KEY,
        "server_reserved_opcode": bytes((0x00, 0)) + b"\x83\x80" + KEY,
        "server_unmasked": bytes((0x00, 0)) + b"\x81\x02hi",
        "server_long_ping": bytes((0x00, 0)) + b"\x89\xfe\x00\x7e" + KEY + b"\0" * 126,
        "server_64bit_msb": bytes((0x00, 0)) + b"\x82\xff\x80" + b"\0" * 7 + KEY,
        "server_close_one_byte": bytes((0x00, 0)) + encode_raw_frame(8, b"\x03", key=KEY),
        "server_close_bad_code": bytes((0x00, 0)) + encode_raw_frame(8, b"\x03\xed", key=KEY),
        "server_close_bad_reason": bytes((0x00, 0)) + encode_raw_frame(8, b"\x03\xe8\xc3", key=KEY),
        "client_continuation_first": bytes((0x01, 0)) + encode_raw_frame(0, b"x"),
        # Structured: flags bit 3, then (kind, ...) descriptions. 0x82 is a large binary frame
        # (3-byte size, pattern) masked by the next 4 bytes: the C PayloadBuffer path.
        "structured_large_binary": bytes((0x38, 0, 0x82, 0x01, 0x11, 0x70, 2, 0xAB, 0xCD))
        + KEY
        + bytes((0x01, 2))
        + b"hi"
        + KEY,
        "structured_fragmented_compressed": bytes((0x0B, 4, 0x19, 5))
        + b"hello"
        + bytes((0x00, 3))
        + b"abc",
    }
    return seeds


def connection_seeds() -> dict[str, bytes]:
    # Operations: 0 text, 1 binary, 2 continuation, 3 ping, 4 pong, 5 close, 6 fail,
    # 7 deliver ours, 8 the peer sends, 9 garbage in, 10 EOF, 11 frame_now, 12 pending
    # failure, 13 deliver both ways.
    return {
        "server_echo_close": bytes((0x00, 0, 0, 0, 2, 7, 0, 0, 8, 0, 0, 2, 0, 0, 3, 3))
        + b"abc"
        + bytes((5, 0, 1, 13, 1, 0, 1, 3)),
        "client_fragments": bytes((0x01, 0, 1, 0, 1, 3))
        + b"abc"
        + bytes((2, 1, 0, 7, 1, 1, 13, 0, 0, 0, 0)),
        "deflate_both_ways": bytes(
            (0x02, 0, 1, 1, 2, 7, 0, 5, 8, 0, 1, 1, 7, 0, 0, 13, 0, 0, 0, 0)
        ),
        "deflate_window_8_no_takeover": bytes((0x72, 1, 0, 1, 5, 7, 0, 0, 1, 0, 1, 5, 7, 1, 1)),
        "garbage_then_close": bytes((0x08, 9, 2, 0xFF, 0xFF, 12, 5, 0, 0, 13, 0, 0, 0, 0)),
        "frame_now_then_eof": bytes((0x00, 11, 1, 0, 11, 0, 3)) + b"xyz" + bytes((10, 0, 0, 0)),
        "fail_then_send": bytes((0x00, 6, 1, 1, 0, 0, 0, 0, 7, 0, 0)),
    }


def http11_seeds() -> dict[str, bytes]:
    get = b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"
    post = b"POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    chunked = (
        b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    many_headers = b"GET / HTTP/1.1\r\nHost: a\r\n"
    chunked_head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    seeds = {
        "get": bytes((0x00, 0)) + get,
        "get_byte_by_byte": bytes((0x00, 1)) + get,
        "pipelined": bytes((0x00, 9)) + post + chunked + get,
        "http10_keepalive": bytes((0x04, 0)) + b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "small_limits": bytes((0x02, 3)) + chunked,
        "bare_lf": bytes((0x00, 0)) + b"GET / HTTP/1.1\nHost: a\n\n",
        "bare_cr_in_value": bytes((0x00, 0)) + b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
        "obs_fold": bytes((0x00, 0)) + b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
        "cl_and_te": bytes((0x00, 0))
        + b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "space_before_colon": bytes((0x00, 0)) + b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "non_ascii_version": bytes((0x00, 0)) + "GET / HTTP/1ö1\r\nHost: a\r\n\r\n".encode(),
        "chunk_ext_bare_lf": bytes((0x00, 0)) + chunked_head + b"1;a\nb\r\nx\r\n0\r\n\r\n",
        "response_ok": bytes((0x01, 0)) + b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        "response_chunked": bytes((0x01, 2))
        + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "response_until_eof": bytes((0x05, 0)) + b"HTTP/1.0 200 OK\r\n\r\nbody until the end",
        "response_101": bytes((0x01, 0))
        + b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"\r\n\x81\x00",
        # Amplified: prefix, unit, count (2 bytes), suffix.
        "amplified_headers": amplified(0x08, 5, many_headers, b"X: y\r\n", 200, b"\r\n"),
        "amplified_one_byte_chunks": amplified(
            0x08, 0, chunked_head, b"1\r\nx\r\n", 4096, b"0\r\n\r\n"
        ),
    }
    return seeds


def multipart_seeds() -> dict[str, bytes]:
    body = (
        b'--boundary\r\nContent-Disposition: form-data; name="field"\r\n\r\nvalue\r\n'
        b'--boundary\r\nContent-Disposition: form-data; name="file"; filename="a b.png"\r\n'
        b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--boundary--\r\nepilogue"
    )
    return {
        "form": bytes((0x00, 0)) + body,
        "form_split": bytes((0x02, 9)) + body,
        "form_byte_by_byte": bytes((0x00, 1)) + body,
        "small_limits": bytes((0x01, 3)) + body,
        "extended_filename": bytes((0x00, 0))
        + b"--boundary\r\nContent-Disposition: form-data; name=a; filename*=UTF-8''%E2%82%AC.txt"
        b"\r\n\r\nx\r\n--boundary--",
        "no_closing_delimiter": bytes((0x02, 0)) + body[:60],
        "webkit_boundary": bytes((0x10, 0))
        + b"------WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name=x"
        b"\r\n\r\n1\r\n------WebKitFormBoundary7MA4YWxkTrZu0gW--\r\n",
        "structured": bytes((0x04, 5, 1, 4))
        + b"name"
        + bytes((1, 5))
        + b"f.png"
        + bytes((3,))
        + b"abc"
        + bytes((2,))
        + b"q2"
        + bytes((0, 0)),
        "amplified_parts": amplified(
            0x09,
            0,
            b"",
            b"--boundary\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n",
            128,
            b"--boundary--",
        ),
        "amplified_semicolons": amplified(0x08, 0, b"", b";a", 16384, b""),
    }


def handshake_seeds() -> dict[str, bytes]:
    request = (
        b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
        b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nOrigin: http://a.example\r\n"
        b"Sec-WebSocket-Protocol: chat, superchat\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-other\r\n\r\n"
    )
    plain = (
        b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    response = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
        b"server_max_window_bits=8\r\n\r\n"
    )
    return {
        "server_full": bytes((0x00, 0x15)) + request,
        "server_plain_fast_path": bytes((0x00, 0)) + plain + b"\x81\x80abcd",
        "server_post": bytes((0x00, 0)) + plain.replace(b"GET", b"POST"),
        "server_two_keys": bytes((0x00, 0))
        + plain.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n"),
        "client_ok": bytes((0x01, 0x05)) + response,
        "client_redirect": bytes((0x01, 0))
        + b"HTTP/1.1 302 Found\r\nLocation: ws://other.example/\r\nContent-Length: 0\r\n\r\n",
        "round_trip": bytes((0x02, 1, 2, 3, 1, 1, 4)) + b"X-Id" + bytes((3,)) + b"abc",
        "round_trip_window_8": bytes((0x02, 3, 3, 0, 0, 0)),
        "build_request": bytes((0x03, 6))
        + b"/a?b=c"
        + bytes((6,))
        + b"X-Test"
        + bytes((2,))
        + b"ok",
    }


def deflate_seeds() -> dict[str, bytes]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    first = compressor.compress(b"hello hello hello hello") + compressor.flush(zlib.Z_SYNC_FLUSH)
    second = compressor.compress(b"hello again") + compressor.flush(zlib.Z_SYNC_FLUSH)
    bomb = zlib.compress(b"\0" * 100_000, 9)[2:-4]
    header_values = (
        b"permessage-deflate; client_max_window_bits; server_max_window_bits=10, "
        b'permessage-deflate\nx-webkit-deflate-frame, foo; bar="b\\az"; __proto__; constructor=1'
    )
    return {
        "header": bytes((0x00,)) + header_values,
        "header_bad": bytes((0x00,)) + b'permessage-deflate; server_max_window_bits="1\\0"',
        "header_amplified_commas": amplified(0x80, None, b"", b",", 0xFFFF, b""),
        "header_amplified_spaces_commas": amplified(0x80, None, b"a", b" ,", 0x7FFF, b"b"),
        "header_amplified_params": amplified(0x80, None, b"a", b";b ", 0x2000, b""),
        "header_amplified_quotes": amplified(0x80, None, b'x;a="', b"\\a", 0x1000, b'"'),
        "inflate_two_messages": bytes((0x01, 0x07, 3, 1, len(first) - 4))
        + first[:-4]
        + bytes((1, len(second) - 4))
        + second[:-4],
        "inflate_bomb_small_limit": bytes((0x01, 0x27, 0, 1, len(bomb))) + bomb,
        "inflate_window_8": bytes((0x01, 0x00, 1, 1, 4)) + b"\xf2\x48\xcd\xc9",
        "round_trip": bytes((0x02, 0x07, 6, 3, 1, 5)) + b"hello" + bytes((3,)) + b"abc",
        "round_trip_window_8_no_takeover": bytes((0x02, 0x08, 1, 60, 1, 100)) + bytes(range(100)),
    }


def chat_json_seeds() -> dict[str, bytes]:
    def messages(*items: object, binary: bool = False) -> bytes:
        out = []
        for item in items:
            text = item if isinstance(item, str) else json.dumps(item)
            data = text.encode("utf-8", "surrogatepass")
            out.append((len(data) | (0x8000 if binary else 0)).to_bytes(2, "big") + data)
        return b"".join(out)

    chat = {"messageType": "chatMessage", "message": "hi <b>there</b>", "clientId": "c-1"}
    return {
        "send_and_duplicate": bytes((0x02,)) + messages(chat, chat),
        "typing": bytes((0x00,)) + messages({"messageType": "typing"}, {"messageType": "typing"}),
        "errors": bytes((0x04,))
        + messages(
            "not json",
            "[1, 2]",
            {"messageType": "nope" * 40},
            {"messageType": {"a": [1, 2]}},
            {"messageType": "chatMessage"},
            {"messageType": "chatMessage", "message": 5},
            {"messageType": "chatMessage", "message": "   "},
            {"messageType": "chatMessage", "message": "x" * 300},
            {"messageType": "chatMessage", "message": "ok", "clientId": ""},
            {"messageType": "chatMessage", "message": "ok", "clientId": "y" * 65},
        ),
        "lone_surrogate": bytes((0x00,))
        + messages('{"messageType": "chatMessage", "message": "\\ud800"}'),
        "binary": bytes((0x00,)) + messages("{}", binary=True),
        "rate_limit": bytes((0x00,)) + messages(*([chat | {"clientId": None}] * 8)),
        "store_down": bytes((0x01,)) + messages(chat),
        "amplified_nesting": amplified(0x08, None, b'{"messageType":', b"[", 256, b"]"),
    }


TARGETS = {
    "frames": frames_seeds,
    "connection": connection_seeds,
    "http11": http11_seeds,
    "multipart": multipart_seeds,
    "handshake": handshake_seeds,
    "deflate": deflate_seeds,
    "chat_json": chat_json_seeds,
}


def main() -> None:
    for target, make in TARGETS.items():
        directory = CORPUS / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in make().items():
            (directory / name).write_bytes(data)
    total = sum(path.stat().st_size for path in CORPUS.rglob("*") if path.is_file())
    print(f"seed corpora written to {CORPUS} ({total} bytes)")


if __name__ == "__main__":
    main()
