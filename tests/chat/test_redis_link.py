"""What the Redis modules share (chat/redis_link.py): key names, back-off, error reasons, and
redis-py kept inside the Redis modules. Backoff's delays while Redis is away are checked in
tests/chat/test_redis_store.py; make_client and stop_tasks run in every Redis test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import framewire
from framewire.chat.redis_link import KEY_PREFIX, Backoff, Keys, describe_error


def test_only_the_redis_modules_import_redis() -> None:
    package = Path(framewire.__file__).parent
    importers = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            if any(name == "redis" or name.startswith("redis.") for name in names):
                importers.add(path.relative_to(package).as_posix())
    assert importers == {
        "chat/redis_follower.py",
        "chat/redis_link.py",
        "chat/redis_presence.py",
        "chat/redis_store.py",
    }


def test_every_key_of_a_room_is_under_its_prefix_and_they_differ() -> None:
    keys = Keys(prefix="room:")
    names = [
        keys.seq,
        keys.stream,
        keys.heartbeat,
        keys.presence_users,
        keys.presence_expiry,
        keys.presence_channel,
        keys.typing_channel,
        keys.dedupe("ann", "c1"),
        keys.attempt("m1"),
    ]
    assert all(name.startswith("room:") for name in names)
    assert len(set(names)) == len(names)
    assert keys.dedupe("ann", "c1") != keys.dedupe("bob", "c1")
    # A ':' inside a name cannot make two (username, client_id) pairs share a key.
    assert keys.dedupe("a:b", "c") != keys.dedupe("a", "b:c")
    assert Keys().seq.startswith(KEY_PREFIX)


def test_backoff_doubles_up_to_its_cap_with_at_most_20_percent_jitter() -> None:
    backoff = Backoff(first=0.1, cap=0.8)
    nominal = [0.1, 0.2, 0.4, 0.8, 0.8]
    for expected in nominal:
        assert 0.8 * expected <= backoff.next_delay() <= expected
    backoff.reset()
    assert 0.08 <= backoff.next_delay() <= 0.1


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionError("Error 111.\nsecond line"), "ConnectionError: Error 111."),
        (TimeoutError(), "TimeoutError"),
        (OSError("x" * 500), "OSError: " + "x" * 120),
    ],
)
def test_describe_error_is_one_short_line(error: BaseException, reason: str) -> None:
    assert describe_error(error) == reason
