"""Tiles of consecutive frames packed into the model's fixed-size batches, and each frame's results found again.

Tiles are cut straight into a batch (no tile array per frame, no copy into the batch); a frame keeps views of the
outputs its tiles came back in (no copy out of them), which `tiles.blend_pieces` blends. The arrays are reused:
fresh memory costs a page fault per 4 KiB page written.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .kernels.context import cut_context
from .kernels.tiles import TilePlan, cut_tiles


@dataclass(eq=False)
class TileBatch:
    """One batch: `tiles` [size, T, T, 1] float32 (rows from `filled` on are zeros once it is closed), `output`
    [size, T, T, 2] float32 for the model to write, the frames whose last tile it holds, in order, and how many
    frames have tiles in it and are still to read their results."""

    tiles: np.ndarray | None
    output: np.ndarray | None
    filled: int = 0
    finished: list = field(default_factory=list)
    readers: int = 0
    #: each tile's context [size, T, T, 1] float32, for a model with a context input (else None)
    context: np.ndarray | None = None


@dataclass(frozen=True)
class BatchSlice:
    """`count` consecutive tiles of one frame, from its tile `first`, at rows `row .. row+count` of a batch."""

    batch: TileBatch
    first: int
    row: int
    count: int

    @property
    def output(self) -> np.ndarray:
        """The model's output for these tiles [count, T, T, 2] (a view into the batch's output)."""
        return self.batch.output[self.row : self.row + self.count]


class BatchPacker:
    """Packs the tiles of frames, in the order given, into batches of `size` tiles of `tile` x `tile`, each L*
    value stored as `v*scale+shift`, with room for `channels` of output. A batch's input array comes back for reuse
    through `recycle` once the model has read it, its output array through `release` once every frame has read its
    results; packing, running and blending may each run in a thread of its own."""

    def __init__(self, size: int, tile: int, scale: float = 1.0, shift: float = 0.0, channels: int = 2,
                 context: bool = False):
        self.size, self.tile, self.scale, self.shift, self.channels = size, tile, scale, shift, channels
        self.context = context
        # appends and pops of a deque are atomic: no lock needed
        self._spare_tiles: deque[tuple[np.ndarray, np.ndarray | None]] = deque()
        self._spare_outputs: deque[np.ndarray] = deque()
        self._open: TileBatch | None = None

    def _new_batch(self) -> TileBatch:
        # a batch's input arrays, tiles and context, travel together: (tiles, context or None)
        tiles, context = self._spare_tiles.pop() if self._spare_tiles else (
            np.empty((self.size, self.tile, self.tile, 1), np.float32),
            np.empty((self.size, self.tile, self.tile, 1), np.float32) if self.context else None)
        output = self._spare_outputs.pop() if self._spare_outputs else \
            np.empty((self.size, self.tile, self.tile, self.channels), np.float32)
        return TileBatch(tiles, output, context=context)

    def add(self, frame: object, lightness: np.ndarray, plan: TilePlan,
            context: np.ndarray | None = None) -> tuple[list[BatchSlice], list[TileBatch]]:
        """Cut the HxW float32 L* plane `lightness` by `plan` into the batches (and each tile's context from
        `context`, the plane's `context.context_copy`, where the packer was made for context): returns where its
        tiles went and the batches it filled (ready to run). `frame` joins the `finished` list of the batch with
        its last tile."""
        if self.context != (context is not None):
            raise ValueError("a packer for context takes each frame's context copy, and only it does")
        corners = plan.corners() if context is not None else None
        slices, full = [], []
        first = 0
        while first < plan.count:
            batch = self._open = self._open or self._new_batch()
            count = min(self.size - batch.filled, plan.count - first)
            rows = batch.tiles[batch.filled : batch.filled + count]
            cut_tiles(lightness, plan, self.scale, self.shift, out=rows, first=first)
            if corners is not None:
                cut_context(context, corners[0][first : first + count], corners[1][first : first + count],
                            lightness.shape, self.tile, self.scale, self.shift,
                            out=batch.context[batch.filled : batch.filled + count])
            slices.append(BatchSlice(batch, first, batch.filled, count))
            batch.filled += count
            batch.readers += 1
            first += count
            if first == plan.count:
                batch.finished.append(frame)
            if batch.filled == self.size:
                full.append(batch)
                self._open = None
        return slices, full

    def hold(self, item: object) -> object | None:
        """Keep `item` (not a frame: a skip) in order behind the frames of the batch being filled: it joins that
        batch's `finished` list; with no batch open it is returned, to go on at once."""
        if self._open is None:
            return item
        self._open.finished.append(item)
        return None

    def flush(self) -> TileBatch | None:
        """The batch being filled, its empty rows zeroed, or None when nothing waits."""
        batch, self._open = self._open, None
        if batch is not None:
            batch.tiles[batch.filled :] = 0.0
            if batch.context is not None:
                batch.context[batch.filled :] = 0.0
        return batch

    def recycle(self, batch: TileBatch) -> None:
        """Take back a batch's input arrays for the next batches: call once the model has read them."""
        self._spare_tiles.append((batch.tiles, batch.context))
        batch.tiles = batch.context = None

    def release(self, slices: list[BatchSlice]) -> None:
        """One frame is done with its results: a batch whose every frame is done gives its output array back."""
        for batch in (part.batch for part in slices):
            batch.readers -= 1
            if batch.readers == 0:
                self._spare_outputs.append(batch.output)
                batch.output = None
