"""Timing exported graphs against each other on the CPU, in the same process, with the engine's session options.

Candidates run in alternating rounds so that a change in the machine's load falls on all of them alike, and the
order rotates from round to round so that none always follows the same neighbour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

# the engine's own options (threads, no spinning), so that a timing here is what the engine gets
from oppy.engine.session import session_options

LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,  # what the engine uses: adds the CPU layout pass (NCHWc)
}


def cpu_session(model: str | Path | bytes, level: str = "all", threads: int = 0,
                save_to: str | Path | None = None) -> ort.InferenceSession:
    """An ONNX Runtime CPU session with the engine's options at optimization `level`; with `save_to`, the
    graph as optimized at that level is also written there."""
    options = session_options(threads)
    options.graph_optimization_level = LEVELS[level]
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                providers=["CPUExecutionProvider"])


def runner(session: ort.InferenceSession, tiles: np.ndarray) -> Callable[[], object]:
    """One batch through `session`: NHWC `tiles` [n, T, T, 1], or the same bytes as [n, 1, T, T] when the
    graph's input is channels-first (equal in memory for one channel); a context input gets the same tiles."""
    feed = {node.name: tiles.reshape(len(tiles), 1, *tiles.shape[1:3]) if node.shape[1] == 1 else tiles
            for node in session.get_inputs()}
    return lambda: session.run(None, feed)


def alternating_times(work: dict[str, Callable[[], object]], rounds: int = 7,
                      warmup: int = 2) -> dict[str, list[float]]:
    """Seconds of each call in `work`, timed in `rounds` rounds that call each once, in turn (starting one
    further each round), after `warmup` untimed rounds."""
    names = list(work)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(warmup + rounds):
        turn = index % len(names)
        for name in names[turn:] + names[:turn]:
            start = time.perf_counter()
            work[name]()
            if index >= warmup:
                times[name].append(time.perf_counter() - start)
    return times
