"""tests/ mirrors src/framewire/: each module with logic has its test module at the same place.

src/framewire/aio/ws/inbox.py is tested by tests/aio/ws/test_inbox.py, src/framewire/cli.py by
tests/test_cli.py. Other test modules are welcome beside the mirrors: suites that test behaviour
across modules (tests/conformance/, interop/, security/, fuzz/, reliability/, the chat's
browser, fault and recovery tests, ...) are extras, not mirrors, and this test ignores them.
"""

from __future__ import annotations

from pathlib import Path

import framewire

PACKAGE = Path(framewire.__file__).parent
TESTS = Path(__file__).parent

# Modules with no logic of their own to test, each with the reason. Keep this list short: a
# module that gains a function or a method leaves it, with its test module.
EXEMPT = {
    "sansio/events.py": "frozen dataclasses of the WebSocket events, nothing computed",
    "sansio/state.py": "the Role and State enums only",
    "sansio/http11_state.py": "the HTTP/1.1 parser's State enum only",
    "chat/config.py": "ChatConfig, a frozen dataclass of settings and two paths under data_dir",
}


def source_modules() -> list[str]:
    """Return every module of src/framewire/ as a path relative to the package, but packages'
    __init__.py (re-exports) and __main__.py (one call)."""
    return sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
    )


def mirror_of(module: str) -> Path:
    """Return the test module that mirrors ``module`` ("aio/ws/inbox.py")."""
    relative = Path(module)
    return TESTS / relative.parent / f"test_{relative.name}"


def test_every_module_with_logic_has_its_test_module_at_the_mirrored_path() -> None:
    missing = [
        f"{module} -> {mirror_of(module).relative_to(TESTS.parent)}"
        for module in source_modules()
        if module not in EXEMPT and not mirror_of(module).exists()
    ]
    assert not missing, "modules without their test module:\n" + "\n".join(missing)


def test_the_exemptions_are_modules_that_exist_and_have_no_test_module() -> None:
    modules = set(source_modules())
    for module in EXEMPT:
        assert module in modules, f"{module} is exempt but no longer exists: drop it from EXEMPT"
        assert not mirror_of(module).exists(), f"{module} has its test module: drop it from EXEMPT"


def test_every_test_directory_is_a_package_so_that_test_names_can_repeat() -> None:
    # tests/aio/ws/test_protocol.py and tests/aio/http1/test_protocol.py share a basename.
    for path in TESTS.rglob("test_*.py"):
        for directory in path.relative_to(TESTS).parents:
            assert (TESTS / directory / "__init__.py").exists(), (
                f"tests/{directory} has no __init__.py"
            )


def test_each_mirror_names_the_module_it_tests() -> None:
    # A mirror that neither imports its module nor names it is a leftover of a move or a rename.
    unnamed = []
    for module in source_modules():
        mirror = mirror_of(module)
        if module in EXEMPT or not mirror.exists():
            continue
        dotted = "framewire." + module.removesuffix(".py").replace("/", ".")
        text = mirror.read_text()
        parent, _, name = dotted.rpartition(".")
        if not (dotted in text or f"from {parent} import {name}" in text or module in text):
            unnamed.append(f"{mirror.relative_to(TESTS.parent)} ({dotted})")
    assert not unnamed, "mirrors that never import nor name their module:\n" + "\n".join(unnamed)
