"""What each `oppy-bench` command runs and prints: one function per command, from its parsed arguments to the
markdown table on stdout and the results it returns for `--json`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from .timing import markdown_table


def synth(args: argparse.Namespace) -> dict:
    from .synth import write_archive

    paths = write_archive(args.out_dir, args.frames, *args.size, seed=args.seed)
    print(f"wrote {len(paths)} frames of {args.size[0]}x{args.size[1]} to {args.out_dir}", file=sys.stderr)
    return {"frames": len(paths), "folder": str(args.out_dir)}


def lab(args: argparse.Namespace) -> dict:
    from .lab_speed import bench_lab

    rows = bench_lab(*args.size, repeats=args.repeats)
    print(markdown_table(rows, ["conversion", "numba", "numba_ms", "opencv", "opencv_ms", "speedup_vs_opencv"]))
    return {"lab": rows}


def grow(args: argparse.Namespace) -> dict:
    from .grow_speed import bench_grow

    rows = bench_grow(*args.size, scale=args.scale, repeats=args.repeats)
    print(markdown_table(rows, ["step", "size", "copy", "ms_per_frame", "vs_bilinear"]))
    return {"grow": rows}


def encode(args: argparse.Namespace) -> dict:
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


def engine(args: argparse.Namespace) -> dict:
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


def export(args: argparse.Namespace) -> dict:
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


def tiles(args: argparse.Namespace) -> dict:
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
    if result["int8_speedup"]:
        print("\nint8 over float32, same run: " + ", ".join(f"{name} {ratio:.2f}x"
                                                         for name, ratio in result["int8_speedup"].items()))
    if args.nhwc:
        print("\nchannels-last kernels (tiles/s with / without, same device buffers): "
              f"{result['nhwc_speedup'] or 'n/a'}")
    if args.plot and ran:
        from .plot import plot_tiles

        print(f"plot: {plot_tiles(result, args.plot)}")
    elif args.plot:
        print("plot: none drawn, since no combination ran")
    return {"tiles": result}


def pipeline(args: argparse.Namespace) -> dict:
    from .models import benchmark_model, build_free_standin
    from .stages import bench_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        if args.free_model:
            model = build_free_standin(Path(tmp) / "free.onnx")
            what = "free stand-in (ab = L twice: inference costs nothing, so end to end is the host's ceiling)"
        else:
            model, what = benchmark_model(args.model, tmp)
        chosen = {key: getattr(args, key) for key in ("temporal", "precision") if getattr(args, key) is not None}
        result = bench_pipeline(args.input, model, args.provider, args.batch_size, args.repeats, args.warmup,
                                args.against_scale, args.against_temporal, args.against_precision,
                                args.against_encoder_threads, overlap=args.overlap, chroma_scale=args.chroma_scale,
                                threads=args.threads, **chosen, decode_threads=args.decode_threads,
                                preset=args.preset, codec=args.codec, encoder_threads=args.encoder_threads)
    result["model"] = what
    print(f"{result['frames']} frames of {result['size']}, {result['tiles_per_frame']} tiles each at chroma scale "
          f"{result['chroma_scale']:.3g} ({result['chroma_scale_setting']}); model: {what}; "
          f"provider {result['provider']}, batch {result['batch_size']}, {result['decode_threads']} decode "
          f"threads, {result['codec']} preset {result['preset']} ({result['encoder_threads'] or 'its own'} threads), "
          f"{result['precision']}\n")
    print(markdown_table([*result["stages"], {"stage": "**end to end**", "frames_per_s": result["e2e_frames_per_s"],
                                              "ms_per_frame": 1000 / result["e2e_frames_per_s"]}],
                         ["stage", "frames_per_s", "ms_per_frame"]))
    print(f"\nslowest stage: {result['slowest_stage']} ({result['slowest_frames_per_s']:.3g} frames/s); "
          f"pipeline efficiency (end to end / slowest stage): {result['efficiency']:.3g}; stages one after the "
          f"other: {result['serial_frames_per_s']:.3g} frames/s\nthe wall: {result['wall']}")
    if "reference" in result:
        reference = result["reference"]
        print(f"against chroma scale {reference['chroma_scale_setting']}, temporal {reference['temporal']:g}, "
              f"{reference['precision']}, encoder threads {reference['encoder_threads'] or 'its own'} in the same "
              "rounds: "
              f"{reference['e2e_frames_per_s']:.3g} frames/s end to end, {reference['tiles_per_frame']:.4g} tiles a "
              f"frame: {result['e2e_speedup_vs_reference']:.3g}x the frames/s"
              + (f" with {result['tiles_ratio_reference_over_this']:.3g}x fewer tiles"
                 if result["tiles_ratio_reference_over_this"] != 1 else ""))
    return {"pipeline": result}


def agreement(args: argparse.Namespace) -> dict:
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


def quality(args: argparse.Namespace) -> dict:
    from oppy.engine.api import default_model_path

    from .quality import bench_quality

    model = args.model or default_model_path()
    result = bench_quality(args.dataset_dir, model, args.split, args.limit, args.overlap, args.sequence,
                           args.flicker_photos, args.flicker_frames, args.pan, args.chroma_scale, args.upscale,
                           references=not args.only_model, cast_matched=args.cast_matched)
    used = result["chroma_scales_used"]
    print(f"{result['photos']} {result['split']} photos ({result['skipped_greyscale']} greyscale skipped), enlarged "
          f"{result['upscale']:g}x; chroma scale {result['chroma_scale']} ({used['min']:.3g} to {used['max']:.3g}, "
          f"median {used['median']:.3g}); model {model}; flicker on {result['flicker']['sequence']} "
          f"({result['flicker']['unit']})\n")
    print(markdown_table(result["rows"], ["method", "delta_e00", "delta_e00_p95",
                                          *(["delta_e00_cast_matched"] if args.cast_matched else []), "ab_psnr",
                                          "colourfulness_ratio", "seam_blockiness", "grid_stride", "flicker",
                                          "tiles_per_photo"]))
    truth = result["truth_blockiness"]
    print(f"\nthe ground truth's own blockiness on the blended grid: {'n/a' if truth is None else f'{truth:.3g}'}")
    return {"quality": result}


def robustness(args: argparse.Namespace) -> dict:
    from oppy.engine.api import default_model_path

    from .robustness import PERTURBATIONS, bench_robustness

    models = dict(_named(text) for text in args.model) or {"default": str(default_model_path())}
    perturbations = tuple(args.perturb) if args.perturb else tuple(PERTURBATIONS)
    if "as is" not in perturbations:
        perturbations = ("as is", *perturbations)  # the ratios are to the photos as they are
    if args.flicker_photos < 0:
        raise ValueError(f"--flicker-photos must be 0 (no pans) or more, not {args.flicker_photos}")
    result = bench_robustness(args.dataset_dir, models, args.split, args.limit, args.grey, perturbations,
                              args.flicker_photos)
    if "perturbed" in result:
        perturbed, flicker = result["perturbed"], result.get("flicker")
        pans = f"; flicker on {flicker['sequence']} ({flicker['unit']})" if flicker else ""
        print(f"{perturbed['photos']} {perturbed['split']} photos; ΔE00 (ratio to the photos as they are, blotch "
              f"rate){pans}\n")
        rows = []
        for row in perturbed["rows"]:
            cells = {"method": row["method"]}
            for name in perturbed["perturbations"]:
                values = row[name]
                ratio = "" if name == "as is" else f" ({values['ratio']:.2f}x)"
                cells[name] = f"{values['delta_e00']:.2f}{ratio}, {values['blotch_rate']:.0%}"
            if flicker:
                cells["flicker"] = f"{flicker['methods'][row['method']]:.3g}"
            rows.append(cells)
        print(markdown_table(rows, ["method", *perturbed["perturbations"], *(["flicker"] if flicker else [])]))
    if "grey" in result:
        grey = result["grey"]
        print(f"\n{grey['frames']} grey frames of {grey['folder']}: frames blotched, pixels by hue\n")
        print(markdown_table([{"method": row["method"], "blotched": f"{row['blotched_frames']} of {row['frames']}",
                               **{hue: f"{share:.2%}" for hue, share in row["hue_shares"].items()},
                               "frames blotched": ", ".join(row["blotched"][:4]) + (" ..." if len(row["blotched"]) > 4
                                                                                    else "")}
                              for row in grey["rows"]],
                             ["method", "blotched", "blue", "green", "warm", "neutral", "frames blotched"]))
    return {"robustness": result}


def temporal(args: argparse.Namespace) -> dict:
    from .temporal import bench_temporal

    datasets = [path for path in args.inputs if (path / args.split).is_dir()]
    if len(datasets) > 1:
        raise ValueError(f"give one prepared dataset, not {len(datasets)}")
    folders = [path for path in args.inputs if path not in datasets]
    if args.plot and not datasets:
        raise ValueError("--plot draws the pans over a prepared dataset's photos: give one")
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder of frames or a prepared dataset")
    result = bench_temporal(args.model, datasets[0] if datasets else None, folders, args.strength, args.photos,
                            args.split, args.provider)
    columns = ["run", "warp_error", "jitter", "cdc"]
    print(f"temporal strength {result['strength']:g} against 0 (every frame alone), {result['provider']}\n")
    if "pans" in result:
        pans = result["pans"]
        print(f"pans over {pans['photos']} {args.split} photos enlarged {pans['upscale']:g}x: a {pans['window']} px "
              f"window moving {pans['pan_px']} px a frame for {pans['frames']} frames, back to back\n")
        print(markdown_table([{"run": name, **pans[name]} for name in ("truth", "alone", "smoothed")] +
                             [{"run": "smoothed / alone", **pans["ratios"]}], [*columns, "delta_e00"]))
        if pans["cut_delta_e00_vs_alone"]:
            print(f"\nafter each cut, ΔE00 of the smoothed frame against itself coloured alone: max "
                  f"{pans['cut_delta_e00_vs_alone']['max']:.3g}, mean {pans['cut_delta_e00_vs_alone']['mean']:.3g}")
    for row in result["folders"]:
        print(f"\n{row['frames']} frames of {row['folder']}\n")
        print(markdown_table([{"run": name, **row[name]} for name in ("alone", "smoothed")] +
                             [{"run": "smoothed / alone", **row["ratios"]}], columns))
    if args.plot and "pans" in result:
        from .plot import plot_temporal

        print(f"\nplot: {plot_temporal(result, args.plot)}")
    return {"temporal": result}


def _named(text: str) -> tuple[str, str]:
    """`NAME=PATH` or a bare PATH (named after its file)."""
    name, _, path = text.rpartition("=")
    return (name or Path(path).stem), path


def chroma_rule(args: argparse.Namespace) -> dict:
    from oppy.engine.api import default_model_path

    from .quality import bench_chroma_rule

    result = bench_chroma_rule(args.dataset_dir, args.model or default_model_path(), tuple(args.upscales),
                               tuple(args.multiples), args.split, args.limit)
    print(f"{result['photos']} {result['split']} photos; scene size {result['scene_size']} px\n")
    print(markdown_table(result["rows"], ["upscale", "copy", "delta_e00", "ab_psnr", "colourfulness_ratio"]))
    print("\nlowest ΔE00: " + ", ".join(f"{copy} at K = {k}" for k, copy in result["best"].items()))
    return {"chroma_rule": result}


def compare_seed(args: argparse.Namespace) -> dict:
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


def shards(args: argparse.Namespace) -> dict:
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


def against_commit(args: argparse.Namespace) -> dict:
    import shlex

    from .against_commit import bench_against_commit

    result = bench_against_commit(args.ref, args.input, args.rounds, args.warmup, shlex.split(args.options),
                                  None if args.ref_options is None else shlex.split(args.ref_options))
    rates = result["frames_per_s"]
    low, high = result["ratio_range"]
    print(markdown_table([{"engine": "this", "frames_per_s": f"{rates['this']:.3g}"},
                          {"engine": f"{args.ref} ({result['commit'][:10]})", "frames_per_s": f"{rates['ref']:.3g}"}],
                         ["engine", "frames_per_s"]))
    print(f"\nthis / {args.ref}: {result['ratio_median']:.3g}x (median of {result['rounds']} rounds; {low:.3g} to "
          f"{high:.3g})" + ("; this is HEAD with uncommitted changes" if result["dirty"] else ""))
    return {"against_commit": result}

