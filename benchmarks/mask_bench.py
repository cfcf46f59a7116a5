#!/usr/bin/env python3
"""Micro-benchmark of apply_mask: the C accelerator against the pure-Python fallback.

Usage:  python3 benchmarks/mask_bench.py   (uses the framewire importable from this Python)
"""

from __future__ import annotations

import timeit

from framewire.sansio import mask

SIZES = (64, 1024, 16 * 1024, 1024 * 1024)


def seconds_per_call(function: object, data: memoryview, budget: float = 0.2) -> float:
    """Return the best per-call time of function(data, mask) over a few timed batches."""
    timer = timeit.Timer(lambda: function(data, b"\x01\x02\x03\x04"))  # type: ignore[operator]
    calls, _ = timer.autorange()
    calls = max(1, int(calls * budget / 0.2))
    return min(timer.repeat(repeat=3, number=calls)) / calls


def main() -> None:
    """Print one row per payload size, for aligned and unaligned (offset 1) payloads."""
    implementations = {"python": mask.py_apply_mask}
    if mask.SPEEDUPS:
        implementations["c"] = mask.apply_mask
    else:
        print("framewire._speedups is not built (or FRAMEWIRE_NO_SPEEDUPS is set)")
    print(f"{'size':>8} {'offset':>6} " + " ".join(f"{name:>18}" for name in implementations))
    for size in SIZES:
        backing = bytes(size + 1)
        for offset in (0, 1):
            data = memoryview(backing)[offset : offset + size]
            cells = []
            for function in implementations.values():
                seconds = seconds_per_call(function, data)
                cells.append(f"{seconds * 1e6:9.2f} us {size / seconds / 1e9:5.2f} GB/s")
            print(f"{size:>8} {offset:>6} " + " ".join(f"{cell:>18}" for cell in cells))


if __name__ == "__main__":
    main()
