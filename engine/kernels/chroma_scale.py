"""Chroma at the model's scale: which scale a frame is colourised at, the smaller copy of L its tiles are cut from,
and the blended a*, b* brought back to full resolution, guided by full-resolution L.

A model learns from whole scenes of some size (`ModelContract.scene_size`); a frame far larger than that is
colourised on a copy of its lightness shrunk to about that size, and the chroma is grown back with the local linear
model of a guided filter (He & Sun), so that its edges follow the edges of L, which carries the frame's detail.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import cv2
import numpy as np
from numba import prange

from .margins import clear_margins, content_box, filled
from .parallel import parallel_kernel

#: `auto` shrinks a frame so that its long side is this many times the model's scene size. Measured on the
#: validation photos enlarged 1, 2 and 4 times (bench/results/chroma-scale-rule-cpu-epyc-2core.json): ΔE00 is
#: lowest where the copy spans what a training photo spans.
AUTO_SCENE_MULTIPLE = 1.0
#: the guided filter's window radius, in pixels of the small copy, and its regulariser, in (L* units)^2: where
#: L varies less than about `GUIDE_EPSILON` within a window, the chroma does not follow it (measured: ΔE00 and
#: colourfulness change by under 0.1% between 1 and 16, and between radius 1 and 2; see docs/chroma-scale.md)
GUIDE_RADIUS = 1
GUIDE_EPSILON = 4.0


def choose_scale(height: int, width: int, fixed: float | None, scene_size: int | None, tile_size: int) -> float:
    """The scale an `height` x `width` frame is colourised at: `fixed` where it is a number; where it is None (the
    "auto" setting), the one that brings the frame's long side to `AUTO_SCENE_MULTIPLE` x the model's `scene_size`,
    never above 1 and never so small that the copy's short side is under one tile of `tile_size` (a frame smaller
    than a tile stays as it is). A model that states no scene size runs at 1."""
    if fixed is not None:
        return float(fixed)
    if scene_size is None:
        return 1.0
    target = AUTO_SCENE_MULTIPLE * scene_size / max(height, width)
    one_tile = tile_size / min(height, width)
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


def guide_slopes(ab: np.ndarray, guide: np.ndarray, radius: int = GUIDE_RADIUS,
                 epsilon: float = GUIDE_EPSILON) -> np.ndarray:
    """The guided filter's local linear model of each chroma plane in L at the small copy's resolution: the slope
    of a*, b* against L over each window of `radius` (regularised by `epsilon`), box-averaged; 2xhxw float32."""
    guide = guide.astype(np.float32, copy=False)
    mean_guide = _box(guide, radius)
    variance = np.maximum(_box(guide * guide, radius) - mean_guide * mean_guide, 0) + np.float32(epsilon)
    slopes = np.empty_like(ab)
    for channel, plane in enumerate(ab):
        covariance = _box(guide * plane, radius) - mean_guide * _box(plane, radius)
        slopes[channel] = _box(covariance / variance, radius)
    return slopes


def _linear(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR)


def _source_positions(small: int, large: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of `large` output positions, the first of the two `small`-copy samples it lies between and the
    weight of the second, as OpenCV's bilinear resize takes them (pixel centres aligned, the border repeated)."""
    source = (np.arange(large, dtype=np.float64) + 0.5) * (small / large) - 0.5
    first = np.floor(source)
    weight = (source - first).astype(np.float32)
    weight[first < 0] = 0
    weight[first >= small - 1] = 0
    return np.clip(first, 0, small - 1).astype(np.int64), weight


#: the planes the growth reads on the small copy, in the order `_grow_kernel` takes them
_GUIDE, _SLOPES, _CHROMA, _LOWEST, _HIGHEST = 0, 1, 3, 5, 7


@parallel_kernel()
def _widen_kernel(planes, columns, column_weights, wide):
    """Each row of the small copy's planes (9 x h x w) resampled bilinearly to the full width (9 x h x W)."""
    count, small_height, small_width = planes.shape
    width = wide.shape[2]
    for j in prange(small_height):
        for c in range(count):
            for x in range(width):
                left, fx = columns[x], column_weights[x]
                right = min(left + 1, small_width - 1)
                wide[c, j, x] = planes[c, j, left] * (1 - fx) + planes[c, j, right] * fx


@parallel_kernel()
def _grow_kernel(wide, lightness, rows, row_weights, out):
    """Each full-resolution row from the two widened rows around it: the planes sampled bilinearly, a*, b* =
    slope x (L - guide) + chroma, clamped to [3x3 minimum, maximum] (contiguous rows: the loop vectorises)."""
    small_height = wide.shape[1]
    height, width = lightness.shape
    for y in prange(height):
        top, low = rows[y], row_weights[y]
        bottom, high = min(top + 1, small_height - 1), 1 - row_weights[y]
        for channel in range(2):
            for x in range(width):
                detail = lightness[y, x] - (wide[0, top, x] * high + wide[0, bottom, x] * low)
                slope = wide[1 + channel, top, x] * high + wide[1 + channel, bottom, x] * low
                chroma = wide[3 + channel, top, x] * high + wide[3 + channel, bottom, x] * low
                lowest = wide[5 + channel, top, x] * high + wide[5 + channel, bottom, x] * low
                highest = wide[7 + channel, top, x] * high + wide[7 + channel, bottom, x] * low
                value = slope * detail + chroma
                value = lowest if value < lowest else value  # selects, not branches: where the clamp bites
                out[channel, y, x] = highest if value > highest else value  # depends on the picture


_scratches = threading.local()


def _scratch(shape: tuple[int, ...]) -> np.ndarray:
    """A float32 work array of `shape` kept for the calling thread's next frame of that size: a fresh one of ten
    megabytes a frame costs more in page faults than the pass that fills it."""
    kept = getattr(_scratches, "array", None)
    if kept is None or kept.shape != shape:
        kept = _scratches.array = np.empty(shape, np.float32)
    return kept


def grow(ab: np.ndarray, guide: np.ndarray, lightness: np.ndarray, radius: int = GUIDE_RADIUS,
         epsilon: float = GUIDE_EPSILON) -> np.ndarray:
    """2xhxw float32 a*, b* blended on the small copy `guide` (hxw L*) -> 2xHxW float32 a*, b* at the resolution
    of `lightness` (HxW L*); `ab` itself when the sizes already agree.

    The chroma grown bilinearly, plus the detail of full-resolution L that the small copy lacks (L minus the
    copy grown bilinearly) times the local slope of chroma against L (`guide_slopes`): where chroma follows L
    (a rock's colour against the sky's), its edges become L's edges; where it does not, or L is flat, it stays
    the bilinear chroma, so no colour is smoothed away. The result never leaves the range of the chroma the
    model gave within a pixel of the copy: fine texture under a steep slope does not make colours of its own.
    What is done at full resolution is one Numba pass (`_grow_kernel`), after the copy's planes are widened to the
    full width (`_widen_kernel`)."""
    height, width = lightness.shape
    if ab.shape[1:] == (height, width):
        return ab
    guide = guide.astype(np.float32, copy=False)
    window = np.ones((3, 3), np.uint8)
    planes = np.empty((9, *guide.shape), np.float32)
    planes[_GUIDE] = guide
    planes[_SLOPES:_SLOPES + 2] = guide_slopes(ab, guide, radius, epsilon)
    for channel, plane in enumerate(ab):
        planes[_CHROMA + channel] = plane
        planes[_LOWEST + channel] = cv2.erode(plane, window, borderType=cv2.BORDER_REPLICATE)
        planes[_HIGHEST + channel] = cv2.dilate(plane, window, borderType=cv2.BORDER_REPLICATE)
    rows, row_weights = _source_positions(guide.shape[0], height)
    columns, column_weights = _source_positions(guide.shape[1], width)
    wide = _scratch((9, guide.shape[0], width))
    _widen_kernel(planes, columns, column_weights, wide)
    out = np.empty((2, height, width), np.float32)
    _grow_kernel(wide, np.ascontiguousarray(lightness, np.float32), rows, row_weights, out)
    return out


def grow_bilinear(ab: np.ndarray, guide: np.ndarray, lightness: np.ndarray) -> np.ndarray:
    """2xhxw a*, b* -> 2xHxW at the size of `lightness` by plain bilinear interpolation, ignoring L (`guide`
    unused): the comparison `oppy-bench quality` draws."""
    height, width = lightness.shape
    return np.stack([_linear(plane, height, width) for plane in ab])


#: how chroma on the small copy comes back to full resolution: (2xhxw a*b*, hxw small L, HxW L) -> 2xHxW
Upsampler = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def chroma_at_scale(lightness: np.ndarray, chroma_of: Callable[[np.ndarray], np.ndarray], fixed: float | None,
                    scene_size: int | None, tile_size: int, upsample: Upsampler = grow) -> np.ndarray:
    """The engine's path around the model for one frame, outside the pipeline: HxW float32 L* shrunk to the
    chroma scale (`fixed`: a number, or None for auto; the model's `scene_size` and `tile_size`: `choose_scale`),
    `chroma_of` (small L* -> 2xhxw a*, b*) on the copy, and the result grown back to 2xHxW by `upsample`. Black
    margins around the picture are filled for the model and stay neutral, as in the engine (`margins`)."""
    picture = content_box(lightness)
    plane = lightness if picture is None else filled(lightness, picture)
    small = shrink(plane, choose_scale(*lightness.shape, fixed, scene_size, tile_size))
    ab = np.ascontiguousarray(chroma_of(small), np.float32)
    ab = upsample(ab, small, lightness) if small is not plane else ab
    if picture is not None:
        clear_margins(ab, picture)
    return ab
