"""framewire.http.messages: Request (built in memory, its body read once, as text or JSON, within
max_body_size) and the response helpers (JSON, text, HTML, redirects, error pages, downloads)."""

from __future__ import annotations

from typing import Any

import pytest

from framewire.exceptions import HTTPError
from framewire.http.messages import (
    FileBody,
    Request,
    Response,
    error_response,
    file_response,
    html_response,
    json_response,
    redirect,
)
from tests.aio.http1.helpers import Server, post, read_reply, run
from tests.http.helpers import header


def test_response_helpers() -> None:
    response = json_response({"a": "é"}, status=201)
    assert (response.status, response.body) == (201, '{"a":"é"}'.encode())
    assert header(response, "Content-Type") == "application/json"
    assert header(html_response("<p>"), "Content-Type") == "text/html; charset=utf-8"
    assert error_response(404).body == b"404 Not Found\n"
    assert header(redirect("/x", 303), "Location") == "/x"
    with pytest.raises(ValueError):
        redirect("/x\r\nSet-Cookie: a=b")
    with pytest.raises(ValueError):
        redirect("/x", 200)
    response = file_response("/tmp/report.pdf", download_name='ré"port.pdf')
    assert response.body == FileBody("/tmp/report.pdf")
    assert header(response, "Content-Type") == "application/pdf"
    disposition = header(response, "Content-Disposition")
    assert (
        disposition == "attachment; filename=\"r__port.pdf\"; filename*=UTF-8''r%C3%A9%22port.pdf"
    )


def test_request_body_json_and_text_helpers() -> None:
    async def handler(request: Request) -> Response:
        data: Any = await request.json()
        assert await request.text() == '{"a": [1, 2]}'
        return Response(body=repr(data).encode())

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(post("/", b'{"a": [1, 2]}'))
        assert (await read_reply(reader)).body == b"{'a': [1, 2]}"
        writer.write(post("/", b"{not json"))
        reply = await read_reply(reader)
        assert reply.status == 400
        writer.close()
        await server.close()

    run(main)


def test_request_build_gives_an_in_memory_request() -> None:
    async def main() -> None:
        request = Request.build(
            "POST", "/x%2Fy?q=a+b", headers=[("Content-Type", "text/plain")], body=b"caf\xc3\xa9"
        )
        assert (request.path, request.raw_path) == ("/x/y", "/x%2Fy")
        assert request.query_params == {"q": ["a b"]}
        assert request.path_params == {}
        assert await request.text() == "café"
        assert [chunk async for chunk in request.stream()] == [b"caf\xc3\xa9"]  # cached

    run(main)


def test_request_body_can_be_streamed_once() -> None:
    async def main() -> None:
        request = Request.build("POST", "/", body=b"abc")
        assert [chunk async for chunk in request.stream()] == [b"abc"]
        with pytest.raises(RuntimeError):
            [chunk async for chunk in request.stream()]

    run(main)


def test_in_memory_body_over_max_body_size_is_413() -> None:
    async def main() -> None:
        request = Request.build("POST", "/", body=b"abc", max_body_size=2)
        with pytest.raises(HTTPError) as info:
            await request.body()
        assert info.value.http_status == 413
        request = Request.build("POST", "/", body=b"\xff")
        with pytest.raises(HTTPError) as info:
            await request.text()
        assert info.value.http_status == 400

    run(main)
