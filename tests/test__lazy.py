"""framewire/_lazy.py: package attributes imported on first use (framewire, framewire.http)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from framewire._lazy import lazy_attributes


def test_a_name_is_imported_on_first_access_and_stored_for_the_next() -> None:
    namespace: dict[str, object] = {}
    getattr_, dir_ = lazy_attributes("pkg", {"dumps": "json"}, namespace, ["dumps", "other"])
    assert dir_() == ["dumps", "other"]
    import json

    assert getattr_("dumps") is json.dumps
    assert namespace["dumps"] is json.dumps


def test_an_unknown_name_raises_attribute_error_naming_the_package() -> None:
    getattr_, _ = lazy_attributes("pkg", {}, {}, [])
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'missing'"):
        getattr_("missing")


def test_the_packages_load_their_asyncio_and_http_layers_only_when_asked() -> None:
    code = (
        "import sys, framewire, framewire.http\n"
        "assert 'framewire.aio.server' not in sys.modules\n"
        "assert 'framewire.http.app' not in sys.modules\n"
        "assert {'serve', 'connect', 'broadcast'} <= set(dir(framewire))\n"
        "assert 'App' in dir(framewire.http)\n"
        "framewire.serve, framewire.http.App\n"
        "assert 'framewire.aio.server' in sys.modules and 'framewire.http.app' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
