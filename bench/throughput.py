"""End-to-end frames/s of the engine beside what its model alone allows, measured alternately in one run.

The model-only figure is full batches through the same ONNX Runtime session the engine uses; the ratio
(end to end / model-only frames/s) is the pipeline's efficiency: 1.0 means everything else is hidden.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from oppy.engine import Engine
from oppy.engine.kernels.lab import gray_to_l
from oppy.engine.kernels.tiles import cut_tiles, plan_tiles

from .synth import write_archive


def model_tiles_per_second(engine: Engine, frame: np.ndarray, batches: int = 4) -> float:
    """Tiles/s of the engine's own session on full batches of real tiles (cut from `frame`)."""
    contract, session = engine.contract, engine.session
    plan = plan_tiles(*frame.shape, contract.tile_size, engine.overlap)
    tiles = cut_tiles(gray_to_l(frame), plan, contract.l_scale, contract.l_shift)
    session.input_buffer[:] = np.resize(tiles, session.input_buffer.shape)
    context = session.context_buffer  # a context input costs the same whatever it shows
    if context is not None:
        context[:] = session.input_buffer
    session.run(context=context)  # warm-up
    start = time.perf_counter()
    for _ in range(batches):
        session.run(context=context)
    return batches * session.batch_size / (time.perf_counter() - start)


def bench_engine(model: str | Path, frames: int = 8, width: int = 1024, height: int = 1024, repeats: int = 3,
                 provider: str = "cpu", batch_size: int = 256, workdir: str | Path | None = None) -> dict:
    """Alternate model-only and end-to-end measurements `repeats` times; report medians and their ratio."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        archive = Path(tmp) / "archive"
        paths = write_archive(archive, frames, width, height)
        sample = cv2.imread(str(paths[0]), cv2.IMREAD_GRAYSCALE)
        with Engine(model, provider=provider, batch_size=batch_size, overwrite=True) as engine:
            engine.colorize(sample)  # warm-up: kernels compiled, session initialised
            tiles_per_frame = plan_tiles(height, width, engine.contract.tile_size, engine.overlap).count
            model_rates, e2e_rates, reports = [], [], []
            for _ in range(repeats):
                model_rates.append(model_tiles_per_second(engine, sample))
                report = engine.render(archive, Path(tmp) / "out.mp4")
                e2e_rates.append(report.frames_per_second)
                reports.append(report)
            provider_used = engine.provider
    median_report = sorted(reports, key=lambda r: r.frames_per_second)[len(reports) // 2]
    model_tiles = statistics.median(model_rates)
    model_fps = model_tiles / tiles_per_frame
    e2e_fps = statistics.median(e2e_rates)
    return {
        "model": str(model), "provider": provider_used, "batch_size": batch_size, "frames": frames,
        "size": f"{width}x{height}", "tiles_per_frame": tiles_per_frame, "repeats": repeats,
        "model_tiles_per_s": model_tiles, "model_frames_per_s": model_fps, "e2e_frames_per_s": e2e_fps,
        "e2e_tiles_per_s": e2e_fps * tiles_per_frame, "efficiency": e2e_fps / model_fps,
        "stage_busy_seconds": median_report.stage_busy_seconds, "wall_seconds": median_report.wall_seconds,
    }
