"""Chroma at the model's scale: which scale a frame is colourised at, the smaller copy of L its tiles are cut from,
and the blended a*, b* brought back to full resolution, guided by full-resolution L.

A model learns from whole scenes of some size (`ModelContract.scene_size`); a frame far larger than that is
colourised on a copy of its lightness shrunk to about that size, and the chroma is grown back with a fast guided
filter (He & Sun, 2015), so that its edges follow the edges of L, which carries all of the frame's detail.
"""

from __future__ import annotations

import argparse
import math

import cv2
import numpy as np

from .contract import ModelContract

AUTO = "auto"
#: `auto` shrinks a frame so that its long side is this many times the model's scene size. Measured on the
#: validation photos enlarged 1, 2 and 4 times (bench/results/chroma-scale-rule-cpu-epyc-2core.json): ΔE00 is
#: lowest where the copy spans what a training photo spans.
AUTO_SCENE_MULTIPLE = 1.0
#: the guided filter's window radius, in pixels of the small copy, and its regulariser, in (L* units)^2: below
#: a local variance of L of about `GUIDE_EPSILON` the chroma stays smooth; above it, it follows L's edges
#: (both chosen by measurement, bench/results/chroma-guide-cpu-epyc-2core.json)
GUIDE_RADIUS = 1
GUIDE_EPSILON = 4.0


def parse_chroma_scale(value: object) -> str | float:
    """`"auto"`, or a number in (0, 1] (a string such as "0.25" too); ValueError naming the valid range."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        scale = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        scale = math.nan
    if isinstance(value, bool) or not 0 < scale <= 1:  # NaN fails the comparison too
        raise ValueError(f"chroma scale must be 'auto' or a number in (0, 1], not {value!r}")
    return scale


def chroma_scale_argument(text: str) -> str | float:
    """`parse_chroma_scale` as an argparse type: a bad value is a usage error that names the valid range."""
    try:
        return parse_chroma_scale(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def choose_scale(height: int, width: int, setting: str | float, contract: ModelContract) -> float:
    """The scale an `height` x `width` frame is colourised at: `setting` itself when it is a number; for `auto`,
    the one that brings the frame's long side to `AUTO_SCENE_MULTIPLE` x the model's scene size, never above 1
    and never so small that the copy's short side is under one tile (a frame smaller than a tile stays as it is).
    A model that states no scene size runs at 1."""
    if setting != AUTO:
        return float(setting)
    if contract.scene_size is None:
        return 1.0
    target = AUTO_SCENE_MULTIPLE * contract.scene_size / max(height, width)
    one_tile = contract.tile_size / min(height, width)
    return float(min(1.0, max(target, one_tile)))


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(height, width) of the copy at `scale`, each at least one pixel."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink(lightness: np.ndarray, scale: float) -> np.ndarray:
    """HxW float32 L* -> its copy at `scale` (area averaging: no aliasing); `lightness` itself at scale 1."""
    height, width = lightness.shape
    size = scaled_size(height, width, scale)
    if size == (height, width):
        return lightness
    return cv2.resize(lightness, size[::-1], interpolation=cv2.INTER_AREA)


def _box(plane: np.ndarray, radius: int) -> np.ndarray:
    side = 2 * radius + 1
    return cv2.boxFilter(plane, -1, (side, side), normalize=True, borderType=cv2.BORDER_REFLECT_101)


def guide_coefficients(ab: np.ndarray, guide: np.ndarray, radius: int = GUIDE_RADIUS,
                       epsilon: float = GUIDE_EPSILON) -> tuple[np.ndarray, np.ndarray]:
    """The guided filter's local linear model of each chroma plane in L, at the small copy's resolution: (A, B),
    each 2xhxw float32, such that chroma = A * L + B (box-averaged over windows of `radius`)."""
    guide = guide.astype(np.float32, copy=False)
    mean_guide = _box(guide, radius)
    variance = _box(guide * guide, radius) - mean_guide * mean_guide
    gain, offset = np.empty_like(ab), np.empty_like(ab)
    for channel, plane in enumerate(ab):
        mean_plane = _box(plane, radius)
        covariance = _box(guide * plane, radius) - mean_guide * mean_plane
        slope = covariance / (np.maximum(variance, 0) + np.float32(epsilon))
        gain[channel] = _box(slope, radius)
        offset[channel] = _box(mean_plane - slope * mean_guide, radius)
    return gain, offset


def grow(ab: np.ndarray, guide: np.ndarray, lightness: np.ndarray, radius: int = GUIDE_RADIUS,
         epsilon: float = GUIDE_EPSILON) -> np.ndarray:
    """2xhxw float32 a*, b* blended on the small copy `guide` (hxw L*) -> 2xHxW float32 a*, b* at the resolution
    of `lightness` (HxW L*): the guided filter's coefficients, grown bilinearly, applied to full-resolution L.
    `ab` itself when the sizes already agree."""
    height, width = lightness.shape
    if ab.shape[1:] == (height, width):
        return ab
    gain, offset = guide_coefficients(ab, guide, radius, epsilon)
    out = np.empty((2, height, width), np.float32)
    for channel in range(2):
        grown_gain = cv2.resize(gain[channel], (width, height), interpolation=cv2.INTER_LINEAR)
        grown_offset = cv2.resize(offset[channel], (width, height), interpolation=cv2.INTER_LINEAR)
        np.multiply(grown_gain, lightness, out=out[channel])
        out[channel] += grown_offset
    return out


def grow_bilinear(ab: np.ndarray, lightness: np.ndarray) -> np.ndarray:
    """2xhxw a*, b* -> 2xHxW by plain bilinear interpolation, ignoring L (the comparison `oppy-bench` draws)."""
    height, width = lightness.shape
    return np.stack([cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR) for plane in ab])
