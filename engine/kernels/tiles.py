"""Covering a frame of any size with overlapping square tiles, and blending tile predictions back seamlessly.

Tiles sit on a grid of stride `tile - overlap` over the frame, reflect-padded (centred) until every tile is
full. Blend weights are separable raised-cosine ramps that form an exact partition of unity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np
from numba import prange

from .context import context_copy, cut_context
from .parallel import parallel_kernel


class TileScaling(Protocol):
    """What the tiling path needs of a model's contract (`contract.ModelContract` is one): its tile, how L goes
    in, how a*, b* come out, and its context input's shrink factor (None: no context input)."""

    tile_size: int
    l_scale: float
    l_shift: float
    ab_scale: float
    context_factor: int | None


@dataclass(frozen=True, eq=False)
class TilePlan:
    """Where the tiles of an `height` x `width` frame lie, and how much each counts at every pixel.

    Tile (r, c) covers padded rows `r*stride .. r*stride+tile` and columns likewise; padded pixel p is
    frame pixel `row_source[p]` (reflection). `row_weights[r, t]` is tile row r's weight at its local row t;
    the 2-D weight is the product of the row and column weights, and the weights of all tiles covering a
    pixel sum to one.
    """

    height: int
    width: int
    tile: int
    overlap: int
    rows: int
    cols: int
    pad_top: int
    pad_left: int
    row_source: np.ndarray  # int64 [rows*stride + overlap]
    col_source: np.ndarray
    row_weights: np.ndarray  # float32 [rows, tile]
    col_weights: np.ndarray  # float32 [cols, tile]

    @property
    def stride(self) -> int:
        return self.tile - self.overlap

    @property
    def count(self) -> int:
        return self.rows * self.cols

    def corners(self) -> tuple[np.ndarray, np.ndarray]:
        """Top and left, in frame pixels, of each tile in cutting order (row by row): negative or past the frame
        where the tile lies in the reflected padding."""
        index = np.arange(self.count)
        return (index // self.cols) * self.stride - self.pad_top, (index % self.cols) * self.stride - self.pad_left


def _tiles_along(size: int, tile: int, stride: int) -> int:
    return 1 if size <= tile else math.ceil((size - tile) / stride) + 1


def _ramp_up(tile: int, overlap: int) -> np.ndarray:
    ramp = np.ones(tile)
    if overlap:
        t = np.arange(overlap)
        ramp[:overlap] = np.sin(0.5 * np.pi * (t + 0.5) / overlap) ** 2
    return ramp


def axis_weights(count: int, tile: int, overlap: int) -> np.ndarray:
    """1-D blend weights [count, tile]: each tile ramps up over its leading overlap and down over its
    trailing one (flat at the outer ends), normalised so that covering weights sum to one everywhere."""
    stride = tile - overlap
    up = _ramp_up(tile, overlap)
    weights = np.ones((count, tile))
    weights[1:] *= up
    weights[:-1] *= up[::-1]
    coverage = np.zeros((count - 1) * stride + tile)
    for i in range(count):
        coverage[i * stride : i * stride + tile] += weights[i]
    for i in range(count):
        weights[i] /= coverage[i * stride : i * stride + tile]
    return weights.astype(np.float32)


def _reflect_source(size: int, padded: int) -> tuple[int, np.ndarray]:
    before = (padded - size) // 2
    source = np.pad(np.arange(size), (before, padded - size - before), mode="reflect")
    return before, source.astype(np.int64)


@lru_cache(maxsize=64)
def plan_tiles(height: int, width: int, tile: int = 64, overlap: int = 16) -> TilePlan:
    """The tile plan for one frame size; cached, since an archive repeats a handful of sizes."""
    if height < 1 or width < 1:
        raise ValueError(f"cannot tile an empty frame of {width}x{height}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, {tile}), got {overlap}")
    stride = tile - overlap
    rows, cols = _tiles_along(height, tile, stride), _tiles_along(width, tile, stride)
    pad_top, row_source = _reflect_source(height, (rows - 1) * stride + tile)
    pad_left, col_source = _reflect_source(width, (cols - 1) * stride + tile)
    return TilePlan(
        height, width, tile, overlap, rows, cols, pad_top, pad_left, row_source, col_source,
        axis_weights(rows, tile, overlap), axis_weights(cols, tile, overlap),
    )


@parallel_kernel()
def _cut_kernel(plane, row_source, col_source, cols, stride, tile, scale, shift, first, out):
    for k in prange(out.shape[0]):
        top = ((first + k) // cols) * stride
        left = ((first + k) % cols) * stride
        for u in range(tile):
            src_row = row_source[top + u]
            for v in range(tile):
                out[k, u, v, 0] = plane[src_row, col_source[left + v]] * scale + shift


@parallel_kernel(fastmath=True)
def _blend_kernel(tiles, first, zero, row_weights, col_weights, pad_top, pad_left, cols, stride, scale, out):
    # Row by row (no two threads write one pixel); within a row, each covering tile adds a contiguous
    # weighted run of its own row, which vectorises. `tiles` holds the frame's tiles first .. first+n; `zero`
    # starts the sum afresh, so that a frame's tiles may come in several pieces.
    channels, height, width = out.shape
    tile, count = tiles.shape[1], tiles.shape[0]
    rows = row_weights.shape[0]
    for y in prange(height):
        if zero:
            for ch in range(channels):
                for x in range(width):
                    out[ch, y, x] = 0.0
        py = y + pad_top
        for r in range(max(0, (py - tile) // stride + 1), min(rows - 1, py // stride) + 1):
            u = py - r * stride
            row_weight = row_weights[r, u] * scale
            for c in range(max(0, first - r * cols), min(cols, first + count - r * cols)):
                k = r * cols + c - first
                left = c * stride - pad_left
                for ch in range(channels):
                    for v in range(max(0, -left), min(tile, width - left)):
                        out[ch, y, left + v] += row_weight * col_weights[c, v] * tiles[k, u, v, ch]


def cut_tiles(
    plane: np.ndarray, plan: TilePlan, scale: float = 1.0, shift: float = 0.0, out: np.ndarray | None = None,
    first: int = 0,
) -> np.ndarray:
    """Cut a HxW float32 plane into tiles [plan.count, tile, tile, 1] float32, each value `v*scale+shift`.

    Tiles are in row-major grid order; pixels outside the frame are reflections of pixels inside it. Given `out`
    [n, tile, tile, 1] float32, only tiles `first .. first+n` are cut, into it (e.g. rows of a batch).
    """
    if plane.shape != (plan.height, plan.width):
        raise ValueError(f"plane is {plane.shape}, the plan is for {(plan.height, plan.width)}")
    if out is None:
        out = np.empty((plan.count - first, plan.tile, plan.tile, 1), np.float32)
    if out.shape[1:] != (plan.tile, plan.tile, 1) or not 0 <= first <= first + len(out) <= plan.count:
        raise ValueError(f"cannot cut tiles {first}..{first + len(out)} of {plan.count} into {out.shape}")
    _cut_kernel(plane, plan.row_source, plan.col_source, plan.cols, plan.stride, plan.tile,
                np.float32(scale), np.float32(shift), first, out)
    return out


def blend_tiles(
    tiles: np.ndarray, plan: TilePlan, scale: float = 1.0, out: np.ndarray | None = None
) -> np.ndarray:
    """Blend per-tile predictions [plan.count, tile, tile, C] into C planes, CxHxW float32 (times `scale`).

    Every pixel is the weighted mean of the tiles covering it; with overlap 0 this is plain stitching.
    """
    expected = (plan.count, plan.tile, plan.tile)
    if tiles.shape[:3] != expected:
        raise ValueError(f"tiles are {tiles.shape}, the plan wants {expected} x channels")
    return blend_pieces([tiles], plan, scale, out)


def blend_pieces(
    pieces: Iterable[np.ndarray], plan: TilePlan, scale: float = 1.0, out: np.ndarray | None = None
) -> np.ndarray:
    """`blend_tiles` for a frame's tiles in consecutive pieces, in order (e.g. views of the batches they were
    inferred in): each [n, tile, tile, C] float32, together the plan's tiles; no piece is copied."""
    first = 0
    for piece in pieces:
        if piece.ndim != 4 or piece.shape[1:3] != (plan.tile, plan.tile) or first + len(piece) > plan.count:
            raise ValueError(f"a piece of {piece.shape} after {first} tiles does not fit the plan's "
                             f"{plan.count} tiles of {plan.tile}x{plan.tile} x channels")
        wanted = (piece.shape[3], plan.height, plan.width)
        if out is None:
            out = np.empty(wanted, np.float32)
        if out.shape != wanted or out.dtype != np.float32:
            raise ValueError(f"a piece of {piece.shape} blends into float32 {wanted}, not {out.dtype} {out.shape}")
        _blend_kernel(piece, first, first == 0, plan.row_weights, plan.col_weights, plan.pad_top, plan.pad_left,
                      plan.cols, plan.stride, np.float32(scale), out)
        first += len(piece)
    if first != plan.count:
        raise ValueError(f"the pieces hold {first} tiles, the plan {plan.count}")
    return out


def predict_chroma(lightness: np.ndarray, predict: Callable[..., np.ndarray], contract: TileScaling,
                   overlap: int) -> np.ndarray:
    """The whole tiling path for one frame: cut HxW float32 L* into tiles scaled per `contract`, run
    `predict` (tiles [n, T, T, 1] -> raw model output [n, T, T, 2]; for a model with a context input,
    `predict(tiles, context)`, the context cut as the engine cuts it) and blend: returns 2xHxW a*, b* planes."""
    plan = plan_tiles(*lightness.shape, contract.tile_size, overlap)
    tiles = cut_tiles(lightness, plan, contract.l_scale, contract.l_shift)
    if contract.context_factor is None:
        return blend_tiles(predict(tiles), plan, contract.ab_scale)
    copy = context_copy(lightness, contract.context_factor)
    context = cut_context(copy, *plan.corners(), lightness.shape, contract.tile_size, contract.l_scale,
                          contract.l_shift)
    return blend_tiles(predict(tiles, context), plan, contract.ab_scale)
