"""Fuzz every target for a while and print, per target, executions and the coverage reached.

    python3 fuzz/report.py [--seconds 60] [--jobs 2]

Each target runs under atheris for ``--seconds`` from a scratch copy of its seeds (fuzz/corpus is
left as it is), with a fixed libFuzzer seed. Then every input of that scratch corpus is replayed
through the target's check() under coverage.py, and the line and branch coverage of the
framewire modules the target drives is measured. The table it prints is the one in
docs/topics/reliability.md. A failed invariant makes the run fail, with libFuzzer's output.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
SOURCE = ROOT / "src" / "framewire"

# The framewire modules whose rules each target checks: its coverage is measured over these.
DRIVES = {
    "frames": [
        "sansio/decoder.py",
        "sansio/frames.py",
        "sansio/whole_frames.py",
        "sansio/assembly.py",
        "sansio/payload_buffer.py",
    ],
    "connection": ["sansio/connection.py", "sansio/sending.py"],
    "http11": [
        "sansio/http11.py",
        "sansio/http11_framing.py",
        "sansio/http11_body.py",
        "sansio/http11_grammar.py",
        "sansio/http11_encode.py",
        "sansio/field_lines.py",
    ],
    "multipart": ["sansio/multipart.py"],
    "handshake": ["sansio/handshake.py", "sansio/upgrade_request.py"],
    "deflate": ["sansio/deflate.py", "sansio/deflate_header.py", "sansio/deflate_negotiation.py"],
    "chat_json": ["chat/hub.py"],
}


@dataclass
class TargetFigures:
    """What one target's run gave."""

    name: str
    executions: int
    seconds: int
    edges: int
    corpus: int
    line_percent: float
    branch_percent: float


def _fuzz(name: str, seconds: int, work: Path) -> tuple[int, int, int]:
    """Fuzz ``name`` for ``seconds``; return (executions, libFuzzer edges, corpus size)."""
    corpus = work / name
    shutil.copytree(FUZZ / "corpus" / name, corpus)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(FUZZ)]))
    command = [
        sys.executable,
        str(FUZZ / f"fuzz_{name}.py"),
        f"-max_total_time={seconds}",
        "-seed=1",
        "-timeout=30",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        f"-artifact_prefix={work}/{name}-",
        str(corpus),
    ]
    completed = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds * 3 + 120, check=False
    )
    log = completed.stderr + completed.stdout
    if completed.returncode != 0:
        raise SystemExit(f"fuzz_{name} found something (exit {completed.returncode}):\n{log}")
    executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    edges = re.findall(r"cov: (\d+)", log)
    assert executed is not None and edges, f"fuzz_{name}: no libFuzzer statistics:\n{log}"
    return int(executed.group(1)), int(edges[-1]), len(list(corpus.iterdir()))


def _coverage(name: str, corpus: Path) -> tuple[float, float]:
    """Replay ``corpus`` through fuzz_<name>.check() in a fresh process (so that the modules'
    import-time lines count too); return (line %, branch %) of DRIVES[name]."""
    report = corpus.parent / f"{name}-coverage.json"
    subprocess.run(
        [sys.executable, __file__, "--replay", name, str(corpus), str(report)],
        check=True,
        timeout=600,
    )
    totals = json.loads(report.read_text())["totals"]
    return (
        100.0 * totals["covered_lines"] / max(totals["num_statements"], 1),
        100.0 * totals["covered_branches"] / max(totals["num_branches"], 1),
    )


def _replay(name: str, corpus: Path, report: Path) -> None:
    """Measure DRIVES[name] while every input of ``corpus`` goes through the target's check()."""
    import coverage

    files = [str(SOURCE / path) for path in DRIVES[name]]
    measure = coverage.Coverage(branch=True, include=files, data_file=None, config_file=False)
    measure.start()
    try:
        check = importlib.import_module(f"fuzz_{name}").check
        for path in sorted(corpus.iterdir()):
            check(path.read_bytes())
    finally:
        measure.stop()
    measure.json_report(outfile=str(report))


def main() -> None:
    """Fuzz each target, measure its coverage, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="fuzzing time per target")
    parser.add_argument("--jobs", type=int, default=2, help="targets fuzzed at once")
    parser.add_argument("targets", nargs="*", default=sorted(DRIVES), help="default: all")
    parser.add_argument(
        "--replay", nargs=3, metavar=("TARGET", "CORPUS", "REPORT"), help="internal"
    )
    arguments = parser.parse_args()
    sys.path[:0] = [str(ROOT / "src"), str(FUZZ)]
    if arguments.replay:
        target, corpus, report = arguments.replay
        _replay(target, Path(corpus), Path(report))
        return
    with tempfile.TemporaryDirectory(prefix="framewire-fuzz-") as scratch:
        work = Path(scratch)
        with concurrent.futures.ThreadPoolExecutor(arguments.jobs) as pool:
            runs = {
                name: pool.submit(_fuzz, name, arguments.seconds, work)
                for name in arguments.targets
            }
            fuzzed = {name: future.result() for name, future in runs.items()}
        figures = []
        for name, (executions, edges, corpus) in fuzzed.items():
            lines, branches = _coverage(name, work / name)
            figures.append(
                TargetFigures(name, executions, arguments.seconds, edges, corpus, lines, branches)
            )
    print("| target | executions | seconds | libFuzzer edges | corpus | lines | branches |")
    print("|---|---|---|---|---|---|---|")
    for row in figures:
        print(
            f"| `fuzz_{row.name}.py` | {row.executions:,} | {row.seconds} | {row.edges:,} "
            f"| {row.corpus:,} | {row.line_percent:.0f} % | {row.branch_percent:.0f} % |"
        )


if __name__ == "__main__":
    main()
