"""The Numba LAB kernels against OpenCV's float32 `cvtColor` on the same 1024x1024 frame, same run."""

from __future__ import annotations

import cv2
import numpy as np

from oppy.engine.kernels.lab import gray_to_l, l_ab_to_rgb, rgb_to_lab

from .timing import median_seconds


def bench_lab(width: int = 1024, height: int = 1024, repeats: int = 20) -> list[dict]:
    """Median milliseconds per frame for each conversion, ours and OpenCV's, with the ratio."""
    rng = np.random.default_rng(0)
    rgb8 = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    rgb_float = rgb8.astype(np.float32) / 255
    grey8 = np.ascontiguousarray(rgb8[..., 0])
    grey_float3 = np.repeat(grey8[..., None], 3, axis=2).astype(np.float32) / 255
    lab = rgb_to_lab(rgb8)
    lightness, ab = np.ascontiguousarray(lab[..., 0]), np.ascontiguousarray(lab[..., 1:].transpose(2, 0, 1))
    pairs = [
        ("grey -> L", "gray_to_l(uint8)", lambda: gray_to_l(grey8),
         "cvtColor(RGB2Lab, float32 grey)", lambda: cv2.cvtColor(grey_float3, cv2.COLOR_RGB2Lab)),
        ("RGB -> LAB", "rgb_to_lab(uint8)", lambda: rgb_to_lab(rgb8),
         "cvtColor(RGB2Lab, float32)", lambda: cv2.cvtColor(rgb_float, cv2.COLOR_RGB2Lab)),
        ("LAB -> RGB", "l_ab_to_rgb(-> uint8)", lambda: l_ab_to_rgb(lightness, ab),
         "cvtColor(Lab2RGB, float32)", lambda: cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)),
    ]
    rows = []
    for conversion, ours_name, ours, theirs_name, theirs in pairs:
        ours_ms = 1e3 * median_seconds(ours, repeats, warmup=2)
        theirs_ms = 1e3 * median_seconds(theirs, repeats, warmup=2)
        rows.append({"conversion": conversion, "numba": ours_name, "numba_ms": ours_ms, "opencv": theirs_name,
                     "opencv_ms": theirs_ms, "speedup_vs_opencv": theirs_ms / ours_ms})
    return rows
