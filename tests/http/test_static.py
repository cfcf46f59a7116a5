"""Tests of static file serving (framewire.http.static) through App.handle_http."""

from __future__ import annotations

import asyncio
import email.utils
import os
from collections.abc import Iterable
from pathlib import Path

import pytest

from framewire.aio.http1.protocol import HTTP1ServerProtocol
from framewire.http.app import App
from framewire.http.messages import FileBody, Request, Response
from framewire.http.static import UNSATISFIABLE, ByteRange, StaticFiles, parse_byte_range
from tests.http.helpers import exchange, header

CONTENT = bytes(range(256)) * 4  # 1024 bytes


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A served root with a file, a directory with an index, and a secret next to the root."""
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    (root / "data.bin").write_bytes(CONTENT)
    (root / "style.css").write_text("body {}")
    (root / "docs" / "index.html").write_text("<h1>docs</h1>")
    (root / "..hidden-but-legal").write_text("ok")
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "index.html").write_text("outside index")
    os.symlink(tmp_path / "secret.txt", root / "link-out")
    os.symlink(tmp_path / "outside", root / "dir-out")
    os.symlink(root / "data.bin", root / "link-in")
    return root


@pytest.fixture
def app(site: Path) -> App:
    app = App()
    app.static("/static", str(site))
    return app


def get(
    app: App, target: str, headers: Iterable[tuple[str, str]] = (), method: str = "GET"
) -> Response:
    return asyncio.run(app.handle_http(Request.build(method, target, headers=headers)))


def test_file_is_served_with_sendfile_type_and_validators(app: App, site: Path) -> None:
    response = get(app, "/static/data.bin")
    assert response.status == 200
    assert response.body == FileBody(str(site / "data.bin"), 0, len(CONTENT))
    assert header(response, "Content-Type") == "application/octet-stream"
    assert header(response, "ETag") is not None
    assert header(response, "Last-Modified") is not None
    assert header(get(app, "/static/style.css"), "Content-Type") == "text/css; charset=utf-8"


@pytest.mark.parametrize(
    "target",
    [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/docs/..%2f..%2fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/docs%5c..%5c..%5csecret.txt",
        "/static/%2fetc%2fpasswd",
        "/static//etc/passwd",
        "/static/data.bin%00.txt",
        "/static/link-out",
        "/static/dir-out/",
        "/static/dir-out/index.html",
        "/static/missing",
        "/static/./data.bin",
    ],
)
def test_traversal_attempts_answer_404(app: App, target: str) -> None:
    # CVE-2024-23334 (aiohttp): nothing outside the root, symlinks included.
    response = get(app, target)
    assert response.status == 404
    assert not isinstance(response.body, FileBody)


def test_symlink_inside_the_root_and_dotted_names_are_served(app: App, site: Path) -> None:
    response = get(app, "/static/link-in")
    assert response.status == 200
    assert isinstance(response.body, FileBody)
    assert response.body.path == str(site / "data.bin")
    assert get(app, "/static/..hidden-but-legal").status == 200


def test_directory_serves_index_and_redirects_without_slash(app: App, site: Path) -> None:
    response = get(app, "/static/docs/")
    assert response.status == 200
    assert isinstance(response.body, FileBody)
    assert response.body.path == str(site / "docs" / "index.html")
    assert header(response, "Content-Type") == "text/html; charset=utf-8"
    redirected = get(app, "/static/docs?x=1")
    assert redirected.status == 301
    assert header(redirected, "Location") == "/static/docs/?x=1"


def test_if_none_match_gives_304(app: App) -> None:
    etag = header(get(app, "/static/data.bin"), "ETag")
    assert etag is not None
    for value in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        response = get(app, "/static/data.bin", [("If-None-Match", value)])
        assert response.status == 304
        assert response.body == b""
        assert header(response, "ETag") == etag
    assert get(app, "/static/data.bin", [("If-None-Match", '"other"')]).status == 200


def test_if_modified_since_gives_304_unless_the_file_is_newer(app: App, site: Path) -> None:
    mtime = (site / "data.bin").stat().st_mtime
    later = email.utils.formatdate(mtime + 60, usegmt=True)
    earlier = email.utils.formatdate(mtime - 60, usegmt=True)
    assert get(app, "/static/data.bin", [("If-Modified-Since", later)]).status == 304
    assert get(app, "/static/data.bin", [("If-Modified-Since", earlier)]).status == 200
    assert get(app, "/static/data.bin", [("If-Modified-Since", "garbage")]).status == 200
    # RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since.
    both = [("If-None-Match", '"other"'), ("If-Modified-Since", later)]
    assert get(app, "/static/data.bin", both).status == 200


@pytest.mark.parametrize(
    ("value", "start", "length"),
    [("bytes=0-99", 0, 100), ("bytes=1000-", 1000, 24), ("bytes=-10", 1014, 10)],
)
def test_range_gives_206_with_content_range(app: App, value: str, start: int, length: int) -> None:
    response = get(app, "/static/data.bin", [("Range", value)])
    assert response.status == 206
    assert isinstance(response.body, FileBody)
    assert (response.body.offset, response.body.length) == (start, length)
    expected = f"bytes {start}-{start + length - 1}/{len(CONTENT)}"
    assert header(response, "Content-Range") == expected


def test_unsatisfiable_range_gives_416(app: App) -> None:
    response = get(app, "/static/data.bin", [("Range", "bytes=5000-")])
    assert response.status == 416
    assert header(response, "Content-Range") == f"bytes */{len(CONTENT)}"


def test_stale_if_range_and_multiple_ranges_give_the_whole_file(app: App) -> None:
    stale = [("Range", "bytes=0-9"), ("If-Range", '"stale"')]
    assert get(app, "/static/data.bin", stale).status == 200
    several = [("Range", "bytes=0-9,20-29")]
    assert get(app, "/static/data.bin", several).status == 200
    etag = header(get(app, "/static/data.bin"), "ETag")
    assert etag is not None
    fresh = [("Range", "bytes=0-9"), ("If-Range", etag)]
    assert get(app, "/static/data.bin", fresh).status == 206


def test_head_is_answered_and_other_methods_get_405(app: App) -> None:
    assert get(app, "/static/data.bin", method="HEAD").status == 200
    response = get(app, "/static/data.bin", method="POST")
    assert response.status == 405
    assert header(response, "Allow") == "GET, HEAD"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes=0-0", ByteRange(0, 1)),
        ("bytes=5-2", None),
        ("bytes=-0", UNSATISFIABLE),
        ("bytes=-", None),
        ("items=0-1", None),
        ("bytes=\u0661-2", None),  # Arabic-Indic digit: not ASCII
        ("bytes=0-999999", ByteRange(0, 10)),
        ("bytes=10-", UNSATISFIABLE),
        ("bytes=-100", ByteRange(0, 10)),
    ],
)
def test_parse_byte_range(value: str, expected: ByteRange | str | None) -> None:
    assert parse_byte_range(value, 10) == expected


def test_resolve_never_leaves_the_root(site: Path) -> None:
    files = StaticFiles(site)
    assert files.resolve("/data.bin") == site / "data.bin"
    assert files.resolve("/docs") == site / "docs" / "index.html"
    for attempt in ("/../secret.txt", "/link-out", "\\..\\secret.txt", "/a\x00b", "/dir-out"):
        assert files.resolve(attempt) is None


# Over a real socket, the body sent with sendfile.


def test_static_over_a_socket(app: App) -> None:
    def request(target: str, *extra: str) -> bytes:
        lines = [f"GET {target} HTTP/1.1", "Host: x", "Connection: close", *extra, "", ""]
        return "\r\n".join(lines).encode()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: HTTP1ServerProtocol(app.handle_http, None), "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        try:
            status, headers, body = await exchange(port, request("/static/data.bin"))
            assert (status, body) == (200, CONTENT)
            etag = headers.get("ETag")
            assert etag is not None

            status, headers, body = await exchange(
                port, request("/static/data.bin", "Range: bytes=10-19")
            )
            assert (status, body) == (206, CONTENT[10:20])
            assert headers.get("Content-Range") == "bytes 10-19/1024"

            status, _, body = await exchange(
                port, request("/static/data.bin", f"If-None-Match: {etag}")
            )
            assert (status, body) == (304, b"")

            for target in ("/static/%2e%2e/secret.txt", "/static/..%2fsecret.txt"):
                status, _, body = await exchange(port, request(target))
                assert status == 404 and b"secret" not in body
        finally:
            server.close()

    asyncio.run(asyncio.wait_for(main(), timeout=30))
