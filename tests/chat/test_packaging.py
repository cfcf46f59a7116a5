"""A wheel built from the repo carries the chat page, so `pip install . && framewire chat` works."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PAGE = ROOT / "src" / "framewire" / "chat" / "page"


@pytest.mark.slow
def test_wheel_contains_every_page_file(tmp_path: Path) -> None:
    environment = {**os.environ, "FRAMEWIRE_BUILD_SPEEDUPS": "no"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        env=environment,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("framewire-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"framewire/chat/page/{path.name}" for path in PAGE.iterdir() if path.is_file()}
    assert {"framewire/chat/page/index.html"} <= expected
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
