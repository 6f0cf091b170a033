"""The stages of a frame's journey, each one step on a `Work`, in one place: the engine's pipeline runs them in
threads, `Engine.colorize` one after the other, and `oppy-bench pipeline` times each alone.

to_l -> shrink (L at the chroma scale) -> tile (into batches) -> infer -> blend (a*, b* on the small copy) ->
grow (a*, b* at full resolution, guided by L) -> to_rgb; a sink may add its own `prepare`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .batches import BatchPacker, BatchSlice, TileBatch
from .context import context_copy
from .contract import CHROMA_LIMIT, ModelContract
from .errors import FrameError, OppyError
from .lab import l_ab_to_rgb, to_lightness
from .products import ProductInfo
from .resize import Placement, frame_size, place, placement, scale_pixels
from .scale import choose_scale, grow, shrink
from .sources import FrameTiming
from .tiles import TilePlan, blend_pieces, plan_tiles

#: the stages `Stages` runs, in order (the pipeline's names for them, and `oppy-bench pipeline`'s)
STAGE_NAMES = ("to_l", "shrink", "tile", "infer", "blend", "grow", "to_rgb")


@dataclass
class Work:
    """One frame on its way through the stages; each stage fills its field and drops what is spent."""

    index: int
    name: str
    pixels: np.ndarray | None
    timing: FrameTiming | None = None
    placement: Placement | None = None  # where a frame of another size goes in the video
    resized_from: tuple[int, int] | None = None  # its own (width, height) then
    lightness: np.ndarray | None = None  # HxW float32 L*, full resolution
    size: tuple[int, int] | None = None  # (width, height) as colourised (after any fitting)
    scale: float = 1.0  # the chroma scale it is colourised at
    small: np.ndarray | None = None  # L* at that scale (the tiles' plane); `lightness` itself at scale 1
    plan: TilePlan | None = None  # the tiles of `small`
    context: np.ndarray | None = None  # `small` shrunk by the model's context factor, for a context input
    slices: list[BatchSlice] | None = None  # where its tiles went in the batches
    ab: np.ndarray | None = None  # 2xhxw float32 a*, b* on `small`, then 2xHxW once grown
    rgb: np.ndarray | None = None
    prepared: object | None = None  # the frame as the sink's writer takes it (`_Sink.prepare`), in place of rgb
    info: ProductInfo | None = None  # what its label or product id says


class Stages:
    """The stages of one stream of frames through one model. `run_batch(batch)` runs the model on a `TileBatch`
    (its tiles into its output); `chroma_scale` is "auto" or a number in (0, 1] (`EngineConfig.chroma_scale`).

    Each method is one stage for one frame (`tile` and `infer` work on batches shared by consecutive frames);
    several stages may run at once, each in a thread of its own, in the order `STAGE_NAMES` gives.
    """

    def __init__(self, contract: ModelContract, overlap: int, chroma_scale: str | float, batch_size: int,
                 run_batch: Callable[[TileBatch], None]):
        self.contract, self.overlap, self.chroma_scale = contract, overlap, chroma_scale
        self.run_batch = run_batch
        self.packer = BatchPacker(batch_size, contract.tile_size, contract.l_scale, contract.l_shift,
                                  context=contract.context_input is not None)

    @staticmethod
    def fit(work: Work, canvas: tuple[int, int], mode: str) -> None:
        """Scale a frame of another size for its place on the video's canvas, before it is colourised."""
        work.resized_from = frame_size(work.pixels)
        work.placement = placement(work.resized_from, canvas, mode)
        work.pixels = scale_pixels(work.pixels, work.placement.width, work.placement.height)

    @staticmethod
    def to_l(work: Work) -> None:
        pixels = work.pixels
        if pixels.dtype.kind == "f" and not np.isfinite(pixels).all():
            raise FrameError("the frame holds NaN or infinite values: float pixels must be finite, in [0, 1]")
        try:
            work.lightness = to_lightness(pixels)
        except (ValueError, TypeError) as exc:
            raise OppyError(f"{work.name or f'frame {work.index}'}: {exc}") from exc
        work.pixels = None

    def shrink(self, work: Work) -> None:
        """The copy of L the tiles are cut from, at the frame's chroma scale, and its tile plan."""
        height, width = work.lightness.shape
        work.size = (width, height)
        work.scale = choose_scale(height, width, self.chroma_scale, self.contract)
        work.small = shrink(work.lightness, work.scale)
        work.plan = plan_tiles(*work.small.shape, self.contract.tile_size, self.overlap)
        if self.contract.context_factor is not None:
            work.context = context_copy(work.small, self.contract.context_factor)

    def tile(self, work: Work) -> list[TileBatch]:
        """Cut the frame's tiles into the batches; returns the batches it filled (ready to run)."""
        work.slices, full = self.packer.add(work, work.small, work.plan, work.context)
        work.context = None
        return full

    def flush(self) -> TileBatch | None:
        """The batch being filled (its empty rows zeroed), or None when nothing waits."""
        return self.packer.flush()

    def tile_all(self, works: list[Work]) -> list[TileBatch]:
        """Every frame's tiles cut into the batches, the last batch flushed: all of them, ready to run."""
        batches = [batch for work in works for batch in self.tile(work)]
        if (last := self.flush()) is not None:
            batches.append(last)
        return batches

    def hold(self, skipped: object) -> object | None:
        """A skip arriving at the tile stage, kept in order behind the frames held in the open batch (None), or
        returned when there is none, to go on at once."""
        return self.packer.hold(skipped)

    def infer(self, batch: TileBatch) -> list[Work]:
        """One batch through the model; returns the frames whose last tile it held, in order."""
        self.run_batch(batch)
        self.packer.recycle(batch)
        finished, batch.finished = batch.finished, []
        return finished

    def blend(self, work: Work) -> None:
        """The frame's a*, b* from its tiles' results; a `FrameError` when the model's answer is not a colour."""
        work.ab = blend_pieces([part.output for part in work.slices], work.plan, self.contract.ab_scale)
        self.packer.release(work.slices)  # a batch's output is reused once every frame in it is blended
        work.slices = None
        peak = float(np.abs(work.ab).max())
        if not peak <= CHROMA_LIMIT:  # NaN fails it too
            answer = "NaN or infinity" if not np.isfinite(peak) else f"|a*|, |b*| up to {peak:.3g}"
            work.ab = None
            raise FrameError(f"the model's answer for this frame is not a colour ({answer}, where colours lie "
                             f"within ±{CHROMA_LIMIT:g}): the model is broken for this input")

    @staticmethod
    def grow(work: Work) -> None:
        """a*, b* back at full resolution, guided by full-resolution L (nothing to do at scale 1)."""
        work.ab = grow(work.ab, work.small, work.lightness)
        work.small = None

    @staticmethod
    def to_rgb(work: Work) -> None:
        work.rgb = l_ab_to_rgb(work.lightness, work.ab)
        if work.placement is not None:
            work.rgb = place(work.rgb, work.placement)
        work.lightness = work.ab = None

    def colorize(self, work: Work) -> None:
        """Every stage on one frame, one after the other, in the calling thread."""
        self.to_l(work)
        self.shrink(work)
        for batch in self.tile_all([work]):
            self.infer(batch)
        self.blend(work)
        self.grow(work)
        self.to_rgb(work)
