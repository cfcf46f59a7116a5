"""What the benchmark runner measures, and the tables it prints."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

Results = dict[str, dict[str, list[float]]]  # contender -> metric -> one value per round


def record(results: Results, contender: str, metric: str, value: float) -> None:
    """Append one round's value of ``metric`` for ``contender``."""
    results.setdefault(contender, {}).setdefault(metric, []).append(value)


class Metric(NamedTuple):
    """One row of the results table.

    ``flag``, when set, names a metric whose median above 0 marks the value with "*" (a paced
    latency measured on a server that could not keep up with the offered rate).
    """

    label: str
    unit: str
    higher_is_better: bool
    flag: str = ""


LATENCY_SATURATED = "latency_64c.saturated"
METRICS: dict[str, Metric] = {
    "rt_64b_1c": Metric("round trips, 64 B, 1 connection", "msg/s", True),
    "rt_64b_64c": Metric("round trips, 64 B, 64 connections", "msg/s", True),
    # Paced latency (issue 17): the same offered rate for every contender; see latency.py.
    "latency_64c_p50": Metric(
        "paced 64 B, 64 connections: p50 round trip", "ms", False, LATENCY_SATURATED
    ),
    "latency_64c_p99": Metric(
        "paced 64 B, 64 connections: p99 round trip", "ms", False, LATENCY_SATURATED
    ),
    "rt_16k_16c": Metric("round trips, 16 KiB, 16 connections", "msg/s", True),
    "stream_1m": Metric("1 MiB messages echoed, 1 connection", "MiB/s", True),
    "handshakes": Metric("open + close, 8 concurrent", "handshakes/s", True),
    "idle_memory": Metric("server RSS per idle connection (5,000)", "KiB", False),
    "broadcast_ms": Metric("broadcast 64 B to 1,000 clients, median", "ms", False),
    "broadcast_cpu_us": Metric("broadcast: server CPU per delivered message", "us", False),
    "broadcast10k_ms": Metric("broadcast 64 B to 10,000 clients, median", "ms", False),
    "broadcast10k_cpu_us": Metric(
        "broadcast to 10,000: server CPU per delivered message", "us", False
    ),
    # wss (issue 17): TLS 1.3, TLS_AES_128_GCM_SHA256, one self-signed ECDSA P-256 certificate.
    "tls_rt_64b_64c": Metric("wss: round trips, 64 B, 64 connections", "msg/s", True),
    "tls_stream_1m": Metric("wss: 1 MiB messages echoed, 1 connection", "MiB/s", True),
    # Compression negotiated (issue 17): servers started with --deflate.
    "rt_json1k_64c_deflate": Metric(
        "deflate: round trips, 1 KiB JSON, 64 connections", "msg/s", True
    ),
    "rt_json16k_16c_deflate": Metric(
        "deflate: round trips, 16 KiB JSON, 16 connections", "msg/s", True
    ),
    "memory_plain_idle": Metric(
        "RSS per connection (2,000), deflate not offered, idle", "KiB", False
    ),
    "memory_deflate_idle": Metric(
        "RSS per connection (2,000), deflate, before a message", "KiB", False
    ),
    "memory_plain_busy": Metric("RSS per connection, not offered, after 20 x 1 KiB", "KiB", False),
    "memory_deflate_busy": Metric("RSS per connection, deflate, after 20 x 1 KiB", "KiB", False),
}
CPU_CHECKED = (
    "rt_64b_1c",
    "rt_64b_64c",
    "latency_64c",
    "rt_16k_16c",
    "stream_1m",
    "handshakes",
    "broadcast",
    "broadcast10k",
    "rt_json1k_64c_deflate",
    "rt_json16k_16c_deflate",
    "tls_rt_64b_64c",
    "tls_stream_1m",
)
DEFLATE_CHECKED = ("rt_json1k_64c_deflate", "rt_json16k_16c_deflate")
# The paced latency table: (column title, metric, format).
LATENCY_DETAILS = (
    ("offered msg/s", "latency_64c.offered", ",.0f"),
    ("reached %", "latency_64c.achieved_pct", ".0f"),
    ("p50", "latency_64c_p50", ".3f"),
    ("p90", "latency_64c.p90_ms", ".3f"),
    ("p99", "latency_64c_p99", ".3f"),
    ("p99.9", "latency_64c.p999_ms", ".2f"),
    ("max", "latency_64c.max_ms", ".2f"),
    ("lag", "latency_64c.max_send_lag_ms", ".2f"),
)
# Pairs whose ratio the issues set targets on (issue 17): printed when both columns ran.
PAIRS = (
    ("framewire", "picows"),
    ("framewire+uvloop", "picows+uvloop"),
    ("framewire+pure", "wsproto"),
)


def machine_description(python: str) -> str:
    """Return the date, CPU, core count and contender versions, for the README's results."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    script = (
        "import importlib.metadata as m, sys\n"
        "names = ('framewire', 'websockets', 'aiohttp', 'picows', 'wsproto', 'uvloop', 'isal')\n"
        "def version(n):\n"
        "    try: return m.version(n)\n"
        "    except m.PackageNotFoundError: return '-'\n"
        "print(sys.version.split()[0], *(f'{n} {version(n)}' for n in names), sep=', ')\n"
    )
    versions = subprocess.run([python, "-c", script], capture_output=True, text=True, check=False)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"date: {now}\n"
        f"machine: {os.cpu_count()} CPUs (nproc), {model}, Linux {platform.release()}\n"
        f"python: {versions.stdout.strip() or versions.stderr.strip()}\n"
        f"{load_average()}"
    )


def load_average() -> str:
    """Return the 1/5/15-minute load averages: other work on the machine skews results."""
    one, five, fifteen = os.getloadavg()
    return f"load average: {one:.2f} {five:.2f} {fifteen:.2f} (of {os.cpu_count()} CPUs)"


def format_value(value: float) -> str:
    """Format a median with about three significant digits."""
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def print_table(rows: list[list[str]]) -> None:
    """Print rows as aligned columns, the first left-aligned and the rest right-aligned."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def print_tables(
    results: dict[str, dict[str, list[float]]],
    contenders: list[str],
    reference: str,
    skipped: dict[str, str],
) -> None:
    """Print medians with ratios against ``reference``, then the CPU check tables."""
    if not contenders:
        print("\nno contender ran")
        return
    if reference not in contenders:
        fallback = next((name for name in contenders if name != "c_echo"), contenders[0])
        print(f"\nnote: reference {reference!r} did not run; ratios are against {fallback!r}")
        reference = fallback

    def median(name: str, metric: str) -> float | None:
        values = results.get(name, {}).get(metric)
        return statistics.median(values) if values else None

    def pair_rows(
        title: str, suffixes: tuple[str, str], spec: str, metrics: tuple[str, ...] = CPU_CHECKED
    ) -> list[list[str]]:
        """Rows of "first / second" medians per checked scenario and contender."""
        rows = [[f"scenario: {title}", *contenders]]
        for metric in metrics:
            if all(median(name, f"{metric}.{suffixes[0]}") is None for name in contenders):
                continue  # a row group that did not run
            row = [metric]
            for name in contenders:
                first, second = (median(name, f"{metric}.{suffix}") for suffix in suffixes)
                if first is None or second is None:
                    row.append("-")
                else:
                    row.append(f"{first:{spec}} / {second:{spec}}")
            rows.append(row)
        return rows

    header = ["scenario (median; ratio = value / " + reference + ")"]
    rows = [header + [f"{name} (baseline)" if name == "c_echo" else name for name in contenders]]
    flagged = False
    for metric, (label, unit, higher_is_better, flag) in METRICS.items():
        if all(median(name, metric) is None for name in contenders):
            continue  # a row group that did not run
        better = "higher" if higher_is_better else "lower"
        row = [f"{label} [{unit}, {better} is better]"]
        base = median(reference, metric)
        for name in contenders:
            value = median(name, metric)
            mark = "*" if flag and (median(name, flag) or 0) > 0 else ""
            flagged = flagged or bool(mark)
            if value is None:
                row.append("-")
            elif base:
                row.append(f"{mark}{format_value(value)} ({value / base:.2f}x)")
            else:
                row.append(mark + format_value(value))
        rows.append(row)
    print()
    print_table(rows)
    if flagged:
        print(
            "* saturated: in most rounds this server answered under 95 % of the offered rate"
            " (or left messages unanswered), so its latency is mostly queueing"
        )
    print_latency_table(median, contenders)
    print("\nCPU check (median %; load generator well under 100% means it is not the bottleneck)")
    print_table(pair_rows("loadgen% / server%", ("loadgen_cpu", "server_cpu"), ".0f"))
    print(
        "\nServer CPU per message, handshake or delivery (median; user = the server's own code,"
        " system = the kernel)"
    )
    print_table(pair_rows("user / system us", ("server_user_us", "server_system_us"), ".1f"))
    deflate_rows = pair_rows(
        "compressed % / bytes", ("compressed_pct", "reply_bytes"), ".0f", DEFLATE_CHECKED
    )
    if len(deflate_rows) > 1:
        print(
            "\nCompressed replies (median; % of replies with RSV1 set, and payload bytes per reply"
            " as sent: the load generator counts them without inflating)"
        )
        print_table(deflate_rows)
    print_pair_ratios(median, contenders)
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")


Median = Callable[[str, str], "float | None"]


def print_latency_table(median: Median, contenders: list[str]) -> None:
    """Print the paced latency rows in full: offered and reached rate, percentiles in ms."""
    ran = [name for name in contenders if median(name, "latency_64c_p99") is not None]
    if not ran:
        return
    print(
        "\nPaced round trips, 64 B, 64 connections (median over rounds; every contender offered"
        " the same rate, msg/s over all connections; times in ms from each message's scheduled"
        " send to its echo; lag: the most the generator itself started a message late)"
    )
    rows = [["contender", *(title for title, _, _ in LATENCY_DETAILS)]]
    for name in ran:
        cells = [name]
        for _, metric, spec in LATENCY_DETAILS:
            value = median(name, metric)
            cells.append("-" if value is None else f"{value:{spec}}")
        rows.append(cells)
    print_table(rows)


def print_pair_ratios(median: Median, contenders: list[str]) -> None:
    """Print, for each pair in PAIRS that ran, how far the first is ahead of the second per row.

    The advantage is first/second where higher is better and second/first where lower is
    better, so above 1.00 always means the first is ahead.
    """
    pairs = [(first, second) for first, second in PAIRS if {first, second} <= set(contenders)]
    if not pairs:
        return
    rows = [["row: advantage (>1.00: the first is ahead)", *(f"{a} / {b}" for a, b in pairs)]]
    for metric, (label, _, higher_is_better, _) in METRICS.items():
        cells = [label]
        for first, second in pairs:
            a, b = median(first, metric), median(second, metric)
            if a is None or b is None or a <= 0 or b <= 0:
                cells.append("-")
            else:
                cells.append(f"{a / b if higher_is_better else b / a:.2f}")
        if any(cell != "-" for cell in cells[1:]):
            rows.append(cells)
    if len(rows) > 1:
        print("\nPairs with targets in issue 17 (medians)")
        print_table(rows)
