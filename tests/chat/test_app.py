"""The chat's HTTP routes (chat/app.py): the page and its policy, /chat-history, /healthz, and
the WebSocket handshake's refusals, over raw HTTP/1.1 on 127.0.0.1."""

from __future__ import annotations

import shutil
import sqlite3
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest

import framewire
from tests.chat.conftest import (
    ChatServer,
    RunChat,
    get_json,
    http_request,
    recv_kind,
    send_chat,
)

# ---------------------------------------------------------------------------- the page


def parse_csp(value: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for directive in value.split(";"):
        name, *sources = directive.split()
        assert name not in directives, f"{name} given twice"
        directives[name] = sources
    return directives


class ResourceLinks(HTMLParser):
    """Collects the URLs a page loads, inline scripts and inline event handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}={value!r}>")
            if value and value.strip().lower().startswith("javascript:"):
                self.handlers.append(f"<{tag} {name}={value!r}>")
        for name in ("src", "href", "srcset", "poster", "data", "action"):
            value = attributes.get(name)
            if value and not (tag == "a" and name == "href"):
                self.urls.append(value)
        self._in_script = tag == "script" and "src" not in attributes

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data.strip()[:80])


def test_page_is_served_with_a_policy_forbidding_inline_script_and_other_origins(
    run_chat: RunChat,
) -> None:
    async def scenario(server: ChatServer) -> None:
        reply = await http_request(server.port, "GET", "/")
        assert reply.status == 200
        assert reply.headers["content-type"] == "text/html; charset=utf-8"
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert b"<html" in reply.body.lower()
        policy = parse_csp(reply.headers["content-security-policy"])
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
        assert policy["object-src"] == ["'none'"]
        assert policy["base-uri"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        own = {f"ws://127.0.0.1:{server.port}", f"wss://127.0.0.1:{server.port}"}
        for name, sources in policy.items():
            for source in sources:
                assert source in {"'self'", "'none'", "blob:"} | own, (name, source)

    run_chat(scenario)


def test_page_is_self_contained(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        reply = await http_request(server.port, "GET", "/")
        links = ResourceLinks()
        links.feed(reply.body.decode("utf-8"))
        assert links.inline_scripts == []
        assert links.handlers == []
        assert links.urls, "the page loads its script and style from this server"
        for url in links.urls:
            parts = urlsplit(url)
            assert not parts.scheme and not parts.netloc, f"{url} is on another origin"
            target = url if url.startswith("/") else "/" + url
            loaded = await http_request(server.port, "GET", target)
            assert loaded.status == 200, (url, loaded.status)

    run_chat(scenario)


@pytest.mark.parametrize(
    "host",
    [
        "evil.example; script-src https://evil.example",
        "evil.example 'unsafe-inline'",
        "127.0.0.1:1/path",
    ],
)
def test_a_hostile_host_header_cannot_widen_the_policy(run_chat: RunChat, host: str) -> None:
    async def scenario(server: ChatServer) -> None:
        reply = await http_request(server.port, "GET", "/", headers=[("Host", host)])
        if reply.status == 200:
            value = reply.headers["content-security-policy"]
            assert "evil" not in value and "unsafe" not in value and "/path" not in value
            assert parse_csp(value)["script-src"] == ["'self'"]
        else:
            assert reply.status == 400

    run_chat(scenario)


def test_head_of_the_page_has_no_body(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        reply = await http_request(server.port, "HEAD", "/")
        assert reply.status == 200
        assert reply.body == b""
        assert int(reply.headers["content-length"]) > 0

    run_chat(scenario)


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        ("GET", "/nowhere", 404),
        ("GET", "/websocket/extra", 404),
        ("POST", "/", 405),
        ("GET", "/upload", 405),
        ("POST", "/chat-history", 405),
        ("DELETE", "/uploads/0123456789abcdef0123456789abcdef", 405),
    ],
)
def test_unknown_paths_and_methods(
    run_chat: RunChat, method: str, target: str, status: int
) -> None:
    async def scenario(server: ChatServer) -> None:
        reply = await http_request(
            server.port, method, target, body=b"" if method != "GET" else None
        )
        assert reply.status == status

    run_chat(scenario)


# ---------------------------------------------------------------------------- /chat-history


async def fill(server: ChatServer, count: int) -> None:
    """Store messages "m1" ... "m<count>" (seq k holds "m<k>") through a WebSocket."""
    async with server.connect("filler") as ws:
        for k in range(1, count + 1):
            await send_chat(ws, f"m{k}")
        for _ in range(count):
            await recv_kind(ws, "chatMessage")


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [message["message"] for message in messages]


def test_history_of_an_empty_room_is_an_empty_array(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        assert await get_json(server.port, "/chat-history") == []
        assert await get_json(server.port, "/chat-history?after=0") == []
        assert await get_json(server.port, "/chat-history?before=5") == []

    run_chat(scenario)


def test_history_pages_both_ways_oldest_first(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        await fill(server, 130)
        port = server.port
        latest = await get_json(port, "/chat-history")
        assert texts(latest) == [f"m{k}" for k in range(31, 131)]  # the last 100
        assert [m["seq"] for m in latest] == list(range(31, 131))
        assert latest[0] == {
            "messageType": "chatMessage",
            "id": latest[0]["id"],
            "seq": 31,
            "username": "filler",
            "message": "m31",
            "timestamp": latest[0]["timestamp"],
        }
        assert texts(await get_json(port, "/chat-history?limit=3")) == ["m128", "m129", "m130"]
        assert texts(await get_json(port, "/chat-history?before=31&limit=5")) == [
            f"m{k}" for k in range(26, 31)
        ]
        assert texts(await get_json(port, "/chat-history?before=3")) == ["m1", "m2"]
        assert texts(await get_json(port, "/chat-history?after=0&limit=2")) == ["m1", "m2"]
        assert texts(await get_json(port, "/chat-history?after=125")) == [
            f"m{k}" for k in range(126, 131)
        ]
        assert await get_json(port, "/chat-history?after=130") == []
        assert await get_json(port, "/chat-history?before=1") == []
        # Paging backwards from the newest and forwards from 0 both give the whole room.
        backwards: list[dict[str, Any]] = []
        page = await get_json(port, "/chat-history?limit=7")
        while page:
            backwards = page + backwards
            page = await get_json(port, f"/chat-history?before={page[0]['seq']}&limit=7")
        forwards: list[dict[str, Any]] = []
        while page := await get_json(
            port, f"/chat-history?after={forwards[-1]['seq'] if forwards else 0}&limit=9"
        ):
            forwards += page
        assert backwards == forwards
        assert [m["seq"] for m in forwards] == list(range(1, 131))

    run_chat(scenario, message_rate=1e6, message_burst=1_000_000)


def test_history_default_and_max_follow_the_limits(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        await fill(server, 12)
        assert texts(await get_json(server.port, "/chat-history")) == ["m10", "m11", "m12"]
        assert len(await get_json(server.port, "/chat-history?limit=10")) == 10
        reply = await http_request(server.port, "GET", "/chat-history?limit=11")
        assert reply.status == 400

    run_chat(scenario, history_default=3, history_max=10)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("before=abc", b"before must be a whole number"),
        ("after=-1", b"after must be a whole number"),
        ("before=1.5", b"before must be a whole number"),
        ("after=", b"after must be a whole number"),
        ("limit=0", b"limit must be between 1 and 1000"),
        ("limit=1001", b"limit must be between 1 and 1000"),
        ("limit=ten", b"limit must be a whole number"),
        ("limit=99999999999999999999999", b"limit must be a whole number"),
        ("before=5&after=1", b"not both"),
        ("after=%EF%BC%91", b"after must be a whole number"),  # a full-width digit one
    ],
)
def test_bad_history_parameters_get_400_with_a_reason(
    run_chat: RunChat, query: str, reason: bytes
) -> None:
    async def scenario(server: ChatServer) -> None:
        reply = await http_request(server.port, "GET", f"/chat-history?{query}")
        assert reply.status == 400
        assert reason in reply.body

    run_chat(scenario)


# ---------------------------------------------------------------------------- /healthz


def test_healthz_is_ok_when_storage_is_writable(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("alice"):
            health = await get_json(server.port, "/healthz")
        assert health["status"] == "ok"
        assert health["store"] == "sqlite"
        assert health["connections"] == 1

    run_chat(scenario)


def test_healthz_is_503_when_the_uploads_directory_is_not_usable(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        # chmod does not stop root: put a file where the directory was.
        shutil.rmtree(server.uploads_dir)
        server.uploads_dir.write_bytes(b"not a directory")
        reply = await http_request(server.port, "GET", "/healthz")
        assert reply.status == 503
        body = reply.json()
        assert body["status"] == "unavailable"
        assert "uploads directory is not writable" in body["reason"]
        server.uploads_dir.unlink()
        server.uploads_dir.mkdir()
        assert (await get_json(server.port, "/healthz"))["status"] == "ok"

    run_chat(scenario)


def test_healthz_is_503_while_the_database_cannot_be_written(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        locker = sqlite3.connect(server.config.database_path, isolation_level=None)
        try:
            locker.execute("BEGIN EXCLUSIVE")  # writes wait for the busy timeout, then fail
            reply = await http_request(server.port, "GET", "/healthz")
            assert reply.status == 503
            body = reply.json()
            assert body["status"] == "unavailable"
            assert "history database is not writable" in body["reason"]
            assert "locked" in body["reason"]
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert (await get_json(server.port, "/healthz"))["status"] == "ok"

    run_chat(scenario)


# ---------------------------------------------------------------------------- handshake


def test_websocket_past_max_connections_is_refused_with_503(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("one"), server.connect("two"):
            with pytest.raises(framewire.InvalidStatus) as caught:
                await server.connect("three")
            assert caught.value.status == 503
            assert b"max_connections=2" in caught.value.body
        async with server.connect("three") as ws:
            assert (await recv_kind(ws, "presence"))["users"] == ["three"]

    run_chat(scenario, max_connections=2)
