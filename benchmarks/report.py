"""What the benchmark runner measures, and the tables it prints."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import NamedTuple


class Metric(NamedTuple):
    """One row of the results table."""

    label: str
    unit: str
    higher_is_better: bool


METRICS: dict[str, Metric] = {
    "rt_64b_1c": Metric("round trips, 64 B, 1 connection", "msg/s", True),
    "rt_64b_64c": Metric("round trips, 64 B, 64 connections", "msg/s", True),
    "rt_16k_16c": Metric("round trips, 16 KiB, 16 connections", "msg/s", True),
    "stream_1m": Metric("1 MiB messages echoed, 1 connection", "MiB/s", True),
    "handshakes": Metric("open + close, 8 concurrent", "handshakes/s", True),
    "idle_memory": Metric("server RSS per idle connection (5,000)", "KiB", False),
    "broadcast_ms": Metric("broadcast 64 B to 1,000 clients, median", "ms", False),
    "broadcast_cpu_us": Metric("broadcast: server CPU per delivered message", "us", False),
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
    "rt_16k_16c",
    "stream_1m",
    "handshakes",
    "rt_json1k_64c_deflate",
    "rt_json16k_16c_deflate",
)
DEFLATE_CHECKED = ("rt_json1k_64c_deflate", "rt_json16k_16c_deflate")


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
        "names = ('framewire', 'websockets', 'aiohttp', 'picows', 'uvloop')\n"
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
            if all(median(name, metric) is None for name in contenders):
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
    for metric, (label, unit, higher_is_better) in METRICS.items():
        if all(median(name, metric) is None for name in contenders):
            continue  # a row group that did not run
        better = "higher" if higher_is_better else "lower"
        row = [f"{label} [{unit}, {better} is better]"]
        base = median(reference, metric)
        for name in contenders:
            value = median(name, metric)
            if value is None:
                row.append("-")
            elif base:
                row.append(f"{format_value(value)} ({value / base:.2f}x)")
            else:
                row.append(format_value(value))
        rows.append(row)
    print()
    print_table(rows)
    print("\nCPU check (median %; load generator well under 100% means it is not the bottleneck)")
    print_table(pair_rows("loadgen% / server%", ("loadgen_cpu", "server_cpu"), ".0f"))
    print(
        "\nServer CPU per message or handshake (median; user = the server's own code, system ="
        " the kernel)"
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
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
