"""Timing helpers shared by the benchmarks: warm up, repeat, report medians, describe the machine."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

from .device import gpus


def median_seconds(work: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `work()` over `repeats` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> dict:
    """The CPU (and cores) this benchmark ran on, the NVIDIA GPUs beside it (name, driver), if any, and the
    load average."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    # other work on the machine slows every benchmark: the 1, 5 and 15 minute load averages say how much there was
    return {"cpu": cpu, "cores": os.cpu_count() or 0, "python": platform.python_version(), "gpus": gpus(),
            "load_average": list(os.getloadavg())}


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """Rows of dicts as a markdown table with the given columns; floats to three significant digits, None as n/a."""
    def cell(value) -> str:
        return f"{value:.3g}" if isinstance(value, float) else "n/a" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
