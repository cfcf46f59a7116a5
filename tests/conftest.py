"""Shared pytest fixtures for framewire's tests."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest

from framewire.sansio import mask

MaskFunction = Callable[[bytes | bytearray | memoryview, bytes], bytes]


@pytest.fixture(params=["python", "c"])
def mask_impl(request: pytest.FixtureRequest) -> MaskFunction:
    """Return apply_mask from the pure-Python path, then from the C extension.

    The C case skips only when framewire._speedups was not built; it is imported directly so
    that FRAMEWIRE_NO_SPEEDUPS does not hide it from the tests.
    """
    if request.param == "python":
        return mask.py_apply_mask
    c_apply_mask: MaskFunction = c_twin_or_skip("apply_mask")
    return c_apply_mask


def c_twin_or_skip(name: str) -> Any:
    """Return ``framewire._speedups.<name>``, imported directly so that FRAMEWIRE_NO_SPEEDUPS
    does not hide it from the tests; skip the test when the extension was not built."""
    try:
        speedups = importlib.import_module("framewire._speedups")
    except ImportError:
        pytest.skip("framewire._speedups was not built")
    return getattr(speedups, name)
