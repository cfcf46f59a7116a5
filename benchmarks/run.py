#!/usr/bin/env python3
"""Benchmark framewire against other Python WebSocket servers, with a C echo server as baseline.

Usage:  benchmarks/setup_env.sh && python3 benchmarks/run.py [--quick]

Each contender is an echo server script (benchmarks/servers/<name>_echo.py) run with
benchmarks/.venv's Python; c_echo is a minimal C server that shows the ceiling of the load
generator and the loopback (a baseline, not a contender). The load generator is
benchmarks/loadgen/loadgen.c, compiled here with gcc -O2. Servers run pinned to one CPU and the
load generator to another. Contenders are interleaved within every round (rotating the order)
so that slow drifts of the machine spread over all of them; medians over rounds are printed
with ratios against framewire (or the first contender that ran, if framewire did not).

The compressed rows (issue 17) start every contender with --deflate, its library's own defaults
for permessage-deflate, and load it with JSON-like text offering the extension the way browsers
do; the load generator checks and counts that every reply came back compressed. Their own
contender list (--deflate-contenders) includes "framewire+isal", framewire with the optional
ISA-L backend (the plain "framewire" column always compresses with the standard library's zlib).

Also from issue 17: paced p50/p99 latency at one offered rate for every contender (latency.py);
broadcast to 10,000 clients; wsproto, the pure-Python anchor to compare framewire+pure with; and
wss rows (TLS 1.3, one self-signed certificate made with openssl in benchmarks/build/tls/).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from contenders import BUILD, HERE, measure, start_or_skip
from latency import latency_round
from procs import Server, compile_c, make_certificate, raise_open_file_limit, rss_bytes
from report import METRICS, Results, load_average, machine_description, print_tables, record

DEFAULT_CONTENDERS = (
    "framewire", "framewire+pure", "websockets", "aiohttp", "picows", "wsproto", "c_echo",
)  # fmt: skip
DEFAULT_DEFLATE_CONTENDERS = (
    "framewire", "framewire+isal", "framewire+pure", "websockets", "aiohttp", "picows", "wsproto",
)  # fmt: skip
IDLE_CONNECTIONS = 5000
# Clients per broadcast row group: the server sends each message to all of them.
BROADCAST_CONNECTIONS = {"broadcast": 1000, "broadcast10k": 10000}
DEFLATE_MEMORY_CONNECTIONS = 2000
DEFLATE_WARM_MESSAGES = 20
# Row groups, for --rows: the echo rows above, paced latency, idle memory, the two broadcasts,
# the compressed rows, memory with compression negotiated, and the wss rows.
ROW_GROUPS = (
    "echo", "latency", "memory", "broadcast", "broadcast10k", "deflate", "deflate-memory", "tls",
)  # fmt: skip

# Scenarios served by one long-lived echo server per contender and round:
# (name, loadgen arguments). Their metrics are described in report.METRICS.
ECHO_SCENARIOS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rt_64b_1c", ("--mode", "rt", "--connections", "1", "--size", "64")),
    ("rt_64b_64c", ("--mode", "rt", "--connections", "64", "--size", "64")),
    ("rt_16k_16c", ("--mode", "rt", "--connections", "16", "--size", "16384")),
    ("stream_1m", ("--mode", "rt", "--connections", "1", "--size", "1048576")),
    ("handshakes", ("--mode", "handshake", "--connections", "8")),
)

# Compressed round trips (issue 17): JSON-like text, permessage-deflate offered as browsers do
# ("permessage-deflate; client_max_window_bits"), each message compressed once by the load
# generator; servers started with --deflate.
_COMPRESSED_JSON = ("--mode", "rt", "--payload", "json", "--deflate")
DEFLATE_SCENARIOS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rt_json1k_64c_deflate", (*_COMPRESSED_JSON, "--connections", "64", "--size", "1024")),
    ("rt_json16k_16c_deflate", (*_COMPRESSED_JSON, "--connections", "16", "--size", "16384")),
)
# wss (issue 17): the 64-connection and 1 MiB rows over TLS; servers started with --tls-cert.
TLS_SCENARIOS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tls_rt_64b_64c", ("--mode", "rt", "--connections", "64", "--size", "64", "--tls")),
    ("tls_stream_1m", ("--mode", "rt", "--connections", "1", "--size", "1048576", "--tls")),
)
SCENARIOS_BY_KIND = {"plain": ECHO_SCENARIOS, "deflate": DEFLATE_SCENARIOS, "tls": TLS_SCENARIOS}
# Memory per connection on a fresh --deflate server: (metric, offer deflate?, warm messages).
DEFLATE_MEMORY_CASES = (
    ("memory_plain_idle", False, 0),
    ("memory_deflate_idle", True, 0),
    ("memory_plain_busy", False, DEFLATE_WARM_MESSAGES),
    ("memory_deflate_busy", True, DEFLATE_WARM_MESSAGES),
)


def echo_round(
    contenders: list[str],
    options: argparse.Namespace,
    results: Results,
    skipped: dict[str, str],
    kind: str = "plain",
) -> dict[str, float]:
    """Start every contender's echo server, then run each echo scenario across all of them.

    Args:
        kind: "plain" (ECHO_SCENARIOS), "deflate" (servers with --deflate, DEFLATE_SCENARIOS)
            or "tls" (servers serving wss, TLS_SCENARIOS).

    Returns:
        Each contender's rate on rt_64b_64c in this round (plain only): the latency rows'
        offered rate comes from it.
    """
    servers: dict[str, Server] = {}
    peaks: dict[str, float] = {}
    try:
        for name in contenders:
            server = start_or_skip(name, options, False, skipped, kind)
            if server is not None:
                servers[name] = server
        for scenario, arguments in SCENARIOS_BY_KIND[kind]:
            for name, server in servers.items():
                passes = (*arguments, "--duration", str(options.duration))
                result = measure(name, scenario, server, passes, options, 60)
                if result is None:
                    continue
                if kind == "deflate" and not compressed_replies(name, scenario, result):
                    continue
                record_echo(results, name, scenario, result)
                if scenario == "rt_64b_64c":
                    peaks[name] = result["rate"]
    finally:
        for server in servers.values():
            server.stop()
    return peaks


def record_echo(results: Results, name: str, scenario: str, result: dict[str, Any]) -> None:
    """Record one echo pass: its rate, both processes' CPU, the server's CPU per message."""
    seconds = result["seconds"]
    value = result["mib_per_s"] if scenario.endswith("stream_1m") else result["rate"]
    record(results, name, scenario, value)
    record(results, name, f"{scenario}.loadgen_cpu", result["cpu_percent"])
    record(results, name, f"{scenario}.server_cpu", 100 * result["server_cpu_seconds"] / seconds)
    count = result.get("handshakes") or result.get("messages") or 0
    if count:
        for part in ("user", "system"):
            microseconds = 1e6 * result[f"server_{part}_seconds"] / count
            record(results, name, f"{scenario}.server_{part}_us", microseconds)
    if result.get("deflate_offered") and result.get("replies"):
        replies = result["replies"]
        compressed_pct = 100 * result["compressed_replies"] / replies
        record(results, name, f"{scenario}.compressed_pct", compressed_pct)
        record(results, name, f"{scenario}.reply_bytes", result["reply_payload_bytes"] / replies)


def compressed_replies(name: str, scenario: str, result: dict[str, Any]) -> bool:
    """Check that every connection negotiated deflate and every reply had RSV1; say if not."""
    connections, negotiated = result["connections"], result["deflate_connections"]
    replies, compressed = result["replies"], result["compressed_replies"]
    if negotiated == connections and compressed == replies and replies > 0:
        return True
    print(
        f"  {name} {scenario}: not counted: {negotiated} of {connections} connections negotiated"
        f" permessage-deflate, {compressed} of {replies} replies compressed (RSV1)",
        flush=True,
    )
    return False


def deflate_memory(
    name: str, options: argparse.Namespace, results: Results, skipped: dict[str, str]
) -> None:
    """RSS per connection on fresh --deflate servers, with and without deflate offered.

    For each case a fresh server is warmed up (4 connections exchanging compressed JSON), its
    RSS is read, then DEFLATE_MEMORY_CONNECTIONS connections open (offering deflate or not) and
    each does 0 or DEFLATE_WARM_MESSAGES round trips of 1 KiB JSON before the RSS is read again.
    """
    connections = min(DEFLATE_MEMORY_CONNECTIONS, options.idle_connections)
    for metric, offer, warm_messages in DEFLATE_MEMORY_CASES:
        server = start_or_skip(name, options, False, skipped, "deflate")
        if server is None:
            return
        try:
            json_1k = ("--payload", "json", "--size", "1024")
            warm_up = ("--mode", "rt", "--connections", "4", "--duration", "0.2", *json_1k)
            if measure(name, "warm-up", server, (*warm_up, "--deflate"), options, 30) is None:
                return
            time.sleep(0.2)
            baseline = rss_bytes(server.process.pid)
            arguments: tuple[str, ...] = ("--mode", "idle", "--connections", str(connections))
            arguments += (*json_1k, "--warm-messages", str(warm_messages))
            if offer:
                arguments += ("--deflate",)
            result = measure(name, metric, server, arguments, options, 120)
            if result is None:
                continue
            if offer and result["deflate_connections"] != connections:
                print(f"  {name} {metric}: deflate not negotiated: {result}", flush=True)
                continue
            per_connection = (result["server_rss_at_ready"] - baseline) / connections
            record(results, name, metric, per_connection / 1024)
        finally:
            server.stop()


def idle_memory(
    name: str, options: argparse.Namespace, results: Results, skipped: dict[str, str]
) -> None:
    """Measure server RSS growth per idle connection on a fresh server."""
    server = start_or_skip(name, options, False, skipped)
    if server is None:
        return
    try:
        # Warm up: import lazily loaded code paths before taking the baseline.
        warm_up = ("--mode", "rt", "--connections", "4", "--duration", "0.2")
        if measure(name, "warm-up", server, warm_up, options, 30) is None:
            return
        time.sleep(0.2)
        baseline = rss_bytes(server.process.pid)
        arguments = ("--mode", "idle", "--connections", str(options.idle_connections))
        result = measure(name, "idle_memory", server, arguments, options, 120)
        if result is not None:
            per_connection = (result["server_rss_at_ready"] - baseline) / options.idle_connections
            record(results, name, "idle_memory", per_connection / 1024)
    finally:
        server.stop()


def broadcast(
    name: str,
    options: argparse.Namespace,
    results: Results,
    skipped: dict[str, str],
    group: str = "broadcast",
) -> None:
    """Time one 64-byte message broadcast to all clients; server CPU per delivered message.

    Args:
        group: "broadcast" (1,000 clients) or "broadcast10k" (10,000): the metrics' prefix.
    """
    server = start_or_skip(name, options, True, skipped)
    if server is None:
        return
    clients = options.broadcast_connections[group]
    try:
        arguments = (
            "--mode", "broadcast", "--connections", str(clients), "--size", "64",
            "--rounds", "100000", "--duration", str(options.duration),
        )  # fmt: skip
        result = measure(name, group, server, arguments, options, 180)
        if result is not None and result["rounds"]:
            deliveries = result["rounds"] * clients
            record(results, name, f"{group}_ms", result["median_ms"])
            cpu_us = 1e6 * result["server_cpu_seconds"] / deliveries
            record(results, name, f"{group}_cpu_us", cpu_us)
            seconds = result["seconds"]
            record(results, name, f"{group}.loadgen_cpu", result["cpu_percent"])
            server_cpu = 100 * result["server_cpu_seconds"] / seconds
            record(results, name, f"{group}.server_cpu", server_cpu)
            for part in ("user", "system"):
                microseconds = 1e6 * result[f"server_{part}_seconds"] / deliveries
                record(results, name, f"{group}.server_{part}_us", microseconds)
    finally:
        server.stop()


def rotations(contenders: list[str], rounds: int) -> Iterator[list[str]]:
    """Yield the contenders once per round, rotated so each takes every position in turn."""
    for round_index in range(rounds):
        shift = round_index % len(contenders)
        yield contenders[shift:] + contenders[:shift]


def parse_arguments() -> argparse.Namespace:
    """Parse the runner's command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round (under 2 minutes)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, --quick 1)")
    parser.add_argument(
        "--duration", type=float, help="seconds per measurement (default 3, --quick 1.5)"
    )
    parser.add_argument(
        "--contenders",
        default=",".join(DEFAULT_CONTENDERS),
        help="comma-separated; python ones also as NAME+uvloop, and framewire+pure "
        "(FRAMEWIRE_NO_SPEEDUPS=1) (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-rate",
        type=float,
        help="latency rows: offer this many msg/s (over 64 connections) to every contender "
        "instead of a fraction of the reference's peak",
    )
    parser.add_argument(
        "--latency-fraction",
        type=float,
        default=0.5,
        help="latency rows: offered rate as a fraction of the reference's rt_64b_64c rate in "
        "the same round (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-spin",
        action="store_true",
        help="latency rows: the load generator polls instead of sleeping between messages "
        "(lower, steadier times on a quiet machine; worse on a busy one)",
    )
    parser.add_argument(
        "--deflate-contenders",
        default=",".join(DEFAULT_DEFLATE_CONTENDERS),
        help="contenders of the compressed rows (default: %(default)s)",
    )
    parser.add_argument(
        "--rows",
        default=",".join(ROW_GROUPS),
        help="comma-separated row groups to run (default: %(default)s)",
    )
    parser.add_argument(
        "--reference", default="framewire", help="ratios are against this contender"
    )
    parser.add_argument("--python", help="interpreter for the servers (default: benchmarks/.venv)")
    parser.add_argument(
        "--framewire-path",
        default="",
        help="framewire's servers import framewire from here (PYTHONPATH), e.g. src, instead of "
        "the venv's copy",
    )
    parser.add_argument("--idle-connections", type=int, default=IDLE_CONNECTIONS)
    parser.add_argument("--json", type=Path, help="write raw results here (default: results/)")
    options = parser.parse_args()
    options.rounds = options.rounds or (1 if options.quick else 3)
    options.duration = options.duration or (1.5 if options.quick else 3.0)
    options.contenders = [name.strip() for name in options.contenders.split(",") if name.strip()]
    options.deflate_contenders = [
        name.strip() for name in options.deflate_contenders.split(",") if name.strip()
    ]
    options.rows = [group.strip() for group in options.rows.split(",") if group.strip()]
    unknown = set(options.rows) - set(ROW_GROUPS)
    if unknown:
        parser.error(f"unknown row groups: {', '.join(sorted(unknown))}")
    if options.framewire_path:
        options.framewire_path = str(Path(options.framewire_path).resolve())
    return options


def prepare(options: argparse.Namespace) -> None:
    """Build the C programs, pick interpreters and CPUs, raise the open-file limit, and make the
    TLS certificate when the wss rows run."""
    # zlib for --deflate, OpenSSL for --tls (Debian: zlib1g-dev, libssl-dev).
    libraries = ("-lz", "-lssl", "-lcrypto")
    compile_c(HERE / "loadgen" / "loadgen.c", BUILD / "loadgen", libraries)
    compile_c(HERE / "servers" / "c_echo.c", BUILD / "c_echo")
    options.certificate = make_certificate(BUILD / "tls") if "tls" in options.rows else None
    venv_python = HERE / ".venv" / "bin" / "python"
    if options.python is None:
        options.python = str(venv_python) if venv_python.exists() else sys.executable
        if not venv_python.exists():
            print("note: benchmarks/.venv missing (run setup_env.sh); using", sys.executable)
    cpus = sorted(os.sched_getaffinity(0))
    options.cpus = (cpus[0], cpus[1]) if len(cpus) > 1 else (None, None)
    if len(cpus) < 2:
        print("note: one CPU only: server and load generator are not pinned apart")
    # Server and load generator each inherit this limit and hold one descriptor per
    # connection: the largest row needs 10,000 each (RLIMIT_NOFILE's hard limit may be lower).
    largest = max(options.idle_connections, *BROADCAST_CONNECTIONS.values())
    limit = raise_open_file_limit(largest + 1024)
    if limit < options.idle_connections + 256:
        options.idle_connections = max(100, limit - 256)
        count = options.idle_connections
        print(f"note: RLIMIT_NOFILE is {limit}: idle_memory uses {count} connections")
    options.broadcast_connections = dict(BROADCAST_CONNECTIONS)
    for group, clients in BROADCAST_CONNECTIONS.items():
        if limit < clients + 256:
            options.broadcast_connections[group] = max(100, limit - 256)
            count = options.broadcast_connections[group]
            print(f"note: RLIMIT_NOFILE is {limit}: {group} uses {count} clients, not {clients}")


def main() -> None:
    """Run every scenario over the rounds and print the tables."""
    options = parse_arguments()
    prepare(options)
    started = time.monotonic()
    results: Results = {}
    skipped: dict[str, str] = {}
    print(machine_description(options.python), flush=True)
    plain_orders = rotations(options.contenders, options.rounds)
    deflate_orders = rotations(options.deflate_contenders, options.rounds)
    rounds = zip(plain_orders, deflate_orders, strict=True)
    for round_index, (order, deflate_order) in enumerate(rounds, 1):
        print(f"round {round_index}/{options.rounds}: {', '.join(order)}", flush=True)
        peaks: dict[str, float] = {}
        if "echo" in options.rows:
            peaks = echo_round(order, options, results, skipped)
        if "latency" in options.rows:
            latency_round(order, options, results, skipped, peaks)
        if "tls" in options.rows:
            print("  wss rows", flush=True)
            echo_round(order, options, results, skipped, kind="tls")
        if "deflate" in options.rows:
            print(f"  compressed rows: {', '.join(deflate_order)}", flush=True)
            echo_round(deflate_order, options, results, skipped, kind="deflate")
        if "memory" in options.rows:
            for name in order:
                idle_memory(name, options, results, skipped)
        if "deflate-memory" in options.rows:
            for name in deflate_order:
                deflate_memory(name, options, results, skipped)
        for group in ("broadcast", "broadcast10k"):
            if group in options.rows:
                for name in order:
                    broadcast(name, options, results, skipped, group)
    everyone = list(dict.fromkeys([*options.contenders, *options.deflate_contenders]))
    ran = [name for name in everyone if name in results]
    print_tables(results, ran, options.reference, skipped)
    print(f"\ntotal time {time.monotonic() - started:.0f} s; at the end, {load_average()}")
    output = options.json or HERE / "results" / time.strftime("run-%Y%m%d-%H%M%S.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {
                "options": vars(options) | {"json": str(output)},
                "skipped": skipped,
                "results": results,
                "metrics": list(METRICS),
            },
            indent=1,
            default=str,
        )
    )
    print(f"raw results: {output}")


if __name__ == "__main__":
    main()
