"""The fuzz targets in fuzz/, briefly: every seed replayed in-process, then a short libFuzzer run.

The replay needs no atheris: each target's check() is a plain function, so the seeds (and any
input a long run saved in the corpus) are deterministic regression tests on every Python.
The short runs start each target as a subprocess under atheris with a fixed seed and a fixed
number of executions, two at a time (this machine has two cores), and skip where atheris has no
wheel (see fuzz/README.md). fuzz/README.md has the commands for long runs.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import framewire

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "fuzz"
CORPUS = FUZZ / "corpus"
if str(FUZZ) not in sys.path:
    sys.path.append(str(FUZZ))

# Executions per target in the short run, seeds included: a few seconds each here (2 cores).
RUNS = {
    "frames": 1000,
    "connection": 2500,
    "http11": 1200,
    "multipart": 600,
    "handshake": 4000,
    "deflate": 1200,
    "chat_json": 3000,
}
TARGETS = sorted(RUNS)
RUN_TIMEOUT = 120.0  # seconds one short run may take before it counts as hung


def target_module(name: str) -> Any:
    return importlib.import_module(f"fuzz_{name}")


def corpus_files(name: str) -> list[Path]:
    return sorted(path for path in (CORPUS / name).iterdir() if path.is_file())


# --------------------------------------------------------------------------- replay


@pytest.mark.parametrize("name", TARGETS)
def test_every_seed_passes_its_target_check(name: str) -> None:
    check = target_module(name).check
    files = corpus_files(name)
    assert files, f"fuzz/corpus/{name} has no seeds"
    for path in files:
        try:
            check(path.read_bytes())
        except Exception as error:
            raise AssertionError(f"fuzz/corpus/{name}/{path.name}: {error!r}") from error


def test_each_target_has_a_script_and_a_corpus_and_nothing_else_is_there() -> None:
    scripts = {path.stem.removeprefix("fuzz_") for path in FUZZ.glob("fuzz_*.py")}
    assert scripts == set(TARGETS)
    assert {path.name for path in CORPUS.iterdir()} == set(TARGETS)


def test_the_whole_seed_corpus_stays_under_one_megabyte() -> None:
    total = sum(path.stat().st_size for path in CORPUS.rglob("*") if path.is_file())
    assert total < 1 << 20, f"fuzz/corpus holds {total} bytes"


def test_the_differential_check_really_swaps_in_the_c_twins() -> None:
    """A rename in framewire must not leave the C-versus-Python comparison comparing Python
    with Python: implementation("c") puts the extension's functions in place."""
    invariants = importlib.import_module("_invariants")
    from framewire.sansio import connection, decoder, http11_framing, sending

    if invariants.C_SPEEDUPS is None:
        pytest.skip("framewire._speedups was not built: only the Python path is fuzzed")
    speedups = invariants.C_SPEEDUPS
    with invariants.implementation("c"):
        assert connection.parse_whole_frames is speedups.parse_whole_frames
        assert decoder.PayloadBuffer is speedups.PayloadBuffer
        assert http11_framing.parse_field_lines is speedups.parse_field_lines
    with invariants.implementation("python"):
        assert decoder.PayloadBuffer is None
        assert sending.apply_mask is not speedups.apply_mask
    assert invariants.implementations() == ["python", "c"]


# --------------------------------------------------------------------------- short runs


def _subprocess_env() -> dict[str, str]:
    """The environment of a short run: the same framewire as this test process imports."""
    env = dict(os.environ)
    source = str(Path(framewire.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    return env


def _short_run(name: str, work: Path) -> dict[str, Any]:
    """Fuzz ``name`` for RUNS[name] executions from its seeds; return what libFuzzer said."""
    new_inputs = work / name / "new"  # libFuzzer adds inputs to the first directory only
    new_inputs.mkdir(parents=True)
    command = [
        sys.executable,
        str(FUZZ / f"fuzz_{name}.py"),
        f"-runs={RUNS[name]}",
        "-seed=1",
        "-timeout=30",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        f"-artifact_prefix={work / name}/",
        str(new_inputs),
        str(CORPUS / name),
    ]
    start = time.monotonic()
    completed = subprocess.run(
        command,
        cwd=work,
        env=_subprocess_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    log = completed.stderr + completed.stdout
    executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    coverage = re.search(r"DONE\s+cov: (\d+) ft: (\d+)", log)
    return {
        "returncode": completed.returncode,
        "log": log,
        "seconds": time.monotonic() - start,
        "executed": int(executed.group(1)) if executed else None,
        "coverage": coverage.groups() if coverage else None,
    }


@pytest.fixture(scope="module")
def short_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Start the short runs this session selected, two at a time; map name -> future."""
    pytest.importorskip(
        "atheris",
        reason="atheris is not installed (it has wheels only for CPython 3.11-3.14 on Linux "
        "x86-64); the seed replays above still ran every target's checks",
    )
    selected = [
        item.callspec.params["name"]
        for item in request.session.items
        if item.originalname == "test_short_fuzz_run_finds_nothing" and hasattr(item, "callspec")
    ]
    work = tmp_path_factory.mktemp("fuzz")
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    futures = {name: pool.submit(_short_run, name, work) for name in selected}
    yield futures
    pool.shutdown(cancel_futures=True)


@pytest.mark.parametrize("name", TARGETS)
def test_short_fuzz_run_finds_nothing(name: str, short_runs: Any) -> None:
    result = short_runs[name].result()
    log_tail = "\n".join(result["log"].splitlines()[-40:])
    assert result["returncode"] == 0, f"fuzz_{name} found something:\n{log_tail}"
    assert result["executed"] == RUNS[name], log_tail
    cov, features = result["coverage"] or ("?", "?")
    print(
        f"fuzz_{name}: {result['executed']} executions in {result['seconds']:.1f} s, "
        f"cov {cov}, ft {features}"
    )
