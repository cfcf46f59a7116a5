"""POST /upload and GET /uploads/<name> (chat/app.py): stored, broadcast, limited, cleaned up
after failures, served without letting a browser run them, and no way out of the directory."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.chat.conftest import (
    BOUNDARY,
    MULTIPART_TYPE,
    ChatServer,
    FilePart,
    RunChat,
    StartChatProcess,
    full_history,
    http_request,
    multipart,
    post_upload,
    recv_kind,
    request_bytes,
    send_chat,
    upload_dir_entries,
    wait_for_presence,
    wait_until,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 500
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 30
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x02" * 100
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
HTML = b"<!doctype html><script>alert(document.cookie)</script>"
SVG = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"
XML = b"<?xml version='1.0'?><x:script xmlns:x='http://www.w3.org/1999/xhtml'>alert(1)</x:script>"
JS = b"fetch('/chat-history').then(r => r.text()).then(alert)"


def file_part(data: bytes, filename: str = "file.bin", content_type: str = "") -> FilePart:
    return FilePart("upload", filename, data, content_type or "application/octet-stream")


async def check_nothing_stored(server: ChatServer) -> None:
    assert upload_dir_entries(server.uploads_dir) == []
    assert await full_history(server.port) == []


# ---------------------------------------------------------------------------- POST /upload


@pytest.mark.parametrize(
    "order",
    [
        ["upload", "message", "username", "clientId"],
        ["message", "username", "clientId", "upload"],
        ["username", "upload", "clientId", "message"],
        ["clientId", "message", "upload", "username"],
    ],
)
def test_upload_is_stored_announced_and_answered_201(run_chat: RunChat, order: list[str]) -> None:
    content = PNG + bytes(random.Random(3).randbytes(50_000))
    parts: dict[str, tuple[str, str] | FilePart] = {
        "upload": file_part(content, "holiday photo.png", "image/png"),
        "message": ("message", "look <here> & 'there'"),
        "username": ("username", "Zoë"),
        "clientId": ("clientId", "up-1"),
    }

    async def scenario(server: ChatServer) -> None:
        async with server.connect("watcher") as watcher:
            await wait_for_presence(watcher, ["watcher"])
            reply = await post_upload(server.port, multipart(parts[name] for name in order))
            assert reply.status == 201, reply.body
            answer = reply.json()
            assert set(answer) == {"url", "id", "seq"}
            assert answer["seq"] == 1
            url = answer["url"]
            assert url.startswith("/uploads/") and url.endswith(".png")

            announced = await recv_kind(watcher, "chatMessage")
            assert announced == {
                "messageType": "chatMessage",
                "id": answer["id"],
                "seq": 1,
                "username": "Zoë",
                "message": "look &lt;here&gt; &amp; &#x27;there&#x27;",
                "timestamp": announced["timestamp"],
                "clientId": "up-1",
                "upload": url,
                "contentType": "image/png",
            }
            assert await full_history(server.port) == [announced]

            (stored,) = upload_dir_entries(server.uploads_dir)
            assert url == f"/uploads/{stored}"
            assert (server.uploads_dir / stored).read_bytes() == content
            served = await http_request(server.port, "GET", url)
            assert served.status == 200
            assert served.body == content

    run_chat(scenario)


def test_upload_without_caption_or_username(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        reply = await post_upload(server.port, multipart([file_part(b"just text", "a.txt")]))
        assert reply.status == 201
        (message,) = await full_history(server.port)
        assert message["username"] == "Guest"
        assert message["message"] == ""
        assert "clientId" not in message
        assert message["contentType"] == "text/plain; charset=utf-8"

    run_chat(scenario)


def test_upload_username_is_cleaned_like_the_websockets(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        body = multipart([("username", "\u202e" + "n" * 40), file_part(b"x", "x.txt")])
        assert (await post_upload(server.port, body)).status == 201
        (message,) = await full_history(server.port)
        assert message["username"] == "n" * 32

    run_chat(scenario)


@pytest.mark.parametrize(
    "filename",
    ["../../outside.txt", "..\\..\\outside.txt", "/etc/cron.d/evil", ".hidden", "<script>.txt"],
)
def test_the_client_file_name_never_becomes_a_path(run_chat: RunChat, filename: str) -> None:
    async def scenario(server: ChatServer) -> None:
        reply = await post_upload(server.port, multipart([file_part(b"content", filename)]))
        assert reply.status == 201
        (stored,) = upload_dir_entries(server.uploads_dir)
        assert reply.json()["url"] == f"/uploads/{stored}"
        assert len(stored.split(".")[0]) == 32  # a name the server made
        assert sorted(p.name for p in server.data_dir.iterdir()) == sorted(
            ["uploads", "chat.sqlite3", "chat.sqlite3-wal", "chat.sqlite3-shm"]
        )

    run_chat(scenario)


def test_upload_resent_with_the_same_client_id_is_stored_once(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("watcher") as watcher:
            body = multipart([("username", "ann"), ("clientId", "u1"), file_part(PDF, "a.pdf")])
            first = await post_upload(server.port, body)
            assert first.status == 201
            again = await post_upload(server.port, body)
            assert again.status == 200
            assert again.json() == first.json()
            assert len(upload_dir_entries(server.uploads_dir)) == 1
            assert (await recv_kind(watcher, "chatMessage"))["seq"] == 1
            await send_chat(watcher, "sentinel")
            assert (await recv_kind(watcher, "chatMessage"))["seq"] == 2

    run_chat(scenario)


@pytest.mark.parametrize(
    ("content_type", "body", "status", "reason"),
    [
        (MULTIPART_TYPE, multipart([("message", "no file")]), 400, b"exactly one file"),
        (
            MULTIPART_TYPE,
            multipart([FilePart("file", "a.txt", b"wrong field")]),
            400,
            b"exactly one file",
        ),
        (
            MULTIPART_TYPE,
            multipart([file_part(b"one", "1.txt"), file_part(b"two", "2.txt")]),
            400,
            b"exactly one file",
        ),
        (
            MULTIPART_TYPE,
            multipart([file_part(b"one", "1.txt"), FilePart("other", "2.txt", b"two")]),
            400,
            b"exactly one file",
        ),
        (MULTIPART_TYPE, multipart([file_part(b"", "")]), 400, b"exactly one file"),
        (
            MULTIPART_TYPE,
            multipart([file_part(b"cut short", "a.txt")])[:-30],
            400,
            b"",
        ),
        (
            MULTIPART_TYPE,
            multipart([("clientId", "c" * 65), file_part(b"x", "a.txt")]),
            400,
            b"clientId",
        ),
        (
            MULTIPART_TYPE,
            multipart([("message", "m" * ((1 << 20) + 1)), file_part(b"x", "a.txt")]),
            413,
            b"max_message",
        ),
        ("application/json", b'{"upload": "x"}', 415, b"multipart/form-data"),
        ("multipart/form-data", multipart([file_part(b"x", "a.txt")]), 400, b""),
    ],
    ids=[
        "no-file",
        "file-in-another-field",
        "two-files",
        "a-second-file-field",
        "empty-file-input",
        "truncated-body",
        "long-client-id",
        "long-caption",
        "not-multipart",
        "no-boundary",
    ],
)
def test_bad_upload_is_refused_and_leaves_nothing(
    run_chat: RunChat, content_type: str, body: bytes, status: int, reason: bytes
) -> None:
    async def scenario(server: ChatServer) -> None:
        reply = await http_request(
            server.port, "POST", "/upload", headers=[("Content-Type", content_type)], body=body
        )
        assert reply.status == status, reply.body
        assert reason in reply.body
        await check_nothing_stored(server)

    run_chat(scenario)


# ---------------------------------------------------------------------------- size limit


async def read_response_head(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    return int(head.split()[1]), head


def test_upload_declared_too_big_is_refused_before_its_body_is_sent(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            # Only the head: the server answers from Content-Length alone, and does not
            # ask for the body (no 100 Continue).
            writer.write(
                request_bytes(
                    "POST",
                    "/upload",
                    server.port,
                    [
                        ("Content-Type", MULTIPART_TYPE),
                        ("Content-Length", str(100 << 20)),
                        ("Expect", "100-continue"),
                    ],
                )
            )
            status, head = await read_response_head(reader)
            assert status == 413, head
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            assert b"max_upload=65536" in await reader.readexactly(length)
        finally:
            writer.close()
        await check_nothing_stored(server)

    run_chat(scenario, max_upload=64 << 10)


def test_upload_over_max_upload_with_honest_content_length_gets_413(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        body = multipart([("message", "too big"), file_part(b"\x07" * ((64 << 10) + 1))])
        reply = await post_upload(server.port, body)
        assert reply.status == 413
        assert b"max_upload=65536" in reply.body
        await check_nothing_stored(server)
        # Exactly max_upload is fine.
        body = multipart([file_part(b"\x07" * (64 << 10))])
        assert (await post_upload(server.port, body)).status == 201

    run_chat(scenario, max_upload=64 << 10)


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_streamed_upload_is_refused_with_413_as_soon_as_it_passes_max_upload(
    run_chat: RunChat,
) -> None:
    piece = b"\x5a" * (64 << 10)
    most = 64 << 20  # what the client would send if nobody stopped it

    async def scenario(server: ChatServer) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        sent = 0
        try:
            writer.write(
                request_bytes(
                    "POST",
                    "/upload",
                    server.port,
                    [("Content-Type", MULTIPART_TYPE), ("Transfer-Encoding", "chunked")],
                )
            )
            writer.write(chunk(multipart([file_part(b"", "big.bin")]).split(b"\r\n\r\n")[0]))
            writer.write(chunk(b"\r\n\r\n"))
            answer = asyncio.create_task(read_response_head(reader))
            while not answer.done() and sent < most:
                writer.write(chunk(piece))
                sent += len(piece)
                try:
                    await writer.drain()
                except ConnectionError:
                    break
            status, head = await answer
        finally:
            writer.close()
        assert status == 413, head
        assert sent < most  # answered while the body was still coming
        await check_nothing_stored(server)

    run_chat(scenario, max_upload=256 << 10)


# ---------------------------------------------------------------------------- aborted uploads


@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.parametrize("when", ["mid-file", "after-file"])
def test_aborted_upload_leaves_no_file_and_no_message(
    run_chat: RunChat, how: str, when: str
) -> None:
    content = random.Random(5).randbytes(1 << 20)

    async def scenario(server: ChatServer) -> None:
        async with server.connect("watcher") as watcher:
            body = multipart([file_part(content, "big.bin"), ("message", "never posted")])
            if when == "mid-file":
                cut = len(body) // 2
                started = lambda: bool(upload_dir_entries(server.uploads_dir))  # noqa: E731
            else:
                cut = body.index(b'name="message"') + 10
                # The file part is complete: it has its final (visible) name.
                started = lambda: any(  # noqa: E731
                    not name.startswith(".") for name in upload_dir_entries(server.uploads_dir)
                )
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(
                request_bytes(
                    "POST",
                    "/upload",
                    server.port,
                    [("Content-Type", MULTIPART_TYPE), ("Content-Length", str(len(body)))],
                )
                + body[:cut]
            )
            await writer.drain()
            await wait_until(started, what="the upload to reach the disk")
            if how == "rst":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
            await wait_until(
                lambda: upload_dir_entries(server.uploads_dir) == [],
                what="the partial upload to be removed",
            )
            assert await full_history(server.port) == []
            await send_chat(watcher, "sentinel")
            first = await recv_kind(watcher, "chatMessage")
            assert (first["message"], first["seq"]) == ("sentinel", 1)

    run_chat(scenario)


# ---------------------------------------------------------------------------- GET /uploads/<name>


SERVED_CASES = [
    (PNG, "a.png", "image/png", "image/png", True),
    (JPEG, "a.jpeg", "image/jpeg", "image/jpeg", True),
    (GIF, "a.gif", "image/gif", "image/gif", True),
    (WEBP, "a.webp", "image/webp", "image/webp", True),
    (PNG, "no-extension", "application/octet-stream", "image/png", True),
    (b"plain words\n", "notes.txt", "text/plain", "text/plain; charset=utf-8", False),
    (PDF, "paper.pdf", "application/pdf", "application/pdf", False),
    (HTML, "page.html", "text/html", "application/octet-stream", False),
    (HTML, "fake.png", "image/png", "application/octet-stream", False),
    (SVG, "drawing.svg", "image/svg+xml", "application/octet-stream", False),
    (XML, "data.xml", "application/xml", "application/octet-stream", False),
    (JS, "app.js", "text/javascript", "application/octet-stream", False),
    (
        b"\x00\x01binary",
        "blob.dat",
        "application/x-whatever",
        "application/octet-stream",
        False,
    ),
]


@pytest.mark.parametrize(
    ("data", "filename", "declared", "served_type", "inline"),
    SERVED_CASES,
    ids=[case[1] for case in SERVED_CASES],
)
def test_uploads_are_served_exactly_and_only_raster_images_inline(
    run_chat: RunChat, data: bytes, filename: str, declared: str, served_type: str, inline: bool
) -> None:
    async def scenario(server: ChatServer) -> None:
        reply = await post_upload(server.port, multipart([file_part(data, filename, declared)]))
        assert reply.status == 201
        url = reply.json()["url"]
        (message,) = await full_history(server.port)
        assert message["contentType"] == served_type

        served = await http_request(server.port, "GET", url)
        assert served.status == 200
        assert served.body == data
        assert served.headers["content-type"] == served_type
        assert served.headers["x-content-type-options"] == "nosniff"
        disposition = served.headers.get("content-disposition", "")
        if inline:
            assert not disposition.startswith("attachment")
        else:
            assert disposition.startswith("attachment")
        # The stored name never keeps an active extension.
        assert not url.endswith((".html", ".svg", ".xml", ".js"))

    run_chat(scenario)


def test_a_health_probe_file_and_names_not_made_by_the_server_are_not_served(
    run_chat: RunChat,
) -> None:
    async def scenario(server: ChatServer) -> None:
        assert (await http_request(server.port, "GET", "/healthz")).status == 200
        assert (server.uploads_dir / ".health").exists()
        (server.uploads_dir / "mine.txt").write_bytes(b"planted")
        for name in (".health", "mine.txt", "0" * 32, "0" * 31 + "G", "0" * 32 + ".txt"):
            reply = await http_request(server.port, "GET", f"/uploads/{name}")
            assert reply.status == 404, name

    run_chat(scenario)


TRAVERSALS = [
    "/uploads/../chat.sqlite3",
    "/uploads/%2e%2e/chat.sqlite3",
    "/uploads/%2E%2E/chat.sqlite3",
    "/uploads/..%2fchat.sqlite3",
    "/uploads/%2e%2e%2fchat.sqlite3",
    "/uploads/..%2Fchat.sqlite3",
    "/uploads/..%5cchat.sqlite3",
    "/uploads/..\\chat.sqlite3",
    "/uploads/%252e%252e%252fchat.sqlite3",
    "/uploads//etc/passwd",
    "/uploads/%2fetc%2fpasswd",
    "/uploads/%2Fetc%2Fpasswd",
    "/uploads/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/uploads/../../../../etc/passwd",
    "/uploads/./chat.sqlite3",
    "/uploads/chat.sqlite3",
    "/uploads/chat.sqlite3%00.png",
    "/uploads/",
    "/uploads",
    "/static/../chat.sqlite3",
    "/static/%2e%2e/%2e%2e/chat.sqlite3",
    "/static/..%2f..%2fchat.sqlite3",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_no_path_leads_out_of_the_uploads_directory(run_chat: RunChat, target: str) -> None:
    async def scenario(server: ChatServer) -> None:
        reply = await http_request(server.port, "GET", target)
        assert reply.status == 404, (target, reply.status)
        assert b"SQLite format 3" not in reply.body
        assert b"root:" not in reply.body

    run_chat(scenario)


def test_stored_file_behind_an_absolute_form_target_with_dot_segments_is_not_served(
    run_chat: RunChat,
) -> None:
    async def scenario(server: ChatServer) -> None:
        for target in (
            f"http://127.0.0.1:{server.port}/uploads/../chat.sqlite3",
            f"http://127.0.0.1:{server.port}/uploads/%2e%2e%2fchat.sqlite3",
            "/etc/passwd",
            "//etc/passwd",
        ):
            reply = await http_request(server.port, "GET", target)
            assert reply.status in (400, 404), (target, reply.status)
            assert b"SQLite format 3" not in reply.body and b"root:" not in reply.body

    run_chat(scenario)


# ---------------------------------------------------------------------------- 1 GiB, bounded memory


class PatternSource:
    """``size`` bytes made on the fly from a random 1 MiB block, numbered per block."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.block = random.Random(seed).randbytes(1 << 20)
        self.sha256 = hashlib.sha256()

    def chunks(self) -> Any:
        for index in range(self.size // len(self.block)):
            data = struct.pack("<Q", index) + self.block[8:]
            self.sha256.update(data)
            yield data


@pytest.mark.slow
def test_one_gib_upload_is_streamed_to_disk_with_bounded_server_memory(
    chat_process: StartChatProcess, tmp_path: Path
) -> None:
    size = 1 << 30
    chat = chat_process("--max-upload", "2G")
    source = PatternSource(size, seed=11)
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="upload"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="message"\r\n\r\n'
    tail += f"one gibibyte\r\n--{BOUNDARY}--\r\n"

    async def upload() -> dict[str, Any]:
        reader, writer = await asyncio.open_connection("127.0.0.1", chat.port)
        try:
            writer.write(
                request_bytes(
                    "POST",
                    "/upload",
                    chat.port,
                    [("Content-Type", MULTIPART_TYPE), ("Transfer-Encoding", "chunked")],
                )
                + chunk(head)
            )
            for data in source.chunks():
                writer.write(chunk(data))
                await writer.drain()
            writer.write(chunk(tail.encode()) + b"0\r\n\r\n")
            status, response_head = await read_response_head(reader)
            assert status == 201, response_head
            length = int(response_head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            answer: dict[str, Any] = json.loads(await reader.readexactly(length))
            return answer
        finally:
            writer.close()

    before = chat.proc_status()
    answer = asyncio.run(asyncio.wait_for(upload(), 300))
    after = chat.proc_status()
    stored = chat.data_dir / "uploads" / answer["url"].rsplit("/", 1)[1]
    try:
        growth = after["VmHWM"] - before["VmRSS"]
        assert growth < 100 << 20, f"server memory grew by {growth >> 20} MiB"
        assert stored.stat().st_size == size
        digest = hashlib.sha256()
        with open(stored, "rb") as file:
            while block := file.read(8 << 20):
                digest.update(block)
        assert digest.hexdigest() == source.sha256.hexdigest()
    finally:
        stored.unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("origin", "status"),
    [("http://evil.example", 403), ("null", 403), ("same", 201), (None, 201)],
)
def test_upload_from_another_sites_page_is_refused(
    run_chat: RunChat, origin: str | None, status: int
) -> None:
    async def scenario(server: ChatServer) -> None:
        headers = [("Content-Type", MULTIPART_TYPE)]
        if origin is not None:
            value = f"http://127.0.0.1:{server.port}" if origin == "same" else origin
            headers.append(("Origin", value))
        body = multipart([file_part(b"hello", "a.txt")])
        reply = await http_request(server.port, "POST", "/upload", headers=headers, body=body)
        assert reply.status == status, reply.body
        if status == 403:
            assert b"not allowed" in reply.body
            await check_nothing_stored(server)
        else:
            assert len(await full_history(server.port)) == 1

    run_chat(scenario)
