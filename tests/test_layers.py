"""Each layer imports only from the layers below it (shared/DESIGN.md), checked with an ast walk."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import framewire

PACKAGE = Path(framewire.__file__).parent

# What each layer may import from framewire (itself included).
ALLOWED = {
    "sansio": {"sansio", "exceptions", "_speedups"},
    "aio": {"sansio", "aio", "exceptions"},
    "http": {"sansio", "aio", "http", "exceptions"},
    # The chat is an application like any user's: framewire's public API and framewire.http.
    "chat": {"", "http", "chat"},
}


def framewire_imports(path: Path) -> set[str]:
    """Return the top-level framewire subpackages or modules that ``path`` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "framewire" and len(parts) > 1:
                found.add(parts[1])
            elif parts[0] == "framewire":
                found.add("")  # the package itself: its public API sits on top of everything
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_from_below(layer: str) -> None:
    for path in sorted((PACKAGE / layer).glob("*.py")):
        imported = framewire_imports(path)
        assert imported <= ALLOWED[layer], f"{path.name} imports {imported - ALLOWED[layer]}"


def test_the_sans_io_core_imports_no_io() -> None:
    forbidden = {"asyncio", "socket", "ssl", "selectors", "time", "threading"}
    for path in sorted((PACKAGE / "sansio").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = {node.module.split(".")[0]}
            else:
                continue
            assert not modules & forbidden, f"{path.name} imports {modules & forbidden}"


def test_importing_the_core_does_not_import_asyncio_layers() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import framewire.sansio.connection, framewire.sansio.handshake; "
        "print(sorted(m for m in sys.modules if m.startswith('framewire.aio')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
