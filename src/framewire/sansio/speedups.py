"""The one place that looks up the optional C accelerator, ``framewire._speedups``.

Every accelerated name has a pure-Python twin in the module that uses it (sansio/mask.py,
sansio/whole_frames.py, sansio/payload_buffer.py, aio/ws/wakeup.py, aio/ws/inbox.py); that module
asks here for the C one and falls back to its twin when c_twin() returns None: the extension was not
built (no compiler at install time), is older than the module, or FRAMEWIRE_NO_SPEEDUPS is set.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__all__ = ["DISABLED", "c_setup", "c_twin"]

DISABLED = bool(os.environ.get("FRAMEWIRE_NO_SPEEDUPS"))


def _extension() -> Any:
    """Return framewire._speedups, or None when it was not built (or cannot load)."""
    try:
        return importlib.import_module("framewire._speedups")
    except ImportError:
        return None


def c_twin(name: str) -> Any:
    """Return ``framewire._speedups.<name>``, or None when it cannot or may not be used."""
    if DISABLED:
        return None
    return getattr(_extension(), name, None)


def c_setup(name: str) -> Any:
    """Return ``framewire._speedups.<name>``, a function by which Python hands C what it needs
    (C imports nothing from framewire), or None when the extension was not built.

    Unlike c_twin(), it is returned with FRAMEWIRE_NO_SPEEDUPS set too: setting C up selects no
    C piece, and the tests of the C pieces, which also run in the pure-Python pass, find them
    set up as with the accelerator.
    """
    return getattr(_extension(), name, None)
