"""A frame's journey from source to sink, in one place: the stages in their order (`steps`), run as threads joined
by queues (`in_threads`: `Engine.stream`, `Engine.render`, the cluster's workers) or one after another in the
calling thread (`in_turn`: `Engine.colorize`, `oppy-bench pipeline`).

source (decode) -> to_l -> shrink (L at the chroma scale) -> tile (into batches shared by frames) -> infer ->
blend (a*, b* on the small copy, then the palette guard) -> [temporal: colour carried over from the frames before]
-> grow (a*, b* at full resolution, guided by L) -> [sheet] -> to_rgb -> [caption] -> [prepare, the sink's own] ->
sink (encode). Each stage is one step on a `Work`; a frame that cannot be colourised becomes a `Skipped` and
travels on in its place.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .batches import BatchPacker, BatchSlice, TileBatch
from .config import fixed_chroma_scale
from .contract import CHROMA_LIMIT, ModelContract
from .errors import FrameError, OppyError
from .frames import FrameTiming, Skipped
from .inputs.facts import ProductInfo
from .inputs.sources import SourceFrame
from .kernels.chroma_scale import choose_scale, grow, shrink
from .kernels.context import context_copy
from .kernels.lab import l_ab_to_rgb, to_lightness
from .kernels.margins import clear_margins, content_box, filled
from .kernels.resize import Placement, frame_size, place, placement, scale_pixels
from .kernels.tiles import TilePlan, blend_pieces, plan_tiles
from .overlays.captions import burn_caption, caption_text
from .overlays.sheet import ContactSheet
from .palette import Palette
from .pipeline import IDLE, Pipeline
from .temporal import FrameKey, TemporalSmoother

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Step:
    """One stage of the journey. `kind` says how it meets the stream: "start" turns each source frame into a `Work`
    and runs `run` on it, "each" runs `run` on one frame at a time, "carried" too but sees the skips (the temporal
    stage: a skip is a cut), "pack" cuts the frames' tiles into batches, "infer" runs the batches."""

    name: str
    kind: str
    run: Callable[[Work], None] | None = None


def steps(stages: Stages, *, fit: str | None = None, canvas: tuple[int, int] | None = None,
          sheet: ContactSheet | None = None, caption: str | None = None,
          prepare: Callable[[np.ndarray], object] | None = None) -> list[Step]:
    """The journey's stages in order, the optional ones where asked for: the one list both runners run.

    With `fit` ("letterbox" or "scale"), every frame of another size than `canvas` (width, height; default: the
    first frame's) is fitted to it. With `sheet`, each frame is offered to it once colourised; with `caption` (a
    format, `captions`), the caption is burned into each. With `prepare` (a sink's), a stage of its own turns each
    RGB frame into `Work.prepared`, off the thread that writes them. The temporal stage is there where the stages
    hold a smoother."""
    listed = [Step("to_l", "start", _fitted_to_l(stages, fit, canvas)), Step("shrink", "each", stages.shrink),
              Step("tile", "pack"), Step("infer", "infer"), Step("blend", "each", stages.blend)]
    if stages.smoother is not None:
        listed.append(Step("temporal", "carried", stages.temporal))
    listed.append(Step("grow", "each", stages.grow))
    if sheet is not None:
        listed.append(Step("sheet", "each", lambda work: sheet.offer(work.index, work.name, work.lightness, work.ab)))
    listed.append(Step("to_rgb", "each", stages.to_rgb))
    if caption is not None:
        listed.append(Step("caption", "each", _captioned(caption)))
    if prepare is not None:
        listed.append(Step("prepare", "each", _prepared(prepare)))
    return listed


def in_threads(stages: Stages, source: Iterable, queue_size: int, *, cancel: threading.Event | None = None,
               **options) -> Pipeline:
    """The journey in threads, one a stage, over a source of `SourceFrame`s and `Skipped`s: `Work`s and `Skipped`s
    come out, in order, for the caller's sink. `options` choose the optional stages (`steps`)."""
    threads = {"start": _started, "each": _each, "carried": _carried, "pack": _packed, "infer": _inferred}
    listed = steps(stages, **options)
    # the packing stage flushes its open batch when its inbox runs dry, and keeps skips in order behind it; the
    # temporal stage takes a skip as a cut
    packing = tuple(step.name for step in listed if step.kind == "pack")
    seeing_skips = tuple(step.name for step in listed if step.kind in ("pack", "carried"))
    return Pipeline(source, [(step.name, threads[step.kind](stages, step)) for step in listed], queue_size,
                    passthrough=Skipped, cancel=cancel, idle_stages=packing, sees_passthrough=seeing_skips)


def in_turn(stages: Stages, works: list[Work], timed: Callable[[str, Callable[[], object]], object] | None = None,
            *, listed: list[Step] | None = None, **options) -> None:
    """The same stages (`listed`, else `steps` chosen by `options`) in the calling thread, each over every frame of
    `works` before the next: `timed(name, call)` runs each stage's `call` (and may time it). A frame that cannot be
    colourised raises its `FrameError`."""
    run = timed or (lambda name, call: call())
    batches: list[TileBatch] = []
    for step in listed or steps(stages, **options):
        if step.kind == "pack":
            batches = run(step.name, lambda: stages.tile_all(works))
        elif step.kind == "infer":
            run(step.name, lambda batches=batches: [stages.infer(batch) for batch in batches])
        else:
            run(step.name, lambda step=step: [step.run(work) for work in works])


def _attempt(step: Callable[[Work], None], work: Work) -> Work | Skipped:
    """`step` on one frame: the frame, or a skip with the reason where it cannot be colourised (`FrameError`)."""
    try:
        step(work)
    except FrameError as exc:
        return Skipped(work.name, str(exc))
    return work


def _each(stages: Stages, step: Step) -> Callable[[Iterator], Iterator]:
    """A stage that runs the step on each frame (`_attempt`)."""

    def stage(items: Iterator) -> Iterator:
        for work in items:
            yield _attempt(step.run, work)

    return stage


def _fitted_to_l(stages: Stages, fit: str | None, canvas: tuple[int, int] | None) -> Callable[[Work], None]:
    """The to_l step: a frame of another size than the canvas fitted to it where `fit` says, then its L."""

    def step(work: Work) -> None:
        nonlocal canvas
        if fit is not None:
            canvas = canvas or frame_size(work.pixels)
            if frame_size(work.pixels) != canvas:
                stages.fit(work, canvas, fit)
        stages.to_l(work)

    return step


def _started(stages: Stages, step: Step) -> Callable[[Iterator], Iterator]:
    """The first stage: each source frame becomes a `Work`, and the step runs on it."""

    def stage(items: Iterator[SourceFrame]) -> Iterator[Work | Skipped]:
        for frame in items:
            yield _attempt(step.run, Work(frame.index, frame.name, frame.pixels, frame.timing, info=frame.info))

    return stage


def _packed(stages: Stages, step: Step) -> Callable[[Iterator], Iterator[TileBatch]]:
    """The tile stage: each frame's tiles cut into the batches; full batches go on, and the one being filled goes
    too once the stage's inbox runs dry (a live source may not send more soon)."""

    def stage(works: Iterator) -> Iterator[TileBatch | Skipped]:
        for work in works:
            if isinstance(work, Skipped):  # in order behind the frames the open batch holds
                if (now := stages.hold(work)) is not None:
                    yield now
            elif work is not IDLE:
                yield from stages.tile(work)
            elif (batch := stages.flush()) is not None:
                yield batch
        if (batch := stages.flush()) is not None:
            yield batch

    return stage


def _inferred(stages: Stages, step: Step) -> Callable[[Iterator[TileBatch]], Iterator[Work]]:
    """The infer stage: each batch through the model; then the frames it finishes go on, in order."""

    def stage(batches: Iterator[TileBatch]) -> Iterator[Work]:
        for batch in batches:
            yield from stages.infer(batch)

    return stage


def _carried(stages: Stages, step: Step) -> Callable[[Iterator], Iterator]:
    """The temporal stage: each frame's colour carried from the frames before it; a skip is a cut."""

    def stage(items: Iterator) -> Iterator:
        for item in items:
            if isinstance(item, Skipped):
                stages.smoother.cut("skip")
                yield item
            else:
                yield _attempt(step.run, item)

    return stage


def _captioned(caption: str) -> Callable[[Work], None]:
    left_out: set[tuple[int, int]] = set()

    def step(work: Work) -> None:
        text = caption_text(caption, work.name, work.index, work.info)
        if text and not burn_caption(work.rgb, text) and text.strip():
            size = (work.rgb.shape[1], work.rgb.shape[0])
            if size not in left_out:  # one warning a frame size, not one a frame
                left_out.add(size)
                log.warning("frames of %dx%d are too small for a caption: it is left out of them", *size)

    return step


def _prepared(prepare: Callable[[np.ndarray], object]) -> Callable[[Work], None]:
    def step(work: Work) -> None:
        work.prepared, work.rgb = prepare(work.rgb), None

    return step


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
    picture: tuple[int, int, int, int] | None = None  # the picture inside black margins (`kernels.margins`), or None
    size: tuple[int, int] | None = None  # (width, height) as colourised (after any fitting)
    chroma_scale: float = 1.0  # the chroma scale it is colourised at
    small: np.ndarray | None = None  # L* at that scale (the tiles' plane); `lightness` itself at scale 1
    plan: TilePlan | None = None  # the tiles of `small`
    context: np.ndarray | None = None  # `small` shrunk by the model's context factor, for a context input
    slices: list[BatchSlice] | None = None  # where its tiles went in the batches
    ab: np.ndarray | None = None  # 2xhxw float32 a*, b* on `small`, then 2xHxW once grown
    cut: str | None = None  # why the temporal stage started afresh at this frame ("first", "scene", ...), or None
    rgb: np.ndarray | None = None
    prepared: object | None = None  # the frame as the sink's writer takes it (`_Sink.prepare`), in place of rgb
    info: ProductInfo | None = None  # what its label or product id says


class Stages:
    """The stages of one stream of frames through one model. `run_batch(batch)` runs the model on a `TileBatch`
    (its tiles into its output); `chroma_scale` is "auto" or a number in (0, 1] (`EngineConfig.chroma_scale`).

    Each method is one stage for one frame (`tile` and `infer` work on batches shared by consecutive frames);
    several stages may run at once, each in a thread of its own, in the order `steps` gives. With a
    `temporal` strength above 0, the stages hold a `TemporalSmoother` and serve one stream of frames, in order.
    """

    def __init__(self, contract: ModelContract, overlap: int, chroma_scale: str | float, batch_size: int,
                 run_batch: Callable[[TileBatch], None], palette: Palette | None = None, temporal: float = 0.0):
        self.contract, self.overlap, self.chroma_scale = contract, overlap, chroma_scale
        self.run_batch, self.palette = run_batch, palette
        self.smoother = TemporalSmoother(temporal) if temporal > 0 else None
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
        if pixels.ndim >= 2 and 0 in pixels.shape[:2]:
            raise FrameError(f"the frame is {pixels.shape[1]}x{pixels.shape[0]} pixels: there is nothing to colourise "
                             "(a frame needs at least 1x1)")
        if pixels.dtype.kind == "f" and not np.isfinite(pixels).all():
            raise FrameError("the frame holds NaN or infinite values: float pixels must be finite, in [0, 1]")
        try:
            work.lightness = to_lightness(pixels)
        except (ValueError, TypeError) as exc:
            raise OppyError(f"{work.name or f'frame {work.index}'}: {exc}") from exc
        work.pixels = None

    def shrink(self, work: Work) -> None:
        """The copy of L the tiles are cut from, at the frame's chroma scale, and its tile plan. Black margins
        around the picture are filled with the picture mirrored first (`kernels.margins`)."""
        height, width = work.lightness.shape
        work.size = (width, height)
        work.chroma_scale = choose_scale(height, width, fixed_chroma_scale(self.chroma_scale),
                                         self.contract.scene_size, self.contract.tile_size)
        work.picture = content_box(work.lightness)
        plane = work.lightness if work.picture is None else filled(work.lightness, work.picture)
        work.small = shrink(plane, work.chroma_scale)
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
        if self.palette is not None:
            self.palette.guard(work.small, work.ab)

    def temporal(self, work: Work) -> None:
        """The frame's a*, b* on the small copy blended with the frames before it (nothing without a smoother)."""
        if self.smoother is None:
            return
        info = work.info
        key = FrameKey(work.small.shape, info.camera if info else None, info.time() if info else None)
        work.cut = self.smoother.smooth(work.small, work.ab, key)

    @staticmethod
    def grow(work: Work) -> None:
        """a*, b* back at full resolution, guided by full-resolution L (nothing to do at scale 1); black margins
        kept neutral (the growth reads each pixel's own L, so a picture's pixels grow as from the filled plane)."""
        work.ab = grow(work.ab, work.small, work.lightness)
        if work.picture is not None:
            clear_margins(work.ab, work.picture)
        work.small = None

    @staticmethod
    def to_rgb(work: Work) -> None:
        work.rgb = l_ab_to_rgb(work.lightness, work.ab)
        if work.placement is not None:
            work.rgb = place(work.rgb, work.placement)
        work.lightness = work.ab = None
