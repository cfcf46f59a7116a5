"""Tests of streaming multipart uploads to disk (framewire.http.uploads)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from framewire.aio.http1.protocol import HTTP1ServerProtocol
from framewire.exceptions import HTTPError
from framewire.http.app import App
from framewire.http.messages import Request, Response, json_response
from framewire.http.uploads import (
    UploadResult,
    safe_extension,
    sanitize_filename,
    save_uploads,
)
from framewire.sansio.headers import Headers
from framewire.sansio.http11_events import RequestHead
from framewire.sansio.limits import HTTPLimits

BOUNDARY = "fwTestBoundary42"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
LIMITS = HTTPLimits()


def part(name: str, data: bytes, filename: str | None = None, content_type: str = "") -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + data + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


class ChunkedSource:
    """A body source handing out fixed chunks, then raising ``fail_with`` if given."""

    def __init__(self, chunks: Iterable[bytes], fail_with: BaseException | None = None) -> None:
        self.chunks = list(chunks)
        self.fail_with = fail_with

    async def read_chunk(self, max_body_size: int) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        if self.fail_with is not None:
            raise self.fail_with
        return b""


def request_for(
    data: bytes, chunk_size: int = 7, fail_with: BaseException | None = None
) -> Request:
    head = RequestHead("POST", "/upload", "1.1", Headers([("Content-Type", CONTENT_TYPE)]))
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    return Request(head, ChunkedSource(chunks, fail_with), max_body_size=1 << 30)


def upload(
    data: bytes, directory: Path, limits: HTTPLimits = LIMITS, **kwargs: object
) -> UploadResult:
    request = request_for(data, **kwargs)  # type: ignore[arg-type]
    return asyncio.run(save_uploads(request, directory, limits=limits))


def test_fields_and_files_are_stored_with_hash_and_safe_names(tmp_path: Path) -> None:
    photo = bytes(range(256)) * 100
    data = body(
        part("title", "héllo".encode()),
        part("photo", photo, filename="Holiday Photo.JPG", content_type="image/jpeg"),
        part("notes", b"a\r\n--fwTestBoundary4 not the end", filename="notes.txt"),
        part("empty", b"", filename=""),
    )
    result = upload(data, tmp_path)
    assert result.fields == {"title": "héllo"}
    assert [saved.field_name for saved in result.files] == ["photo", "notes"]
    saved = result.files[0]
    assert saved.original_filename == "Holiday Photo.JPG"
    assert saved.stored_name.endswith(".jpg") and " " not in saved.stored_name
    assert saved.path == tmp_path / saved.stored_name
    assert saved.path.read_bytes() == photo
    assert (saved.size, saved.sha256) == (len(photo), hashlib.sha256(photo).hexdigest())
    assert saved.content_type == "image/jpeg"
    assert result.files[1].path.read_bytes() == b"a\r\n--fwTestBoundary4 not the end"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        saved.stored_name for saved in result.files
    )


@pytest.mark.parametrize(
    ("filename", "display", "extension"),
    [
        ("../../etc/passwd", "passwd", ""),
        ("C:\\Users\\me\\report.pdf", "report.pdf", ".pdf"),
        ("evil.html", "evil.html", ""),
        ("x.svg", "x.svg", ""),
        ("..", "", ""),
        ("a\x00b\x1b[31m.txt", "ab[31m.txt", ".txt"),
        ("\u202eexe.txt", "exe.txt", ".txt"),  # right-to-left override is dropped
        (".bashrc", "bashrc", ""),
        ("archive.tar.gz", "archive.tar.gz", ".gz"),
        ("x." + "a" * 11, "x." + "a" * 11, ""),
    ],
)
def test_client_filenames_are_sanitized(filename: str, display: str, extension: str) -> None:
    assert sanitize_filename(filename) == display
    assert safe_extension(filename) == extension


def test_long_filenames_are_cut_keeping_the_extension() -> None:
    name = sanitize_filename("n" * 1000 + ".png")
    assert len(name) == 200 and name.endswith(".png")


def test_traversal_filename_is_stored_inside_the_directory(tmp_path: Path) -> None:
    result = upload(body(part("f", b"data", filename="../../escape.txt")), tmp_path / "up")
    assert result.files[0].path.parent == tmp_path / "up"
    assert not (tmp_path / "escape.txt").exists()


def assert_empty(directory: Path) -> None:
    assert list(directory.iterdir()) == []


def test_client_abort_mid_file_leaves_no_file(tmp_path: Path) -> None:
    data = body(part("a", b"x" * 1000, filename="a.bin"), part("b", b"y" * 1000, filename="b"))
    request = request_for(data[:1500], fail_with=ConnectionResetError("client went away"))
    with pytest.raises(ConnectionResetError):
        asyncio.run(save_uploads(request, tmp_path, limits=LIMITS))
    assert_empty(tmp_path)


def test_cancellation_leaves_no_file(tmp_path: Path) -> None:
    data = body(part("a", b"x" * 1000, filename="a.bin"))

    class StallingSource(ChunkedSource):
        async def read_chunk(self, max_body_size: int) -> bytes:
            if not self.chunks:
                await asyncio.Event().wait()  # never set: the client stalls
            return await super().read_chunk(max_body_size)

    async def main() -> None:
        head = RequestHead("POST", "/", "1.1", Headers([("Content-Type", CONTENT_TYPE)]))
        request = Request(head, StallingSource([data[:600]]))
        task = asyncio.ensure_future(save_uploads(request, tmp_path, limits=LIMITS))
        for _ in range(10):
            await asyncio.sleep(0)
        assert len(list(tmp_path.iterdir())) == 1  # the temporary file exists meanwhile
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert_empty(tmp_path)


def test_upload_limit_on_a_later_file_removes_every_file(tmp_path: Path) -> None:
    limits = HTTPLimits(max_upload_size=1500)
    data = body(part("a", b"x" * 1000, filename="a.bin"), part("b", b"y" * 1000, filename="b"))
    with pytest.raises(HTTPError) as caught:
        upload(data, tmp_path, limits)
    assert caught.value.http_status == 413
    assert_empty(tmp_path)


def test_many_small_fields_over_the_total_form_size_is_413(tmp_path: Path) -> None:
    # CVE-2025-69228 (aiohttp): max_form_size is a total, not a per-field limit.
    limits = HTTPLimits(max_form_size=1000)
    data = body(*[part(f"f{i}", b"z" * 100) for i in range(11)])
    with pytest.raises(HTTPError) as caught:
        upload(data, tmp_path, limits)
    assert caught.value.http_status == 413


def test_too_many_parts_is_413(tmp_path: Path) -> None:
    limits = HTTPLimits(max_multipart_parts=2)
    data = body(*[part(f"f{i}", b"1", filename=f"{i}.txt") for i in range(3)])
    with pytest.raises(HTTPError) as caught:
        upload(data, tmp_path, limits)
    assert caught.value.http_status == 413
    assert_empty(tmp_path)


def test_malformed_body_is_400_and_leaves_nothing(tmp_path: Path) -> None:
    data = body(part("a", b"x" * 100, filename="a.bin"))[:-20]  # no closing delimiter
    with pytest.raises(HTTPError) as caught:
        upload(data, tmp_path)
    assert caught.value.http_status == 400
    assert_empty(tmp_path)


def test_disallowed_content_type_is_415(tmp_path: Path) -> None:
    data = body(
        part("ok", b"png", filename="a.png", content_type="image/png"),
        part("bad", b"<script>", filename="b.png", content_type="text/html"),
    )
    request = request_for(data)
    with pytest.raises(HTTPError) as caught:
        asyncio.run(
            save_uploads(request, tmp_path, limits=LIMITS, allowed_content_types=["image/png"])
        )
    assert caught.value.http_status == 415
    assert_empty(tmp_path)


def test_non_multipart_request_is_415(tmp_path: Path) -> None:
    request = Request.build("POST", "/", headers=[("Content-Type", "application/json")])
    with pytest.raises(HTTPError) as caught:
        asyncio.run(save_uploads(request, tmp_path, limits=LIMITS))
    assert caught.value.http_status == 415


def test_invalid_utf8_field_is_400(tmp_path: Path) -> None:
    with pytest.raises(HTTPError) as caught:
        upload(body(part("f", b"\xff\xfe")), tmp_path)
    assert caught.value.http_status == 400


# Over a real socket: the server runs in this process, the client in a subprocess that generates
# the body on the fly, so the server's RSS is what gets measured.

CLIENT = r"""
import hashlib, socket, sys
port, size, abort_after = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
boundary = "fwBigUploadBoundary"
head = (
    f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
    "Content-Type: application/octet-stream\r\n\r\n"
).encode()
tail = f"\r\n--{boundary}--\r\n".encode()
block = bytes(range(256)) * 4096  # 1 MiB; each block gets its own counter below
sock = socket.create_connection(("127.0.0.1", port))
sock.sendall(
    f"POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
    f"Content-Length: {len(head) + size + len(tail)}\r\n\r\n".encode() + head
)
digest, sent, counter = hashlib.sha256(), 0, 0
while sent < size:
    chunk = (counter.to_bytes(8, "big") + block[8:])[: size - sent]
    digest.update(chunk)
    sock.sendall(chunk)
    sent += len(chunk)
    counter += 1
    if abort_after and sent >= abort_after:
        sock.close()
        print("aborted")
        sys.exit(0)
sock.sendall(tail)
response = b""
while data := sock.recv(65536):
    response += data
print(digest.hexdigest())
print(response.decode("latin-1"))
"""


def status_bytes(field: str) -> int:
    """A size from /proc/self/status (VmRSS: resident now; VmHWM: its peak), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field}")


def reset_peak_rss() -> None:
    """Make VmHWM start again from the current RSS (Linux 4.0+), so that it is the peak of
    what follows: the kernel tracks it at every page, where sampling would miss a spike."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError as exc:
        pytest.skip(f"cannot reset the peak RSS: {exc}")


async def run_upload(directory: Path, size: int, abort_after: int = 0) -> tuple[str, int]:
    """Upload ``size`` bytes from a subprocess; return its output and the peak RSS growth."""
    app = App()
    done = asyncio.Event()
    limits = HTTPLimits(max_upload_size=2 << 30)

    @app.post("/upload", max_body_size=2 << 30)
    async def upload(request: Request) -> Response:
        try:
            result = await save_uploads(request, directory, limits=limits)
            saved = result.files[0]
            return json_response(
                {"sha256": saved.sha256, "size": saved.size, "path": str(saved.path)}
            )
        finally:
            done.set()

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HTTP1ServerProtocol(app.handle_http, None), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    reset_peak_rss()
    baseline = status_bytes("VmRSS")
    try:
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLIENT,
            str(port),
            str(size),
            str(abort_after),
            stdout=asyncio.subprocess.PIPE,
        )
        output, _ = await client.communicate()
        await asyncio.wait_for(done.wait(), timeout=30)
        peak = status_bytes("VmHWM")
    finally:
        server.close()
    return output.decode(), peak - baseline


def check_upload(directory: Path, size: int) -> None:
    output, growth = asyncio.run(asyncio.wait_for(run_upload(directory, size), timeout=300))
    try:
        client_digest, response = output.split("\n", 1)
        assert response.startswith("HTTP/1.1 200")
        reply = json.loads(response.partition("\r\n\r\n")[2])
        assert reply["size"] == size
        assert reply["sha256"] == client_digest
        digest = hashlib.sha256()
        with open(reply["path"], "rb") as stored:
            while block := stored.read(1 << 20):
                digest.update(block)
        assert digest.hexdigest() == client_digest
        assert [path.name for path in directory.iterdir()] == [Path(reply["path"]).name]
    finally:
        for path in directory.iterdir():  # pytest keeps tmp_path around: don't leave 1 GiB
            path.unlink()
    assert growth < 32 * 1024 * 1024, f"server RSS grew by {growth / 1e6:.1f} MB"


def test_64_mib_upload_over_a_socket_streams_to_disk(tmp_path: Path) -> None:
    check_upload(tmp_path, 64 << 20)


@pytest.mark.slow
def test_1_gib_upload_over_a_socket_streams_to_disk_with_bounded_memory(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    if free < (3 << 30):
        pytest.skip(f"needs 3 GiB free on the temp disk for a 1 GiB upload, has {free >> 20} MiB")
    check_upload(tmp_path, 1 << 30)


def test_upload_aborted_over_a_socket_leaves_no_file(tmp_path: Path) -> None:
    output, _ = asyncio.run(
        asyncio.wait_for(run_upload(tmp_path, 64 << 20, abort_after=8 << 20), timeout=60)
    )
    assert output.strip() == "aborted"
    assert list(tmp_path.iterdir()) == []
