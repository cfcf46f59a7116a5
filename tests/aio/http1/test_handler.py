"""What an HTTP/1 connection makes of its handlers (aio/http1/handler.py): an HTTPError keeps
its status, any other exception or a return value that is not a Response is a 500, and without
an HTTP or an upgrade handler the answer is 426."""

from __future__ import annotations

from framewire.exceptions import HTTPError
from framewire.http.messages import Request, Response
from tests.aio.http1.helpers import UPGRADE, Server, echo, get, read_reply, run


def test_handler_errors_become_500_and_http_errors_keep_their_status() -> None:
    async def handler(request: Request) -> Response:
        if request.path == "/teapot":
            raise HTTPError(418, "short and stout")
        raise RuntimeError("boom")

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(get("/teapot"))
        reply = await read_reply(reader)
        assert (reply.status, reply.body) == (418, b"short and stout\n")
        writer.write(get("/boom"))
        reply = await read_reply(reader)
        assert reply.status == 500
        assert b"boom" not in reply.body
        writer.close()
        await server.close()

    run(main)


def test_without_http_handler_requests_get_426() -> None:
    async def main() -> None:
        server = await Server().start(None)
        reader, writer = await server.connect()
        writer.write(get())
        reply = await read_reply(reader)
        assert reply.status == 426
        assert reply.headers["Upgrade"] == "websocket"
        assert reply.headers["Sec-WebSocket-Version"] == "13"
        assert reply.headers["Content-Type"].startswith("text/plain") or reply.body
        writer.close()
        await server.close()

    run(main)


def test_upgrade_without_upgrade_handler_is_426() -> None:
    async def main() -> None:
        server = await Server().start(echo, None)
        reader, writer = await server.connect()
        writer.write(UPGRADE)
        assert (await read_reply(reader)).status == 426
        writer.close()
        await server.close()

    run(main)


def test_handler_returning_something_else_is_500() -> None:
    async def handler(request: Request) -> Response:
        return "not a response"  # type: ignore[return-value]

    async def main() -> None:
        server = await Server().start(handler)
        reader, writer = await server.connect()
        writer.write(get())
        assert (await read_reply(reader)).status == 500
        writer.close()
        await server.close()

    run(main)
