"""`Engine`: a loaded model plus the stages that turn greyscale frames into colour frames.

`colorize` does one frame in the calling thread; `stream` and `render` run the stages as a pipeline. One engine
serves several threads at once: only the inference call itself is taken in turn.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import av
import numpy as np

from .batches import TileBatch
from .config import EngineConfig
from .errors import FrameError, ModelError, OppyError
from .frames import FrameTiming, Skipped
from .inputs.sources import SourceFrame, frame_pixels
from .journey import Stages, Work, in_threads, in_turn, steps
from .outputs.sinks import to_video_frame
from .overlays.sheet import DEFAULT_SHEET_FRAMES
from .render import ProgressCallback, RenderReport, render
from .session import ModelSession, choose_precision

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
        model_path, self.precision = choose_precision(model_path, self.config.precision, self.config.provider)
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
        self._per_thread = threading.local()  # `colorize`'s stages and steps, one set per thread

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

    def stages(self, temporal: bool = True) -> Stages:
        """The stages of one stream of frames through this engine's model (`oppy-bench pipeline` times them);
        `temporal=False` leaves out the temporal smoothing whatever the config says (one frame alone)."""
        return Stages(self.contract, self.overlap, self.config.chroma_scale, self.session.batch_size,
                      self._run_batch, self.contract.palette if self.config.palette_guard else None,
                      self.config.temporal if temporal else 0.0)

    # -- public API ----------------------------------------------------------------------------------------
    def colorize(self, gray: Frame) -> Frame:
        """One frame, in the calling thread: HxW grey, uint8, uint16 or float in [0, 1] (or RGB/RGBA, reduced to
        lightness) -> HxWx3 uint8 RGB; a PyAV `VideoFrame` -> an rgb24 `VideoFrame` with the same pts."""
        self._check_open()
        frame = _source_frame(0, gray)
        work = Work(0, "", frame.pixels, frame.timing)
        prepared = getattr(self._per_thread, "journey", None)
        if prepared is None:  # one set of stages a thread (their batch arrays), and their steps (a caption's state)
            stages = self.stages(temporal=False)
            prepared = self._per_thread.journey = (stages, steps(stages, caption=self.config.caption))
        stages, listed = prepared
        in_turn(stages, [work], listed=listed)
        return _as_given(work)

    def stream(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """Colourise any iterable of frames, pipelined, in order; each comes back as the kind it was given
        (see `colorize`). Several threads may stream through one engine at once. Exhaust or close the
        generator: that stops and joins its threads (also on an error, which is raised unchanged)."""
        self._check_open()
        source = (_source_frame(index, item) for index, item in enumerate(frames))
        with closing(iter(in_threads(self.stages(), source, self.config.queue_size,
                                     caption=self.config.caption))) as works:
            for work in works:
                if isinstance(work, Skipped):  # a stream gives back every frame or stops
                    raise FrameError(f"{work.name}: {work.reason}")
                yield _as_given(work)

    def render(self, src: str | Path, dst: str | Path, progress: ProgressCallback | None = None,
               stop: threading.Event | None = None, *, sheet: str | Path | None = None,
               sheet_frames: int = DEFAULT_SHEET_FRAMES) -> RenderReport:
        """Colourise a folder of images, a video file or raw frames (`-`: stdin) into a video (.mp4, .mkv,
        .mov), raw RGB24 frames, a folder of PNGs, or stdout (`-`); see `EngineConfig` for the options.

        Unreadable inputs are skipped and reported; frames of another size are fitted (`resize`). Setting
        `stop` ends the render early: what was encoded is kept (see `RenderReport.written`) and the report
        says `interrupted`. Raises `NothingToRender` when no frame is readable.

        A folder is listed in `order`, kept to `camera` and stretched as the config says (`archive.open_archive`).
        `sheet` writes a contact sheet of `sheet_frames` frames spread over the render to that PNG (`ContactSheet`).
        """
        self._check_open()
        return render(self, src, dst, progress, stop, sheet=sheet, sheet_frames=sheet_frames)

    def close(self) -> None:
        """Release the inference session (after a batch in flight, if any). Closing twice is harmless."""
        with self._infer_lock:
            self.session.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
