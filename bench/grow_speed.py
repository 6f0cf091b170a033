"""The chroma scale's own steps on one frame: shrinking L, and growing a*, b* back guided by L against bilinearly."""

from __future__ import annotations

import numpy as np

from oppy.engine.lab import gray_to_l
from oppy.engine.scale import grow, grow_bilinear, shrink

from .synth import synth_frames
from .timing import median_seconds


def bench_grow(width: int = 1024, height: int = 1024, scale: float = 0.25, repeats: int = 20) -> list[dict]:
    """Median milliseconds per `width` x `height` frame of the shrink step and of each way to grow the chroma of the
    copy at `scale` back (each after a warm-up, on a procedural Mars-like frame); each growth's time over
    bilinear's."""
    _, frame = next(iter(synth_frames(1, width, height)))
    lightness = gray_to_l(frame)
    small = shrink(lightness, scale)
    ab = np.random.default_rng(0).uniform(-20, 40, (2, *small.shape)).astype(np.float32)
    steps = {"shrink (area)": lambda: shrink(lightness, scale),
             "grow, guided by L (the engine's)": lambda: grow(ab, small, lightness),
             "grow, bilinear": lambda: grow_bilinear(ab, small, lightness)}
    times = {name: 1e3 * median_seconds(step, repeats, warmup=2) for name, step in steps.items()}
    bilinear = times["grow, bilinear"]
    return [{"step": name, "ms_per_frame": ms, "vs_bilinear": ms / bilinear if name.startswith("grow") else None,
             "size": f"{width}x{height}", "copy": "{1}x{0}".format(*small.shape)} for name, ms in times.items()]
