"""Tests of the App router (framewire.http.app); the response helpers are test_messages.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import framewire
from framewire.aio.http1.protocol import HTTP1ServerProtocol
from framewire.exceptions import HTTPError
from framewire.http.app import App
from framewire.http.messages import (
    Request,
    Response,
    json_response,
    text_response,
)
from tests.http.helpers import exchange, header


def call(
    app: App,
    method: str,
    target: str,
    body: bytes = b"",
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    request = Request.build(method, target, body=body, headers=headers)
    return asyncio.run(app.handle_http(request))


def build_app() -> App:
    app = App()

    @app.get("/")
    async def index(request: Request) -> Response:
        return text_response("index")

    @app.get("/uploads/{name}")
    async def upload(request: Request) -> Response:
        return json_response(request.path_params)

    @app.route("/uploads/{name}", methods=["DELETE"])
    async def delete(request: Request) -> Response:
        return text_response("deleted " + request.path_params["name"])

    @app.get("/uploads/special")
    async def special(request: Request) -> Response:
        return text_response("special")

    @app.get("/users/{user}/posts/{post}")
    async def post(request: Request) -> Response:
        return json_response(request.path_params)

    @app.post("/echo", max_body_size=10)
    async def echo(request: Request) -> Response:
        return Response(body=await request.body())

    @app.get("/teapot")
    async def teapot(request: Request) -> Response:
        raise HTTPError(418, "short and stout")

    @app.get("/boom")
    async def boom(request: Request) -> Response:
        raise RuntimeError("secret internals")

    return app


def test_literal_route_and_path_parameters() -> None:
    app = build_app()
    assert call(app, "GET", "/").body == b"index"
    assert json.loads(call(app, "GET", "/uploads/a.png").body) == {"name": "a.png"}  # type: ignore[arg-type]
    assert call(app, "GET", "/uploads/special").body == b"special"
    assert json.loads(call(app, "GET", "/users/7/posts/42?x=1").body) == {  # type: ignore[arg-type]
        "user": "7",
        "post": "42",
    }
    assert call(app, "DELETE", "/uploads/x").body == b"deleted x"


def test_parameters_are_decoded_per_segment() -> None:
    app = build_app()
    response = call(app, "GET", "/uploads/a%2Fb%20c")
    assert json.loads(response.body) == {"name": "a/b c"}  # type: ignore[arg-type]
    assert call(app, "GET", "/uploads/a/b").status == 404
    assert call(app, "GET", "/uploads/").status == 404


def test_unknown_path_is_404_and_wrong_method_is_405_with_allow() -> None:
    app = build_app()
    assert call(app, "GET", "/nope").status == 404
    response = call(app, "PUT", "/uploads/x")
    assert response.status == 405
    assert header(response, "Allow") == "DELETE, GET, HEAD"
    response = call(app, "GET", "/echo")
    assert response.status == 405
    assert header(response, "Allow") == "POST"


def test_head_is_served_by_get_routes_unless_routed_itself() -> None:
    app = build_app()
    assert call(app, "HEAD", "/").body == b"index"  # the server sends only the head

    @app.route("/", methods=["HEAD"])
    async def head(request: Request) -> Response:
        return text_response("explicit")

    assert call(app, "HEAD", "/").body == b"explicit"


def test_route_max_body_size_applies() -> None:
    app = build_app()
    assert call(app, "POST", "/echo", b"0123456789").body == b"0123456789"
    assert call(app, "POST", "/echo", b"0123456789X").status == 413


def test_http_error_becomes_its_status_and_other_errors_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = build_app()
    response = call(app, "GET", "/teapot")
    assert response.status == 418
    assert b"short and stout" in response.body  # type: ignore[operator]
    with caplog.at_level(logging.ERROR, logger="framewire.http"):
        response = call(app, "GET", "/boom")
    assert response.status == 500
    assert b"secret" not in response.body  # type: ignore[operator]
    assert len([r for r in caplog.records if "GET /boom" in r.getMessage()]) == 1


def test_bad_patterns_and_duplicate_routes_are_refused() -> None:
    app = build_app()
    with pytest.raises(ValueError):
        app.add_route("no-slash", text_handler)
    with pytest.raises(ValueError):
        app.add_route("/a/x{y}", text_handler)
    with pytest.raises(ValueError):
        app.add_route("/a/{1x}", text_handler)
    with pytest.raises(ValueError):
        app.add_route("/uploads/{other}", text_handler, ["GET"])


async def text_handler(request: Request) -> Response:
    return text_response("x")


class FakeWebSocket:
    """Just what App.__call__ uses: ws.request.path, close(), and a place for path_params."""

    def __init__(self, path: str) -> None:
        self.request = type("R", (), {"path": path})()
        self.closed: tuple[int, str] | None = None
        self.path_params: dict[str, str] = {}

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


def test_websocket_routes_dispatch_and_unknown_paths_get_404() -> None:
    app = App()
    seen: list[Any] = []

    @app.websocket("/rooms/{room}")
    async def room(ws: Any) -> None:
        seen.append(ws.path_params)

    ok = Request.build("GET", "/rooms/lobby", headers=[("Upgrade", "websocket")])
    bad = Request.build("GET", "/elsewhere", headers=[("Upgrade", "websocket")])
    assert asyncio.run(app.process_request(ok)) is None
    rejected = asyncio.run(app.process_request(bad))
    assert rejected is not None and rejected.status == 404

    asyncio.run(app(FakeWebSocket("/rooms/lobby")))
    assert seen == [{"room": "lobby"}]
    stray = FakeWebSocket("/elsewhere")
    asyncio.run(app(stray))
    assert stray.closed is not None and stray.closed[0] == 1008


# Over a real socket: HTTP1ServerProtocol(app.handle_http, None) on 127.0.0.1 port 0.


@contextlib.asynccontextmanager
async def running(app: App) -> AsyncIterator[int]:
    """Serve ``app`` on 127.0.0.1 and yield the port."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HTTP1ServerProtocol(app.handle_http, None), "127.0.0.1", 0
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def test_app_over_a_socket() -> None:
    async def main() -> None:
        async with running(build_app()) as port:
            status, headers, body = await exchange(
                port, b"GET /uploads/a%20b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert (status, json.loads(body)) == (200, {"name": "a b"})
            assert headers.get("Content-Type") == "application/json"

            status, headers, body = await exchange(
                port, b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert (status, headers.get("Content-Length"), body) == (200, "5", b"")

            status, headers, _ = await exchange(
                port, b"PATCH /uploads/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert (status, headers.get("Allow")) == (405, "DELETE, GET, HEAD")

            status, _, _ = await exchange(
                port, b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert status == 404

            request = b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            status, _, body = await exchange(port, request + b"Content-Length: 5\r\n\r\nhello")
            assert (status, body) == (200, b"hello")
            big = b"x" * 300_000
            status, _, _ = await exchange(port, request + b"Content-Length: 300000\r\n\r\n" + big)
            assert status == 413

            status, _, body = await exchange(
                port, b"GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert status == 500 and b"secret" not in body

    asyncio.run(asyncio.wait_for(main(), timeout=30))


def test_route_body_limit_applies_to_a_small_body_already_received() -> None:
    async def main() -> None:
        async with running(build_app()) as port:
            request = b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            status, _, _ = await exchange(port, request + b"Content-Length: 11\r\n\r\n0123456789X")
            assert status == 413

    asyncio.run(asyncio.wait_for(main(), timeout=30))


def test_app_plugs_into_serve_for_http_and_websocket_routes() -> None:
    app = build_app()

    @app.websocket("/rooms/{room}")
    async def room(ws: Any) -> None:
        async for message in ws:
            await ws.send(f"{ws.path_params['room']}: {message}")

    async def main() -> None:
        async with framewire.serve(app, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            status, _, body = await exchange(
                port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert (status, body) == (200, b"index")
            async with connect(f"ws://127.0.0.1:{port}/rooms/lobby") as ws:
                await ws.send("hi")
                assert await asyncio.wait_for(ws.recv(), timeout=5) == "lobby: hi"
            with pytest.raises(InvalidStatus) as caught:
                async with connect(f"ws://127.0.0.1:{port}/nowhere"):
                    pass
            assert caught.value.response.status_code == 404

    asyncio.run(asyncio.wait_for(main(), timeout=30))
