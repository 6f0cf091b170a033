"""Sharded rendering on one machine: `--shards N` against a single-process render of the same archive, measured
alternately in one run; what Ray and the join cost, as ratios, and how close the joined video is to one render.

Needs the `cluster` extra (Ray). A local Ray is started once; its start and the workers' first start are reported
apart from the warm runs, since a command pays them every time and a long render only once.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import av
import numpy as np

from oppy.engine import Engine, EngineConfig

from .synth import write_archive
from .timing import median_seconds


def _decode(path: Path) -> tuple[list[np.ndarray], list[float]]:
    with av.open(str(path)) as container:
        frames = [(f.to_ndarray(format="rgb24"), float(f.pts * f.time_base)) for f in container.decode(video=0)]
    return [f for f, _ in frames], [t for _, t in frames]


def _raw_frames(path: Path, width: int, height: int) -> np.ndarray:
    return np.fromfile(path, np.uint8).reshape(-1, height, width, 3)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def compare_outputs(tmp: Path, archive: Path, config: EngineConfig, shards: int, width: int, height: int) -> dict:
    """The sharded render against one process: raw RGB frames (before encoding) and decoded MP4s."""
    from oppy.engine.cluster.driver import render_sharded

    for name, cfg in (("rgb", replace(config, format="rawvideo")), ("mp4", config)):
        with Engine(config=cfg) as engine:
            engine.render(archive, tmp / f"single.{name}")
        render_sharded(archive, tmp / f"sharded.{name}", cfg, shards=shards)
    raw = {k: _raw_frames(tmp / f"{k}.rgb", width, height) for k in ("single", "sharded")}
    mp4 = {k: _decode(tmp / f"{k}.mp4") for k in ("single", "sharded")}
    single, sharded = mp4["single"][0], mp4["sharded"][0]
    diffs = [np.abs(a.astype(int) - b.astype(int)) for a, b in zip(single, sharded, strict=True)]
    return {
        "shards": shards,
        "raw_identical": bool(np.array_equal(raw["single"], raw["sharded"])),
        "frames": [len(single), len(sharded)],
        "timestamps_identical": mp4["single"][1] == mp4["sharded"][1],
        "mp4_identical_frames": sum(int(not d.any()) for d in diffs),
        "mp4_max_abs_diff": int(max(d.max() for d in diffs)),
        "mp4_mean_abs_diff": float(np.mean([d.mean() for d in diffs])),
        "psnr_sharded_vs_single_db": _psnr(np.stack(single), np.stack(sharded)),
        "psnr_single_vs_raw_db": _psnr(np.stack(single), raw["single"]),
        "psnr_sharded_vs_raw_db": _psnr(np.stack(sharded), raw["single"]),
    }


def bench_listing(count: int = 20_000, workdir: str | Path | None = None) -> dict:
    """What the driver does before any chunk starts, per input: list and sort the folder, stat every file for the
    checksum list, plan the chunks and write `inputs.json` (empty files: the per-file cost, not the bytes)."""
    from oppy.engine.cluster.chunks import WorkFolder, input_record, plan_chunks
    from oppy.engine.inputs.sources import ImageFolder

    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        tmp = Path(folder)
        archive = tmp / "archive"
        archive.mkdir()
        for i in range(count):
            (archive / f"opportunity_sol{1200 + i // 100:04d}_{i:06d}_fhaz.png").touch()
        work = WorkFolder(tmp / "out.mp4", ".mp4")
        work.path.mkdir()

        def driver() -> None:
            records = [input_record(path) for path in ImageFolder(archive).files]
            work.resume(plan_chunks(records, 1000), None, records)

        seconds = median_seconds(driver, repeats=3)
    return {"files": count, "seconds": seconds, "us_per_file": 1e6 * seconds / count}


def bench_shards(model: str | Path, frames: int = 96, width: int = 512, height: int = 512,
                 shard_counts: tuple[int, ...] = (1, 2), repeats: int = 3, provider: str = "cpu",
                 batch_size: int = 256, workdir: str | Path | None = None) -> dict:
    """Per shard count: one run on cold workers, then `repeats` warm runs, each after a single-process render;
    medians, and `vs_single` the median of each pair's ratio (the load on a shared machine drifts). Workers of
    another shard count use other threads, so Ray starts new ones: a count's first run is what a command pays,
    its warm runs what a long render pays."""
    import ray

    from oppy.engine.cluster.driver import render_sharded

    config = EngineConfig(model=model, provider=provider, batch_size=batch_size, overwrite=True)
    load = {"before": os.getloadavg()[0]}  # other work on the machine: only ratios within one run compare
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        tmp = Path(folder)
        archive = tmp / "archive"
        write_archive(archive, frames, width, height)
        with Engine(config=config) as engine:  # kernels compiled, files in the page cache
            engine.render(archive, tmp / "out.mp4")
        began = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - began
        runs: dict[str, list[dict]] = {"single": []}
        cold: dict[str, float] = {}
        try:
            for n in shard_counts:
                mode = f"shards={n}"
                cold[mode] = render_sharded(archive, tmp / "out.mp4", config, shards=n).wall_seconds
                runs[mode] = []
                for _ in range(repeats):
                    began = time.perf_counter()
                    with Engine(config=config) as engine:  # what a command does: load the model, render
                        engine.render(archive, tmp / "out.mp4")
                    runs["single"].append({"wall_s": time.perf_counter() - began, "join_s": 0.0, "beside": mode})
                    report = render_sharded(archive, tmp / "out.mp4", config, shards=n)
                    runs[mode].append({"wall_s": report.wall_seconds, "join_s": report.join_seconds,
                                       "busy_s": max(w["busy_seconds"] for w in report.workers.values()),
                                       "workers": len(report.workers), "bytes": (tmp / "out.mp4").stat().st_size})
            identity = compare_outputs(tmp, archive, config, max(shard_counts), width, height)
            listing = bench_listing(workdir=workdir)
        finally:
            ray.shutdown()
    load["after"] = os.getloadavg()[0]
    rows = []
    for mode, measured in runs.items():
        wall = statistics.median(r["wall_s"] for r in measured)
        join = statistics.median(r["join_s"] for r in measured)
        row = {"mode": mode, "wall_s": wall, "frames_per_s": frames / wall, "join_s": join, "join_share": join / wall}
        if mode != "single":
            # the load drifts: each sharded run against the single-process run just before it
            singles = [r["wall_s"] for r in runs["single"] if r["beside"] == mode]
            ratios = [a / r["wall_s"] for a, r in zip(singles, measured, strict=True)]
            row.update(vs_single=statistics.median(ratios), vs_single_range=[min(ratios), max(ratios)])
            busy = statistics.median(r["busy_s"] for r in measured)
            # neither a worker's render nor the join: listing, the driver's model check, scheduling, the manifest
            size = statistics.median(r["bytes"] for r in measured)
            row.update(cold_wall_s=cold[mode], slowest_worker_busy_s=busy, ray_overhead_s=wall - busy - join,
                       ray_overhead_share=(wall - busy - join) / wall, workers=measured[0]["workers"],
                       join_ms_per_frame=1e3 * join / frames, join_mb_per_s=size / join / 1e6,
                       kb_per_frame=size / frames / 1e3)
        rows.append(row)
    return {"model": str(model), "provider": provider, "frames": frames, "size": f"{width}x{height}",
            "repeats": repeats, "load_average_1min": load, "ray_start_s": ray_start, "rows": rows, "runs": runs,
            "identity": identity, "listing": listing}
