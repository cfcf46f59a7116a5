"""No header injection through any public API: CR, LF or NUL never reach a message head.

Every head framewire writes goes through one encoder (sansio/http11_encode.py), which refuses a
header name that is not a token and a value, reason phrase or request target holding CR, LF,
NUL or another control character with ValueError. These tests reach that encoder through each
public API that puts caller data in a head, on both ends:

- client: connect()'s URI (InvalidURI, before anything is sent), origin, subprotocols and
  extra_headers (ValueError, before anything is sent), and build_request();
- server: serve()'s extra_headers and server_header (ValueError at once), a process_request
  response and a select_subprotocol refusal (a 500 instead), accept_request()'s 101;
- HTTP app: Response headers and reason (a 500 instead), redirect() (ValueError), HTTPError
  reasons (in the body only), file_response()'s download name and static file names
  (escaped), the chat's upload file names (never in a head);
- sans-I/O: the encoders themselves, the C twin declining, Headers.serialize().

Each case is run for CR, LF, CRLF and NUL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import framewire
from framewire.exceptions import HTTPError, InvalidHandshake
from framewire.http import (
    App,
    Request,
    Response,
    file_response,
    redirect,
)
from framewire.sansio.handshake import accept_request, build_request
from framewire.sansio.headers import Headers
from framewire.sansio.http11_encode import (
    encode_request_head,
    encode_response_head,
    py_encode_fields,
    simple_response,
)
from tests.chat.conftest import FilePart, multipart, open_chat_server, post_upload
from tests.conftest import c_twin_or_skip
from tests.waiting import run_within

TIMEOUT = 10.0
BAD = {"CR": "\r", "LF": "\n", "CRLF": "\r\n", "NUL": "\x00"}
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
)

bad_chars = pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())


def injected(bad: str) -> str:
    """A value that would add the field ``Injected: yes`` if ``bad`` were written as is."""
    return f"ok{bad}Injected: yes"


def assert_clean_head(raw: bytes) -> bytes:
    """Check that a response head has only CRLF-separated lines without CR, LF, NUL or an
    injected field; return the head."""
    head, separator, _ = raw.partition(b"\r\n\r\n")
    assert separator, f"no complete head in {raw[:300]!r}"
    for line in head.split(b"\r\n"):
        assert not re.search(rb"[\r\n\x00]", line), line
        assert not line.lower().startswith(b"injected"), head
    return head


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def run(main: Callable[[], Awaitable[None]]) -> None:
    run_within(main, TIMEOUT * 3)


async def exchange(port: int, raw: bytes) -> bytes:
    """Send raw bytes on a new connection; return everything the server sends until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        async with asyncio.timeout(TIMEOUT):
            return await reader.read(-1)
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def serving(handler: Any, **options: Any) -> AsyncIterator[int]:
    async with framewire.serve(handler, "127.0.0.1", 0, **options) as server:
        yield server.sockets[0].getsockname()[1]


async def ignore(ws: Any) -> None:
    await ws.close()


# ------------------------------------------------------------------------------ sans-I/O


@bad_chars
def test_the_field_encoder_refuses_control_characters_in_names_and_values(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid character in the value of header 'X-A'"):
        py_encode_fields([("X-A", injected(bad))])
    with pytest.raises(ValueError, match="invalid header name"):
        py_encode_fields([(injected(bad), "value")])
    with pytest.raises(ValueError, match="invalid header name"):
        py_encode_fields([(f"X{bad}", "value")])


@bad_chars
def test_the_c_field_encoder_declines_what_python_refuses(bad: str) -> None:
    encode_fields = c_twin_or_skip("encode_fields")
    assert encode_fields([("X-A", "ok")]) == b"X-A: ok\r\n"
    assert encode_fields([("X-A", injected(bad))]) is None
    assert encode_fields([(injected(bad), "value")]) is None


@bad_chars
def test_response_and_request_heads_refuse_control_characters(bad: str) -> None:
    fields = [("X-A", injected(bad))]
    with pytest.raises(ValueError):
        encode_response_head(200, fields)
    with pytest.raises(ValueError, match="reason phrase"):
        encode_response_head(200, [], reason=injected(bad))
    with pytest.raises(ValueError):
        simple_response(400, "text", fields)
    with pytest.raises(ValueError):
        encode_request_head("GET", "/", fields)
    with pytest.raises(ValueError, match="request target"):
        encode_request_head("GET", f"/a{bad}b", [])
    with pytest.raises(ValueError, match="invalid method"):
        encode_request_head(f"GET{bad}", "/", [])


@bad_chars
def test_headers_serialize_refuses_control_characters(bad: str) -> None:
    assert Headers([("A", "b"), ("C", "d é")]).serialize() == b"A: b\r\nC: d \xe9\r\n"
    with pytest.raises(ValueError):
        Headers([("X-A", injected(bad))]).serialize()
    with pytest.raises(ValueError):
        Headers([(injected(bad), "value")]).serialize()


@bad_chars
@pytest.mark.parametrize(
    "argument", ["host", "resource", "origin", "subprotocol", "header value", "header name"]
)
def test_build_request_refuses_control_characters_everywhere(bad: str, argument: str) -> None:
    value = injected(bad)
    kwargs: dict[str, Any] = {"host": "example.com", "resource": "/chat"}
    if argument in ("host", "origin"):
        kwargs[argument] = value
    elif argument == "resource":
        kwargs["resource"] = f"/chat{bad}x"
    elif argument == "subprotocol":
        kwargs["subprotocols"] = ["chat", value]
    elif argument == "header value":
        kwargs["extra_headers"] = [("X-A", value)]
    else:
        kwargs["extra_headers"] = [(value, "v")]
    host, resource = kwargs.pop("host"), kwargs.pop("resource")
    with pytest.raises(ValueError):
        build_request(host, resource, **kwargs)


@bad_chars
def test_accept_request_refuses_control_characters_in_extra_headers(bad: str) -> None:
    headers = Headers(
        [
            ("Host", "example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
        ]
    )
    result = accept_request("GET", "1.1", headers, extra_headers=[("X-A", injected(bad))])
    with pytest.raises(ValueError, match="X-A"):
        result.response_bytes()


# ------------------------------------------------------------------------------ client


@contextlib.asynccontextmanager
async def listener() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A plain TCP server that records what each connection sends (nothing is expected)."""
    received: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(4096))
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], received


@bad_chars
@pytest.mark.parametrize("where", ["path", "query", "host", "user info"])
def test_connect_refuses_a_uri_with_control_characters(bad: str, where: str) -> None:
    uri = {
        "path": f"ws://127.0.0.1:1/a{bad}Injected: yes",
        "query": f"ws://127.0.0.1:1/a?b=c{bad}Injected: yes",
        "host": f"ws://127.0.0.1{bad}:1/",
        "user info": f"ws://user{bad}x:pw@127.0.0.1:1/",
    }[where]
    with pytest.raises(framewire.InvalidURI, match="a URI may not hold"):
        framewire.connect(uri)


@bad_chars
@pytest.mark.parametrize(
    "option", ["origin", "subprotocols", "extra_headers value", "extra_headers name", "dict"]
)
def test_connect_refuses_control_characters_before_sending_anything(bad: str, option: str) -> None:
    value = injected(bad)
    kwargs: dict[str, Any] = {
        "origin": {"origin": value},
        "subprotocols": {"subprotocols": ["chat", value]},
        "extra_headers value": {"extra_headers": [("X-A", value)]},
        "extra_headers name": {"extra_headers": [(value, "v")]},
        "dict": {"extra_headers": {"X-A": value}},
    }[option]

    async def main() -> None:
        async with listener() as (port, received):
            with pytest.raises(ValueError):
                await framewire.connect(f"ws://127.0.0.1:{port}/", **kwargs)
        assert received == []  # not even a connection

    run(main)


# ------------------------------------------------------------------------------ server


@bad_chars
def test_serve_refuses_control_characters_in_extra_headers_and_server_header(bad: str) -> None:
    async def main() -> None:
        with pytest.raises(ValueError):
            framewire.serve(ignore, "127.0.0.1", 0, extra_headers=[("X-A", injected(bad))])
        with pytest.raises(ValueError):
            framewire.serve(ignore, "127.0.0.1", 0, extra_headers=[(injected(bad), "v")])
        with pytest.raises(ValueError):
            framewire.serve(ignore, "127.0.0.1", 0, server_header=injected(bad))

    run(main)


def bad_responses(bad: str) -> list[Response]:
    """Responses a handler might build from user input, each with CR, LF or NUL in its head."""
    value = injected(bad)
    return [
        Response(403, [("X-A", value)], b"no"),
        Response(403, [(value, "v")], b"no"),
        Response(403, Headers([("X-A", value)]), b"no"),
        Response(403, [], b"no", reason=value),
    ]


@bad_chars
@pytest.mark.parametrize("case", range(4), ids=["value", "name", "Headers", "reason"])
def test_a_process_request_response_with_control_characters_is_a_500(bad: str, case: int) -> None:
    response = bad_responses(bad)[case]

    async def refuse(request: Any) -> Response:
        return response

    async def main() -> None:
        async with serving(ignore, process_request=refuse) as port:
            raw = await exchange(port, (UPGRADE + "\r\n").encode())
            assert_clean_head(raw)
            assert status_of(raw) == 500

    run(main)


@bad_chars
@pytest.mark.parametrize("with_process_request", [False, True])
def test_a_subprotocol_refusal_with_control_characters_is_a_500(
    bad: str, with_process_request: bool
) -> None:
    def select(offered: Sequence[str]) -> str | None:
        raise InvalidHandshake("refused", 400, (("X-A", injected(bad)),))

    async def accept(request: Any) -> None:
        return None

    options: dict[str, Any] = {"select_subprotocol": select}
    if with_process_request:
        options["process_request"] = accept

    async def main() -> None:
        async with serving(ignore, **options) as port:
            raw = await exchange(port, (UPGRADE + "Sec-WebSocket-Protocol: a\r\n\r\n").encode())
            assert_clean_head(raw)
            assert status_of(raw) == 500

    run(main)


@bad_chars
def test_a_selected_subprotocol_with_control_characters_is_never_sent(bad: str) -> None:
    async def main() -> None:
        async with serving(ignore, select_subprotocol=lambda offered: injected(bad)) as port:
            raw = await exchange(port, (UPGRADE + "Sec-WebSocket-Protocol: a\r\n\r\n").encode())
            assert_clean_head(raw)
            assert status_of(raw) == 500  # "selected subprotocol ... was not offered"

    run(main)


# ------------------------------------------------------------------------------ HTTP app


def app_for(bad: str, static_root: Path) -> App:
    value = injected(bad)
    app = App()
    responses = bad_responses(bad)
    for index, response in enumerate(responses):
        app.add_route(f"/bad/{index}", _returning(response))

    @app.get("/error")
    async def error(request: Request) -> Response:
        raise HTTPError(400, value)

    @app.get("/download")
    async def download(request: Request) -> Response:
        return file_response(static_root / "plain.txt", download_name=f"{value}.txt")

    @app.get("/redirect")
    async def to_location(request: Request) -> Response:
        return redirect(f"/next{value}")

    app.static("/static", str(static_root))
    return app


def _returning(response: Response) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        return response

    return handler


def get(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()


@pytest.fixture
def static_root(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    root.mkdir()
    (root / "plain.txt").write_text("plain")
    return root


@bad_chars
@pytest.mark.parametrize("case", range(4), ids=["value", "name", "Headers", "reason"])
def test_an_app_response_with_control_characters_in_its_head_is_a_500(
    bad: str, case: int, static_root: Path
) -> None:
    async def main() -> None:
        async with serving(app_for(bad, static_root)) as port:
            raw = await exchange(port, get(f"/bad/{case}"))
            assert_clean_head(raw)
            assert status_of(raw) == 500

    run(main)


@bad_chars
def test_an_http_error_reason_goes_only_into_the_body(bad: str, static_root: Path) -> None:
    async def main() -> None:
        async with serving(app_for(bad, static_root)) as port:
            raw = await exchange(port, get("/error"))
            assert_clean_head(raw)
            assert status_of(raw) == 400
            assert raw.endswith(f"400 {injected(bad)}\n".encode())

    run(main)


@bad_chars
def test_redirect_refuses_a_location_with_control_characters(bad: str, static_root: Path) -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        redirect(injected(bad))

    async def main() -> None:
        async with serving(app_for(bad, static_root)) as port:
            raw = await exchange(port, get("/redirect"))
            assert_clean_head(raw)
            assert status_of(raw) == 500  # the handler's ValueError

    run(main)


@bad_chars
def test_a_download_name_with_control_characters_is_escaped(bad: str, static_root: Path) -> None:
    name = f"{injected(bad)}.txt"
    fallback = "".join("_" if char in "\r\n\x00" else char for char in name)
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
    response = file_response(static_root / "plain.txt", download_name=name)
    assert ("Content-Disposition", disposition) in list(response.headers)

    async def main() -> None:
        async with serving(app_for(bad, static_root)) as port:
            raw = await exchange(port, get("/download"))
            head = assert_clean_head(raw)
            assert status_of(raw) == 200 and raw.endswith(b"\r\n\r\nplain")
            assert f"\r\nContent-Disposition: {disposition}\r\n".encode() in head + b"\r\n"

    run(main)


@bad_chars
def test_static_names_with_control_characters_stay_escaped(bad: str, static_root: Path) -> None:
    if bad == "\x00":
        pytest.skip("a file name cannot hold NUL")
    name = injected(bad).replace(":", "")  # a valid file name on every file system
    (static_root / f"{name}.txt").write_text("odd name")
    (static_root / name).mkdir()

    async def main() -> None:
        async with serving(app_for(bad, static_root)) as port:
            escaped = quote(name, safe="")
            raw = await exchange(port, get(f"/static/{escaped}.txt"))
            assert_clean_head(raw)
            assert status_of(raw) == 200 and raw.endswith(b"\r\n\r\nodd name")
            # A directory without its slash is redirected, its name still percent-encoded.
            raw = await exchange(port, get(f"/static/{escaped}?q=1"))
            head = assert_clean_head(raw)
            assert status_of(raw) == 301
            assert f"\r\nLocation: /static/{escaped}/?q=1".encode() in head

    run(main)


# ------------------------------------------------------------------------------ chat


@bad_chars
def test_a_chat_upload_file_name_with_control_characters_never_reaches_a_head(
    bad: str, tmp_path: Path
) -> None:
    value = quote(f"{injected(bad)}.bin", safe="")
    data = os.urandom(64)

    async def main() -> None:
        async with open_chat_server(tmp_path / "data") as chat:
            body = multipart([FilePart("upload", "placeholder.bin", data)]).replace(
                b'filename="placeholder.bin"', f"filename*=UTF-8''{value}".encode()
            )
            reply = await post_upload(chat.port, body)
            assert reply.status == 201, reply
            url = reply.json()["url"]
            raw = await exchange(chat.port, get(url))
            head = assert_clean_head(raw)
            assert status_of(raw) == 200 and raw.endswith(data)
            assert b"Injected" not in head

    run(main)
