"""Paced latency rows (issue 17): p50 and p99 round trips at 64 connections at one offered rate.

Throughput rows run closed loop (each connection waits for its echo), which says nothing about
the wait a user sees. Here the load generator runs open loop (`loadgen --mode paced`): 64
connections together send a fixed number of 64-byte messages per second, each on schedule
whether or not earlier echoes came back, and every round trip is timed from the message's
scheduled send. The offered rate is the same for every contender in a round, so their
percentiles compare directly: by default half of the reference contender's peak on the
64-connection throughput row measured in the same round (its rt_64b_64c pass when the echo rows
ran, else a probe pass of that row on the reference's server), or a fixed rate (--latency-rate).
A contender that cannot reach the offered rate is marked saturated: its latency then grows with
the length of the run and is mostly queueing.

The generator sleeps between messages by default; its own wake-ups add about 30 us to every
round trip in this VM, the same for every contender. --latency-spin makes it poll instead (about
20 us less), which only a quiet machine allows: loadgen.c's opening comment has the numbers. On
a busy machine the generator itself is late at times: the table's "lag" column is the most it
started a message behind schedule, and c_echo's column is the floor the machine allows.
"""

from __future__ import annotations

import argparse
from typing import Any

from contenders import measure, start_or_skip
from procs import Server
from report import Results, record

SCENARIO = "latency_64c"
CONNECTIONS = 64
SIZE = 64
# Below this share of the offered rate answered within the window, a server is saturated.
SATURATED_BELOW = 0.95
# The rt pass whose rate is the reference's peak when the echo rows did not run.
PEAK_SCENARIO = ("--mode", "rt", "--connections", str(CONNECTIONS), "--size", str(SIZE))


def loadgen_arguments(
    rate: float, duration: float, warm_up: float, spin: bool = False
) -> tuple[str, ...]:
    """Return the load generator's arguments for one paced pass.

    Args:
        rate: messages per second over all connections.
        duration: seconds of sampled traffic, after ``warm_up`` seconds of paced traffic.
        warm_up: seconds.
        spin: poll without sleeping between messages.
    """
    arguments = (
        "--mode", "paced", "--connections", str(CONNECTIONS), "--size", str(SIZE),
        "--rate", f"{rate:.1f}", "--duration", str(duration), "--warm-up", str(warm_up),
    )  # fmt: skip
    return (*arguments, "--spin") if spin else arguments


def pick_reference(preferred: str, started: list[str]) -> str | None:
    """Return whose peak sets the rate: ``preferred`` if its server started, else the first
    Python contender that did (c_echo, a baseline, only when nothing else started)."""
    if preferred in started:
        return preferred
    return next((name for name in started if name != "c_echo"), started[0] if started else None)


def record_latency(results: Results, name: str, result: dict[str, Any]) -> None:
    """Record one paced pass: percentiles, reached rate, saturation and both processes' CPU."""
    offered, reached = result["offered_rate"], result["rate"]
    record(results, name, f"{SCENARIO}_p50", result["p50_ms"])
    record(results, name, f"{SCENARIO}_p99", result["p99_ms"])
    for key in ("p90_ms", "p999_ms", "max_ms", "mean_ms", "max_send_lag_ms"):
        record(results, name, f"{SCENARIO}.{key}", result[key])
    record(results, name, f"{SCENARIO}.offered", offered)
    record(results, name, f"{SCENARIO}.achieved_pct", 100 * reached / offered)
    saturated = reached < SATURATED_BELOW * offered or result["unanswered"] > 0
    record(results, name, f"{SCENARIO}.saturated", float(saturated))
    # Its CPU percentage, or with --spin (always 100 %) its share of time with work to do.
    record(results, name, f"{SCENARIO}.loadgen_cpu", result["busy_percent"])
    seconds = result["seconds"]
    record(results, name, f"{SCENARIO}.server_cpu", 100 * result["server_cpu_seconds"] / seconds)
    if result["messages"]:
        for part in ("user", "system"):
            microseconds = 1e6 * result[f"server_{part}_seconds"] / result["messages"]
            record(results, name, f"{SCENARIO}.server_{part}_us", microseconds)


def latency_round(
    contenders: list[str],
    options: argparse.Namespace,
    results: Results,
    skipped: dict[str, str],
    peaks: dict[str, float],
) -> None:
    """Paced round trips at one offered rate on every contender's fresh echo server.

    The rate is --latency-rate, else --latency-fraction of the reference's rt_64b_64c rate in
    ``peaks`` (this round's echo rows), else of a probe pass of that row on the reference's server.
    """
    servers: dict[str, Server] = {}
    try:
        for name in contenders:
            server = start_or_skip(name, options, False, skipped)
            if server is not None:
                servers[name] = server
        reference = pick_reference(options.reference, list(servers))
        if reference is None:
            return
        rate = options.latency_rate
        how = "--latency-rate"
        if rate is None:
            peak = peaks.get(reference)
            how = f"{options.latency_fraction:g} x {reference}'s rt_64b_64c in this round"
            if peak is None:
                probe = (*PEAK_SCENARIO, "--duration", str(options.duration))
                result = measure(reference, "latency probe", servers[reference], probe, options, 60)
                if result is None:
                    return
                peak = result["rate"]
                how += " (a probe pass)"
            rate = options.latency_fraction * peak
        print(f"  latency rows: {rate:,.0f} msg/s offered ({how})", flush=True)
        warm_up = 0.25 if options.quick else 0.5
        arguments = loadgen_arguments(rate, options.duration, warm_up, options.latency_spin)
        for name, server in servers.items():
            result = measure(name, "latency", server, arguments, options, 90)
            if result is not None:
                record_latency(results, name, result)
    finally:
        for server in servers.values():
            server.stop()
