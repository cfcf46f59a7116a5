"""ChatConfig: everything ``framewire chat`` was told, as one value the app is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from framewire.chat.limits import ChatLimits

__all__ = ["ChatConfig"]


@dataclass(frozen=True, slots=True)
class ChatConfig:
    """Settings of one chat server process.

    Attributes:
        host: address to listen on.
        port: port to listen on (0: any free port).
        data_dir: where history (SQLite) and uploads live; created when missing.
        redis_url: ``redis://HOST:PORT/DB`` to share the room through Redis, or None for SQLite.
        workers: processes serving the port (more than 1 needs ``redis_url``).
        allow_origins: page origins allowed to open /websocket besides the server's own.
        reuse_port: bind with SO_REUSEPORT, so that several processes share the port.
        limits: the chat's limits.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("framewire-data")
    redis_url: str | None = None
    workers: int = 1
    allow_origins: tuple[str, ...] = ()
    reuse_port: bool = False
    limits: ChatLimits = field(default_factory=ChatLimits)

    @property
    def uploads_dir(self) -> Path:
        """Where uploaded files are stored: ``data_dir/uploads``."""
        return self.data_dir / "uploads"

    @property
    def database_path(self) -> Path:
        """The SQLite history: ``data_dir/chat.sqlite3``."""
        return self.data_dir / "chat.sqlite3"
