"""Colour that holds still: each frame's chroma, on the small copy, blended with the last few frames' own answers
brought onto it by optical flow on the copies' L, and its overall cast smoothed over time; cuts start afresh.

The blend is a finite window, not a running average: a frame's output depends on itself and the `HISTORY` frames
before it (and on where the cuts fall among them), never on anything older. So a colour error cannot drift along a
sequence, and a render cut into chunks equals the whole one when each chunk first colours the `LEAD_IN` frames
before its range (`shards`).

For frame t and each earlier frame t-j of the window (after the last cut), the earlier frame's own a*, b* is warped
onto t through the chain of backward flows and weighted by strength * DECAY^(j-1) * confidence, the confidence being
the product along the chain of per-step confidences (forward and backward flows agree, warped L matches L); the
frame's own answer always weighs 1. Then the frame's mean a*, b* is shifted towards the same window's mean by
`strength` (a shift: a*, b* are signed).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

#: the strength `EngineConfig.temporal` takes by default (measured: README, "Colour that holds still")
DEFAULT_TEMPORAL = 1.0
#: earlier frames in the window: 4 frames smooth pans as much as 8 do on the validation pans (oppy-bench temporal)
HISTORY = 4
#: frames a chunk of a sharded render colours before its range, for the window and the cut rules (which look at
#: the time gap before the previous frame too)
LEAD_IN = HISTORY + 1
#: each earlier frame weighs this much less than the next
DECAY = 0.8
#: the flow is measured on a copy of L whose long side is at most this (the small copy of a 1024x1024 frame), with
#: DIS's "fast" preset: on the validation pans, a copy of 128 or the "ultrafast" preset leave a fifth more warp error
FLOW_SIDE = 256
FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST
#: a copy shorter than this on a side is not worth a flow: identity is used, weighted by L matching
MIN_FLOW_SIDE = 8
#: L* difference at which a warped pixel's confidence falls to 1/e
L_TOLERANCE = 8.0
#: cuts: the L histogram's L1 distance (0 to 2) above which the scene changed; the share of the frame whose flow
#: must hold; a gap in time of more than GAP_SECONDS, or more than GAP_FACTOR times the gap before (and over
#: MIN_GAP_SECONDS), or back in time
HISTOGRAM_BINS, HISTOGRAM_CUT = 32, 0.5
FLOW_HELD_CUT = 0.3
GAP_SECONDS, GAP_FACTOR, MIN_GAP_SECONDS = 600.0, 10.0, 10.0


def check_strength(value: object) -> float:
    """A temporal strength in [0, 1] as a float; a `ValueError` naming the range otherwise."""
    try:
        strength = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        strength = math.nan
    if isinstance(value, bool) or not 0 <= strength <= 1:  # NaN fails it too
        raise ValueError(f"temporal strength must be a number in [0, 1] (0: off), not {value!r}")
    return strength


@dataclass(frozen=True)
class FrameKey:
    """What must stay the same from one frame to the next for colour to carry over: the copy's shape (the frame's
    size), the camera, and when the frame was taken (seconds, None where unknown)."""

    shape: tuple[int, int]
    camera: str | None = None
    time: float | None = None


def _histogram(lightness: np.ndarray) -> np.ndarray:
    counts, _ = np.histogram(lightness, bins=HISTOGRAM_BINS, range=(0.0, 100.0))
    return counts / max(1, lightness.size)


def _flow_plane(lightness: np.ndarray) -> np.ndarray:
    """L* as 8-bit grey on the flow's copy (long side at most FLOW_SIDE)."""
    height, width = lightness.shape
    ratio = min(1.0, FLOW_SIDE / max(height, width))
    plane = lightness
    if ratio < 1:
        plane = cv2.resize(lightness, (max(1, round(width * ratio)), max(1, round(height * ratio))),
                           interpolation=cv2.INTER_AREA)
    return np.clip(plane * 2.55 + 0.5, 0, 255).astype(np.uint8)


class TemporalSmoother:
    """Carries colour from frame to frame for one stream (`strength` in [0, 1]; 0 passes every frame through).

    `smooth(lightness, ab, key)` changes `ab` (2xhxw float32 a*, b* on the copy whose L* is `lightness`) in place
    and returns why this frame starts afresh ("first", "size", "camera", "time", "scene", "motion") or None;
    `cut(why)` starts afresh at the next frame (a skipped frame is one). Memory: about 3 * HISTORY copies."""

    def __init__(self, strength: float):
        self.strength = check_strength(strength)
        self._flow = cv2.DISOpticalFlow_create(FLOW_PRESET)
        self._pending: str | None = "first"
        self._key: FrameKey | None = None
        self._gap: float | None = None
        self._lightness: np.ndarray | None = None
        self._plane: np.ndarray | None = None
        self._histogram: np.ndarray | None = None
        self._window: np.ndarray | None = None  # h x w x 3n: a*, b*, confidence of each earlier frame, newest first
        self._means: deque[np.ndarray] = deque(maxlen=HISTORY)  # their own mean a*, b*, newest first

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

    def _warp_map(self, lightness: np.ndarray, plane: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Where each pixel of this copy was in the previous one ((map x, map y) for `cv2.remap`), each pixel's
        confidence in that, and the share of the frame whose flow holds."""
        height, width = lightness.shape
        grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        if min(plane.shape) >= MIN_FLOW_SIDE:
            backward = self._flow.calc(plane, self._plane, None)  # this frame -> the previous one
            forward = self._flow.calc(self._plane, plane, None)
            small_y, small_x = np.mgrid[0:plane.shape[0], 0:plane.shape[1]].astype(np.float32)
            back_x, back_y = small_x + backward[..., 0], small_y + backward[..., 1]
            returned = cv2.remap(forward, back_x, back_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            error = np.square(backward + returned).sum(axis=2)
            allowed = 0.01 * (np.square(backward).sum(axis=2) + np.square(returned).sum(axis=2)) + 0.5
            agree = np.clip(2.0 - error / allowed, 0.0, 1.0)
            inside = (back_x >= 0) & (back_x <= plane.shape[1] - 1) & (back_y >= 0) & (back_y <= plane.shape[0] - 1)
            agree *= inside
            ratio_x, ratio_y = width / plane.shape[1], height / plane.shape[0]
            if plane.shape != lightness.shape:
                backward = cv2.resize(backward, (width, height), interpolation=cv2.INTER_LINEAR)
                agree = cv2.resize(agree, (width, height), interpolation=cv2.INTER_LINEAR)
            map_x = grid_x + backward[..., 0] * ratio_x
            map_y = grid_y + backward[..., 1] * ratio_y
        else:
            map_x, map_y, agree = grid_x, grid_y, np.ones_like(grid_x)
        warped_l = cv2.remap(self._lightness, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        confidence = agree * np.exp(-np.square((lightness - warped_l) / L_TOLERANCE))
        return map_x, map_y, confidence.astype(np.float32)

    def smooth(self, lightness: np.ndarray, ab: np.ndarray, key: FrameKey) -> str | None:
        histogram = _histogram(lightness)
        plane = _flow_plane(lightness)
        why = self._cut_reason(key, histogram)
        own = np.ascontiguousarray(ab.transpose(1, 2, 0))  # h x w x 2
        own_mean = own.reshape(-1, 2).mean(axis=0)
        window = None
        if why is None and self._window is not None:
            map_x, map_y, confidence = self._warp_map(lightness, plane)
            if float((confidence > 0.5).mean()) < FLOW_HELD_CUT:
                why = "motion"
            else:
                window = cv2.remap(self._window, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                window = window.reshape(*window.shape[:2], -1, 3)
                window[..., 2] *= confidence[..., None]
        if window is not None and self.strength > 0:
            self._blend(ab, own, own_mean, window)
        fresh = np.concatenate([own, np.ones((*own.shape[:2], 1), np.float32)], axis=2)[:, :, None]
        kept = () if window is None else (window[:, :, : HISTORY - 1],)
        self._window = np.ascontiguousarray(np.concatenate([fresh, *kept], axis=2).reshape(*own.shape[:2], -1))
        if why is not None:
            self._means.clear()
            self._gap = None
        elif key.time is not None and self._key.time is not None:
            self._gap = key.time - self._key.time
        self._means.appendleft(own_mean)
        self._key, self._lightness, self._plane, self._histogram = key, lightness, plane, histogram
        self._pending = None
        return why

    def _blend(self, ab: np.ndarray, own: np.ndarray, own_mean: np.ndarray, window: np.ndarray) -> None:
        """`ab` as the weighted mean of its own answer (weight 1) and the warped window, then shifted towards the
        window's mean cast."""
        frames = window.shape[2]
        decay = (self.strength * DECAY ** np.arange(frames)).astype(np.float32)
        weights = window[..., 2] * decay  # h x w x n
        total = (weights[..., None] * window[..., :2]).sum(axis=2) + own
        blended = total / (1.0 + weights.sum(axis=2))[..., None]
        means = np.array(list(self._means)[:frames])
        cast = (own_mean + (decay[: len(means), None] * means).sum(axis=0)) / (1.0 + decay[: len(means)].sum())
        blended += self.strength * (cast - blended.reshape(-1, 2).mean(axis=0))
        ab[...] = blended.transpose(2, 0, 1)
