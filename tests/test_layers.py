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
    "aio": {"sansio", "aio", "exceptions", "_speedups"},  # its C twins, typed by the stub
    # _lazy: framewire.http's __getattr__ (PEP 562), a leaf module like exceptions.
    "http": {"sansio", "aio", "http", "exceptions", "_lazy"},
    # The chat is an application like any user's: framewire's public API and framewire.http.
    "chat": {"", "http", "chat"},
}
# The one module of a layer above that a layer may import: the HTTP application layer owns
# Request, Response and FileBody, which the asyncio server connection makes and sends.
ALLOWED_MODULES = {"aio": {"framewire.http.messages"}}


def imported_modules(path: Path) -> set[str]:
    """Return the framewire modules that ``path`` imports, as dotted names.

    ``from framewire.http import messages`` counts as framewire.http.messages, and
    ``from framewire.http import Request`` as framewire.http (the package).
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                location = PACKAGE.parent / submodule.replace(".", "/")
                # A package, a module, or the C extension (its stub stands beside it).
                candidates = (location, location.with_suffix(".py"), location.with_suffix(".pyi"))
                if any(candidate.exists() for candidate in candidates):
                    found.add(submodule)
                else:
                    found.add(node.module)
    return {name for name in found if name.split(".")[0] == "framewire"}


def framewire_imports(path: Path, layer: str = "") -> set[str]:
    """Return the top-level framewire subpackages or modules that ``path`` imports, leaving out
    the modules ``layer`` may import from a layer above (ALLOWED_MODULES)."""
    found: set[str] = set()
    for name in imported_modules(path) - ALLOWED_MODULES.get(layer, set()):
        parts = name.split(".")
        # "": the package itself, whose public API sits on top of everything.
        found.add(parts[1] if len(parts) > 1 else "")
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_from_below(layer: str) -> None:
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        imported = framewire_imports(path, layer)
        assert imported <= ALLOWED[layer], f"{path.name} imports {imported - ALLOWED[layer]}"


def test_the_http_module_aio_may_import_stands_on_sansio_alone() -> None:
    # framewire.http.messages sits below aio, though its package sits above: it imports only
    # sansio and exceptions, and importing it loads no other module of framewire.http.
    for name in ALLOWED_MODULES["aio"]:
        path = PACKAGE.parent / (name.replace(".", "/") + ".py")
        assert framewire_imports(path) <= {"sansio", "exceptions"}, name
    import subprocess
    import sys

    code = (
        "import sys; import framewire.aio.server; "
        "print(sorted(m for m in sys.modules if m.startswith('framewire.http')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    loaded = "['framewire.http', 'framewire.http.messages']"
    assert result.stdout.strip() == loaded, result.stdout + result.stderr


# aio/ holds two protocols, each in its own package; the modules beside them (acceptor, timers,
# receive_buffer, asyncio_internals) serve both, and server.py alone joins them.
PROTOCOLS = {"http1", "ws"}


def aio_protocols_imported(path: Path) -> set[str]:
    """Return which of aio/'s protocol packages ``path`` imports from."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from framewire.aio import ws" names the package in the imported names.
            modules = [f"{node.module}.{alias.name}" for alias in node.names]
        for module in modules:
            parts = module.split(".")
            if parts[:2] == ["framewire", "aio"] and len(parts) > 2 and parts[2] in PROTOCOLS:
                found.add(parts[2])
    return found


def test_the_aio_protocols_never_import_each_other_and_only_the_server_joins_them() -> None:
    aio = PACKAGE / "aio"
    assert {path.name for path in aio.iterdir() if (path / "__init__.py").exists()} == PROTOCOLS
    joining = []
    for path in sorted(aio.rglob("*.py")):
        relative = path.relative_to(aio)
        imported = aio_protocols_imported(path)
        if len(relative.parts) > 1:  # inside one protocol's package
            own = relative.parts[0]
            assert imported <= {own}, f"aio/{relative.as_posix()} imports {imported - {own}}"
        elif imported == PROTOCOLS:
            joining.append(relative.as_posix())
        else:
            assert not imported or relative.name == "server.py", (
                f"aio/{relative.as_posix()} serves both protocols but imports {imported}"
            )
    assert joining == ["server.py"]


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


def test_broadcast_reads_no_private_attribute() -> None:
    # broadcast() uses the public seam of WebSocket (connection, transport, flush(),
    # write_frame()) and of Connection, as any fan-out a user writes could.
    path = PACKAGE / "aio" / "ws" / "broadcast.py"
    private = sorted(
        f"{ast.unparse(node)} (line {node.lineno})"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    )
    assert private == []


MAX_LINES = 450  # past ~400 a module usually hides a seam (shared/STYLE.md)


def test_no_source_file_passes_450_lines() -> None:
    too_long = {
        path.relative_to(PACKAGE).as_posix(): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}, f"cut these at a seam: {too_long}"
