"""Colour that holds still: each frame's chroma, on the small copy, blended with the last few frames' own answers
brought onto it by optical flow on the copies' L, and its overall cast smoothed over time; cuts start afresh.

The blend is a finite window, not a running average: a frame's output depends on itself and the `HISTORY` frames
before it (and on where the cuts fall among them), never on anything older. So a colour error cannot drift along a
sequence, and a render cut into chunks equals the whole one when each chunk first colours the `LEAD_IN` frames
before its range (`cluster.chunks`).

For frame t and each earlier frame t-j of the window (after the last cut), the earlier frame's own a*, b* is warped
onto t through the chain of backward flows and weighted by strength * DECAY^(j-1) * confidence, the confidence being
the product along the chain of per-step confidences (forward and backward flows agree, warped L matches L); the
frame's own answer always weighs 1. The window and this blend are kept at half the copy's size (HALF_WINDOW_SIDE):
the blend's change from the frame's own answer is brought back to the copy's size and added to it. Then the frame's
mean a*, b* is shifted towards the same window's mean by `strength` (a shift: a*, b* are signed).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from .config import check_strength
from .kernels.parallel import cached_njit

#: earlier frames in the window (oppy-bench temporal on pans over validation photos: the warp error against every
#: frame alone is 0.49x with 3 frames, 0.45x with 5, 0.44x with 6; each costs a little more time)
HISTORY = 5
#: frames a chunk of a sharded render colours before its range, for the window and the cut rules (which look at
#: the time gap before the previous frame too)
LEAD_IN = HISTORY + 1
#: each earlier frame weighs this much less than the next
DECAY = 0.9
#: the flow is measured on a copy of L whose long side is at most this (the small copy of a 1024x1024 frame), with
#: DIS's "fast" preset: on the validation pans, a copy of 128 or the "ultrafast" preset leave a fifth more warp
#: error; 3 variational refinement iterations instead of the preset's 5 leave 1% more (0.469x the warp error of
#: every frame alone instead of 0.464x) for 5% less time. The flow back, which only checks it, is "ultrafast" (on
#: a copy of half the size, the warp error grows by a seventh)
FLOW_SIDE = 256
FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST
FLOW_REFINEMENT_ITERATIONS = 3
CHECK_FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST
#: a copy shorter than this on a side gets no flow (identity, weighted by L matching): DIS's 8-pixel patches at its
#: coarsest pyramid level (scale 2) need 32 pixels, and on smaller images OpenCV's DIS writes out of bounds
MIN_FLOW_SIDE = 32
#: the window (the earlier answers, their confidence, warp and blend) is kept at half the copy's size on each side,
#: a quarter of the pixels: on the validation pans the warp error is 0.45x every frame alone either way, and the
#: blend's change, smooth as it is, is brought back to the copy's size. Copies shorter than this on a side keep it
#: whole
HALF_WINDOW_SIDE = 64
#: L* difference at which a warped pixel's confidence falls to 1/e
L_TOLERANCE = 8.0
#: cuts: the L histogram's L1 distance (0 to 2) above which the scene changed, and the share of the frame whose warp
#: must hold. Measured on pans over 40 validation photos (6 px a frame at 4x): within a pan the distance stays under
#: 0.03 and the warp holds on 84% or more; from one photo's pan to the next the distance is 0.06 or more, and where
#: it is under 0.1 the warp holds on under 30%. A gap in time of more than GAP_SECONDS, or more than GAP_FACTOR
#: times the gap before (and over MIN_GAP_SECONDS), or back in time, is a cut too
HISTOGRAM_BINS, HISTOGRAM_CUT = 32, 0.08
FLOW_HELD_CUT = 0.5
GAP_SECONDS, GAP_FACTOR, MIN_GAP_SECONDS = 600.0, 10.0, 10.0


#: copies with fewer rows than this are not split between two threads
SPLIT_ROWS = 32
_helper_lock = threading.Lock()
_helper: ThreadPoolExecutor | None = None


def _second_thread() -> ThreadPoolExecutor:
    """One worker thread, shared by every stream, that takes half of the stage's work (the check flow while the
    flow is measured, half of the rows of each kernel and of the window's warp): on a copy this small, Numba's
    parallel kernels cost more to start than they save (the stage's cost: docs/temporal.md)."""
    global _helper
    with _helper_lock:
        if _helper is None:
            _helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="oppy-temporal")
        return _helper


def _forget_second_thread() -> None:
    """In a forked child the worker thread does not exist: a new one is started when needed (else a submit would
    wait for ever)."""
    global _helper, _helper_lock
    _helper, _helper_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_second_thread)


def _in_two_halves(height: int, kernel, *arguments) -> tuple:
    """`kernel(*arguments, first_row, end_row)` on the top half of the `height` rows it writes here and on the
    bottom half in the second thread, at once; the results. A copy of fewer than SPLIT_ROWS rows is not worth the
    handover: it is done here whole."""
    if height < SPLIT_ROWS:
        return (kernel(*arguments, 0, height),)
    bottom = _second_thread().submit(kernel, *arguments, height // 2, height)
    try:
        top = kernel(*arguments, 0, height // 2)
    finally:
        lower = bottom.result()  # never leave the other half writing into arrays the caller takes back
    return top, lower


def _warp_rows(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, out: np.ndarray, first_row: int,
               end_row: int) -> None:
    """Rows [first_row, end_row) of `image` warped by the maps into the same rows of `out` (bilinear, edges held)."""
    rows = slice(first_row, end_row)
    cv2.remap(image, map_x[rows], map_y[rows], cv2.INTER_LINEAR, dst=out[rows], borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class FrameKey:
    """What must stay the same from one frame to the next for colour to carry over: the copy's shape (the frame's
    size), the camera, and when the frame was taken (seconds, None where unknown)."""

    shape: tuple[int, int]
    camera: str | None = None
    time: float | None = None


def _flow_plane(lightness: np.ndarray) -> np.ndarray:
    """L* as 8-bit grey on the flow's copy (long side at most FLOW_SIDE)."""
    height, width = lightness.shape
    ratio = min(1.0, FLOW_SIDE / max(height, width))
    plane = lightness
    if ratio < 1:
        plane = cv2.resize(lightness, (max(1, round(width * ratio)), max(1, round(height * ratio))),
                           interpolation=cv2.INTER_AREA)
    return np.clip(plane * 2.55 + 0.5, 0, 255).astype(np.uint8)


def _window_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """The window's size for a copy of this size (half on each side, or the copy's own when it is small)."""
    height, width = shape
    if min(height, width) < HALF_WINDOW_SIDE:
        return shape
    return height // 2, width // 2


def _resized(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A (h x w [x c]) image on a copy of `shape` (an area average when it shrinks, bilinear when it grows)."""
    if image.shape[:2] == shape:
        return image
    shrinks = shape[0] <= image.shape[0] and shape[1] <= image.shape[1]
    return cv2.resize(image, shape[::-1], interpolation=cv2.INTER_AREA if shrinks else cv2.INTER_LINEAR)


def _histogram(plane: np.ndarray) -> np.ndarray:
    """The share of the plane's pixels in each of HISTOGRAM_BINS bins of L*."""
    counts = cv2.calcHist([plane], [0], None, [HISTOGRAM_BINS], [0, 256]).ravel()
    return counts / max(1, plane.size)


# The kernels work in float32 throughout (a Python float constant would turn the arithmetic into float64); the
# agreement and the confidence also with fastmath, which lets LLVM vectorise them (no NaN reaches them: L* and
# DIS's flows are finite). The carry runs slower with fastmath, so it goes without.
_ONE, _HALF, _TWO = np.float32(1.0), np.float32(0.5), np.float32(2.0)
_SLACK = np.float32(0.01)


@cached_njit(nogil=True, fastmath=True)
def _agreement_kernel(backward, forward, scale_x, scale_y, agree, map_x, map_y, first_row, end_row):
    """Per pixel of rows [first_row, end_row) of the window: where the backward flow takes it (`map_x`, `map_y`,
    for cv2.remap) and its agreement, 1 where the backward flow and the forward flow at its end (bilinear) cancel
    (Lai et al.'s test, with room for twice the error before 0) and the end lies inside the frame, falling to 0. The
    flows were measured on a copy of another size and resized to the window's: their vectors are multiplied by
    `scale_x`, `scale_y` here."""
    height, width = agree.shape
    last_x, last_y = np.float32(width - 1), np.float32(height - 1)
    for y in range(first_row, end_row):
        for x in range(width):
            bx, by = backward[y, x, 0] * scale_x, backward[y, x, 1] * scale_y
            end_x, end_y = np.float32(x) + bx, np.float32(y) + by
            map_x[y, x], map_y[y, x] = end_x, end_y
            if not (end_x >= 0 and end_x <= last_x and end_y >= 0 and end_y <= last_y):
                agree[y, x] = 0
                continue
            left, top = min(np.int32(end_x), width - 2), min(np.int32(end_y), height - 2)
            across, down = end_x - np.float32(left), end_y - np.float32(top)
            top_left, top_right = (_ONE - across) * (_ONE - down), across * (_ONE - down)
            bottom_left, bottom_right = (_ONE - across) * down, across * down
            rx = scale_x * (top_left * forward[top, left, 0] + top_right * forward[top, left + 1, 0]
                            + bottom_left * forward[top + 1, left, 0] + bottom_right * forward[top + 1, left + 1, 0])
            ry = scale_y * (top_left * forward[top, left, 1] + top_right * forward[top, left + 1, 1]
                            + bottom_left * forward[top + 1, left, 1] + bottom_right * forward[top + 1, left + 1, 1])
            error = (bx + rx) ** 2 + (by + ry) ** 2
            allowed = _SLACK * (bx * bx + by * by + rx * rx + ry * ry) + _HALF
            agree[y, x] = min(max(_TWO - error / allowed, np.float32(0)), _ONE)


@cached_njit(nogil=True, fastmath=True)
def _confidence_kernel(lightness, warped_lightness, agree, tolerance, confidence, first_row, end_row):
    """Each pixel's confidence in the warp, in rows [first_row, end_row): the flows' agreement times how well the
    warped L* matches; returns how many are above one half."""
    width = lightness.shape[1]
    held = 0
    for y in range(first_row, end_row):
        for x in range(width):
            step = (lightness[y, x] - warped_lightness[y, x]) / tolerance
            value = agree[y, x] * np.exp(-step * step)
            confidence[y, x] = value
            held += 1 if value > _HALF else 0
    return held


@cached_njit(nogil=True)
def _carry_kernel(own, warped, frames, confidence, decay, window, change, row_sums, first_row, end_row):
    """Per pixel of rows [first_row, end_row) of the window: the frame's own a*, b* (`own`, 2 x h x w, weight 1) and
    each of the `frames` warped earlier answers (weight decay[j] times its confidence, which this warp's
    `confidence` multiplies) averaged; `change` (2 x h x w) gets how far that average is from the frame's own answer
    and `row_sums` each row's sum of it (a*, b*); `window` gets the answers for the next frame, this one's first."""
    width = own.shape[2]
    kept = window.shape[2] // 3
    for y in range(first_row, end_row):
        sum_a, sum_b = 0.0, 0.0
        for x in range(width):
            own_a, own_b = own[0, y, x], own[1, y, x]
            total_a, total_b, weight = own_a, own_b, _ONE
            for j in range(frames):
                trust = warped[y, x, 3 * j + 2] * confidence[y, x]
                share = decay[j] * trust
                total_a += share * warped[y, x, 3 * j]
                total_b += share * warped[y, x, 3 * j + 1]
                weight += share
                if j + 1 < kept:
                    window[y, x, 3 * j + 3] = warped[y, x, 3 * j]
                    window[y, x, 3 * j + 4] = warped[y, x, 3 * j + 1]
                    window[y, x, 3 * j + 5] = trust
            window[y, x, 0], window[y, x, 1], window[y, x, 2] = own_a, own_b, _ONE
            change_a, change_b = total_a / weight - own_a, total_b / weight - own_b
            change[0, y, x], change[1, y, x] = change_a, change_b
            sum_a += change_a
            sum_b += change_b
        row_sums[y, 0], row_sums[y, 1] = sum_a, sum_b


class TemporalSmoother:
    """Carries colour from frame to frame for one stream (`strength` in [0, 1]; 0 passes every frame through).

    `smooth(lightness, ab, key)` changes `ab` (2xhxw float32 a*, b* on the copy whose L* is `lightness`) in place
    and returns why this frame starts afresh ("first", "size", "camera", "time", "scene", "motion", or what `cut`
    said) or None; `cut(why)` starts afresh at the next frame (a skipped frame is one). Memory: about
    3 * HISTORY quarter-size copies (the window at half the copy's size on each side)."""

    def __init__(self, strength: float):
        self.strength = check_strength(strength)
        self._decay = (self.strength * DECAY ** np.arange(HISTORY)).astype(np.float32)
        self._flow = cv2.DISOpticalFlow_create(FLOW_PRESET)
        self._flow.setVariationalRefinementIterations(FLOW_REFINEMENT_ITERATIONS)
        self._check_flow = cv2.DISOpticalFlow_create(CHECK_FLOW_PRESET)
        self._pending: str | None = "first"
        self._key: FrameKey | None = None
        self._gap: float | None = None
        self._lightness: np.ndarray | None = None
        self._plane: np.ndarray | None = None
        self._histogram: np.ndarray | None = None
        # h x w x 3 HISTORY: a*, b* and confidence of each earlier frame's own answer, newest first; `_frames` of
        # them hold frames since the last cut; `_spare` receives the next warp
        self._window = self._spare = None
        self._frames = 0
        self._means: deque[np.ndarray] = deque(maxlen=HISTORY)  # their own mean a*, b*, newest first
        self._grids: tuple[np.ndarray, np.ndarray] | None = None

    def cut(self, why: str) -> None:
        self._pending = why

    def _cut_reason(self, key: FrameKey, histogram: np.ndarray) -> str | None:
        previous = self._key
        if self._pending is not None or previous is None:
            return self._pending or "first"
        if key.shape != previous.shape:
            return "size"
        if key.camera != previous.camera and key.camera is not None and previous.camera is not None:
            return "camera"
        if key.time is not None and previous.time is not None:
            gap = key.time - previous.time
            if gap < 0 or gap > GAP_SECONDS or (
                    self._gap is not None and gap > MIN_GAP_SECONDS and gap > GAP_FACTOR * self._gap):
                return "time"
        if float(np.abs(histogram - self._histogram).sum()) > HISTOGRAM_CUT:
            return "scene"
        return None

    def _grid(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Each pixel's own x and y on a copy of this size (kept for the next frame of the same size)."""
        if self._grids is None or self._grids[0].shape != (height, width):
            self._grids = tuple(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)))
        return self._grids

    def _warp(self, lightness: np.ndarray, plane: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Where each pixel of the window (whose L* is `lightness`) was in the previous one ((map x, map y) for
        `cv2.remap`), each pixel's confidence in that, and the share of the frame whose warp holds (confidence above
        one half)."""
        height, width = lightness.shape
        if min(plane.shape) >= MIN_FLOW_SIDE:
            checking = _second_thread().submit(self._check_flow.calc, self._plane, plane, None)
            backward = self._flow.calc(plane, self._plane, None)  # this frame -> the previous one
            forward = checking.result()
            scale_x, scale_y = np.float32(width / plane.shape[1]), np.float32(height / plane.shape[0])
            agree, map_x, map_y = (np.empty((height, width), np.float32) for _ in range(3))
            _in_two_halves(height, _agreement_kernel, _resized(backward, (height, width)),
                           _resized(forward, (height, width)), scale_x, scale_y, agree, map_x, map_y)
        else:
            map_x, map_y = self._grid(height, width)
            agree = np.ones((height, width), np.float32)
        warped_l = cv2.remap(self._lightness, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        confidence = np.empty((height, width), np.float32)
        held = sum(_in_two_halves(height, _confidence_kernel, lightness, warped_l, agree, np.float32(L_TOLERANCE),
                                  confidence))
        return map_x, map_y, confidence, held / confidence.size

    def smooth(self, lightness: np.ndarray, ab: np.ndarray, key: FrameKey) -> str | None:
        lightness = np.ascontiguousarray(lightness, np.float32)
        plane = _flow_plane(lightness)
        histogram = _histogram(plane)
        why = self._cut_reason(key, histogram)
        own_mean = np.array([cv2.mean(ab[0])[0], cv2.mean(ab[1])[0]])
        shape = _window_shape(lightness.shape)
        window_lightness = _resized(lightness, shape)
        own = np.stack([_resized(ab[0], shape), _resized(ab[1], shape)])
        warped = None
        if why is None:
            map_x, map_y, confidence, held = self._warp(window_lightness, plane)
            if held < FLOW_HELD_CUT:
                why = "motion"
            else:
                warped = self._spare
                _in_two_halves(shape[0], _warp_rows, self._window, map_x, map_y, warped)
        if warped is None:
            # one channel more than the frames need: OpenCV warps 16 channels faster than 15
            self._window = np.zeros((*shape, 3 * HISTORY + 1), np.float32)
            self._spare = np.empty_like(self._window)
            self._window[..., 0], self._window[..., 1], self._window[..., 2] = own[0], own[1], 1.0
            self._frames = 1
            self._means.clear()
            self._gap = None
        else:
            change = np.empty_like(own)
            row_sums = np.empty((shape[0], 2), np.float64)
            self._spare, window = self._window, warped
            _in_two_halves(shape[0], _carry_kernel, own, window, self._frames, confidence, self._decay, self._spare,
                           change, row_sums)
            self._window, self._spare = self._spare, window
            self._frames = min(self._frames + 1, HISTORY)
            means = np.array(list(self._means))
            weights = self._decay[: len(means)].astype(np.float64)
            cast = (own_mean + (weights[:, None] * means).sum(axis=0)) / (1.0 + weights.sum())
            carried_mean = own_mean + row_sums.sum(axis=0) / (shape[0] * shape[1])
            shift = (self.strength * (cast - carried_mean)).astype(np.float32)
            change += shift[:, None, None]
            for channel in range(2):
                ab[channel] += _resized(change[channel], ab.shape[1:])
            if key.time is not None and self._key.time is not None:
                self._gap = key.time - self._key.time
        self._means.appendleft(own_mean)
        self._key, self._lightness, self._plane, self._histogram = key, window_lightness, plane, histogram
        self._pending = None
        return why
