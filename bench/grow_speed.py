"""The chroma scale's own steps on one frame: shrinking L, and growing a*, b* back guided by L against bilinearly."""

from __future__ import annotations

import cv2
import numpy as np

from oppy.engine.kernels.chroma_scale import GUIDE_EPSILON, GUIDE_RADIUS, grow, grow_bilinear, guide_slopes, shrink
from oppy.engine.kernels.lab import gray_to_l

from .synth import synth_frames
from .timing import median_seconds


def grow_chain(ab: np.ndarray, guide: np.ndarray, lightness: np.ndarray, radius: int = GUIDE_RADIUS,
               epsilon: float = GUIDE_EPSILON) -> np.ndarray:
    """What `engine.kernels.chroma_scale.grow` does, as a chain of OpenCV calls on whole planes (bilinear resizes of
    the slopes, the chroma, its 3x3 minimum and maximum and the copy's L, then numpy): the engine's growth before it
    became one Numba pass, kept as its reference."""
    height, width = lightness.shape

    def linear(plane: np.ndarray) -> np.ndarray:
        return cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR)

    slopes = guide_slopes(ab, guide, radius, epsilon)
    detail = lightness - linear(guide.astype(np.float32, copy=False))
    out = np.empty((2, height, width), np.float32)
    window = np.ones((3, 3), np.uint8)
    for channel, plane in enumerate(ab):
        np.multiply(linear(slopes[channel]), detail, out=out[channel])
        out[channel] += linear(plane)
        lowest = linear(cv2.erode(plane, window, borderType=cv2.BORDER_REPLICATE))
        highest = linear(cv2.dilate(plane, window, borderType=cv2.BORDER_REPLICATE))
        np.clip(out[channel], lowest, highest, out=out[channel])
    return out


def bench_grow(width: int = 1024, height: int = 1024, scale: float = 0.25, repeats: int = 20) -> list[dict]:
    """Median milliseconds per `width` x `height` frame of the shrink step and of each way to grow the chroma of the
    copy at `scale` back (each after a warm-up, on a procedural Mars-like frame); each growth's time over
    bilinear's."""
    _, frame = next(iter(synth_frames(1, width, height)))
    lightness = gray_to_l(frame)
    small = shrink(lightness, scale)
    ab = np.random.default_rng(0).uniform(-20, 40, (2, *small.shape)).astype(np.float32)
    steps = {"shrink (area)": lambda: shrink(lightness, scale),
             "grow, guided by L (the engine's, one Numba pass)": lambda: grow(ab, small, lightness),
             "grow, guided by L (the OpenCV chain it replaced)": lambda: grow_chain(ab, small, lightness),
             "grow, bilinear": lambda: grow_bilinear(ab, small, lightness)}
    times = {name: 1e3 * median_seconds(step, repeats, warmup=2) for name, step in steps.items()}
    bilinear = times["grow, bilinear"]
    return [{"step": name, "ms_per_frame": ms, "vs_bilinear": ms / bilinear if name.startswith("grow") else None,
             "size": f"{width}x{height}", "copy": "{1}x{0}".format(*small.shape)} for name, ms in times.items()]
