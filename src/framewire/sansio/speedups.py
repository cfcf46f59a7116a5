"""The one place that looks up the optional C accelerator, ``framewire._speedups``.

Every accelerated name has a pure-Python twin in the module that uses it (sansio/mask.py,
sansio/whole_frames.py, sansio/payload_buffer.py, aio/wakeup.py, aio/inbox.py); that module asks
here for the C one and falls back to its twin when c_twin() returns None: the extension was not
built (no compiler at install time), is older than the module, or FRAMEWIRE_NO_SPEEDUPS is set.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__all__ = ["DISABLED", "c_twin"]

DISABLED = bool(os.environ.get("FRAMEWIRE_NO_SPEEDUPS"))


def c_twin(name: str) -> Any:
    """Return ``framewire._speedups.<name>``, or None when it cannot or may not be used."""
    if DISABLED:
        return None
    try:
        speedups = importlib.import_module("framewire._speedups")
    except ImportError:
        return None
    return getattr(speedups, name, None)
