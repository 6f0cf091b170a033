"""The wider view around each tile, for models that take one: the L* around a tile over a window `factor` times its
width, brought down to the tile's size, cut from one smaller copy of the plane the tiles are cut from.

A tile's window is centred on the tile; where it runs past the plane, the plane's edge pixels are repeated. The
engine and training cut it with the same functions, so a model sees in use exactly the view it learned from.
"""

from __future__ import annotations

import cv2
import numpy as np


def context_copy(plane: np.ndarray, factor: int) -> np.ndarray:
    """HxW float32 `plane` shrunk `factor` times (area averaging; at least 1x1): the plane context is cut from."""
    height, width = plane.shape
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    return cv2.resize(np.ascontiguousarray(plane, np.float32), size, interpolation=cv2.INTER_AREA)


def cut_context(copy: np.ndarray, tops: np.ndarray, lefts: np.ndarray, plane_shape: tuple[int, int], tile: int,
                scale: float = 1.0, shift: float = 0.0, out: np.ndarray | None = None) -> np.ndarray:
    """The context tile [n, tile, tile, 1] float32 of each tile whose top left corner in the plane of
    `plane_shape` (height, width) is (tops[i], lefts[i]) (`tiles.TilePlan.corners`), from `copy` (`context_copy` of
    that plane), each value stored as `v * scale + shift`: the copy's `tile` x `tile` pixels centred on the tile's
    centre, the copy's edge repeated past its border."""
    height, width = plane_shape
    copy_height, copy_width = copy.shape
    centre_rows = (np.asarray(tops, np.float64) + tile / 2) * (copy_height / height)
    centre_cols = (np.asarray(lefts, np.float64) + tile / 2) * (copy_width / width)
    steps = np.arange(tile)
    rows = np.clip(np.rint(centre_rows - tile / 2).astype(np.int64)[:, None] + steps, 0, copy_height - 1)
    cols = np.clip(np.rint(centre_cols - tile / 2).astype(np.int64)[:, None] + steps, 0, copy_width - 1)
    if out is None:
        out = np.empty((len(rows), tile, tile, 1), np.float32)
    out[..., 0] = copy[rows[:, :, None], cols[:, None, :]] * np.float32(scale) + np.float32(shift)
    return out
