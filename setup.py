"""Build the optional C accelerator framewire._speedups; all metadata lives in pyproject.toml.

FRAMEWIRE_BUILD_SPEEDUPS=yes makes a failed build an error, =no skips the extension, and by
default a failed build (no compiler, no Python headers) installs the pure-Python package.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

BUILD_SPEEDUPS = os.environ.get("FRAMEWIRE_BUILD_SPEEDUPS", "").strip().lower()
if BUILD_SPEEDUPS not in ("", "yes", "no"):
    raise SystemExit(f"FRAMEWIRE_BUILD_SPEEDUPS must be yes or no, got {BUILD_SPEEDUPS!r}")


class OptionalBuildExt(build_ext):
    """build_ext that reports a failed compile and carries on, unless the build was forced."""

    def run(self) -> None:
        """Build all extensions, tolerating failure unless FRAMEWIRE_BUILD_SPEEDUPS=yes."""
        try:
            super().run()
        except Exception as exc:  # setuptools raises several unrelated types for "no compiler"
            self._give_up(exc)

    def build_extension(self, ext: Any) -> None:
        """Build one extension, tolerating failure unless FRAMEWIRE_BUILD_SPEEDUPS=yes."""
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        if BUILD_SPEEDUPS == "yes":
            raise exc
        print(
            f"WARNING: framewire._speedups was not built ({exc!r}); "
            "installing the pure-Python implementation.",
            file=sys.stderr,
        )


ext_modules: list[Extension] = []
if BUILD_SPEEDUPS != "no":
    ext_modules.append(
        Extension(
            "framewire._speedups",
            sources=[
                f"src/framewire/_speedups_c/{name}.c"
                for name in (
                    "module",
                    "mask",
                    "frames",
                    "field_lines",
                    "upgrade",
                    "payload_buffer",
                    "wakeup",
                    "inbox",
                    "next_message",
                    "poller",
                    "connection_flags",
                    "direct_writer",
                    "tls_link",
                    "websocket_methods",
                )
            ],
            depends=["src/framewire/_speedups_c/speedups.h"],
            # optional=True is setuptools' own fallback; OptionalBuildExt also covers run().
            optional=BUILD_SPEEDUPS != "yes",
        )
    )

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt})
