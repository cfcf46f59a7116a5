"""The chat's WebSocket protocol (chat/hub.py), end to end over /websocket on 127.0.0.1.

Each test starts an in-process chat server (conftest.run_chat) and talks to it with
framewire.connect(), the way any script would. "Only the sender gets it" is checked with a
sentinel: another client sends a message afterwards, and the observer's next message must be
that sentinel (messages reach a client in the order the server handled them).

The last tests run the hub over a small in-memory Store that can lose messages, as Redis does
when it trims its stream: clients then get resync, never a hole.
"""

from __future__ import annotations

import asyncio
import html
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

import framewire
from framewire.chat.app import build_app
from framewire.chat.config import ChatConfig
from framewire.chat.hub import Hub
from framewire.chat.presence import LocalPresence
from framewire.chat.store import AppendOutcome, ChatMessage, Draft, MessageListener
from tests.chat.conftest import (
    ChatServer,
    ManualClock,
    RunChat,
    chat_and_wait,
    chat_ws_url,
    full_history,
    recv_json,
    recv_kind,
    recv_presence,
    send_chat,
    send_json,
    wait_for_presence,
)

WIRE_FIELDS = {"messageType", "id", "seq", "username", "message", "timestamp"}


async def next_event(ws: Any) -> dict[str, Any]:
    """The next message that is not a presence notice."""
    while True:
        message = await recv_json(ws)
        if message["messageType"] != "presence":
            return message


async def assert_next_is_sentinel(observer: Any, sender: Any, text: str = "sentinel") -> int:
    """Send ``text`` from ``sender``; the observer's next non-presence message must be it."""
    await send_chat(sender, text)
    message = await next_event(observer)
    assert message["messageType"] == "chatMessage" and message["message"] == text, message
    seq: int = message["seq"]
    return seq


# ---------------------------------------------------------------------------- presence


def test_first_message_is_presence_listing_the_new_client(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("alice") as ws:
            assert await recv_json(ws) == {"messageType": "presence", "users": ["alice"]}

    run_chat(scenario)


def test_presence_goes_to_everyone_on_join_and_leave(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("carol") as carol:
            assert await recv_presence(carol) == ["carol"]
            async with server.connect("alice") as alice:
                assert await recv_presence(alice) == ["alice", "carol"]
                assert await recv_presence(carol) == ["alice", "carol"]
                async with server.connect("bob") as bob:
                    assert await recv_presence(bob) == ["alice", "bob", "carol"]
                    assert await recv_presence(alice) == ["alice", "bob", "carol"]
                    assert await recv_presence(carol) == ["alice", "bob", "carol"]
                assert await recv_presence(alice) == ["alice", "carol"]
                assert await recv_presence(carol) == ["alice", "carol"]
            assert await recv_presence(carol) == ["carol"]

    run_chat(scenario)


def test_presence_lists_a_name_once_while_any_of_its_connections_is_open(
    run_chat: RunChat,
) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("zed") as watcher:
            assert await recv_presence(watcher) == ["zed"]
            async with server.connect("amy") as first:
                await wait_for_presence(watcher, ["amy", "zed"])
                async with server.connect("amy") as second:
                    # The set of names did not change: nobody needs a notice, but the newcomer
                    # learns who is there.
                    assert await recv_presence(second) == ["amy", "zed"]
                    await assert_next_is_sentinel(watcher, first)
                # One "amy" left, one is still here: no change either.
                await assert_next_is_sentinel(watcher, first, "still here")
            await wait_for_presence(watcher, ["zed"])

    run_chat(scenario)


def test_presence_names_are_html_escaped(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("<img src=x onerror=alert(1)>") as ws:
            (name,) = await recv_presence(ws)
            assert name == "&lt;img src=x onerror=alert(1)&gt;"

    run_chat(scenario)


# ---------------------------------------------------------------------------- usernames


@pytest.mark.parametrize(
    ("query_name", "shown"),
    [
        (None, "Guest"),
        ("", "Guest"),
        ("   ", "Guest"),
        ("x" * 32, "x" * 32),
        ("y" * 33, "y" * 32),
        ("é" * 40, "é" * 32),
        ("  padded  ", "padded"),
        ("a\x00b\nc\u202ed", "abcd"),  # control and bidi-override characters are dropped
        ("Zoë & <Co>", "Zoë &amp; &lt;Co&gt;"),
    ],
)
def test_username_from_the_query(run_chat: RunChat, query_name: str | None, shown: str) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect(query_name) as ws:
            assert await recv_presence(ws) == [shown]
            message = await chat_and_wait(ws, "hello")
            assert message["username"] == shown

    run_chat(scenario)


def test_username_limit_follows_max_username(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("abcdefghij") as ws:
            assert await recv_presence(ws) == ["abcd"]

    run_chat(scenario, max_username=4)


# ---------------------------------------------------------------------------- chat messages


def test_chat_message_reaches_every_client_sender_included(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("alice") as alice, server.connect("bob") as bob:
            await wait_for_presence(alice, ["alice", "bob"])
            before = time.time()
            await send_chat(alice, "hello, bob")
            to_alice = await recv_kind(alice, "chatMessage")
            to_bob = await recv_kind(bob, "chatMessage")
            assert to_alice == to_bob
            assert set(to_alice) == WIRE_FIELDS
            assert to_alice["messageType"] == "chatMessage"
            assert to_alice["seq"] == 1
            assert to_alice["username"] == "alice"
            assert to_alice["message"] == "hello, bob"
            assert isinstance(to_alice["id"], str) and to_alice["id"]
            assert before - 1 <= to_alice["timestamp"] <= time.time() + 1

            await send_chat(bob, "hi alice", client_id="bob-1")
            to_alice = await recv_kind(alice, "chatMessage")
            assert to_alice == await recv_kind(bob, "chatMessage")
            assert set(to_alice) == WIRE_FIELDS | {"clientId"}
            assert to_alice["clientId"] == "bob-1"
            assert to_alice["seq"] == 2

    run_chat(scenario)


@pytest.mark.parametrize(
    "text",
    [
        "&<>\"'",
        "<script>alert('x')</script>",
        "&amp; already escaped",
        "emoji 🎉 and accents é",
        "line\nbreaks\tand tabs",
    ],
)
def test_message_and_username_are_html_escaped_on_the_server(run_chat: RunChat, text: str) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect('<b>O\'Brien & "co"</b>') as ws:
            message = await chat_and_wait(ws, text)
            for key in ("message", "username"):
                assert not set("<>\"'") & set(message[key]), message[key]
            assert html.unescape(message["message"]) == text
            assert html.unescape(message["username"]) == '<b>O\'Brien & "co"</b>'
            assert message["username"] == "&lt;b&gt;O&#x27;Brien &amp; &quot;co&quot;&lt;/b&gt;"
            (stored,) = await full_history(server.port)
            assert stored == message

    run_chat(scenario)


def test_seq_is_gapless_and_the_same_on_every_client_and_in_history(run_chat: RunChat) -> None:
    senders, per_sender = 4, 25

    async def scenario(server: ChatServer) -> None:
        async with server.connect("watcher-1") as one, server.connect("watcher-2") as two:
            clients = [server.connect(f"sender-{n}") for n in range(senders)]
            sockets = [await client for client in clients]
            try:

                async def send_all(ws: Any, n: int) -> None:
                    for k in range(per_sender):
                        await send_chat(ws, f"{n}:{k}")

                await asyncio.gather(*(send_all(ws, n) for n, ws in enumerate(sockets)))
                total = senders * per_sender
                seen_one = [await recv_kind(one, "chatMessage") for _ in range(total)]
                seen_two = [await recv_kind(two, "chatMessage") for _ in range(total)]
                for ws in sockets:
                    seen = [await recv_kind(ws, "chatMessage") for _ in range(total)]
                    assert seen == seen_one
            finally:
                for ws in sockets:
                    await ws.close()
            assert [m["seq"] for m in seen_one] == list(range(1, total + 1))
            assert seen_two == seen_one
            assert len({m["id"] for m in seen_one}) == total
            assert await full_history(server.port) == seen_one
            # Each sender's own messages keep the order it sent them in.
            for n in range(senders):
                own = [m["message"] for m in seen_one if m["username"] == f"sender-{n}"]
                assert own == [f"{n}:{k}" for k in range(per_sender)]

    run_chat(scenario, message_rate=1000.0, message_burst=1000)


def test_a_message_is_committed_before_anyone_receives_it(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        database = sqlite3.connect(server.config.database_path)
        try:
            async with server.connect("alice") as alice, server.connect("bob") as bob:
                for k in range(10):
                    await send_chat(alice, f"message {k}")
                for k in range(10):
                    received = await recv_kind(bob, "chatMessage")
                    # Read by another connection the moment it arrives: already on disk.
                    row = database.execute(
                        "SELECT id, message FROM messages WHERE seq = ?", (received["seq"],)
                    ).fetchone()
                    assert row == (received["id"], f"message {k}")
        finally:
            database.close()

    run_chat(scenario)


def test_message_of_exactly_max_message_bytes_is_accepted(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        # The client takes any size: the escaped echo is bigger than framewire's 1 MiB default.
        async with server.connect("big", max_message_size=None) as ws:
            text = "é" * (1 << 19)  # 2 bytes each: exactly 1 MiB of UTF-8
            message = await chat_and_wait(ws, text)
            assert message["message"] == text

    run_chat(scenario)


# ---------------------------------------------------------------------------- idempotent send


def test_resend_with_a_stored_client_id_is_acknowledged_to_the_sender_alone(
    run_chat: RunChat,
) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("alice") as alice, server.connect("bob") as bob:
            await wait_for_presence(alice, ["alice", "bob"])
            first = await chat_and_wait(alice, "once", "msg-1")
            assert await recv_kind(bob, "chatMessage") == first
            # The retry (say, the sender did not see the first copy) changes nothing...
            again = await chat_and_wait(alice, "once, retried", "msg-1")
            assert again == first
            # ...and bob does not see it twice.
            seq = await assert_next_is_sentinel(bob, alice)
            assert seq == 2
            assert [m["seq"] for m in await full_history(server.port)] == [1, 2]

    run_chat(scenario)


def test_the_acknowledgement_goes_to_the_resending_connection_only(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("alice") as tab_one, server.connect("alice") as tab_two:
            first = await chat_and_wait(tab_one, "from tab one", "c" * 64)  # 64: the longest
            assert first["clientId"] == "c" * 64
            assert await recv_kind(tab_two, "chatMessage") == first
            assert await chat_and_wait(tab_two, "again", "c" * 64) == first
            await assert_next_is_sentinel(tab_one, tab_two)

    run_chat(scenario)


def test_the_same_client_id_from_another_user_is_a_new_message(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("alice") as alice, server.connect("bob") as bob:
            from_alice = await chat_and_wait(alice, "hi", "shared-id")
            await recv_kind(bob, "chatMessage")
            from_bob = await chat_and_wait(bob, "hi", "shared-id")
            assert from_bob["seq"] == from_alice["seq"] + 1
            assert from_bob["id"] != from_alice["id"]
            assert await recv_kind(alice, "chatMessage") == from_bob

    run_chat(scenario)


def test_a_client_id_is_forgotten_after_dedupe_window(
    run_chat: RunChat, wall_clock: ManualClock
) -> None:
    window = 60.0

    async def scenario(server: ChatServer) -> None:
        async with server.connect("alice") as alice:
            first = await chat_and_wait(alice, "hi", "id-1")
            # The window is measured against stored timestamps: the store's wall clock.
            wall_clock.advance(window + 1)
            second = await chat_and_wait(alice, "hi", "id-1")
            assert second["seq"] == first["seq"] + 1
            assert second["id"] != first["id"]

    run_chat(scenario, dedupe_window=window)


# ---------------------------------------------------------------------------- typing


def test_typing_is_relayed_to_the_others_only_and_never_stored(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        async with (
            server.connect("<alice>") as alice,
            server.connect("bob") as bob,
            server.connect("carol") as carol,
        ):
            await wait_for_presence(alice, ["&lt;alice&gt;", "bob", "carol"])
            await wait_for_presence(bob, ["&lt;alice&gt;", "bob", "carol"])
            await wait_for_presence(carol, ["&lt;alice&gt;", "bob", "carol"])
            await send_json(alice, {"messageType": "typing"})
            expected = {"messageType": "typing", "username": "&lt;alice&gt;"}
            assert await next_event(bob) == expected
            assert await next_event(carol) == expected
            # The typist itself gets nothing: its next message is the sentinel.
            await assert_next_is_sentinel(alice, bob)
            assert [m["message"] for m in await full_history(server.port)] == ["sentinel"]

    run_chat(scenario)


def test_typing_is_relayed_at_most_once_per_typing_interval(run_chat: RunChat) -> None:
    clock = ManualClock()

    async def scenario(server: ChatServer) -> None:
        async with server.connect("alice") as alice, server.connect("bob") as bob:
            await wait_for_presence(bob, ["alice", "bob"])
            for _ in range(5):
                await send_json(alice, {"messageType": "typing"})
            assert await next_event(bob) == {"messageType": "typing", "username": "alice"}
            await assert_next_is_sentinel(bob, alice, "first sentinel")

            clock.advance(0.99)  # still within the interval: dropped
            await send_json(alice, {"messageType": "typing"})
            await assert_next_is_sentinel(bob, alice, "second sentinel")

            clock.advance(0.01)  # one full second after the relayed one
            await send_json(alice, {"messageType": "typing"})
            await send_json(alice, {"messageType": "typing"})
            assert await next_event(bob) == {"messageType": "typing", "username": "alice"}
            await assert_next_is_sentinel(bob, alice, "third sentinel")

    run_chat(scenario, clock=clock)


def test_typing_interval_is_per_connection(run_chat: RunChat) -> None:
    clock = ManualClock()

    async def scenario(server: ChatServer) -> None:
        async with (
            server.connect("alice") as alice,
            server.connect("bob") as bob,
            server.connect("carol") as carol,
        ):
            await wait_for_presence(carol, ["alice", "bob", "carol"])
            await send_json(alice, {"messageType": "typing"})
            assert await next_event(carol) == {"messageType": "typing", "username": "alice"}
            await send_json(bob, {"messageType": "typing"})
            assert await next_event(carol) == {"messageType": "typing", "username": "bob"}

    run_chat(scenario, clock=clock)


# ---------------------------------------------------------------------------- bad messages

TOO_LONG = json.dumps({"messageType": "chatMessage", "message": "a" * ((1 << 20) + 1)})
TOO_LONG_UTF8 = json.dumps(
    {"messageType": "chatMessage", "message": "é" * ((1 << 19) + 1)}, ensure_ascii=False
)


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        ("not json", "invalid", "not valid JSON"),
        ('{"messageType": "chatMessage", "message": "hi"', "invalid", "not valid JSON"),
        ("[1, 2]", "invalid", "JSON object"),
        ('"chatMessage"', "invalid", "JSON object"),
        ("42", "invalid", "JSON object"),
        ("null", "invalid", "JSON object"),
        ("{}", "invalid", "unknown messageType"),
        ('{"message": "no type"}', "invalid", "unknown messageType"),
        ('{"messageType": "shout", "message": "hi"}', "invalid", "unknown messageType 'shout'"),
        ('{"messageType": 7}', "invalid", "unknown messageType"),
        ('{"messageType": "chatMessage"}', "invalid", "missing field 'message'"),
        ('{"messageType": "chatMessage", "message": null}', "invalid", "message"),
        ('{"messageType": "chatMessage", "message": 5}', "invalid", "must be a string"),
        ('{"messageType": "chatMessage", "message": ["hi"]}', "invalid", "must be a string"),
        ('{"messageType": "chatMessage", "message": ""}', "invalid", "empty"),
        ('{"messageType": "chatMessage", "message": " \\n "}', "invalid", "empty"),
        ('{"messageType": "chatMessage", "message": "hi", "clientId": 7}', "invalid", "clientId"),
        ('{"messageType": "chatMessage", "message": "hi", "clientId": ""}', "invalid", "clientId"),
        (
            json.dumps({"messageType": "chatMessage", "message": "hi", "clientId": "c" * 65}),
            "invalid",
            "clientId",
        ),
        (TOO_LONG, "too_long", "exceeds max_message=1048576"),
        (TOO_LONG_UTF8, "too_long", "1048578 bytes exceeds max_message=1048576"),
        (b"\x00binary", "invalid", "binary"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)
def test_bad_client_message_gets_an_error_for_that_client_alone(
    run_chat: RunChat, frame: str | bytes, code: str, reason: str
) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("mallory") as mallory, server.connect("bob") as bob:
            await wait_for_presence(bob, ["bob", "mallory"])
            await mallory.send(frame)
            error = await next_event(mallory)
            assert error["messageType"] == "error", error
            assert error["code"] == code
            assert reason in error["error"]
            assert set(error) <= {"messageType", "error", "code", "clientId"}
            assert await full_history(server.port) == []
            # bob saw nothing of it; mallory is still connected and can chat.
            assert await assert_next_is_sentinel(bob, mallory) == 1
            assert (await next_event(mallory))["message"] == "sentinel"
            assert mallory.close_code is None

    run_chat(scenario)


@pytest.mark.parametrize(
    "frame",
    [
        '{"messageType": "chatMessage", "message": "x\\ud800y"}',
        '{"messageType": "chatMessage", "message": "hi", "clientId": "\\udfff"}',
    ],
    ids=["in-message", "in-clientId"],
)
def test_text_that_is_not_unicode_is_refused_and_the_room_goes_on(
    run_chat: RunChat, frame: str
) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("mallory") as mallory, server.connect("bob") as bob:
            await wait_for_presence(bob, ["bob", "mallory"])
            await mallory.send(frame)  # JSON allows it; UTF-8 cannot encode it
            error = await asyncio.wait_for(next_event(mallory), 3)
            assert error["messageType"] == "error" and error["code"] == "invalid"
            await send_chat(bob, "the room still works")
            message = await asyncio.wait_for(next_event(bob), 3)
            assert (message["message"], message["seq"]) == ("the room still works", 1)

    run_chat(scenario, serve_options={"close_timeout": 1})  # a hung handler: stop sooner


def test_nul_and_line_separators_round_trip(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("ann") as ws:
            text = "a\x00b\u2028c\U0001f600"
            assert (await chat_and_wait(ws, text))["message"] == text
            assert (await full_history(server.port))[0]["message"] == text

    run_chat(scenario)


def test_an_error_about_a_chat_message_echoes_its_client_id(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("alice") as alice:
            await send_json(alice, {"messageType": "chatMessage", "message": "", "clientId": "e1"})
            error = await next_event(alice)
            assert error["messageType"] == "error" and error["clientId"] == "e1"

    run_chat(scenario)


def test_frame_over_max_frame_closes_that_connection_with_1009(run_chat: RunChat) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("big", compression=None) as big, server.connect("bob") as bob:
            await wait_for_presence(bob, ["big", "bob"])
            await send_chat(big, "x" * (64 << 10))
            with pytest.raises(framewire.ConnectionClosedError):
                while True:
                    await recv_json(big)
            assert big.close_code == 1009
            await wait_for_presence(bob, ["bob"])
            assert (await chat_and_wait(bob, "still fine"))["seq"] == 1

    run_chat(scenario, max_frame=32 << 10)


# ---------------------------------------------------------------------------- flood control


def test_flood_past_the_burst_is_refused_with_rate_limited(run_chat: RunChat) -> None:
    clock = ManualClock()  # frozen: the bucket holds exactly its burst of 30

    async def scenario(server: ChatServer) -> None:
        async with server.connect("flooder") as flooder, server.connect("bob") as bob:
            await wait_for_presence(bob, ["bob", "flooder"])
            for k in range(40):
                await send_chat(flooder, f"flood {k}", client_id=f"f{k}")
            stored, refused = [], []
            for _ in range(40):
                message = await next_event(flooder)
                (stored if message["messageType"] == "chatMessage" else refused).append(message)
            assert [m["message"] for m in stored] == [f"flood {k}" for k in range(30)]
            assert [m["clientId"] for m in refused] == [f"f{k}" for k in range(30, 40)]
            for error in refused:
                assert error["messageType"] == "error"
                assert error["code"] == "rate_limited"
                assert "at most 10 per second (burst 30)" in error["error"]
            # bob got the 30 stored ones and nothing else; bob is not limited by the flooder.
            for k in range(30):
                assert (await next_event(bob))["message"] == f"flood {k}"
            assert await assert_next_is_sentinel(flooder, bob) == 31
            assert len(await full_history(server.port)) == 31
            assert flooder.close_code is None

            # The bucket refills at 10 per second.
            clock.advance(1.0)
            for k in range(11):
                await send_chat(flooder, f"later {k}")
            kinds = [(await next_event(flooder))["messageType"] for _ in range(11)]
            assert kinds == ["chatMessage"] * 10 + ["error"]

    run_chat(scenario, clock=clock)


def test_flood_control_is_on_by_default(run_chat: RunChat) -> None:
    sent = 100  # at 10 per second after a burst of 30, sending these takes far less than 7 s

    async def scenario(server: ChatServer) -> None:
        async with server.connect("flooder") as flooder:
            for k in range(sent):
                await send_chat(flooder, f"flood {k}")
            replies = [await next_event(flooder) for _ in range(sent)]
            refused = [m for m in replies if m["messageType"] == "error"]
            assert refused and all(m["code"] == "rate_limited" for m in refused)
            assert len(await full_history(server.port)) == sent - len(refused) >= 30

    run_chat(scenario)


# ---------------------------------------------------------------------------- storage failure


def test_message_that_cannot_be_stored_gets_not_delivered_and_no_seq_is_lost(
    run_chat: RunChat,
) -> None:
    async def scenario(server: ChatServer) -> None:
        async with server.connect("alice") as alice, server.connect("bob") as bob:
            assert (await chat_and_wait(alice, "before"))["seq"] == 1
            await recv_kind(bob, "chatMessage")
            locker = sqlite3.connect(server.config.database_path, isolation_level=None)
            try:
                locker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
                await send_chat(alice, "during", client_id="d1")
                error = await next_event(alice)
                assert error["messageType"] == "error"
                assert error["code"] == "not_delivered"
                assert error["clientId"] == "d1"
                assert "message not delivered" in error["error"]
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            # The retry is stored with the next seq: nothing was stored nor broadcast before.
            retried = await chat_and_wait(alice, "during", client_id="d1")
            assert retried["seq"] == 2
            assert (await next_event(bob))["seq"] == 2

    run_chat(scenario)


# ---------------------------------------------------------------------------- lost messages
# A small in-memory Store stands in for Redis here: it can forget old messages and skip seqs,
# which SQLite never does.


class ForgetfulStore:
    """A Store in memory whose history may start after seq 1 (trimmed)."""

    kind = "memory"
    dedupe_window = 60.0

    def __init__(self, uploads_dir: Path) -> None:
        self.uploads_dir = uploads_dir
        self.messages: list[ChatMessage] = []
        self.on_message: MessageListener | None = None

    def commit(self, seq: int) -> ChatMessage:
        """Store message ``seq`` (whatever came before) and hand it to the hub."""
        message = ChatMessage(f"id{seq}", seq, "writer", f"text {seq}", 1.0)
        self.messages.append(message)
        assert self.on_message is not None
        self.on_message(message)
        return message

    def forget_up_to(self, seq: int) -> None:
        self.messages = [message for message in self.messages if message.seq > seq]

    async def open(self, on_message: MessageListener) -> None:
        self.on_message = on_message

    async def append(self, draft: Draft) -> AppendOutcome:
        raise AssertionError("not used here")

    async def after(self, seq: int, limit: int) -> list[ChatMessage]:
        return [message for message in self.messages if message.seq > seq][:limit]

    async def before(self, seq: int | None, limit: int) -> list[ChatMessage]:
        older = [m for m in self.messages if seq is None or m.seq < seq]
        return older[-limit:]

    async def last_seq(self) -> int:
        return self.messages[-1].seq if self.messages else 0

    async def health(self) -> str | None:
        return None

    async def close(self) -> None:
        self.on_message = None


async def next_not_presence(ws: Any) -> dict[str, Any]:
    while True:
        event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if event["messageType"] != "presence":
            return event


def run_with_store(tmp_path: Path, scenario: Any) -> None:
    async def main() -> None:
        store = ForgetfulStore(tmp_path)
        config = ChatConfig(port=0, data_dir=tmp_path)
        hub = Hub(store, LocalPresence(), config.limits)
        await hub.start()
        try:
            async with framewire.serve(build_app(hub, config), "127.0.0.1", 0) as server:
                await asyncio.wait_for(scenario(store, server.sockets[0].getsockname()[1]), 30)
        finally:
            await hub.close()

    asyncio.run(main())


def test_replay_from_a_trimmed_history_starts_with_resync(tmp_path: Path) -> None:
    async def scenario(store: ForgetfulStore, port: int) -> None:
        for seq in range(1, 11):
            store.commit(seq)
        store.forget_up_to(5)  # seqs 1-5 are gone
        async with framewire.connect(chat_ws_url(port, "late", since=2)) as ws:
            assert await next_not_presence(ws) == {"messageType": "resync"}
            replayed = [(await next_not_presence(ws))["seq"] for _ in range(5)]
            assert replayed == [6, 7, 8, 9, 10]

    run_with_store(tmp_path, scenario)


def test_a_hole_in_the_live_stream_sends_resync_before_the_next_message(tmp_path: Path) -> None:
    async def scenario(store: ForgetfulStore, port: int) -> None:
        async with framewire.connect(chat_ws_url(port, "live")) as ws:
            await ws.recv()  # presence: the client is live from here on
            store.commit(1)
            assert (await next_not_presence(ws))["seq"] == 1
            store.commit(5)  # 2-4 never reached this process
            assert await next_not_presence(ws) == {"messageType": "resync"}
            assert (await next_not_presence(ws))["seq"] == 5
            store.commit(6)
            assert (await next_not_presence(ws))["seq"] == 6  # no resync without a hole

    run_with_store(tmp_path, scenario)
