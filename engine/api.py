"""`Engine`: a loaded model plus the stages that turn greyscale frames into colour frames.

`colorize` does one frame in the calling thread; `stream` and `render` run the stages as a pipeline. One engine
serves several threads at once: only the inference call itself is taken in turn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import av
import numpy as np

from .batches import TileBatch
from .captions import burn_caption, caption_text
from .config import EngineConfig
from .errors import FrameError, ModelError, OppyError
from .levels import Levels
from .pipeline import IDLE, Pipeline
from .render import ProgressCallback, RenderReport, render
from .resize import frame_size
from .session import ModelSession
from .sheet import DEFAULT_SHEET_FRAMES, ContactSheet
from .sinks import to_video_frame
from .sources import FrameTiming, Skipped, SourceFrame, frame_pixels
from .stages import Stages, Work

DEFAULT_MODEL = Path(__file__).parent / "models" / "default.onnx"

#: what `colorize` and `stream` take and give back: numpy frames, or PyAV video frames
Frame = np.ndarray | av.VideoFrame


def default_model_path() -> Path:
    """The packaged default model, or a `ModelError` naming the option to use instead."""
    if not DEFAULT_MODEL.is_file():
        raise ModelError(
            "no model given and this installation carries no packaged default model: pass "
            "Engine(model='path/to/model.onnx') (oppy-stream --model PATH)"
        )
    return DEFAULT_MODEL


def _attempt(step: Callable[[Work], None], work: Work) -> Work | Skipped:
    """`step` on one frame: the frame, or a skip with the reason where it cannot be colourised (`FrameError`)."""
    try:
        step(work)
    except FrameError as exc:
        return Skipped(work.name, str(exc))
    return work


def _each(step: Callable[[Work], None]) -> Callable[[Iterator], Iterator]:
    """A stage that runs `step` on each frame (`_attempt`)."""

    def stage(items: Iterator) -> Iterator:
        for work in items:
            yield _attempt(step, work)

    return stage


def _source_frame(index: int, item: Frame) -> SourceFrame:
    if isinstance(item, av.VideoFrame):
        return SourceFrame(index, f"frame {index}", frame_pixels(item), FrameTiming(item.pts, item.time_base))
    return SourceFrame(index, f"frame {index}", np.asarray(item))


def _as_given(work: Work) -> Frame:
    return work.rgb if work.timing is None else to_video_frame(work.rgb, work.timing)


class Engine:
    """A colourising engine: `Engine(model=..., provider=..., batch_size=..., ...)`; see `EngineConfig`.

    Use as a context manager, or call `close()`, to release the inference session.
    """

    def __init__(self, model: str | Path | None = None, *, config: EngineConfig | None = None, **options):
        if model is not None:
            options["model"] = model
        self.config = replace(config or EngineConfig(), **options)
        model_path = Path(self.config.model) if self.config.model is not None else default_model_path()
        self.session = ModelSession(model_path, self.config.provider, self.config.batch_size,
                                    self.config.threads)
        self.contract = self.session.contract
        self.overlap = self.contract.overlap if self.config.overlap is None else self.config.overlap
        if self.overlap >= self.contract.tile_size:
            self.session.close()
            raise OppyError(f"overlap {self.overlap} must be smaller than the model's tile of "
                            f"{self.contract.tile_size} px: pass a smaller --overlap (overlap=...)")
        self.tiles_inferred = 0
        self._infer_lock = threading.Lock()
        self._per_thread = threading.local()  # `colorize`'s stages (their batch arrays), one set per thread

    @property
    def provider(self) -> str:
        """The ONNX Runtime execution provider actually in use."""
        return self.session.provider

    @property
    def closed(self) -> bool:
        return self.session.closed

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("this Engine is closed: create a new one to go on")

    def _run_batch(self, batch: TileBatch) -> None:
        with self._infer_lock:
            self.session.run(batch.tiles, batch.output, batch.context)
            self.tiles_inferred += batch.filled

    def stages(self) -> Stages:
        """The stages of one stream of frames through this engine's model (`oppy-bench pipeline` times them)."""
        return Stages(self.contract, self.overlap, self.config.chroma_scale, self.session.batch_size,
                      self._run_batch)

    @staticmethod
    def _prepared(prepare: Callable[[np.ndarray], object]) -> Callable[[Work], None]:
        def step(work: Work) -> None:
            work.prepared, work.rgb = prepare(work.rgb), None

        return step

    @staticmethod
    def _captioned(caption: str) -> Callable[[Work], None]:
        def step(work: Work) -> None:
            text = caption_text(caption, work.name, work.index, work.info)
            if text is not None:
                burn_caption(work.rgb, text)

        return step

    @staticmethod
    def _pack(stages: Stages) -> Callable[[Iterator], Iterator[TileBatch]]:
        """The tile stage: each frame's tiles cut into the batches; full batches go on, and the one being filled
        goes too once the stage's inbox runs dry (a live source may not send more soon)."""

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

    @staticmethod
    def _infer(stages: Stages) -> Callable[[Iterator[TileBatch]], Iterator[Work]]:
        """The infer stage: each batch through the model; then the frames it finishes go on, in order."""

        def stage(batches: Iterator[TileBatch]) -> Iterator[Work]:
            for batch in batches:
                yield from stages.infer(batch)

        return stage

    # -- public API ----------------------------------------------------------------------------------------
    def colorize(self, gray: Frame) -> Frame:
        """One frame, in the calling thread: HxW uint8/uint16 grey (or RGB/RGBA, reduced to lightness) ->
        HxWx3 uint8 RGB; a PyAV `VideoFrame` -> an rgb24 `VideoFrame` with the same pts."""
        self._check_open()
        frame = _source_frame(0, gray)
        work = Work(0, "", frame.pixels, frame.timing)
        stages = getattr(self._per_thread, "stages", None)
        if stages is None:
            stages = self._per_thread.stages = self.stages()
        stages.colorize(work)
        return _as_given(work)

    def _pipeline(self, source: Iterable, fit: str | None = None, cancel: threading.Event | None = None,
                  canvas: tuple[int, int] | None = None, prepare: Callable[[np.ndarray], object] | None = None,
                  sheet: ContactSheet | None = None) -> Pipeline:
        """The stages over a source of `SourceFrame`s and `Skipped`s; `Work`s and `Skipped`s come out in order.

        With `fit` ("letterbox" or "scale"), every frame of another size than `canvas` (width, height; default:
        the first frame's) is fitted to it. With `prepare` (a sink's), a stage of its own turns each RGB frame
        into `Work.prepared`, off the thread that writes them. With `sheet`, each frame is offered to it once
        colourised.
        """

        stages = self.stages()

        def start(items: Iterator[SourceFrame]) -> Iterator[Work]:
            nonlocal canvas
            for frame in items:
                work = Work(frame.index, frame.name, frame.pixels, frame.timing, info=frame.info)
                if fit is not None:
                    canvas = canvas or frame_size(work.pixels)
                    if frame_size(work.pixels) != canvas:
                        stages.fit(work, canvas, fit)
                yield _attempt(stages.to_l, work)

        steps = [("to_l", start), ("shrink", _each(stages.shrink)), ("tile", self._pack(stages)),
                 ("infer", self._infer(stages)), ("blend", _each(stages.blend)), ("grow", _each(stages.grow))]
        if sheet is not None:
            steps.append(("sheet", _each(lambda work: sheet.offer(work.index, work.name, work.lightness, work.ab))))
        steps.append(("to_rgb", _each(stages.to_rgb)))
        if self.config.caption is not None:
            steps.append(("caption", _each(self._captioned(self.config.caption))))
        if prepare is not None:
            steps.append(("prepare", _each(self._prepared(prepare))))
        return Pipeline(source, steps, self.config.queue_size, passthrough=Skipped, cancel=cancel,
                        idle_stages=("tile",), sees_passthrough=("tile",))

    def stream(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """Colourise any iterable of frames, pipelined, in order; each comes back as the kind it was given
        (see `colorize`). Several threads may stream through one engine at once. Exhaust or close the
        generator: that stops and joins its threads (also on an error, which is raised unchanged)."""
        self._check_open()
        source = (_source_frame(index, item) for index, item in enumerate(frames))
        with closing(iter(self._pipeline(source))) as works:
            for work in works:
                if isinstance(work, Skipped):  # a stream gives back every frame or stops
                    raise FrameError(f"{work.name}: {work.reason}")
                yield _as_given(work)

    def render(self, src: str | Path, dst: str | Path, progress: ProgressCallback | None = None,
               stop: threading.Event | None = None, *, files: Iterable[str | Path] | None = None,
               canvas: tuple[int, int] | None = None, sheet: str | Path | None = None,
               sheet_frames: int = DEFAULT_SHEET_FRAMES, levels: Levels | None = None,
               first_index: int = 0) -> RenderReport:
        """Colourise a folder of images, a video file or raw frames (`-`: stdin) into a video (.mp4, .mkv,
        .mov), raw RGB24 frames, a folder of PNGs, or stdout (`-`); see `EngineConfig` for the options.

        Unreadable inputs are skipped and reported; frames of another size are fitted (`resize`). Setting
        `stop` ends the render early: what was encoded is kept (see `RenderReport.written`) and the report
        says `interrupted`. Raises `NothingToRender` when no frame is readable.

        `files` renders only these entries of the folder `src`, in the order given (one chunk of a larger
        archive); `canvas` (width, height) is the video's frame size (default: the first frame's). `sheet` writes a
        contact sheet of `sheet_frames` frames spread over the render to that PNG (`ContactSheet`). A folder is
        listed in `order`, kept to `camera` and stretched as the config says (`archive.open_archive`); `levels` is
        a stretch measured already (one for every chunk of an archive), and `first_index` the index of the first
        of `files` in the whole archive (what a caption's `{index}` shows).
        """
        self._check_open()
        return render(self, src, dst, progress, stop, files=files, canvas=canvas, sheet=sheet,
                      sheet_frames=sheet_frames, levels=levels, first_index=first_index)

    def close(self) -> None:
        """Release the inference session (after a batch in flight, if any). Closing twice is harmless."""
        with self._infer_lock:
            self.session.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
