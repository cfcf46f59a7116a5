"""LocalPresence (chat/presence.py): one process's users, announced only when they change."""

from __future__ import annotations

import asyncio

from framewire.chat.presence import LocalPresence


def test_users_are_announced_only_when_the_set_changes() -> None:
    presence = LocalPresence()
    announced: list[list[str]] = []
    asyncio.run(presence.open(announced.append, lambda user, origin: None))
    presence.set_local_users(["ann", "bob"])
    presence.set_local_users(["ann", "bob"])  # no change: no announcement
    presence.set_local_users(["ann"])
    assert announced == [["ann", "bob"], ["ann"]]
    assert presence.users() == ["ann"]


def test_the_list_handed_over_is_a_copy() -> None:
    presence = LocalPresence()
    users = ["ann"]
    presence.set_local_users(users)
    users.append("eve")
    presence.users().append("mallory")
    assert presence.users() == ["ann"]


def test_typing_goes_straight_back_and_nothing_after_close() -> None:
    presence = LocalPresence()
    typed: list[tuple[str, str]] = []
    announced: list[list[str]] = []
    asyncio.run(presence.open(announced.append, lambda user, origin: typed.append((user, origin))))
    presence.typing("ann", "conn-1")
    assert typed == [("ann", "conn-1")]
    asyncio.run(presence.close())
    presence.typing("ann", "conn-2")
    presence.set_local_users(["bob"])  # still recorded, but nobody is told
    assert typed == [("ann", "conn-1")] and announced == []
    assert presence.users() == ["bob"]
