"""`oppy-stream INPUT OUTPUT`: render a folder of greyscale frames (or a video) into a colour video.

A thin layer over `EngineConfig` and `Engine.render`: flags map onto options one to one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .config import EngineConfig
from .engine import Engine
from .errors import OppyError
from .session import PROVIDERS
from .sinks import check_output
from .sources import open_source

_DEFAULTS = EngineConfig()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oppy-stream",
        description="Colourise a folder of greyscale frames (or a video) into a colour video, as a stream.",
    )
    parser.add_argument("input", help="folder of images (png, jpg, tif, bmp) or a video file")
    parser.add_argument("output", help="video file (.mp4, .mkv, .mov) or a folder name for PNG frames")
    parser.add_argument("--model", help="exported .onnx model (default: the packaged model)")
    parser.add_argument("--provider", choices=list(PROVIDERS), default=_DEFAULTS.provider,
                        help="inference provider; auto tries TensorRT, CUDA, then CPU (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size,
                        help="tiles per inference batch (default: %(default)s)")
    parser.add_argument("--overlap", type=int, default=_DEFAULTS.overlap,
                        help="pixels shared by neighbouring tiles (default: the model's recommendation)")
    parser.add_argument("--threads", type=int, default=_DEFAULTS.threads,
                        help="ONNX Runtime threads, 0 = automatic (default: %(default)s)")
    parser.add_argument("--queue-size", type=int, default=_DEFAULTS.queue_size,
                        help="frames in flight between two stages (default: %(default)s)")
    parser.add_argument("--fps", type=float, default=_DEFAULTS.fps, help="video frame rate (default: %(default)s)")
    parser.add_argument("--crf", type=int, default=_DEFAULTS.crf,
                        help="H.264 constant rate factor, lower is better (default: %(default)s)")
    parser.add_argument("--codec", default=_DEFAULTS.codec, help="video encoder (default: %(default)s)")
    parser.add_argument("--preset", default=_DEFAULTS.preset, help="x264 speed preset (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--report", metavar="PATH", help="write a JSON report of the render to PATH")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    return parser


def config_from_args(args: argparse.Namespace) -> EngineConfig:
    return EngineConfig(
        model=args.model, provider=args.provider, batch_size=args.batch_size, overlap=args.overlap,
        threads=args.threads, queue_size=args.queue_size, fps=args.fps, crf=args.crf, codec=args.codec,
        preset=args.preset, overwrite=args.overwrite,
    )


def _render(args: argparse.Namespace) -> None:
    config = config_from_args(args)
    total = len(open_source(args.input)) or None  # input and output problems surface before the model loads
    check_output(Path(args.output), config.overwrite)
    with Engine(config=config) as engine:
        bar = tqdm(desc="colourising", total=total, unit="frame", disable=True if args.quiet else None,
                   file=sys.stderr, dynamic_ncols=True)

        def progress(done: int, total: int | None, skipped) -> None:
            bar.update(done - bar.n)

        with bar, logging_redirect_tqdm():
            report = engine.render(args.input, args.output, progress=progress)
    if args.report:
        report.write_json(args.report)
    if not args.quiet:
        print(f"wrote {report.output}: {report.frames_out} frames, {len(report.skipped)} skipped, "
              f"{report.tiles} tiles in {report.wall_seconds:.1f} s ({report.frames_per_second:.2f} frames/s) "
              f"on {report.provider}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO if not args.quiet else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    try:
        _render(args)
    except OppyError as exc:
        if args.debug:
            raise
        print(f"oppy-stream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("oppy-stream: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
