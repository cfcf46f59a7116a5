"""Whether the C accelerator is used (sansio/speedups.py): BUILT only when the extension exports
everything this version takes from it, ENABLED only when BUILT and FRAMEWIRE_NO_SPEEDUPS is
unset, and the modules with a twin follow ENABLED. Each case runs in a fresh interpreter, since
the answers are computed once, at import. That the stub and the extension agree is
tests/test_speedups_boundary.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from framewire.sansio import speedups

PROBE = """
import json, sys
{prelude}
from framewire.sansio import mask, speedups
print(json.dumps({{
    "built": speedups.BUILT,
    "enabled": speedups.ENABLED,
    "disabled": speedups.DISABLED,
    "python_mask": mask.apply_mask is mask.py_apply_mask,
}}))
"""


def probe(prelude: str = "", **environment: str) -> dict[str, Any]:
    """Import speedups in a fresh interpreter; return what it decided."""
    env = {k: v for k, v in os.environ.items() if k != "FRAMEWIRE_NO_SPEEDUPS"} | environment
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(prelude=prelude)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_a_built_extension_is_used_unless_framewire_no_speedups_is_set() -> None:
    default = probe()
    assert not default["disabled"]
    assert default["enabled"] is default["built"]
    assert default["python_mask"] is not default["enabled"]
    disabled = probe(FRAMEWIRE_NO_SPEEDUPS="1")
    assert disabled["disabled"] and not disabled["enabled"]
    assert disabled["built"] is default["built"]  # built or not, it is just not used
    assert disabled["python_mask"]


def test_an_extension_missing_a_name_is_not_used_at_all() -> None:
    # An extension built from older sources: it imports, but lacks a name this version takes.
    prelude = "import types; sys.modules['framewire._speedups'] = types.ModuleType('old')"
    old = probe(prelude)
    assert (old["built"], old["enabled"], old["python_mask"]) == (False, False, True)


@pytest.mark.skipif(sys.platform != "linux", reason="the socket pieces are Linux-only")
def test_the_socket_pieces_are_taken_on_linux() -> None:
    assert {"Poller", "DirectWriter", "SENT", "WebSocketMethods"} <= speedups.EXPORTS
    assert "apply_mask" in speedups.EXPORTS
