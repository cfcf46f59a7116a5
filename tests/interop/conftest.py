"""Fixtures of the interop tests: skip the Node ones, with a clear reason, when Node is missing."""

from __future__ import annotations

import pytest

from tests.interop.helpers import node_skip_reason


@pytest.fixture
def node() -> None:
    """Skip the test when node or the Node ws package is not installed."""
    reason = node_skip_reason()
    if reason is not None:
        pytest.skip(reason)
