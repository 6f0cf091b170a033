"""`oppy-bench`: synthetic archives and the engine's benchmarks, each printing a markdown table.

Benchmarks are run by hand on a stated machine, never in CI; `--json` keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from oppy.engine.config import AUTO, chroma_scale_argument, size_argument
from oppy.engine.errors import OppyError, one_line

from . import commands as run
from .timing import machine


def _csv(kind: type = str):
    return lambda text: [kind(v) for v in text.split(",") if v]


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oppy-bench", description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="also write the results, with the machine, as JSON")
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="write a procedural Mars-like greyscale archive")
    synth.add_argument("out_dir", type=Path)
    synth.add_argument("--frames", type=int, default=24)
    synth.add_argument("--size", type=size_argument, default=(1024, 1024), help="WxH (default 1024x1024)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(run=run.synth)

    lab = commands.add_parser("lab", help="Numba LAB kernels against OpenCV cvtColor (float32)")
    lab.add_argument("--size", type=size_argument, default=(1024, 1024))
    lab.add_argument("--repeats", type=int, default=20)
    lab.set_defaults(run=run.lab)

    grow = commands.add_parser("grow", help="the chroma scale's steps on one frame: shrinking L, growing a*, b* "
                               "back guided by L against bilinearly")
    grow.add_argument("--size", type=size_argument, default=(1024, 1024))
    grow.add_argument("--scale", type=float, default=0.25)
    grow.add_argument("--repeats", type=int, default=20)
    grow.set_defaults(run=run.grow)

    encode = commands.add_parser("encode", help="RGB to YUV by the engine, FFmpeg's scaler and OpenCV; x264 "
                                 "frame vs slice threads; the sink's conversion ahead or in the writer's thread")
    encode.add_argument("--frames", type=int, default=64, help="frames of each encode (default 64: frame threads "
                        "need a few frames to start)")
    encode.add_argument("--size", type=size_argument, default=(1024, 1024))
    encode.add_argument("--preset", default="veryfast")
    encode.add_argument("--repeats", type=int, default=3)
    encode.add_argument("--standard", choices=["bt601", "bt709"],
                        help="the YUV matrix (default: the video sink's for the size: BT.709 from 720 lines up)")
    encode.add_argument("--pix-fmt", choices=["yuv420p", "yuv444p"], default="yuv420p")
    encode.set_defaults(run=run.encode)

    engine = commands.add_parser("engine", help="end-to-end frames/s beside the model-only ceiling")
    engine.add_argument("--model", action="append", default=[], help="an .onnx model (repeatable); "
                        "default: seed-architecture stand-ins with random weights")
    engine.add_argument("--standin-widths", type=lambda s: [float(w) for w in s.split(",")], default=[1.0, 0.25],
                        help="channel multipliers of the seed stand-ins (default 1,0.25)")
    engine.add_argument("--frames", type=int, default=16)
    engine.add_argument("--size", type=size_argument, default=(1024, 1024))
    engine.add_argument("--repeats", type=int, default=3)
    engine.add_argument("--provider", default="cpu")
    engine.add_argument("--batch-size", type=int, default=256)
    engine.set_defaults(run=run.engine)

    export = commands.add_parser("export", help="exported graph layouts, --optimize and float16 on the CPU provider")
    export.add_argument("--model", help="run directory or .keras file (default: an untrained --arch, which "
                        "costs what a trained one costs; float16 errors need a trained one)")
    export.add_argument("--arch", default="unet")
    export.add_argument("--batch-size", type=int, default=256)
    export.add_argument("--rounds", type=int, default=7)
    export.add_argument("--parity-images", type=Path, metavar="DIR", help="photos whose tiles join the error check")
    export.set_defaults(run=run.export)

    tiles = commands.add_parser("tiles", help="model-only tiles/s per provider, precision and batch size")
    tiles.add_argument("--model", help="an .onnx model (default: the packaged default model, else a unet stand-in)")
    tiles.add_argument("--providers", type=_csv(), default=["cpu"], help="cpu,cuda,tensorrt (default cpu)")
    tiles.add_argument("--batch-sizes", type=_csv(int), default=[1, 16, 64, 256, 1024])
    tiles.add_argument("--precision", type=_csv(), default=["fp32", "fp16"],
                       help="fp32,fp16,int8 (default fp32,fp16; int8 runs the model's int8 copy, oppy-export --int8)")
    tiles.add_argument("--cuda-graph", action="store_true", help="also CUDA graphs on fixed device buffers")
    tiles.add_argument("--nhwc", action="store_true", help="also CUDA's channels-last kernels (prefer_nhwc) on "
                       "fixed device buffers")
    tiles.add_argument("--repeats", type=int, default=5)
    tiles.add_argument("--warmup", type=int, default=2)
    tiles.add_argument("--max-seconds", type=float, default=10.0, help="time limit of each combination's repeats")
    tiles.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its choice)")
    tiles.add_argument("--plot", metavar="PATH.png", help="draw tiles/s vs batch size (needs matplotlib)")
    tiles.set_defaults(run=run.tiles)

    pipeline = commands.add_parser("pipeline", help="each stage's frames/s alone, and the engine's end to end")
    pipeline.add_argument("input", help="a folder of frames of one size (oppy-bench synth) or a video")
    which = pipeline.add_mutually_exclusive_group()
    which.add_argument("--model", help="an .onnx model (default: the packaged default model, else a unet stand-in)")
    which.add_argument("--free-model", action="store_true", help="a stand-in that does no work, so that end to end "
                       "is the ceiling set by everything but the model")
    pipeline.add_argument("--provider", default="cpu")
    pipeline.add_argument("--batch-size", type=int, default=256)
    pipeline.add_argument("--overlap", type=int, help="default: the model's recommendation")
    pipeline.add_argument("--chroma-scale", type=chroma_scale_argument, default=AUTO, metavar="auto|S",
                          help="the engine's chroma scale (default: %(default)s)")
    pipeline.add_argument("--against-scale", type=chroma_scale_argument, metavar="auto|S",
                          help="also render at this chroma scale in every round, as the reference of the ratios")
    pipeline.add_argument("--temporal", type=float, help="the engine's temporal strength (default: its default)")
    pipeline.add_argument("--against-temporal", type=float, metavar="S",
                          help="also render at this temporal strength in every round, as the reference of the ratios")
    pipeline.add_argument("--precision", choices=("auto", "fp32", "fp16", "int8"),
                          help="the engine's precision (default: its default, auto)")
    pipeline.add_argument("--against-precision", choices=("auto", "fp32", "fp16", "int8"),
                          help="also render in this precision in every round, as the reference of the ratios")
    pipeline.add_argument("--threads", type=int, default=0)
    pipeline.add_argument("--decode-threads", type=int, default=0, help="0: one per core, up to 8 (the engine's "
                          "default)")
    pipeline.add_argument("--preset", default="veryfast")
    pipeline.add_argument("--codec", default="libx264")
    pipeline.add_argument("--encoder-threads", type=int, default=0,
                          help="the video encoder's threads (0: its own choice, the engine's default)")
    pipeline.add_argument("--against-encoder-threads", type=int, metavar="N",
                          help="also render with N encoder threads in every round, as the reference of the ratios")
    pipeline.add_argument("--repeats", type=int, default=3)
    pipeline.add_argument("--warmup", type=int, default=1)
    pipeline.set_defaults(run=run.pipeline)

    agreement = commands.add_parser("agreement", help="the engine's frames on a provider against the CPU "
                                    "provider's")
    agreement.add_argument("input", help="a folder of frames or a video")
    agreement.add_argument("--model", help="an .onnx model (default: the packaged default model, else a unet "
                           "stand-in)")
    agreement.add_argument("--provider", default="cuda")
    agreement.add_argument("--batch-size", type=int, default=256)
    agreement.add_argument("--limit", type=int, help="only the first N frames")
    agreement.set_defaults(run=run.agreement)

    quality = commands.add_parser("quality", help="ΔE00, ab PSNR, colourfulness, seam blockiness and flicker "
                                  "beside the baselines")
    quality.add_argument("dataset_dir", type=Path, help="a prepared dataset (oppy-train prepare): train/ and val/")
    quality.add_argument("--model", help="an .onnx model, run directory or .keras file (default: the packaged one)")
    quality.add_argument("--split", default="val")
    quality.add_argument("--limit", type=int, help="only the first N photos of the split")
    quality.add_argument("--overlap", type=int, help="blend overlap (default: the model's recommendation)")
    quality.add_argument("--sequence", type=Path, help="a folder of grey frames in order for the flicker "
                         "(absolute); default: slow pans over colour photos of the split (relative to the truth)")
    quality.add_argument("--flicker-photos", type=int, default=4)
    quality.add_argument("--flicker-frames", type=int, default=8)
    quality.add_argument("--pan", type=int, default=2, help="pixels a frame of the pans (times --upscale)")
    quality.add_argument("--chroma-scale", type=chroma_scale_argument, default=AUTO, metavar="auto|S",
                         help="the engine's chroma scale for the model (default: %(default)s); where it is not 1, "
                              "the model at scale 1 and grown back bilinearly are rows too")
    quality.add_argument("--upscale", type=_positive_float, default=1.0, metavar="K",
                         help="enlarge the photos K times (bicubic) first, as if a camera of K times the "
                              "resolution had taken them (default: %(default)s)")
    quality.add_argument("--only-model", action="store_true",
                         help="only the model at --chroma-scale and the baselines: no scale-1, bilinear or seed-style "
                              "rows (a quarter of the time at --upscale 4)")
    quality.add_argument("--cast-matched", action="store_true",
                         help="also each method's ΔE00 with every photo's mean a*, b* set to the truth's: what the "
                              "photos' overall colour cast costs it")
    quality.set_defaults(run=run.quality)

    robust = commands.add_parser("robustness", help="models on the validation photos at other exposures, tone "
                                 "curves, noise and JPEG, on real grey frames and on slow pans; palette guard off and "
                                 "on")
    robust.add_argument("dataset_dir", type=Path, nargs="?",
                        help="a prepared dataset (oppy-train prepare): its val photos, perturbed")
    robust.add_argument("--model", action="append", default=[], metavar="[NAME=]PATH",
                        help="an .onnx model, run directory or .keras file (repeatable; default: the packaged one)")
    robust.add_argument("--grey", type=Path, metavar="FOLDER",
                        help="a folder of real grey frames: the frames blotched and the pixels by hue (no truth)")
    robust.add_argument("--split", default="val")
    robust.add_argument("--limit", type=int, help="only the first N photos of the split")
    robust.add_argument("--perturb", type=_csv(str), metavar="NAME,NAME",
                        help="the perturbations (default: all of 'as is', 'exposure x0.5', 'exposure x0.2', "
                             "'gamma 1.8', 'flat', 'noise 6', 'jpeg 30')")
    robust.add_argument("--flicker-photos", type=int, default=8, help="photos panned over for the flicker (0: none)")
    robust.set_defaults(run=run.robustness)

    temporal = commands.add_parser("temporal", help="the engine's temporal smoothing against every frame alone, in "
                                   "one run: chroma warp error, jitter and CDC on pans over the validation photos "
                                   "(and ΔE00 to their truth) and on folders of frames in order")
    temporal.add_argument("inputs", type=Path, nargs="+", metavar="DATASET|FOLDER",
                          help="a prepared dataset (oppy-train prepare: pans over its photos of --split) or a folder "
                               "of frames in order (natural order of names)")
    temporal.add_argument("--model", help="an .onnx model (default: the packaged one)")
    temporal.add_argument("--strength", type=float, help="the strength measured (default: the engine's default)")
    temporal.add_argument("--photos", type=int, default=8, help="photos panned over (default %(default)s)")
    temporal.add_argument("--split", default="val")
    temporal.add_argument("--provider", default="cpu")
    temporal.add_argument("--plot", metavar="PATH.png", help="draw the frames' mean a*, b* over the pans, alone and "
                          "smoothed (needs matplotlib and a dataset)")
    temporal.set_defaults(run=run.temporal)

    rule = commands.add_parser("chroma-rule", help="ΔE00 and colourfulness on enlarged photos when the copy spans "
                               "several multiples of the model's scene size: what the auto chroma scale is chosen by")
    rule.add_argument("dataset_dir", type=Path, help="a prepared dataset (oppy-train prepare)")
    rule.add_argument("--model", help="an .onnx model with a scene size (default: the packaged one)")
    rule.add_argument("--upscales", type=_csv(float), default=[2.0, 4.0], metavar="K,K")
    rule.add_argument("--multiples", type=_csv(float), default=[0.5, 0.75, 1.0, 1.5, 2.0], metavar="M,M")
    rule.add_argument("--split", default="val")
    rule.add_argument("--limit", type=int, default=100, help="the first N photos of the split (default %(default)s)")
    rule.set_defaults(run=run.chroma_rule)

    compare = commands.add_parser("compare-seed", help="the original approach against oppy-stream, same weights "
                                  "and archive (needs the train extra)")
    compare.add_argument("input", help="a folder of frames")
    compare.add_argument("--seed-model", help="run directory or .keras file of a seed (default: an untrained seed)")
    compare.add_argument("--model", help="oppy-stream's .onnx model for the defaults row (default: the packaged "
                         "default model)")
    compare.add_argument("--provider", default="cpu")
    compare.add_argument("--batch-size", type=int, default=256)
    compare.add_argument("--repeats", type=int, default=1)
    compare.add_argument("--overlap", type=int, help="the same-weights row's overlap (default: the model's "
                         "recommendation; 0: the seed's tiles exactly)")
    compare.set_defaults(run=run.compare_seed)

    against = commands.add_parser("against-commit", help="this engine's render against another commit's, same "
                                  "input, in the same rounds (a git checkout of the project)")
    against.add_argument("ref", help="the other commit (any git revision)")
    against.add_argument("input", type=Path, help="a folder of frames or a video (oppy-bench synth writes one)")
    against.add_argument("--rounds", type=int, default=5)
    against.add_argument("--warmup", type=int, default=1)
    against.add_argument("--options", default="", metavar="'FLAGS'",
                         help="oppy-stream flags for both renders, in one quoted string")
    against.add_argument("--ref-options", metavar="'FLAGS'",
                         help="the other commit's flags instead (where its options differ)")
    against.set_defaults(run=run.against_commit)

    shards = commands.add_parser("shards", help="--shards N against one process on this machine (needs the "
                                 "cluster extra): Ray's and the join's overhead, and the joined video's identity")
    shards.add_argument("--model", help="an .onnx model (default: the seed stand-in at --standin-width)")
    shards.add_argument("--standin-width", type=float, default=0.25)
    shards.add_argument("--shards", type=_csv(int), default=[1, 2], help="shard counts (default 1,2)")
    shards.add_argument("--frames", type=int, default=96)
    shards.add_argument("--size", type=size_argument, default=(512, 512))
    shards.add_argument("--repeats", type=int, default=5)
    shards.add_argument("--provider", default="cpu")
    shards.add_argument("--batch-size", type=int, default=256)
    shards.set_defaults(run=run.shards)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        results = args.run(args)
    except (ValueError, FileNotFoundError, OppyError) as exc:
        print(f"oppy-bench: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), **results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
