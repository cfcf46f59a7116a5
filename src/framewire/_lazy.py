"""Module attributes imported on first use, for package ``__init__`` modules."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, table: Mapping[str, str], namespace: dict[str, Any], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a package's module-level ``__getattr__`` and ``__dir__`` (PEP 562).

    Args:
        package: the package's name, for the AttributeError of an unknown name.
        table: attribute name -> the module that defines it, imported on first access.
        namespace: the package's ``globals()``: a name, once imported, is stored there, so
            that ``__getattr__`` runs once per name.
        public: the package's ``__all__``, listed by ``dir()`` before anything is imported.
    """
    listed = frozenset(public)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *listed})

    return __getattr__, __dir__
