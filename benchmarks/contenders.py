"""How the runner starts a contender's server and runs one load generator pass against it.

A contender is an echo server script (servers/<name>_echo.py, or the C baseline c_echo) with an
optional "+variant": NAME+uvloop for the Python ones, framewire+pure (FRAMEWIRE_NO_SPEEDUPS=1)
and framewire+isal. A server that does not start is skipped for the rest of the run, per kind
of row ("plain", "deflate", "tls"), with the reason kept for the report.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

from procs import (
    LineReader,
    Server,
    cpu_seconds,
    cpu_times,
    rss_bytes,
    start_pinned,
    start_server,
    stop,
)

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
PYTHON_CONTENDERS = ("framewire", "websockets", "aiohttp", "picows", "wsproto")


def server_command(
    name: str,
    python: str,
    broadcast: bool,
    deflate: bool = False,
    framewire_path: str = "",
    tls: tuple[Path, Path] | None = None,
) -> list[str]:
    """Return the command line (without --port) that starts contender ``name``.

    Args:
        name: contender, with an optional "+variant" (uvloop; framewire's pure and isal).
        python: the interpreter for the Python servers.
        broadcast: start the server in broadcast mode.
        deflate: start it with permessage-deflate on (--deflate).
        framewire_path: if set, framewire's servers import framewire from here (PYTHONPATH).
        tls: certificate and key: serve wss (not c_echo, which has no TLS).
    """
    if name == "c_echo":
        command = [str(BUILD / "c_echo")]
    else:
        base, _, variant = name.partition("+")
        own_variant = base == "framewire" and variant in ("pure", "isal")
        if base not in PYTHON_CONTENDERS or (variant not in ("", "uvloop") and not own_variant):
            raise SystemExit(f"unknown contender {name!r}")
        command = [python, str(HERE / "servers" / f"{base}_echo.py")]
        if variant == "pure":
            # framewire's pure-Python path: the C accelerator built but not used.
            command = ["env", "FRAMEWIRE_NO_SPEEDUPS=1", *command]
        elif variant == "isal":
            command.extend(["--deflate-backend", "isal"])
        elif variant:
            command.append("--uvloop")
        if base == "framewire" and framewire_path:
            command = ["env", f"PYTHONPATH={framewire_path}", *command]
    if deflate:
        command.append("--deflate")
    if tls is not None:
        command.extend(["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])])
    return [*command, "--broadcast"] if broadcast else command


def run_loadgen(
    server: Server, arguments: tuple[str, ...], cpus: tuple[int | None, int | None], timeout: float
) -> dict[str, Any]:
    """Run one load generator pass against ``server``; return its JSON plus server samples.

    The load generator opens its connections, prints READY and waits; the server's RSS and CPU
    time are sampled there, then again when the result line arrives, so server CPU covers
    exactly the measured window.
    """
    command = [str(BUILD / "loadgen"), "--port", str(server.port), "--wait-start", *arguments]
    command += ["--timeout", str(timeout)]
    process = start_pinned(
        command, cpus[1], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdin is not None and process.stderr is not None
    try:
        reader = LineReader(process)
        ready = reader.readline(timeout)
        if not ready.startswith("READY"):
            raise RuntimeError(f"load generator failed: {process.stderr.read(2000).decode()!r}")
        server_cpu_before = cpu_seconds(server.process.pid)
        user_before, system_before = cpu_times(server.process.pid)
        server_rss = rss_bytes(server.process.pid)
        process.stdin.write(b"go\n")
        process.stdin.flush()
        result: dict[str, Any] = json.loads(reader.readline(timeout))
        result["server_cpu_seconds"] = cpu_seconds(server.process.pid) - server_cpu_before
        user_after, system_after = cpu_times(server.process.pid)
        result["server_user_seconds"] = user_after - user_before
        result["server_system_seconds"] = system_after - system_before
        result["server_rss_at_ready"] = server_rss
        process.wait(timeout)
    finally:
        stop(process)
    if result["errors"]:
        raise RuntimeError(f"load generator saw {result['errors']} errors: {result}")
    return result


def start_or_skip(
    name: str,
    options: argparse.Namespace,
    broadcast_mode: bool,
    skipped: dict[str, str],
    kind: str = "plain",
) -> Server | None:
    """Start a contender's server, or record why it cannot run and skip it from now on.

    Args:
        kind: "plain", "deflate" (--deflate) or "tls" (serves wss).
    """
    label = name if kind == "plain" else f"{name} ({kind})"
    if label in skipped:
        return None
    if kind == "tls" and name == "c_echo":
        skipped[label] = "serves no TLS (a plain-TCP baseline)"
        return None
    command = server_command(
        name,
        options.python,
        broadcast_mode,
        deflate=kind == "deflate",
        framewire_path=options.framewire_path,
        tls=options.certificate if kind == "tls" else None,
    )
    try:
        return start_server(name, command, options.cpus[0])
    except RuntimeError as error:
        skipped[label] = str(error)
        print(f"  skip {label}: {error}", flush=True)
        return None


def measure(
    name: str,
    scenario: str,
    server: Server,
    arguments: tuple[str, ...],
    options: Any,
    timeout: float,
) -> dict[str, Any] | None:
    """Run one load generator pass; print and swallow a failure so the others go on."""
    try:
        return run_loadgen(server, arguments, options.cpus, timeout)
    except (RuntimeError, TimeoutError, ValueError, OSError) as error:
        print(f"  {name} {scenario}: failed: {error}", flush=True)
        return None
