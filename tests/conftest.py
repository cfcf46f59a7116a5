"""Shared pytest fixtures for framewire's tests."""

from __future__ import annotations

import importlib
from collections.abc import Callable

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
    try:
        speedups = importlib.import_module("framewire._speedups")
    except ImportError:
        pytest.skip("framewire._speedups was not built")
    c_apply_mask: MaskFunction = speedups.apply_mask
    return c_apply_mask
