"""Rendering one input into one output: every input item counted, skips named, an early stop kept playable.

`render` drives an engine's pipeline from a source into a sink and returns a `RenderReport`, in which
`frames_in == frames_out + len(skipped)` always holds, also for an interrupted render.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from . import journey
from .errors import NothingToRender
from .frames import Skipped, display_name
from .inputs.archive import Listing, open_archive
from .inputs.facts import camera_wanted, eyes_named
from .inputs.sources import STDIN, decode_threads, open_source
from .inputs.stretch import Levels
from .outputs.files import STDOUT, Outcome, output_error, write_file
from .outputs.policy import check_output
from .outputs.sinks import open_sink, writes_folder
from .overlays.sheet import DEFAULT_SHEET_FRAMES, ContactSheet

if TYPE_CHECKING:  # only annotations name them
    from .config import EngineConfig
    from .inputs.sources import ImageFolder, RawFrames, VideoFile
    from .outputs.sinks import ImageFolderSink, RawVideoSink, VideoSink
    from .pipeline import Pipeline
    from .session import ModelSession

    Source = ImageFolder | VideoFile | RawFrames
    Sink = VideoSink | RawVideoSink | ImageFolderSink

log = logging.getLogger(__name__)


class Colouriser(Protocol):
    """What a render needs of an engine (`Engine` is one): its options, its model's session and its stages."""

    config: EngineConfig
    session: ModelSession
    #: the precision its model runs in ("fp32", "fp16", "int8")
    precision: str

    @property
    def provider(self) -> str: ...

    def stages(self) -> journey.Stages: ...


@dataclass(frozen=True)
class FrameDone:
    """A frame written: its name, the chroma scale it was colourised at and the tiles inferred for it."""

    name: str
    chroma_scale: float
    tiles: int
    #: why the temporal smoothing started afresh at this frame ("scene", "time", ...), or None
    cut: str | None = None


#: called after every input item with (items done, items in all or None, what became of it: `Skipped` or
#: `FrameDone`)
ProgressCallback = Callable[[int, "int | None", "Skipped | FrameDone"], None]


@dataclass
class RenderReport:
    """What a render did. `frames_in` counts every input item taken: `frames_in == frames_out + len(skipped)`.

    `written` is where the frames are: the output; for an `interrupted` video file, `STEM.partial.SUFFIX`
    beside it; `-` for stdout; None when no frame was written.
    """

    input: str
    output: str
    model: str
    provider: str
    provider_fallback: str | None
    #: the precision the model ran in ("fp32", "fp16", "int8": `EngineConfig.precision`)
    precision: str = "fp32"
    frames_in: int = 0
    frames_out: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    #: frames of another size than the first, fitted to it (letterboxed or scaled)
    frames_resized: int = 0
    interrupted: bool = False
    written: str | None = None
    #: for a folder of PNGs: the file each frame was written to, in order ({"frame": name, "file": file name})
    frame_files: list[dict[str, str]] = field(default_factory=list)
    #: the video encoder used (None for frames without one), and why it is not the one asked for (None: it is)
    encoder: str | None = None
    encoder_fallback: str | None = None
    #: how the video's frames are timed: "input" (the input video's own timestamps), "fps" (the rate --fps asks),
    #: "declared" (the rate a video without timestamps declares) or "default" (5 frames/s for stills and raw
    #: frames); the (average) rate; and that said in words
    timing: str | None = None
    frame_rate: float | None = None
    timing_note: str | None = None
    #: tiles inferred, over all frames
    tiles: int = 0
    #: the temporal smoothing's strength (0: off), and the frames where it started afresh, with why ({"frame",
    #: "why"}: "scene", "motion", "size", "camera", "time" or "skip"; the render's first frame is not listed)
    temporal: float = 0.0
    cuts: list[dict[str, str]] = field(default_factory=list)
    #: the chroma scale each frame size was colourised at ("WxH" of the frame as colourised -> scale)
    chroma_scales: dict[str, float] = field(default_factory=dict)
    #: a folder's order ("name" or "time"), and a note where some frames had no time; entries `--camera` left out
    #: ({"name", "camera"}: not inputs, not skips); the `--stretch archive` levels (fractions of full scale)
    order: str | None = None
    order_note: str | None = None
    deselected: list[dict] = field(default_factory=list)
    stretch: dict[str, float] | None = None
    #: what each frame's label or product id says ({"frame", "sol", "camera", "instrument", "start_time", ...})
    frames_info: list[dict] = field(default_factory=list)
    #: the contact sheet written (`--sheet`), or None
    sheet: str | None = None
    wall_seconds: float = 0.0
    frames_per_second: float = 0.0
    stage_busy_seconds: dict[str, float] = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def write_json(self, path: str | Path) -> None:
        """The report as JSON to the file `path` (replaced whole, atomically), or to stdout for `-`."""
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if str(path) != STDOUT:
            write_file(path, text, "the report")
            return
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except (OSError, AttributeError) as exc:  # AttributeError: no stdout at all (None)
            raise output_error("the report to stdout", exc, None) from exc


@dataclass(frozen=True)
class ChunkRange:
    """One chunk of a folder's listing, as the cluster renders it on a worker (see `cluster.driver`).

    `files`: the entries of the folder to render, in this order; the first `lead_in` of them are coloured but neither
    written nor counted (the frames before the chunk, for the temporal smoothing's window). `canvas` (width, height):
    the video's frame size (None: the first frame's). `levels`: the archive's stretch, measured once for every chunk.
    `first_index`: the index of the first of `files` in the whole listing (what a caption's `{index}` shows).
    """

    files: tuple[str, ...]
    canvas: tuple[int, int] | None = None
    levels: Levels | None = None
    first_index: int = 0
    lead_in: int = 0


def reads_folder(src: str | Path, input_size: tuple[int, int] | None) -> bool:
    """Whether `src` is read as a folder of frames or products (listed in order, kept to a camera, stretched), not
    as a video or raw frames."""
    return input_size is None and str(src) != STDIN and os.path.isdir(src)  # any OSError: not a folder


def check_listing(listing: Listing, src: str | Path, camera: str | None) -> None:
    """`NothingToRender` for a folder's listing without an entry to render: none there, or none of `camera`'s."""
    if listing.files:
        return
    if listing.deselected:
        cameras = {entry["camera"] for entry in listing.deselected}
        seen = sorted(str(c) for c in cameras if c) + (["unknown (no label or product id says)"]
                                                       if None in cameras or "" in cameras else [])
        raise NothingToRender(f"nothing to render: --camera {camera} keeps none of the {len(listing.deselected)} "
                              f"entries of {str(src)!r} (cameras there: {', '.join(seen)})")
    raise NothingToRender(f"nothing to render: {str(src)!r} holds no files")


def check_outputs(src: str | Path, dst: str | Path, config: EngineConfig, sheet: str | Path | None = None,
                  sheet_frames: int = DEFAULT_SHEET_FRAMES, *, report: str | Path | None = None,
                  model: str | Path | None = None) -> ContactSheet | None:
    """Refuse, before any work, what the output-path policy forbids (`check_output`: the output, the `report`, the
    contact `sheet`) and a sheet of a bad name or size; returns the empty contact sheet, or None without one."""
    check_output(dst, config.overwrite, src, writes_folder(dst, config.format), report, model, sheet)
    return ContactSheet(sheet, sheet_frames) if sheet is not None else None


def check_something_rendered(report: RenderReport, src: str | Path) -> None:
    """`NothingToRender` for a finished render without one frame written, naming the first skip."""
    if report.frames_out:
        return
    first = report.skipped[0] if report.skipped else None
    why = f" (first: {first['name']}: {first['reason']})" if first else ""
    raise NothingToRender(f"nothing to render: none of the {report.frames_in} inputs in {str(src)!r} could be "
                          f"colourised{why}")


def _warn_of_folder_options(src: str | Path, config: EngineConfig) -> None:
    """The options that apply to a folder only, named where the input is a video or raw frames."""
    folder_only = [flag for flag, value, default in (("--camera", config.camera, None),
                                                      ("--order", config.order, "name"),
                                                      ("--stretch", config.stretch, "none"))
                   if value != default]
    if folder_only:
        log.warning("%s apply to a folder of frames or products; %s is %s, so they are not applied",
                    ", ".join(folder_only), display_name(str(src)),
                    "raw frames" if config.input_size is not None or str(src) == STDIN else "a video")


def _open_input(src: str | Path, config: EngineConfig, chunk: ChunkRange | None) -> tuple[Source, Listing | None]:
    """The source to render, and the folder's listing (None for a video or raw frames)."""
    threads = decode_threads(config.decode_threads)
    if chunk is None and not reads_folder(src, config.input_size):
        source = open_source(src, config.input_size, threads)
        _warn_of_folder_options(src, config)
        return source, None
    files, levels, first_index = (list(chunk.files), chunk.levels, chunk.first_index) if chunk else (None, None, 0)
    source, listing = open_archive(src, config.order, config.camera, config.stretch, threads, files, levels,
                                   first_index)
    if config.camera is not None and eyes_named(config.camera):
        log.info("--camera %s: frames are chosen by camera, not by eye: both eyes of %s are kept", config.camera,
                 ", ".join(sorted(camera_wanted(config.camera))))
    check_listing(listing, src, config.camera)
    return source, listing


def _new_report(engine: Colouriser, src: str | Path, dst: str | Path, source: Source,
                listing: Listing | None) -> RenderReport:
    """The report before the first frame: the model, the options and what the folder's listing says."""
    config = engine.config
    report = RenderReport(display_name(str(src)), display_name(str(dst)), display_name(str(engine.session.path)),
                          engine.provider, engine.session.fallback,
                          precision=engine.precision, temporal=config.temporal,
                          config={k: str(v) for k, v in asdict(config).items()})
    if listing is not None:
        report.order, report.deselected = config.order, listing.deselected
        if listing.untimed:
            report.order_note = (f"{listing.untimed} frames have no time in a label or product id: they follow the "
                                 "timed ones, in name order")
            log.info(report.order_note)
        if listing.deselected:
            log.info("--camera %s: %d entries of other cameras left out", config.camera, len(listing.deselected))
        if source.levels is not None:
            report.stretch = asdict(source.levels)
    return report


def _open_output(dst: str | Path, config: EngineConfig, source: Source, report: RenderReport) -> Sink:
    """The sink for `dst`, its encoder noted in the report and, where the input declares its frames' size, checked
    to take that size before any frame is read."""
    sink = open_sink(dst, config.fps, config.crf, config.codec, config.preset, config.format, config.pix_fmt,
                     getattr(source, "rate", None), replace=config.overwrite, threads=config.encoder_threads)
    if sink.encoder is not None:
        report.encoder, report.encoder_fallback = sink.encoder.codec, sink.encoder.fallback
        if source.frame_size is not None:
            sink.encoder.check_size(*source.frame_size)
    return sink


def _count_frame(report: RenderReport, item: journey.Work, resize: str) -> FrameDone:
    """A colourised frame counted in the report (its fitting, tiles, chroma scale, facts and cut)."""
    if item.resized_from is not None:
        report.frames_resized += 1
        log.info("%s is %dx%d: %s to %dx%d", item.name, *item.resized_from,
                 "letterboxed" if resize == "letterbox" else "scaled", *item.placement.canvas)
    report.frames_out += 1
    report.tiles += item.plan.count
    report.chroma_scales.setdefault("{}x{}".format(*item.size), item.chroma_scale)
    if item.info is not None and item.info.fields():
        report.frames_info.append({"frame": item.name, **item.info.fields()})
    if item.cut is not None and (item.cut != "first" or report.frames_in > 1):
        report.cuts.append({"frame": item.name, "why": item.cut})
    return FrameDone(item.name, item.chroma_scale, item.plan.count, item.cut)


def _write_frames(pipeline: Pipeline, sink: Sink, report: RenderReport, resize: str, lead_in: int,
                  progress: ProgressCallback | None, total: int | None) -> float:
    """Run the pipeline into the sink, counting every item taken after the first `lead_in` (those an earlier chunk
    wrote) and telling `progress`; returns the seconds spent writing."""
    encode_seconds = 0.0
    with closing(iter(pipeline)) as items:
        for position, item in enumerate(items):
            if position < lead_in:
                continue
            report.frames_in += 1
            event = item
            if isinstance(item, Skipped):
                report.skipped.append({"name": item.name, "reason": item.reason})
                log.warning("skipped %s: %s", item.name, item.reason)
            else:
                event = _count_frame(report, item, resize)
                began = time.perf_counter()
                sink.write(item.rgb if item.prepared is None else item.prepared, item.name, item.timing)
                encode_seconds += time.perf_counter() - began
            if progress is not None:
                progress(report.frames_in, total, event)
    return encode_seconds


def _close_output(sink: Sink, report: RenderReport, outcome: Outcome) -> None:
    """Close the sink as `outcome` says; the report says where the frames are."""
    report.written = sink.close(outcome)
    if report.written is not None:
        report.frame_files = [{"frame": display_name(frame), "file": display_name(file)}
                              for frame, file in getattr(sink, "files", [])]


def render(engine: Colouriser, src: str | Path, dst: str | Path, progress: ProgressCallback | None = None,
           stop: threading.Event | None = None, *, sheet: str | Path | None = None,
           sheet_frames: int = DEFAULT_SHEET_FRAMES, chunk: ChunkRange | None = None) -> RenderReport:
    """What `Engine.render` does (documented there); `chunk` renders one chunk of the folder `src` instead."""
    config = engine.config
    source, listing = _open_input(src, config, chunk)
    lead_in = chunk.lead_in if chunk is not None else 0
    total = max(0, len(source) - lead_in) or None
    contact_sheet = check_outputs(src, dst, config, sheet, sheet_frames, model=engine.session.path)
    report = _new_report(engine, src, dst, source, listing)
    sink = _open_output(dst, config, source, report)
    fit = config.resize if sink.one_size else None
    pipeline = journey.in_threads(engine.stages(), source, config.queue_size, fit=fit,
                                  canvas=chunk.canvas if chunk is not None else None, sheet=contact_sheet,
                                  caption=config.caption, prepare=sink.prepare, cancel=stop)
    encode_seconds = 0.0
    outcome: Outcome = "failed"
    start = time.perf_counter()
    try:
        encode_seconds = _write_frames(pipeline, sink, report, config.resize, lead_in, progress, total)
        if pipeline.finished:
            check_something_rendered(report, src)
        outcome = "complete" if pipeline.finished else "interrupted"
    except KeyboardInterrupt:  # an interrupt that was not asked for through `stop`: keep what was written
        outcome = "interrupted"
        raise
    finally:
        _close_output(sink, report, outcome)
    report.interrupted = outcome == "interrupted"
    if contact_sheet is not None and report.written is not None:
        report.sheet = contact_sheet.write()
    report.timing, report.frame_rate, report.timing_note = sink.timing, sink.frame_rate, sink.timing_note
    report.wall_seconds = time.perf_counter() - start
    report.frames_per_second = report.frames_out / report.wall_seconds if report.wall_seconds else 0.0
    report.stage_busy_seconds = {**pipeline.busy_seconds, "encode": encode_seconds}
    return report
