"""ChatLimits (the table of the chat's limits) and TokenBucket, driven by a made-up clock."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framewire.chat.limits import ChatLimits, TokenBucket

# ---------------------------------------------------------------------------- TokenBucket


def test_bucket_starts_full_and_refuses_past_the_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=30, now=100.0)
    assert [bucket.take(100.0) for _ in range(31)] == [True] * 30 + [False]


def test_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=30, now=0.0)
    for _ in range(30):
        assert bucket.take(0.0)
    assert not bucket.take(0.05)  # half a token
    assert bucket.take(0.1)  # one token after 0.1 s
    assert not bucket.take(0.1)
    assert [bucket.take(1.1) for _ in range(11)] == [True] * 10 + [False]


def test_a_refused_take_takes_nothing() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, now=0.0)
    assert bucket.take(0.0)
    for moment in (0.2, 0.4, 0.6, 0.8):
        assert not bucket.take(moment)
    assert bucket.take(1.0)  # the refused attempts did not delay the refill


def test_bucket_holds_at_most_its_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=3, now=0.0)
    # An hour idle still gives only the burst.
    assert [bucket.take(3600.0) for _ in range(4)] == [True, True, True, False]


def test_a_clock_going_backwards_adds_no_tokens() -> None:
    bucket = TokenBucket(rate=10.0, burst=2, now=50.0)
    assert bucket.take(50.0) and bucket.take(50.0)
    assert not bucket.take(10.0)
    assert not bucket.take(9.0)


def test_fractional_rate() -> None:
    bucket = TokenBucket(rate=0.5, burst=1, now=0.0)
    assert bucket.take(0.0)
    assert not bucket.take(1.9)
    assert bucket.take(3.9)  # 2 s after the refused take at 1.9 that kept its credit


@given(
    rate=st.floats(min_value=0.1, max_value=1000.0),
    burst=st.integers(min_value=1, max_value=100),
    steps=st.lists(st.floats(min_value=0.0, max_value=5.0), max_size=200),
)
def test_taken_never_exceeds_burst_plus_rate_times_elapsed(
    rate: float, burst: int, steps: list[float]
) -> None:
    now = 0.0
    bucket = TokenBucket(rate, burst, now)
    taken = 0
    for step in steps:
        now += step
        taken += bucket.take(now)
    assert taken <= burst + rate * now + 1e-6


@given(burst=st.integers(min_value=1, max_value=1000))
def test_a_full_bucket_gives_exactly_its_burst_at_one_instant(burst: int) -> None:
    bucket = TokenBucket(10.0, burst, 7.0)
    assert sum(bucket.take(7.0) for _ in range(burst + 5)) == burst


# ---------------------------------------------------------------------------- ChatLimits


def test_defaults_are_the_documented_ones() -> None:
    limits = ChatLimits()
    assert limits.max_username == 32
    assert limits.max_message == 1 << 20
    assert limits.message_rate == 10.0
    assert limits.message_burst == 30
    assert limits.typing_interval == 1.0
    assert limits.history_default == 100
    assert limits.replay_limit == 1000
    assert limits.history_max >= limits.history_default
    assert limits.max_frame > limits.max_message  # the JSON envelope fits around the text
    assert limits.dedupe_window > 0
    assert limits.slow_reader_bytes > 0 and limits.max_upload > 0


def test_limits_are_frozen_and_replaceable() -> None:
    limits = ChatLimits()
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_message = 1  # type: ignore[misc]
    smaller = dataclasses.replace(limits, max_upload=1024)
    assert smaller.max_upload == 1024 and limits.max_upload == 512 << 20


def test_names_lists_every_field_in_table_order() -> None:
    names = ChatLimits.names()
    assert names == [field.name for field in dataclasses.fields(ChatLimits)]
    assert names[:2] == ["max_username", "max_message"]
    assert len(names) == len(set(names))


def test_every_limit_is_documented_in_the_docstring() -> None:
    doc = inspect.cleandoc(ChatLimits.__doc__ or "")  # 3.13 strips the indentation itself
    for name in ChatLimits.names():
        assert f"\n    {name}: " in doc, name
