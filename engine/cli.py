"""`oppy-stream INPUT OUTPUT`: render a folder of greyscale frames, a video or raw frames on stdin into a colour
video, raw frames or PNGs.

A thin layer over `EngineConfig` and `Engine.render`: flags map onto options one to one. It adds what belongs to
a process: one-line errors, exit codes, and SIGINT / SIGTERM turned into a clean early stop.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import fields

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .api import Engine
from .config import (
    CAPTION_FIELDS,
    ENCODERS,
    ORDERS,
    OUTPUT_FORMATS,
    PIXEL_FORMATS,
    PRECISIONS,
    PROVIDERS,
    RESIZE_MODES,
    STRETCHES,
    X264_PRESETS,
    EngineConfig,
    check_strength,
    chroma_scale_argument,
    size_argument,
)
from .errors import OppyError, one_line
from .inputs.facts import CAMERAS
from .inputs.sources import open_source
from .outputs.files import STDOUT
from .outputs.policy import check_report
from .outputs.timing import DEFAULT_FPS
from .overlays.sheet import DEFAULT_SHEET_FRAMES
from .render import FrameDone, RenderReport, check_outputs

_DEFAULTS = EngineConfig()
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: after a second signal, how long the process may take to end cleanly (its partial output kept) before it is
#: ended outright
ABORT_GRACE_SECONDS = 5.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        """Usage mistakes are one line too, like every other error."""
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="oppy-stream",
        description="Colourise a folder of greyscale frames, a video, or raw frames on stdin into a colour video, "
                    "as a stream.",
    )
    parser.add_argument("input", help="folder of images (png, jpg, tif, bmp), a video file, or - for raw 8-bit "
                                      "grey frames on stdin (with --input-size)")
    parser.add_argument("output", help="video file (.mp4, .mkv, .mov), a folder name for PNG frames, or - for "
                                       "stdout (an MP4 stream, or raw RGB24 frames with --format rawvideo)")
    parser.add_argument("--model", help="exported .onnx model (default: the packaged model)")
    parser.add_argument("--provider", choices=list(PROVIDERS), default=_DEFAULTS.provider,
                        help="inference provider; auto tries TensorRT, CUDA, then CPU (default: %(default)s)")
    parser.add_argument("--precision", choices=PRECISIONS, default=_DEFAULTS.precision,
                        help="the model's precision: auto runs its int8 copy on the CPU and its fp16 copy on a GPU "
                             "where it has one (oppy-export --int8 / --fp16 write them), else float32 "
                             "(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size,
                        help="tiles per inference batch (default: %(default)s)")
    parser.add_argument("--overlap", type=int, default=_DEFAULTS.overlap,
                        help="pixels shared by neighbouring tiles (default: the model's recommendation)")
    parser.add_argument("--chroma-scale", type=chroma_scale_argument, default=_DEFAULTS.chroma_scale, metavar="auto|S",
                        help="predict the colour on a copy of the frame's lightness scaled by S in (0, 1], then grow "
                             "it back guided by the full-resolution lightness; auto: the scale of the model's "
                             "training scenes, from its metadata (default: %(default)s)")
    parser.add_argument("--no-palette-guard", dest="palette_guard", action="store_false",
                        help="keep chroma the model answers outside its training photos' palette (by default pulled to "
                             "the nearest colour they hold at that lightness; models without a palette are untouched)")
    parser.add_argument("--temporal", type=_strength_argument, default=_DEFAULTS.temporal, metavar="S",
                        help="carry colour from frame to frame, S in [0, 1]: 0 colours every frame alone; cuts (a new "
                             "scene, size, camera, a gap in time, a skipped frame) start afresh (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=_DEFAULTS.threads,
                        help="ONNX Runtime threads, 0 = automatic (default: %(default)s)")
    parser.add_argument("--decode-threads", type=int, default=_DEFAULTS.decode_threads,
                        help="threads decoding a folder's images ahead, 0 = one per core up to 8 "
                             "(default: %(default)s)")
    parser.add_argument("--encoder-threads", type=int, default=_DEFAULTS.encoder_threads,
                        help="threads of the video encoder, 0 = its own choice (x264: 1.5 a core) "
                             "(default: %(default)s)")
    parser.add_argument("--queue-size", type=int, default=_DEFAULTS.queue_size,
                        help="frames in flight between two stages (default: %(default)s)")
    parser.add_argument("--fps", type=float, default=_DEFAULTS.fps,
                        help="video frame rate (default: a video input keeps its own timestamps; stills are shown at "
                             f"{DEFAULT_FPS:g} frames/s)")
    parser.add_argument("--crf", type=int, default=_DEFAULTS.crf,
                        help="quality, lower is better: x264 / x265's constant rate factor (0..51), NVENC's constant "
                             "quality (1..51) (default: %(default)s)")
    parser.add_argument("--codec", default=_DEFAULTS.codec,
                        help=f"video encoder: {', '.join(ENCODERS)}; the NVENC ones fall back to libx264 / libx265 "
                             "where this machine has no NVIDIA encoder (default: %(default)s)")
    parser.add_argument("--preset", default=_DEFAULTS.preset,
                        help=f"encoder speed preset: {', '.join(X264_PRESETS)}; for NVENC also p1..p7 (x264's "
                             "names map onto them) (default: %(default)s)")
    parser.add_argument("--pix-fmt", choices=PIXEL_FORMATS, default=_DEFAULTS.pix_fmt,
                        help="yuv420p plays everywhere; yuv444p keeps the colour at full resolution (4:2:0 halves it "
                             "each way), for players that take High 4:4:4 (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--resize", choices=RESIZE_MODES, default=_DEFAULTS.resize,
                        help="frames of another size than the first: letterbox (aspect kept, black bars) or "
                             "scale (stretched) to the first frame's size (default: %(default)s)")
    parser.add_argument("--format", choices=list(OUTPUT_FORMATS), default=_DEFAULTS.format,
                        help="output format (default: from OUTPUT's suffix; mp4 for -); rawvideo writes RGB24 "
                             "frames without a header")
    parser.add_argument("--input-size", type=size_argument, default=_DEFAULTS.input_size, metavar="WxH",
                        help="INPUT holds raw 8-bit grey frames of this size (INPUT - reads them from stdin)")
    parser.add_argument("--order", choices=ORDERS, default=_DEFAULTS.order,
                        help="a folder's frames in natural name order, or by time: a PDS label's clock or start "
                             "time, or the clock in a MER / MSL product id in the name (default: %(default)s)")
    parser.add_argument("--camera", default=_DEFAULTS.camera, metavar="NAME",
                        help=f"keep one camera's frames: {', '.join(CAMERAS)}, hazcam, or a MER camera letter "
                             "(F, R, N, P, M, E); several comma-separated (default: every frame)")
    parser.add_argument("--stretch", choices=STRETCHES, default=_DEFAULTS.stretch,
                        help="none: each PDS product by its bit depth, images as they are; archive: one percentile "
                             "stretch measured on a sample of the archive, the same for every frame "
                             "(default: %(default)s)")
    parser.add_argument("--caption", default=_DEFAULTS.caption, metavar="FORMAT",
                        help="burn a caption into each frame, e.g. 'sol {sol} {camera}'; fields: "
                             f"{', '.join(CAPTION_FIELDS)}; a frame without a field gets none")
    parser.add_argument("--report", metavar="PATH", help="write a JSON report of the render to PATH")
    parser.add_argument("--sheet", metavar="PATH.png",
                        help="write a contact sheet to PATH.png: frames spread over the input, each grey beside "
                             "colour, with its name")
    parser.add_argument("--sheet-frames", type=int, default=DEFAULT_SHEET_FRAMES, metavar="N",
                        help="frames on the contact sheet (default: %(default)s)")
    cluster = parser.add_argument_group("rendering across a Ray cluster (pip install 'oppy-stream[cluster]')")
    cluster.add_argument("--shards", type=int, metavar="N",
                         help="split the folder's sorted frames into N chunks, render them on Ray workers (one per "
                              "GPU, else CPU workers) and join them without re-encoding; a rerun resumes")
    cluster.add_argument("--cluster", metavar="auto|ADDRESS",
                         help="the Ray cluster to render on: auto (the one `ray start` runs here) or HOST:PORT "
                              "(default with --shards: RAY_ADDRESS, else a local Ray for this command)")
    cluster.add_argument("--retries", type=int, default=2,
                         help="retries of a chunk that fails or loses its worker (default: %(default)s)")
    cluster.add_argument("--keep-segments", action="store_true",
                         help="keep the work folder (.OUTPUT.shards) with the segments after the join")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    return parser


def _strength_argument(text: str) -> float:
    try:
        return check_strength(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def config_from_args(args: argparse.Namespace) -> EngineConfig:
    """The options of `EngineConfig` from the flags of the same names (one flag per field)."""
    return EngineConfig(**{option.name: getattr(args, option.name) for option in fields(EngineConfig)})


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, received: list[signal.Signals]) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM set `stop` (the render ends cleanly, keeping what it encoded); a second
    one aborts at once with KeyboardInterrupt. The signals are appended to `received`."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may handle signals
        yield
        return

    aborted, left = threading.Event(), threading.Event()

    def watch() -> None:
        # a thread blocked in a system call (an open() that never returns) would keep the process alive past an
        # abort: end it outright when the clean way has not ended it within the grace time
        while not aborted.wait(0.25):
            if left.is_set():
                return  # the render ended without an abort: nothing to watch
        time.sleep(ABORT_GRACE_SECONDS)
        os._exit(128 + received[-1])

    # started before any signal, so that the handler itself only sets an event (no thread is started inside it)
    threading.Thread(target=watch, name="abort-watchdog", daemon=True).start()

    def handle(signum: int, frame) -> None:
        received.append(signal.Signals(signum))
        if stop.is_set():
            aborted.set()
            raise KeyboardInterrupt
        stop.set()
        # os.write, not print: the handler may run while the main thread is inside a write to stderr; a stderr that
        # cannot be written (a full disk, a closed pipe) must not turn the clean stop into a failure
        with contextlib.suppress(OSError):
            os.write(stderr, f"\noppy-stream: {received[-1].name}: finishing the output with the frames encoded so "
                             "far (send it again to abort)\n".encode())

    stderr = _descriptor(sys.stderr, 2)
    previous = {sig: signal.signal(sig, handle) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        left.set()


def _progress(bar: tqdm, temporal: float, set_total: bool = False):
    """The progress callback that moves `bar` and shows the chroma scale, the tiles inferred so far and, where the
    temporal smoothing is on, the cuts it found."""
    tiles, cuts = 0, 0

    def progress(done: int, total: int | None, event) -> None:
        nonlocal tiles, cuts
        if set_total:
            bar.total = total
        if isinstance(event, FrameDone):
            tiles += event.tiles
            cuts += event.cut not in (None, "first")
            smoothing = f", temporal {temporal:g}: {cuts} cuts" if temporal else ""
            bar.set_postfix_str(f"chroma x{event.chroma_scale:.3g}, {tiles} tiles{smoothing}", refresh=False)
        bar.update(done - bar.n)

    return progress


def _render(args: argparse.Namespace, stop: threading.Event) -> RenderReport:
    config = config_from_args(args)
    # input and output problems surface before the model loads
    open_source(args.input, config.input_size)  # the count comes with the first progress: after --camera
    check_outputs(args.input, args.output, config, args.sheet, args.sheet_frames, report=args.report,
                  model=config.model)
    with Engine(config=config) as engine:
        if args.report:  # the model in use is known only now: the packaged one, or a model's int8 / fp16 copy
            check_report(args.report, args.output, args.input, overwrite=config.overwrite, model=engine.session.path)
        bar = tqdm(desc="colourising", unit="frame", disable=True if args.quiet else None, file=sys.stderr,
                   dynamic_ncols=True)
        progress = _progress(bar, config.temporal, set_total=True)
        with bar, logging_redirect_tqdm():
            report = engine.render(args.input, args.output, progress=progress, stop=stop, sheet=args.sheet,
                                   sheet_frames=args.sheet_frames)
    if args.report:
        report.write_json(args.report)
    return report


def _render_sharded(args: argparse.Namespace, stop: threading.Event) -> RenderReport:
    if args.sheet:
        raise OppyError("--sheet is made from one process's frames: render without --shards / --cluster for a "
                        "contact sheet")
    if args.report:
        check_report(args.report, args.output, args.input, overwrite=args.overwrite, model=args.model)
    try:
        from .cluster import driver as cluster  # Ray is imported only here, and only for --shards / --cluster
    except ImportError as exc:
        raise OppyError(f"--shards and --cluster need Ray ({exc}): pip install 'oppy-stream[cluster]'") from exc
    bar = tqdm(desc="colourising", unit="frame", disable=True if args.quiet else None, file=sys.stderr,
               dynamic_ncols=True)
    config = config_from_args(args)
    progress = _progress(bar, config.temporal, set_total=True)
    with bar, logging_redirect_tqdm():
        report = cluster.render_sharded(args.input, args.output, config, shards=args.shards,
                                        address=args.cluster, keep=args.keep_segments, retries=args.retries,
                                        progress=None if args.quiet else progress, stop=stop)
    if args.report:
        report.write_json(args.report)
    return report


def _summary(report: RenderReport, received: list[signal.Signals]) -> str:
    scales = ", ".join(f"x{scale:.3g} for {size}" for size, scale in report.chroma_scales.items())
    done = (f"{report.frames_out} frames, {len(report.skipped)} skipped, {report.tiles} tiles"
            f"{f' (chroma {scales})' if scales else ''} in {report.wall_seconds:.1f} s "
            f"({report.frames_per_second:.2f} frames/s) on {report.provider}, {report.precision}")
    if getattr(report, "shards", 0):
        done += (f", {report.shards} chunks ({report.chunks_rendered} rendered now, {report.chunks_reused} from an "
                 f"earlier run) on {len(report.workers)} workers")
        done += f", joined in {report.join_seconds:.1f} s" if report.written else ""
    if report.temporal:
        done += f", temporal smoothing {report.temporal:g} ({len(report.cuts)} cuts)"
    if getattr(report, "sheet", None):
        done += f"; contact sheet {report.sheet}"
    if not report.interrupted:
        return f"wrote {report.written}: {done}"
    why = received[0].name if received else "stop"
    if getattr(report, "shards", 0):
        return f"interrupted by {why}: the finished chunks are kept in {report.work_folder} for a rerun: {done}"
    return f"interrupted by {why}: kept {report.written or 'nothing'}: {done}"


def _descriptor(stream, default: int) -> int:
    """The file descriptor under a text stream (`default` for one without, such as a test's capture)."""
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return default


def _plug_closed_stderr() -> None:
    """A process started with stderr closed (`2>&-`) has `sys.stderr` None, which the progress bar and logging
    cannot take (logging's redirection through tqdm would even write to stdout, where a video may go), and a free
    descriptor 2, which the next file opened would take and which native libraries write to: both go to /dev/null,
    so the render runs with nothing to say."""
    try:
        os.fstat(2)
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        if devnull != 2:
            os.dup2(devnull, 2)
            os.close(devnull)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the process's stderr until it ends)


def _say(line: str) -> None:
    """A line on stderr, where it can be written: a full or closed stderr must not fail a render that succeeded."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def _quiet_stdout() -> None:
    """After a failed write to stdout (a closed pipe), point it at /dev/null so exiting does not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        stdout = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout)
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status: 0 done, 2 a problem to fix, 130 / 143 stopped by SIGINT / SIGTERM,
    1 when chunks of a --shards render kept failing (the others are kept for a rerun)."""
    _plug_closed_stderr()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.sheet is None and args.sheet_frames != DEFAULT_SHEET_FRAMES:
        parser.error("--sheet-frames sets how many frames a contact sheet shows: give --sheet PATH.png too")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO if not args.quiet else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    stop, received = threading.Event(), []
    try:
        with _stop_on_signals(stop, received):
            report = _render_sharded(args, stop) if args.shards is not None or args.cluster else _render(args, stop)
    except OppyError as exc:
        if STDOUT in (args.output, args.report):
            _quiet_stdout()
        if args.debug:
            raise
        _say(f"oppy-stream: error: {one_line(str(exc))}")
        return 2
    except KeyboardInterrupt:
        _say("oppy-stream: aborted")
        return 128 + (received[0] if received else signal.SIGINT)
    failed = getattr(report, "failed", None)
    if failed:
        for chunk in failed:
            _say(f"oppy-stream: error: {chunk['chunk']} (frames {chunk['frames']}, from {chunk['first_file']}) "
                 f"failed after {args.retries} retries: {one_line(chunk['error'])}")
        _say(f"oppy-stream: {len(failed)} chunks failed; the others are kept in {report.work_folder}: run the "
             "same command again to render only what is missing")
        return 1
    if report.interrupted:
        _say(f"oppy-stream: {_summary(report, received)}")
        return 128 + (received[0] if received else signal.SIGINT)
    if not args.quiet:
        _say(_summary(report, received))
    return 0


if __name__ == "__main__":
    sys.exit(main())
