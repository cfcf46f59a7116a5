"""Which pages may open /websocket (chat/origin.py): the rule, and the handshake that applies it."""

from __future__ import annotations

import pytest

import framewire
from framewire.chat.origin import OriginPolicy, normalize_origin
from tests.chat.conftest import ChatServer, RunChat, recv_kind

# ---------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    ("origin", "normalized"),
    [
        ("http://example.com", "http://example.com:80"),
        ("https://example.com", "https://example.com:443"),
        ("HTTPS://Chat.Example.COM:8443", "https://chat.example.com:8443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("  http://example.com  ", "http://example.com:80"),
        ("null", None),
        ("", None),
        ("example.com", None),
        ("file:///home/me/chat.html", None),
        ("ws://example.com", None),
        ("http://example.com/path", None),
        ("http://example.com?x=1", None),
        ("http://user:pass@example.com", None),
        ("http://example.com:99999", None),
        ("http://example.com:port", None),
        ("http://", None),
    ],
)
def test_normalize_origin(origin: str, normalized: str | None) -> None:
    assert normalize_origin(origin) == normalized


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (None, "127.0.0.1:8080", True),  # scripts and command-line clients send none
        (None, None, True),
        ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
        ("http://chat.example", "chat.example", True),
        ("http://chat.example", "chat.example:80", True),
        ("http://chat.example:80", "CHAT.example", True),
        ("https://chat.example", "chat.example", True),
        ("https://chat.example", "chat.example:443", True),
        ("http://[::1]:8080", "[::1]:8080", True),
        ("null", "127.0.0.1:8080", False),
        ("http://127.0.0.1:8081", "127.0.0.1:8080", False),
        ("http://localhost:8080", "127.0.0.1:8080", False),
        ("https://evil.example", "chat.example", False),
        ("http://chat.example.evil.example", "chat.example", False),
        ("http://chat.example", None, False),
        ("http://chat.example", "chat.example/x", False),
        ("garbage", "chat.example", False),
    ],
)
def test_same_origin_rule(origin: str | None, host: str | None, allowed: bool) -> None:
    refusal = OriginPolicy().refusal(origin, host)
    assert (refusal is None) == allowed, refusal
    if not allowed:
        assert "not allowed" in refusal  # type: ignore[operator]


def test_allowed_origins_are_added_to_the_same_origin() -> None:
    policy = OriginPolicy(["https://App.example", "http://localhost:3000/"])
    assert policy.refusal("https://app.example", "127.0.0.1:8080") is None
    assert policy.refusal("https://app.example:443", "127.0.0.1:8080") is None
    assert policy.refusal("http://localhost:3000", "127.0.0.1:8080") is None
    assert policy.refusal("http://127.0.0.1:8080", "127.0.0.1:8080") is None
    assert policy.refusal("http://app.example", "127.0.0.1:8080") is not None  # scheme differs
    assert policy.refusal("http://localhost:3001", "127.0.0.1:8080") is not None
    assert policy.refusal("null", "127.0.0.1:8080") is not None


@pytest.mark.parametrize("origin", ["null", "app.example", "https://app.example/path", "*"])
def test_a_malformed_allowed_origin_is_refused_at_start(origin: str) -> None:
    with pytest.raises(ValueError, match="is not an origin"):
        OriginPolicy([origin])


def test_a_long_refused_origin_is_cut_in_the_reason() -> None:
    refusal = OriginPolicy().refusal("https://" + "a" * 5000 + ".example", "chat.example")
    assert refusal is not None and len(refusal) < 200


# ---------------------------------------------------------------------------- the handshake


async def opens(server: ChatServer, origin: str | None) -> bool:
    """Whether a /websocket handshake with this Origin is accepted (403 refusals: False)."""
    try:
        async with framewire.connect(server.ws_url("probe"), origin=origin) as ws:
            assert (await recv_kind(ws, "presence"))["users"] == ["probe"]
            return True
    except framewire.InvalidStatus as refused:
        assert refused.status == 403
        assert b"not allowed" in refused.body
        return False


def test_handshake_by_default_same_origin_or_no_origin(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        assert await opens(server, None)
        assert await opens(server, server.origin)
        assert await opens(server, server.origin + "/")
        assert not await opens(server, "null")
        assert not await opens(server, "https://evil.example")
        assert not await opens(server, f"http://localhost:{server.port}")
        # The scheme is not compared: behind a TLS proxy the page is https:// while the server
        # itself speaks plain HTTP on the same host and port.
        assert await opens(server, f"https://127.0.0.1:{server.port}")
        assert not await opens(server, f"http://127.0.0.1:{server.port + 1}")
        assert server.hub.clients == set()

    run_chat(scenario)


def test_handshake_with_allow_origin(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        assert await opens(server, "https://app.example")
        assert await opens(server, "http://localhost:3000")
        assert await opens(server, server.origin)
        assert await opens(server, None)
        assert not await opens(server, "https://other.example")
        assert not await opens(server, "null")

    run_chat(scenario, allow_origins=["https://app.example", "http://localhost:3000"])


def test_other_routes_do_not_care_about_origin(run_chat: RunChat) -> None:
    from tests.chat.conftest import http_request

    async def scenario(server: ChatServer) -> None:
        reply = await http_request(
            server.port, "GET", "/chat-history", headers=[("Origin", "https://evil.example")]
        )
        assert reply.status == 200
        # No CORS: a page of another origin cannot read the answer.
        assert "access-control-allow-origin" not in reply.headers

    run_chat(scenario)
