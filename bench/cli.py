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

from oppy.engine.config import size_argument
from oppy.engine.scale import AUTO, chroma_scale_argument

from .timing import machine, markdown_table


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


def _grow(args: argparse.Namespace) -> dict:
    from .grow_speed import bench_grow

    rows = bench_grow(*args.size, scale=args.scale, repeats=args.repeats)
    print(markdown_table(rows, ["step", "size", "copy", "ms_per_frame", "vs_bilinear"]))
    return {"grow": rows}


def _encode(args: argparse.Namespace) -> dict:
    from .encode_speed import bench_encode

    result = bench_encode(args.frames, *args.size, preset=args.preset, repeats=args.repeats, standard=args.standard,
                          pix_fmt=args.pix_fmt)
    print(f"{result['frames']} frames of {result['size']}, {result['pix_fmt']} {result['standard'].upper()}, x264 "
          f"preset {result['preset']}\n")
    print(markdown_table(result["conversion"], ["how", "ms_per_frame", "y_max_vs_scaler", "uv_max_vs_scaler",
                                                "uv_mean_vs_scaler"]))
    print(f"\nthe engine's conversion is {result['conversion_speedup']:.3g}x the scaler; into a PyAV frame's planes, "
          f"{result['into_frame_speedup']:.3g}x converting to an array and copying that in\n")
    print(markdown_table(result["x264"], ["threads", "ms_per_frame"]))
    print(f"\nframe threads are {result['frame_threads_speedup']:.3g}x slice threads\n")
    print(markdown_table(result["sink"], ["conversion", "ms_per_frame"]))
    print(f"\nthe video sink, frames prepared ahead: {result['prepare_ahead_speedup']:.3g}x converting them in the "
          "writer's thread")
    return {"encode": result}


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


def _csv(kind: type = str):
    return lambda text: [kind(v) for v in text.split(",") if v]


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _tiles(args: argparse.Namespace) -> dict:
    from .models import benchmark_model
    from .tiles_speed import bench_tiles

    with tempfile.TemporaryDirectory() as tmp:
        model, what = benchmark_model(args.model, tmp)
        result = bench_tiles(model, args.providers, args.batch_sizes, args.precision, args.cuda_graph,
                             args.repeats, args.warmup, max_seconds=args.max_seconds, threads=args.threads,
                             nhwc=args.nhwc)
    result["model"] = what
    print(f"model: {what}, {result['flops']['flops_per_tile'] / 1e9:.4g} GFLOP per tile "
          f"({result['flops']['counted']})\ndevice: {result['cpu']} ({result['cores']} cores)"
          + (f"; {result['gpu']['name']}, driver {result['gpu']['driver']}" if result["gpu"] else "")
          + f"; roof: {result['peak_flops']}\n")
    columns = ["variant", "batch_size", "tiles_per_s", "ms_per_batch", "flops_per_s", "pct_of_roof", "max_abs_vs_first"]
    skipped = [r for r in result["rows"] if r["status"] != "ok"]
    ran = [r for r in result["rows"] if r["status"] == "ok"]
    print(markdown_table(ran, columns) if ran else "no combination could run here")
    skips = {r["variant"]: r["reason"] for r in skipped}  # one line per variant: its batch sizes share the reason
    print("".join(f"\nskipped {variant}: {reason}" for variant, reason in skips.items()))
    if ran:
        print("\nbest batch size per variant:")
        print(markdown_table(result["best"], ["variant", "batch_size", "tiles_per_s", "flops_per_s", "pct_of_roof"]))
    if args.cuda_graph:
        print(f"\nCUDA graphs (tiles/s with / without, same device buffers): {result['cuda_graph_speedup'] or 'n/a'}")
    if args.nhwc:
        print("\nchannels-last kernels (tiles/s with / without, same device buffers): "
              f"{result['nhwc_speedup'] or 'n/a'}")
    if args.plot and ran:
        from .plot import plot_tiles

        print(f"plot: {plot_tiles(result, args.plot)}")
    elif args.plot:
        print("plot: none drawn, since no combination ran")
    return {"tiles": result}


def _pipeline(args: argparse.Namespace) -> dict:
    from .models import benchmark_model, build_free_standin
    from .stages import bench_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        if args.free_model:
            model = build_free_standin(Path(tmp) / "free.onnx")
            what = "free stand-in (ab = L twice: inference costs nothing, so end to end is the host's ceiling)"
        else:
            model, what = benchmark_model(args.model, tmp)
        result = bench_pipeline(args.input, model, args.provider, args.batch_size, args.repeats, args.warmup,
                                args.against_scale, overlap=args.overlap, chroma_scale=args.chroma_scale,
                                threads=args.threads,
                                decode_threads=args.decode_threads, preset=args.preset, codec=args.codec)
    result["model"] = what
    print(f"{result['frames']} frames of {result['size']}, {result['tiles_per_frame']} tiles each at chroma scale "
          f"{result['chroma_scale']:.3g} ({result['chroma_scale_setting']}); model: {what}; "
          f"provider {result['provider']}, batch {result['batch_size']}, {result['decode_threads']} decode "
          f"threads, {result['codec']} preset {result['preset']}\n")
    print(markdown_table([*result["stages"], {"stage": "**end to end**", "frames_per_s": result["e2e_frames_per_s"],
                                              "ms_per_frame": 1000 / result["e2e_frames_per_s"]}],
                         ["stage", "frames_per_s", "ms_per_frame"]))
    print(f"\nslowest stage: {result['slowest_stage']} ({result['slowest_frames_per_s']:.3g} frames/s); "
          f"pipeline efficiency (end to end / slowest stage): {result['efficiency']:.3g}; stages one after the "
          f"other: {result['serial_frames_per_s']:.3g} frames/s\nthe wall: {result['wall']}")
    if "reference" in result:
        reference = result["reference"]
        print(f"against chroma scale {reference['chroma_scale_setting']} in the same rounds: "
              f"{reference['e2e_frames_per_s']:.3g} frames/s end to end, {reference['tiles_per_frame']:.4g} tiles a "
              f"frame: {result['e2e_speedup_vs_reference']:.3g}x the frames/s with "
              f"{result['tiles_ratio_reference_over_this']:.3g}x fewer tiles")
    return {"pipeline": result}


def _agreement(args: argparse.Namespace) -> dict:
    from .agreement import bench_agreement
    from .models import benchmark_model

    with tempfile.TemporaryDirectory() as tmp:
        model, what = benchmark_model(args.model, tmp)
        result = bench_agreement(args.input, model, args.provider, args.batch_size, args.limit)
    result["model"] = what
    print(f"{result['frames']} frames, model: {what}, batch {result['batch_size']}: {result['provider']} against "
          f"{result['reference']}\n")
    print(markdown_table([result], ["rgb_max", "rgb_mean", "share_over_1", "worst_frame"]))
    return {"agreement": result}


def _quality(args: argparse.Namespace) -> dict:
    from oppy.engine.api import default_model_path

    from .quality import bench_quality

    model = args.model or default_model_path()
    result = bench_quality(args.dataset_dir, model, args.split, args.limit, args.overlap, args.sequence,
                           args.flicker_photos, args.flicker_frames, args.pan, args.chroma_scale, args.upscale,
                           references=not args.only_model)
    used = result["chroma_scales_used"]
    print(f"{result['photos']} {result['split']} photos ({result['skipped_greyscale']} greyscale skipped), enlarged "
          f"{result['upscale']:g}x; chroma scale {result['chroma_scale']} ({used['min']:.3g} to {used['max']:.3g}, "
          f"median {used['median']:.3g}); model {model}; flicker on {result['flicker']['sequence']} "
          f"({result['flicker']['unit']})\n")
    print(markdown_table(result["rows"], ["method", "delta_e00", "delta_e00_p95", "ab_psnr", "colourfulness_ratio",
                                          "seam_blockiness", "grid_stride", "flicker", "tiles_per_photo"]))
    truth = result["truth_blockiness"]
    print(f"\nthe ground truth's own blockiness on the blended grid: {'n/a' if truth is None else f'{truth:.3g}'}")
    return {"quality": result}


def _chroma_rule(args: argparse.Namespace) -> dict:
    from oppy.engine.api import default_model_path

    from .quality import bench_chroma_rule

    result = bench_chroma_rule(args.dataset_dir, args.model or default_model_path(), tuple(args.upscales),
                               tuple(args.multiples), args.split, args.limit)
    print(f"{result['photos']} {result['split']} photos; scene size {result['scene_size']} px\n")
    print(markdown_table(result["rows"], ["upscale", "copy", "delta_e00", "ab_psnr", "colourfulness_ratio"]))
    print("\nlowest ΔE00: " + ", ".join(f"{copy} at K = {k}" for k, copy in result["best"].items()))
    return {"chroma_rule": result}


def _compare_seed(args: argparse.Namespace) -> dict:
    from .seed_compare import bench_compare_seed

    result = bench_compare_seed(args.input, args.seed_model, args.provider, args.batch_size, args.repeats,
                                args.model, overlap=args.overlap)
    print(f"{result['frames']} frames of {result['size']}; seed weights: {result['weights']}\n")
    print(markdown_table([{"approach": "seed (original)", **result["seed"]},
                          {"approach": "oppy-stream, its defaults", **result["oppy"]},
                          {"approach": "oppy-stream, the seed's weights", **result["oppy_same_weights"]}],
                         ["approach", "seconds", "frames_per_s", "tiles", "ratio", "model", "how"]))
    print(f"\nwall time ratio seed / oppy-stream: {result['ratio']:.3g}x with its defaults, "
          f"{result['ratio_same_weights']:.3g}x on the same weights")
    return {"compare_seed": result}


def _shards(args: argparse.Namespace) -> dict:
    from .cluster_speed import bench_shards
    from .models import build_seed_standin

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_seed_standin(Path(tmp) / f"seed-x{args.standin_width:g}.onnx",
                                                 width=args.standin_width)
        result = bench_shards(model, args.frames, *args.size, tuple(args.shards), args.repeats, args.provider,
                              args.batch_size)
    print(markdown_table(result["rows"], ["mode", "wall_s", "frames_per_s", "vs_single", "vs_single_range",
                                          "join_s", "join_share",
                                          "ray_overhead_s", "ray_overhead_share", "cold_wall_s",
                                          "join_ms_per_frame", "join_mb_per_s"]))
    print(f"\nRay start {result['ray_start_s']:.3g} s; load average {result['load_average_1min']}\n"
          f"same video: {result['identity']}\ndriver's listing: {result['listing']}")
    return {"shards": result}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oppy-bench", description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="also write the results, with the machine, as JSON")
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="write a procedural Mars-like greyscale archive")
    synth.add_argument("out_dir", type=Path)
    synth.add_argument("--frames", type=int, default=24)
    synth.add_argument("--size", type=size_argument, default=(1024, 1024), help="WxH (default 1024x1024)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(run=_synth)

    lab = commands.add_parser("lab", help="Numba LAB kernels against OpenCV cvtColor (float32)")
    lab.add_argument("--size", type=size_argument, default=(1024, 1024))
    lab.add_argument("--repeats", type=int, default=20)
    lab.set_defaults(run=_lab)

    grow = commands.add_parser("grow", help="the chroma scale's steps on one frame: shrinking L, growing a*, b* "
                               "back guided by L against bilinearly")
    grow.add_argument("--size", type=size_argument, default=(1024, 1024))
    grow.add_argument("--scale", type=float, default=0.25)
    grow.add_argument("--repeats", type=int, default=20)
    grow.set_defaults(run=_grow)

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
    encode.set_defaults(run=_encode)

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
    engine.set_defaults(run=_engine)

    export = commands.add_parser("export", help="exported graph layouts, --optimize and float16 on the CPU provider")
    export.add_argument("--model", help="run directory or .keras file (default: an untrained --arch, which "
                        "costs what a trained one costs; float16 errors need a trained one)")
    export.add_argument("--arch", default="unet")
    export.add_argument("--batch-size", type=int, default=256)
    export.add_argument("--rounds", type=int, default=7)
    export.add_argument("--parity-images", type=Path, metavar="DIR", help="photos whose tiles join the error check")
    export.set_defaults(run=_export)

    tiles = commands.add_parser("tiles", help="model-only tiles/s per provider, precision and batch size")
    tiles.add_argument("--model", help="an .onnx model (default: the packaged default model, else a unet stand-in)")
    tiles.add_argument("--providers", type=_csv(), default=["cpu"], help="cpu,cuda,tensorrt (default cpu)")
    tiles.add_argument("--batch-sizes", type=_csv(int), default=[1, 16, 64, 256, 1024])
    tiles.add_argument("--precision", type=_csv(), default=["fp32", "fp16"], help="fp32,fp16 (default both)")
    tiles.add_argument("--cuda-graph", action="store_true", help="also CUDA graphs on fixed device buffers")
    tiles.add_argument("--nhwc", action="store_true", help="also CUDA's channels-last kernels (prefer_nhwc) on "
                       "fixed device buffers")
    tiles.add_argument("--repeats", type=int, default=5)
    tiles.add_argument("--warmup", type=int, default=2)
    tiles.add_argument("--max-seconds", type=float, default=10.0, help="time limit of each combination's repeats")
    tiles.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its choice)")
    tiles.add_argument("--plot", metavar="PATH.png", help="draw tiles/s vs batch size (needs matplotlib)")
    tiles.set_defaults(run=_tiles)

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
    pipeline.add_argument("--threads", type=int, default=0)
    pipeline.add_argument("--decode-threads", type=int, default=0, help="0: one per core, up to 8 (the engine's "
                          "default)")
    pipeline.add_argument("--preset", default="veryfast")
    pipeline.add_argument("--codec", default="libx264")
    pipeline.add_argument("--repeats", type=int, default=3)
    pipeline.add_argument("--warmup", type=int, default=1)
    pipeline.set_defaults(run=_pipeline)

    agreement = commands.add_parser("agreement", help="the engine's frames on a provider against the CPU "
                                    "provider's")
    agreement.add_argument("input", help="a folder of frames or a video")
    agreement.add_argument("--model", help="an .onnx model (default: the packaged default model, else a unet "
                           "stand-in)")
    agreement.add_argument("--provider", default="cuda")
    agreement.add_argument("--batch-size", type=int, default=256)
    agreement.add_argument("--limit", type=int, help="only the first N frames")
    agreement.set_defaults(run=_agreement)

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
    quality.set_defaults(run=_quality)

    rule = commands.add_parser("chroma-rule", help="ΔE00 and colourfulness on enlarged photos when the copy spans "
                               "several multiples of the model's scene size: what the auto chroma scale is chosen by")
    rule.add_argument("dataset_dir", type=Path, help="a prepared dataset (oppy-train prepare)")
    rule.add_argument("--model", help="an .onnx model with a scene size (default: the packaged one)")
    rule.add_argument("--upscales", type=_csv(float), default=[2.0, 4.0], metavar="K,K")
    rule.add_argument("--multiples", type=_csv(float), default=[0.5, 0.75, 1.0, 1.5, 2.0], metavar="M,M")
    rule.add_argument("--split", default="val")
    rule.add_argument("--limit", type=int, default=100, help="the first N photos of the split (default %(default)s)")
    rule.set_defaults(run=_chroma_rule)

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
    compare.set_defaults(run=_compare_seed)

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
    shards.set_defaults(run=_shards)
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
