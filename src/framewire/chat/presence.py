"""LocalPresence: who is connected, for a room served by one process."""

from __future__ import annotations

from framewire.chat.store import PresenceListener, TypingListener

__all__ = ["LocalPresence"]


class LocalPresence:
    """The :class:`~framewire.chat.store.Presence` of a single process: no sharing needed."""

    def __init__(self) -> None:
        """Start with nobody connected."""
        self._users: list[str] = []
        self._on_users: PresenceListener | None = None
        self._on_typing: TypingListener | None = None

    async def open(self, on_users: PresenceListener, on_typing: TypingListener) -> None:
        """Remember the listeners."""
        self._on_users = on_users
        self._on_typing = on_typing

    def set_local_users(self, users: list[str]) -> None:
        """Record this process's users; tell the listener when the set changed."""
        if users != self._users:
            self._users = list(users)
            if self._on_users is not None:
                self._on_users(list(users))

    def users(self) -> list[str]:
        """Return the users, sorted and distinct."""
        return list(self._users)

    def typing(self, username: str, origin: str) -> None:
        """Hand the typing notice straight back to the listener."""
        if self._on_typing is not None:
            self._on_typing(username, origin)

    async def close(self) -> None:
        """Forget the listeners."""
        self._on_users = self._on_typing = None
