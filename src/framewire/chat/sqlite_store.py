"""SQLiteStore: the room's history in one SQLite file (WAL), for a single server process.

Writes go through one thread with its own connection. Appends that arrive while a commit is
running wait and are committed together in the next transaction (group commit), so a busy room
pays one fsync per batch, not per message, while every message is on disk (synchronous=FULL)
before anyone sees it. The seq is the table's INTEGER PRIMARY KEY, taken as max + 1 inside the
write transaction, so it is gapless. Reads (replay, history) use a second connection in a second
thread: WAL lets them run beside a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from framewire.chat.limits import ChatLimits
from framewire.chat.store import (
    AppendOutcome,
    ChatMessage,
    Draft,
    MessageListener,
    StoreUnavailable,
)

__all__ = ["SQLiteStore"]

logger = logging.getLogger("framewire.chat")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    username TEXT NOT NULL,
    message TEXT NOT NULL,
    timestamp REAL NOT NULL,
    client_id TEXT,
    upload TEXT,
    content_type TEXT
);
CREATE INDEX IF NOT EXISTS messages_client_id ON messages (username, client_id)
    WHERE client_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY, checked REAL NOT NULL);
"""
_COLUMNS = "id, seq, username, message, timestamp, client_id, upload, content_type"


def _row_to_message(row: Sequence[object]) -> ChatMessage:
    return ChatMessage(*row)  # type: ignore[arg-type]  # columns in ChatMessage's field order


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=2.0)
    connection.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before the hub broadcasts it (a message anyone saw survives a
    # power cut too); group commit keeps the fsyncs per message low.
    connection.execute("PRAGMA synchronous=FULL")
    return connection


class SQLiteStore:
    """The :class:`~framewire.chat.store.Store` over one SQLite database file.

    Args:
        database_path: the database file (created with its directory when missing).
        uploads_dir: where uploads are stored (created when missing).
        limits: dedupe_window applies.
    """

    kind = "sqlite"

    def __init__(self, database_path: Path, uploads_dir: Path, limits: ChatLimits) -> None:
        """Remember the paths; nothing is opened until :meth:`open`."""
        self.database_path = Path(database_path)
        self.uploads_dir = Path(uploads_dir)
        self.dedupe_window = limits.dedupe_window
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="framewire-chat-write")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="framewire-chat-read")
        self._write_db: sqlite3.Connection | None = None
        self._read_db: sqlite3.Connection | None = None
        self._on_message: MessageListener | None = None
        self._pending: list[tuple[Draft, asyncio.Future[AppendOutcome]]] = []
        self._wakeup = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self._closing = False

    async def open(self, on_message: MessageListener) -> None:
        """Create or open the database and start committing.

        Raises:
            RuntimeError: the database cannot be opened for writing (read-only disk, a file
                that is not a database); the message names the file and SQLite's reason.
            OSError: the data directory cannot be created.
        """
        self.database_path.parent.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        try:
            self._write_db = await loop.run_in_executor(self._writer, self._open_writer)
            self._read_db = await loop.run_in_executor(self._reader, _connect, self.database_path)
        except sqlite3.Error as error:
            # A read-only disk or a file that is not a database: refuse to serve a chat that
            # could not store anything, with the path and SQLite's reason.
            raise RuntimeError(
                f"cannot open the chat database {self.database_path}: {error} "
                "(--data-dir must be writable, and this file a framewire chat database)"
            ) from error
        self._on_message = on_message
        self._committer = asyncio.create_task(self._commit_loop(), name="framewire-chat-commit")

    def _open_writer(self) -> sqlite3.Connection:
        connection = _connect(self.database_path)
        connection.executescript(_SCHEMA)
        return connection

    async def append(self, draft: Draft) -> AppendOutcome:
        """Commit ``draft`` (with the next appends, in one transaction) and return it."""
        if self._closing or self._committer is None:
            raise StoreUnavailable("the store is closed")
        future: asyncio.Future[AppendOutcome] = asyncio.get_running_loop().create_future()
        self._pending.append((draft, future))
        self._wakeup.set()
        return await future

    async def _commit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closing:
                    return
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            batch, self._pending = self._pending, []
            drafts = [draft for draft, _ in batch]
            try:
                outcomes = await loop.run_in_executor(
                    self._writer, self._write_batch, drafts, time.time()
                )
            except Exception as error:  # any failure fails this batch, never the loop
                reason = str(error) if isinstance(error, StoreUnavailable) else "store error"
                if not isinstance(error, StoreUnavailable):
                    logger.exception("could not store a batch of %d messages", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(StoreUnavailable(reason))
                continue
            listener = self._on_message
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not outcome.duplicate and listener is not None:
                    listener(outcome.message)
                if not future.done():
                    future.set_result(outcome)

    def _write_batch(self, drafts: list[Draft], now: float) -> list[AppendOutcome]:
        """Store ``drafts`` in one transaction (writer thread)."""
        db = self._write_db
        assert db is not None
        outcomes: list[AppendOutcome] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()
            for draft in drafts:
                earlier = self._find_duplicate(db, draft, now)
                if earlier is not None:
                    outcomes.append(AppendOutcome(earlier, duplicate=True))
                    continue
                seq += 1
                message = ChatMessage(
                    id=uuid.uuid4().hex,
                    seq=seq,
                    username=draft.username,
                    message=draft.message,
                    timestamp=round(now, 3),
                    client_id=draft.client_id,
                    upload=draft.upload,
                    content_type=draft.content_type,
                )
                db.execute(
                    f"INSERT INTO messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        message.id,
                        message.seq,
                        message.username,
                        message.message,
                        message.timestamp,
                        message.client_id,
                        message.upload,
                        message.content_type,
                    ),
                )
                outcomes.append(AppendOutcome(message, duplicate=False))
            db.execute("COMMIT")
        except BaseException as error:
            with contextlib.suppress(sqlite3.Error):
                if db.in_transaction:
                    db.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise StoreUnavailable(f"history database error: {error}") from error
            raise
        return outcomes

    def _find_duplicate(
        self, db: sqlite3.Connection, draft: Draft, now: float
    ) -> ChatMessage | None:
        if draft.client_id is None:
            return None
        row = db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE username = ? AND client_id = ?"
            " AND timestamp >= ? ORDER BY seq DESC LIMIT 1",
            (draft.username, draft.client_id, now - self.dedupe_window),
        ).fetchone()
        return None if row is None else _row_to_message(row)

    async def _read(self, sql: str, parameters: tuple[object, ...]) -> list[ChatMessage]:
        db = self._read_db
        if db is None:
            raise StoreUnavailable("the store is not open")

        def query() -> list[ChatMessage]:
            try:
                return [_row_to_message(row) for row in db.execute(sql, parameters)]
            except sqlite3.Error as error:
                raise StoreUnavailable(f"history database error: {error}") from error

        return await asyncio.get_running_loop().run_in_executor(self._reader, query)

    async def after(self, seq: int, limit: int) -> list[ChatMessage]:
        """Return up to ``limit`` messages with seq greater than ``seq``, oldest first."""
        return await self._read(
            f"SELECT {_COLUMNS} FROM messages WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        )

    async def before(self, seq: int | None, limit: int) -> list[ChatMessage]:
        """Return the last ``limit`` messages with seq less than ``seq``, oldest first."""
        bound = (1 << 62) if seq is None else seq
        newest_first = await self._read(
            f"SELECT {_COLUMNS} FROM messages WHERE seq < ? ORDER BY seq DESC LIMIT ?",
            (bound, limit),
        )
        newest_first.reverse()
        return newest_first

    async def last_seq(self) -> int:
        """Return the newest seq, 0 for an empty room."""
        db = self._read_db
        if db is None:
            raise StoreUnavailable("the store is not open")

        def query() -> int:
            (value,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()
            return int(value)

        return await asyncio.get_running_loop().run_in_executor(self._reader, query)

    async def health(self) -> str | None:
        """Return None when a write commits and the uploads directory is writable."""
        if self._write_db is None or self._closing:
            return "the store is not open"

        def probe() -> str | None:
            db = self._write_db
            assert db is not None
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute(
                    "INSERT OR REPLACE INTO health (id, checked) VALUES (1, ?)", (time.time(),)
                )
                db.execute("COMMIT")
            except sqlite3.Error as error:
                with contextlib.suppress(sqlite3.Error):
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                return f"history database is not writable: {error}"
            try:
                with open(self.uploads_dir / ".health", "wb") as probe_file:
                    probe_file.write(b"ok")
            except OSError as error:
                return f"uploads directory is not writable: {error.strerror}"
            return None

        return await asyncio.get_running_loop().run_in_executor(self._writer, probe)

    async def close(self) -> None:
        """Commit what is pending, then close both connections and threads."""
        self._closing = True
        self._wakeup.set()
        if self._committer is not None:
            await self._committer
            self._committer = None
        self._on_message = None
        loop = asyncio.get_running_loop()
        for executor, db in ((self._writer, self._write_db), (self._reader, self._read_db)):
            if db is not None:
                await loop.run_in_executor(executor, db.close)
            executor.shutdown(wait=True)
        self._write_db = self._read_db = None
