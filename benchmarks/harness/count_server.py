"""Exact user-space instructions per handshake (or message) of a real benchmark server.

Runs one of benchmarks/servers/ under valgrind (cachegrind, no cache simulation), drives it with
the load generator for D and then 2D seconds, and divides the difference in instructions by the
difference in handshakes, so start-up and shutdown cancel out. Unlike a timing, the count does
not drift with the machine's load, and unlike per_handshake.py it includes everything the server
runs: asyncio's accept path and transports, the kernel calls' Python side, and for the other
libraries their whole stack. Needs valgrind and the benchmark environment (setup_env.sh).

    python3 benchmarks/harness/count_server.py framewire_echo.py
    python3 benchmarks/harness/count_server.py picows_echo.py --mode rt --connections 64
    python3 benchmarks/harness/count_server.py framewire_echo.py aiohttp_echo.py --mode rt \
        --connections 64 --size 1024 --deflate          # the compressed 1 KiB row
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent
VENV = BENCHMARKS / ".venv"
LOADGEN = BENCHMARKS / "build" / "loadgen"


def count(script: str, arguments: argparse.Namespace, duration: float) -> tuple[int, int]:
    """Run the server under cachegrind for one load; return (instructions, units of work)."""
    port = random.randint(20000, 40000)
    environment = dict(os.environ)
    venv = Path(arguments.venv).resolve()
    site = next((venv / "lib").glob("python3*/site-packages"))
    # valgrind runs the interpreter behind the venv's symlink: name the venv's packages.
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [arguments.pythonpath, str(site)]))
    server = subprocess.Popen(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            os.path.realpath(venv / "bin" / "python"),
            script,
            "--port",
            str(port),
            *(["--deflate"] if arguments.deflate else []),
        ],
        cwd=BENCHMARKS / "servers",
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"{script} did not start") from None
                time.sleep(0.2)
        time.sleep(1)  # the probe connection's work is done before counting starts
        load = subprocess.run(
            [
                str(LOADGEN),
                *("--port", str(port), "--mode", arguments.mode),
                *("--connections", str(arguments.connections), "--size", str(arguments.size)),
                *(["--payload", "json", "--deflate"] if arguments.deflate else []),
                *("--duration", str(duration)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(load.stdout.strip().splitlines()[-1])
        units = int(result.get("handshakes") or result.get("messages") or 0)
        time.sleep(0.5)
        server.send_signal(2)
        try:
            report = server.communicate(timeout=20)[1]
        except subprocess.TimeoutExpired:  # a server that ignores SIGINT
            server.terminate()
            report = server.communicate(timeout=20)[1]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    match = re.search(r"I\s+refs:\s+([\d,]+)", report)
    if match is None or units == 0:
        raise SystemExit(f"no count for {script}: {report[-500:]}")
    return int(match.group(1).replace(",", "")), units


def main() -> None:
    """Print instructions per unit for each server named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scripts", nargs="+", help="servers in benchmarks/servers/")
    parser.add_argument("--mode", default="handshake", help="loadgen mode (handshake, rt)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--size", type=int, default=64, help="message size (rt mode)")
    parser.add_argument(
        "--deflate", action="store_true", help="compression on (server --deflate, JSON text)"
    )
    parser.add_argument("--duration", type=float, default=4, help="seconds of the shorter load")
    parser.add_argument("--pythonpath", default="", help="searched before the venv (a src/)")
    parser.add_argument("--venv", default=str(VENV), help="the venv whose Python runs the server")
    arguments = parser.parse_args()
    for script in arguments.scripts:
        once, units_once = count(script, arguments, arguments.duration)
        twice, units_twice = count(script, arguments, 2 * arguments.duration)
        per_unit = (twice - once) / (units_twice - units_once)
        print(f"{script}: {per_unit:,.0f} instructions per unit ({units_once}, {units_twice})")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
