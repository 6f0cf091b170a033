"""The palette guard: chroma that a model answers outside the colours its training photos hold at that lightness is
pulled to the nearest colour they hold, on the small copy before the growth.

A palette (`oppy.palette` in a model's metadata) is a coarse occupancy histogram over (L*, a*, b*): L* in bins of
`L_STEP`, a* and b* in cells of `AB_STEP` over [AB_MIN, -AB_MIN). A cell is occupied where enough of the training
photos hold a few pixels of it (`training.palette` builds it); the neutral cells about a* = b* = 0
are always occupied (grey is never wrong). A pixel whose cell is occupied keeps its chroma; any other is clipped
into the box of the nearest occupied cell at its L* bin. A model without a palette runs as before.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numba import prange

from .errors import ModelError
from .kernels.lab import rgb_to_lab
from .kernels.parallel import parallel_kernel

PALETTE_VERSION = 1
L_STEP = 10.0
L_BINS = 10
AB_STEP = 4.0
AB_MIN = -64.0
CELLS = 32
#: a palette's metadata is a few KB; anything much longer is not one
MAX_PALETTE_CHARS = 1 << 16


def _neutral_cells() -> tuple[slice, slice]:
    centre = int(-AB_MIN / AB_STEP)
    return slice(centre - 1, centre + 1), slice(centre - 1, centre + 1)


def _nearest_cells(occupied: np.ndarray) -> np.ndarray:
    """[L_BINS, CELLS, CELLS, 2] int32: for every cell, the (a, b) index of the nearest occupied cell at its L* bin
    (itself where occupied), by the distance between cell centres."""
    grid = np.stack(np.meshgrid(np.arange(CELLS), np.arange(CELLS), indexing="ij"), -1).reshape(-1, 2)
    nearest = np.empty((L_BINS, CELLS * CELLS, 2), np.int32)
    for level in range(L_BINS):
        held = np.argwhere(occupied[level])
        distances = ((grid[:, None, :] - held[None, :, :]) ** 2).sum(-1)
        nearest[level] = held[np.argmin(distances, axis=1)]
    return nearest.reshape(L_BINS, CELLS, CELLS, 2)


@parallel_kernel()
def _guard_kernel(lightness, ab, nearest, l_step, ab_min, ab_step, cells, l_bins):
    height, width = lightness.shape
    pulled = np.zeros(height, np.int64)
    for y in prange(height):
        for x in range(width):
            level = int(lightness[y, x] / l_step)
            level = min(max(level, 0), l_bins - 1)
            a, b = ab[0, y, x], ab[1, y, x]
            ia = min(max(int(np.floor((a - ab_min) / ab_step)), 0), cells - 1)
            ib = min(max(int(np.floor((b - ab_min) / ab_step)), 0), cells - 1)
            ja, jb = nearest[level, ia, ib, 0], nearest[level, ia, ib, 1]
            low_a, low_b = ab_min + ja * ab_step, ab_min + jb * ab_step
            new_a = min(max(a, low_a), low_a + ab_step)
            new_b = min(max(b, low_b), low_b + ab_step)
            if new_a != a or new_b != b:
                ab[0, y, x], ab[1, y, x] = new_a, new_b
                pulled[y] += 1
    return pulled.sum()


@dataclass(frozen=True, eq=False)
class Palette:
    """Where a model's training photos put their colours: `occupied` [L_BINS, CELLS, CELLS] bool, indexed by the L*
    bin, the a* cell and the b* cell."""

    occupied: np.ndarray

    def __post_init__(self):
        occupied = np.array(self.occupied, bool)
        occupied[(slice(None), *_neutral_cells())] = True
        object.__setattr__(self, "occupied", occupied)
        object.__setattr__(self, "_nearest", _nearest_cells(occupied))

    @classmethod
    def from_counts(cls, photos_holding: np.ndarray, photos: int, min_share: float = 0.002,
                    grow_cells: int = 1) -> Palette:
        """The palette of [L_BINS, CELLS, CELLS] counts of the photos that hold each cell (`training.palette`):
        cells held by at least `min_share` of the `photos` (a few odd photos, a calibration target's blue patch, do
        not make a colour Mars's), widened by `grow_cells` cells every way (colours next to those seen are not off
        the palette)."""
        held = np.asarray(photos_holding, np.float64)
        occupied = (held >= min_share * max(photos, 1)) & (held > 0)
        for _ in range(grow_cells):
            grown = occupied.copy()
            grown[:, 1:] |= occupied[:, :-1]
            grown[:, :-1] |= occupied[:, 1:]
            grown[:, :, 1:] |= occupied[:, :, :-1]
            grown[:, :, :-1] |= occupied[:, :, 1:]
            occupied = grown
        return cls(occupied)

    def to_metadata(self) -> str:
        """The palette as the JSON text of `oppy.palette`."""
        bits = base64.b64encode(np.packbits(self.occupied.ravel()).tobytes()).decode("ascii")
        return json.dumps({"version": PALETTE_VERSION, "l_step": L_STEP, "l_bins": L_BINS, "ab_step": AB_STEP,
                           "ab_min": AB_MIN, "cells": CELLS, "occupied": bits}, separators=(",", ":"))

    @classmethod
    def from_metadata(cls, text: str, source: str = "the model") -> Palette:
        """Parse `oppy.palette`; a `ModelError` in one line for anything but the layout this engine knows."""
        problem = f"{source} has a malformed palette (oppy.palette)"
        if not isinstance(text, str) or len(text) > MAX_PALETTE_CHARS:
            raise ModelError(f"{problem}: more than {MAX_PALETTE_CHARS} characters; re-export the model with "
                             "oppy-export --palette DATASET")
        try:
            record = json.loads(text)
            layout = {key: record[key] for key in ("version", "l_step", "l_bins", "ab_step", "ab_min", "cells")}
            bits = base64.b64decode(record["occupied"], validate=True)
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            raise ModelError(f"{problem}: {type(exc).__name__}: {str(exc)[:100]}; re-export the model with "
                             "oppy-export --palette DATASET") from exc
        expected = {"version": PALETTE_VERSION, "l_step": L_STEP, "l_bins": L_BINS, "ab_step": AB_STEP,
                    "ab_min": AB_MIN, "cells": CELLS}
        if layout != expected:
            raise ModelError(f"{problem}: its layout {layout} is not this engine's {expected}")
        size = L_BINS * CELLS * CELLS
        if len(bits) != (size + 7) // 8:
            raise ModelError(f"{problem}: {len(bits)} bytes of cells where {(size + 7) // 8} are expected")
        occupied = np.unpackbits(np.frombuffer(bits, np.uint8))[:size].astype(bool)
        return cls(occupied.reshape(L_BINS, CELLS, CELLS))

    def guard(self, lightness: np.ndarray, ab: np.ndarray) -> int:
        """Pull 2xhxw float32 a*, b* (in place) to the palette at the hxw L* beside it; returns the pixels moved."""
        if ab.dtype != np.float32 or not ab.flags.c_contiguous:
            raise TypeError("the palette guard works in place on C-contiguous float32 a*, b*")
        return int(_guard_kernel(np.ascontiguousarray(lightness, np.float32), ab, self._nearest, L_STEP, AB_MIN,
                                 AB_STEP, CELLS, L_BINS))


def cell_index(lab: np.ndarray) -> np.ndarray:
    """The flat index into [L_BINS, CELLS, CELLS] of each pixel of an ...x3 LAB array (edges clipped)."""
    lab = np.asarray(lab, np.float32)
    level = np.clip((lab[..., 0] / L_STEP).astype(np.int64), 0, L_BINS - 1)
    a = np.clip(np.floor((lab[..., 1] - AB_MIN) / AB_STEP).astype(np.int64), 0, CELLS - 1)
    b = np.clip(np.floor((lab[..., 2] - AB_MIN) / AB_STEP).astype(np.int64), 0, CELLS - 1)
    return (level * CELLS + a) * CELLS + b


#: a photo holds a cell of (L*, a*, b*) where at least this share of its pixels lie in it (not a stray JPEG pixel)
PHOTO_SHARE = 1e-3


def photos_holding(photos: Iterable[np.ndarray], min_chroma: float = 4.0) -> tuple[np.ndarray, int]:
    """([L_BINS, CELLS, CELLS] the number of colour photos (HxWx3 LAB each) that hold each cell, the number of
    colour photos); photos whose mean C*ab is below `min_chroma` (greyscale) are left out."""
    held, count = np.zeros(L_BINS * CELLS * CELLS, np.int64), 0
    for lab in photos:
        if np.hypot(lab[..., 1], lab[..., 2]).mean() < min_chroma:
            continue
        counts = np.bincount(cell_index(lab).ravel(), minlength=held.size)
        held += counts >= PHOTO_SHARE * counts.sum()
        count += 1
    return held.reshape(L_BINS, CELLS, CELLS), count


def folder_palette(folder: str | Path, min_chroma: float = 4.0) -> Palette:
    """The palette of the colour photos (PNG, JPEG) in a folder: a prepared dataset's `train` split is the photos a
    model learned from (`oppy-export --palette DATASET`)."""
    files = sorted(path for path in Path(folder).glob("*") if path.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise FileNotFoundError(f"no colour photos in {folder} to take a palette from")

    def labs() -> Iterator[np.ndarray]:
        for path in files:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is not None:
                yield rgb_to_lab(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    held, count = photos_holding(labs(), min_chroma)
    if not count:
        raise FileNotFoundError(f"no colour photo in {folder} to take a palette from (all greyscale or unreadable)")
    return Palette.from_counts(held, count)
