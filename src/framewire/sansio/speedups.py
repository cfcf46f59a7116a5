"""Whether the optional C accelerator, ``framewire._speedups``, is there and may be used.

Every accelerated name has a pure-Python twin in the module that uses it (sansio/mask.py,
sansio/whole_frames.py, sansio/field_lines.py, sansio/http11_encode.py,
sansio/upgrade_request.py, sansio/payload_buffer.py, aio/ws/wakeup.py, aio/ws/inbox.py,
aio/ws/socket_poller.py, aio/ws/websocket_methods.py). That module imports its C twin itself,
typed by the stub (framewire/_speedups.pyi), so that no Any crosses the boundary, and only when
ENABLED says so:

    apply_mask: Callable[[BytesLike, BytesLike], bytes] = py_apply_mask
    if ENABLED:
        from framewire._speedups import apply_mask as c_apply_mask

        apply_mask = c_apply_mask

BUILT: the extension imports and exports everything this version of framewire takes from it
(one built from older sources, or not built for want of a compiler, is not used at all).
ENABLED: BUILT, and FRAMEWIRE_NO_SPEEDUPS unset. The functions by which Python hands C what it
needs (use_connection_flags(), use_running_tasks()) run whenever BUILT: setting C up selects no
C piece, and the tests of the C pieces, which also run in the pure-Python pass, find them set
up as with the accelerator.
"""

from __future__ import annotations

import os
import sys

__all__ = ["BUILT", "DISABLED", "ENABLED", "EXPORTS"]

DISABLED = bool(os.environ.get("FRAMEWIRE_NO_SPEEDUPS"))

# What this version takes from the extension: the names the stub declares for this platform
# (tests/test_speedups_boundary.py checks that they are the same).
EXPORTS = frozenset(
    {
        "Inbox",
        "PayloadBuffer",
        "Wakeup",
        "apply_mask",
        "encode_fields",
        "parse_field_lines",
        "parse_upgrade_request",
        "parse_whole_frames",
        "use_connection_flags",
        "use_running_tasks",
    }
    | ({"DirectWriter", "Poller", "SENT", "WebSocketMethods"} if sys.platform == "linux" else set())
)


def _built() -> bool:
    """Whether framewire._speedups imports and exports every name in EXPORTS."""
    try:
        from framewire import _speedups
    except ImportError:
        return False
    return all(hasattr(_speedups, name) for name in EXPORTS)


BUILT = _built()
ENABLED = BUILT and not DISABLED
