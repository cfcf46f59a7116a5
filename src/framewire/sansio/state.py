"""Role and State: which end a Connection is, and where it stands (RFC 6455 4 and 7).

Their own module because both halves of a Connection read them: sansio/connection.py (the state
machine, receiving) and sansio/sending.py (what it sends).
"""

from __future__ import annotations

import enum

__all__ = ["Role", "State"]


class Role(enum.Enum):
    """Which end of the connection this is."""

    SERVER = "server"
    CLIENT = "client"


class State(enum.IntEnum):
    """Connection states (RFC 6455 4 and 7)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3
