"""`Engine`: a loaded model plus the stages that turn greyscale frames into colour frames.

`colorize` does one frame in the calling thread; `stream` and `render` run the stages as a pipeline.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .config import EngineConfig
from .errors import ModelError, NothingToRender, OppyError
from .lab import l_ab_to_rgb, to_lightness
from .pipeline import Pipeline
from .session import ModelSession
from .sinks import check_output, open_sink
from .sources import ImageFolder, Skipped, SourceFrame, open_source
from .tiles import TilePlan, blend_tiles, cut_tiles, plan_tiles

log = logging.getLogger(__name__)

DEFAULT_MODEL = Path(__file__).parent / "models" / "default.onnx"

#: called after every input item with (items done, items in all or None, the skip if it was one)
ProgressCallback = Callable[[int, "int | None", "Skipped | None"], None]


def default_model_path() -> Path:
    """The packaged default model, or a `ModelError` naming the option to use instead."""
    if not DEFAULT_MODEL.is_file():
        raise ModelError(
            "no model given and this installation carries no packaged default model: pass "
            "Engine(model='path/to/model.onnx') (oppy-stream --model PATH)"
        )
    return DEFAULT_MODEL


@dataclass
class _Work:
    """One frame on its way through the stages; each stage fills its field and drops what is spent."""

    index: int
    name: str
    pixels: np.ndarray | None
    lightness: np.ndarray | None = None
    plan: TilePlan | None = None
    tiles: np.ndarray | None = None
    ab_tiles: np.ndarray | None = None
    ab: np.ndarray | None = None
    rgb: np.ndarray | None = None


@dataclass
class RenderReport:
    """What a render did. `frames_in` counts every input item: `frames_in == frames_out + len(skipped)`."""

    input: str
    output: str
    model: str
    provider: str
    provider_fallback: str | None
    frames_in: int = 0
    frames_out: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    tiles: int = 0
    wall_seconds: float = 0.0
    frames_per_second: float = 0.0
    stage_busy_seconds: dict[str, float] = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def _each(step: Callable[[_Work], None]) -> Callable[[Iterator], Iterator]:
    def stage(items: Iterator) -> Iterator:
        for work in items:
            step(work)
            yield work

    return stage


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
            raise OppyError(f"overlap {self.overlap} must be smaller than the model's tile of "
                            f"{self.contract.tile_size} px")
        self.tiles_inferred = 0
        self._infer_lock = threading.Lock()

    @property
    def provider(self) -> str:
        """The ONNX Runtime execution provider actually in use."""
        return self.session.provider

    # -- the stages, one frame at a time ----------------------------------------------------------------
    def _to_l(self, work: _Work) -> None:
        try:
            work.lightness = to_lightness(work.pixels)
        except (ValueError, TypeError) as exc:
            raise OppyError(f"frame {work.name or work.index}: {exc}") from exc
        work.pixels = None

    def _tile(self, work: _Work) -> None:
        height, width = work.lightness.shape
        work.plan = plan_tiles(height, width, self.contract.tile_size, self.overlap)
        work.tiles = cut_tiles(work.lightness, work.plan, self.contract.l_scale, self.contract.l_shift)

    def _blend(self, work: _Work) -> None:
        work.ab = blend_tiles(work.ab_tiles, work.plan, self.contract.ab_scale)
        work.ab_tiles = None

    def _to_rgb(self, work: _Work) -> None:
        work.rgb = l_ab_to_rgb(work.lightness, work.ab)
        work.lightness = work.ab = None

    def _infer(self, works: Iterator[_Work]) -> Iterator[_Work]:
        """Pack the tiles of consecutive frames into full batches; release frames in order once complete."""
        session, size = self.session, self.session.batch_size
        waiting: deque[_Work] = deque()
        slots: list[tuple[_Work, int, int]] = []  # (frame, first tile, count) in batch order
        filled = 0
        remaining: dict[int, int] = {}

        def run_batch() -> Iterator[_Work]:
            nonlocal filled
            with self._infer_lock:
                session.input_buffer[filled:] = 0.0
                output = session.run()
                offset = 0
                for work, first, count in slots:
                    work.ab_tiles[first : first + count] = output[offset : offset + count]
                    remaining[id(work)] -= count
                    offset += count
            self.tiles_inferred += filled
            slots.clear()
            filled = 0
            while waiting and remaining[id(waiting[0])] == 0:
                done = waiting.popleft()
                del remaining[id(done)]
                yield done

        for work in works:
            count = len(work.tiles)
            work.ab_tiles = np.empty((*work.tiles.shape[:3], 2), np.float32)
            waiting.append(work)
            remaining[id(work)] = count
            first = 0
            while first < count:
                take = min(size - filled, count - first)
                session.input_buffer[filled : filled + take] = work.tiles[first : first + take]
                slots.append((work, first, take))
                filled += take
                first += take
                if filled == size:
                    yield from run_batch()
            work.tiles = None
        if filled:
            yield from run_batch()

    # -- public API ----------------------------------------------------------------------------------------
    def colorize(self, gray: np.ndarray) -> np.ndarray:
        """One frame: HxW uint8/uint16 grey (or RGB/RGBA, reduced to lightness) -> HxWx3 uint8 RGB."""
        work = _Work(0, "", np.asarray(gray))
        self._to_l(work)
        self._tile(work)
        with self._infer_lock:
            work.ab_tiles = self.session.predict(work.tiles)
        self.tiles_inferred += len(work.tiles)
        self._blend(work)
        self._to_rgb(work)
        return work.rgb

    def _pipeline(self, source: Iterable) -> Pipeline:
        def start(items: Iterator[SourceFrame]) -> Iterator[_Work]:
            for frame in items:
                work = _Work(frame.index, frame.name, frame.pixels)
                self._to_l(work)
                yield work

        stages = [("to_l", start), ("tile", _each(self._tile)), ("infer", self._infer),
                  ("blend", _each(self._blend)), ("to_rgb", _each(self._to_rgb))]
        return Pipeline(source, stages, self.config.queue_size, passthrough=Skipped)

    def stream(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Colourise an iterable of grey frames (as for `colorize`), pipelined; yields RGB frames in order."""
        source = (SourceFrame(i, f"frame {i}", np.asarray(pixels)) for i, pixels in enumerate(frames))
        for work in self._pipeline(source):
            yield work.rgb

    def render(self, src: str | Path, dst: str | Path, progress: ProgressCallback | None = None) -> RenderReport:
        """Colourise a folder of images or a video file into a video (.mp4, .mkv, .mov) or a folder of PNGs.

        Unreadable inputs are skipped and reported. Raises `NothingToRender` when no frame is readable.
        """
        source = open_source(src)
        if isinstance(source, ImageFolder) and not len(source):
            raise NothingToRender(f"nothing to render: {str(src)!r} holds no files")
        total = len(source) or None
        dst = Path(dst)
        check_output(dst, self.config.overwrite)
        config = self.config
        report = RenderReport(str(src), str(dst), str(self.session.path), self.provider,
                              self.session.fallback, config={k: str(v) for k, v in asdict(config).items()})
        tiles_before = self.tiles_inferred
        pipeline = self._pipeline(source)
        encode_seconds = 0.0
        start = time.perf_counter()
        with open_sink(dst, config.fps, config.crf, config.codec, config.preset) as sink:
            for item in pipeline:
                report.frames_in += 1
                if isinstance(item, Skipped):
                    report.skipped.append({"name": item.name, "reason": item.reason})
                    log.warning("skipped %s: %s", item.name, item.reason)
                else:
                    began = time.perf_counter()
                    sink.write(item.rgb, item.name)
                    encode_seconds += time.perf_counter() - began
                    report.frames_out += 1
                if progress is not None:
                    progress(report.frames_in, total, item if isinstance(item, Skipped) else None)
            if report.frames_out == 0:
                first = report.skipped[0] if report.skipped else None
                why = f" (first: {first['name']}: {first['reason']})" if first else ""
                raise NothingToRender(f"nothing to render: none of the {report.frames_in} files in "
                                      f"{str(src)!r} is a readable image{why}")
        report.wall_seconds = time.perf_counter() - start
        report.frames_per_second = report.frames_out / report.wall_seconds if report.wall_seconds else 0.0
        report.tiles = self.tiles_inferred - tiles_before
        report.stage_busy_seconds = {**pipeline.busy_seconds, "encode": encode_seconds}
        return report

    def close(self) -> None:
        """Release the inference session."""
        self.session.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
