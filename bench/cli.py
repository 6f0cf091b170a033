"""`oppy-bench`: synthetic archives and the engine's benchmarks, each printing a markdown table.

Benchmarks are run by hand on a stated machine, never in CI; `--json` keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from .timing import machine, markdown_table


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must look like 1024x1024, not {text!r}") from exc
    return width, height


def _synth(args: argparse.Namespace) -> dict:
    from .synth import write_archive

    paths = write_archive(args.out_dir, args.frames, *args.size, seed=args.seed)
    print(f"wrote {len(paths)} frames of {args.size[0]}x{args.size[1]} to {args.out_dir}", file=sys.stderr)
    return {"frames": len(paths), "folder": str(args.out_dir)}


def _lab(args: argparse.Namespace) -> dict:
    from .lab_speed import bench_lab

    rows = bench_lab(*args.size, repeats=args.repeats)
    print(markdown_table(rows, ["conversion", "numba", "numba_ms", "opencv", "opencv_ms", "speedup_vs_opencv"]))
    return {"lab": rows}


def _engine(args: argparse.Namespace) -> dict:
    from .models import build_seed_standin
    from .throughput import bench_engine

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = [Path(m) for m in args.model] or [
            build_seed_standin(Path(tmp) / f"seed-x{w:g}.onnx", width=w) for w in args.standin_widths]
        for model in models:
            logging.info("benchmarking %s", model.name)
            row = bench_engine(model, args.frames, *args.size, repeats=args.repeats, provider=args.provider,
                               batch_size=args.batch_size)
            row["model"] = model.name
            rows.append(row)
    print(markdown_table(rows, ["model", "provider", "tiles_per_frame", "model_tiles_per_s",
                                "model_frames_per_s", "e2e_frames_per_s", "efficiency"]))
    return {"engine": rows}


def _export(args: argparse.Namespace) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .export_speed import bench_export

    logging.getLogger("tf2onnx").setLevel(logging.WARNING)  # it logs every conversion step at INFO
    result = bench_export(args.model, args.arch, args.batch_size, args.rounds, args.parity_images)
    print(markdown_table(result["variants"], ["variant", "ms_per_batch", "ms_q1", "ms_q3", "tiles_per_s",
                                                "vs_shipped"]))
    print(f"inputs_as_nchw gives the NHWC graph once ORT has optimized it: "
          f"{result['inputs_as_nchw_same_graph_as_nhwc_after_ort']}\nsession load (ms): {result['session_load_ms']}"
          f"\nfloat16: {result['fp16']}")
    return {"export": result}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oppy-bench", description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="also write the results, with the machine, as JSON")
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="write a procedural Mars-like greyscale archive")
    synth.add_argument("out_dir", type=Path)
    synth.add_argument("--frames", type=int, default=24)
    synth.add_argument("--size", type=_size, default=(1024, 1024), help="WxH (default 1024x1024)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(run=_synth)

    lab = commands.add_parser("lab", help="Numba LAB kernels against OpenCV cvtColor (float32)")
    lab.add_argument("--size", type=_size, default=(1024, 1024))
    lab.add_argument("--repeats", type=int, default=20)
    lab.set_defaults(run=_lab)

    engine = commands.add_parser("engine", help="end-to-end frames/s beside the model-only ceiling")
    engine.add_argument("--model", action="append", default=[], help="an .onnx model (repeatable); "
                        "default: seed-architecture stand-ins with random weights")
    engine.add_argument("--standin-widths", type=lambda s: [float(w) for w in s.split(",")], default=[1.0, 0.25],
                        help="channel multipliers of the seed stand-ins (default 1,0.25)")
    engine.add_argument("--frames", type=int, default=16)
    engine.add_argument("--size", type=_size, default=(1024, 1024))
    engine.add_argument("--repeats", type=int, default=3)
    engine.add_argument("--provider", default="cpu")
    engine.add_argument("--batch-size", type=int, default=256)
    engine.set_defaults(run=_engine)

    export = commands.add_parser("export", help="exported graph layouts, --optimize and float16 on the CPU provider")
    export.add_argument("--model", help="run directory or .keras file (default: an untrained --arch, which "
                        "costs what a trained one costs; float16 errors need a trained one)")
    export.add_argument("--arch", default="unet")
    export.add_argument("--batch-size", type=int, default=256)
    export.add_argument("--rounds", type=int, default=7)
    export.add_argument("--parity-images", type=Path, metavar="DIR", help="photos whose tiles join the error check")
    export.set_defaults(run=_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    results = args.run(args)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), **results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
