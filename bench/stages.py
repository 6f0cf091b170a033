"""Each pipeline stage's throughput alone, on the same frames, beside the engine's end-to-end render of them.

The slowest stage bounds what a pipeline of threads can do; efficiency = end-to-end frames/s / slowest stage's
frames/s says how much of that bound the engine reaches (1.0: every other stage hidden behind the slowest).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from oppy.engine import Engine, OppyError
from oppy.engine.batches import BatchPacker, Chunk, TileBatch
from oppy.engine.lab import l_ab_to_rgb, to_lightness
from oppy.engine.sinks import EncoderFrame, VideoSink
from oppy.engine.sources import SourceFrame, decode_threads, open_source
from oppy.engine.tiles import blend_chunks, plan_tiles

STAGES = ("decode", "to_l", "tile", "infer", "blend", "to_rgb", "prepare", "encode")


def decode(source: str | Path, threads: int = 1) -> list[np.ndarray]:
    """Every frame of a folder (decoded by `threads` threads) or video as arrays (skipped files left out)."""
    return [item.pixels for item in open_source(source, threads=threads) if isinstance(item, SourceFrame)]


def tile(packer: BatchPacker, lightness: list[np.ndarray], plans: list) -> tuple[list[list[Chunk]], list[TileBatch]]:
    """Every frame's tiles cut into batches as the engine cuts them: each frame's chunks, and the batches (the
    last one padded)."""
    chunks, batches = [], []
    for frame, (plane, plan) in enumerate(zip(lightness, plans, strict=True)):
        frame_chunks, full = packer.add(frame, plane, plan)
        chunks.append(frame_chunks)
        batches += full
    if (last := packer.flush()) is not None:
        batches.append(last)
    return chunks, batches


def infer(engine: Engine, packer: BatchPacker, batches: list[TileBatch]) -> None:
    """Every batch through the engine's session, as the engine's infer stage runs them."""
    for batch in batches:
        engine.session.run(batch.tiles, batch.output)
        packer.recycle(batch)


def blend(packer: BatchPacker, chunks: list[list[Chunk]], plans: list, scale: float) -> list[np.ndarray]:
    """Every frame's a, b planes from its results in the batch outputs, as the engine's blend stage makes them."""
    planes = []
    for frame_chunks, plan in zip(chunks, plans, strict=True):
        planes.append(blend_chunks([c.output for c in frame_chunks], plan, scale))
        packer.release(frame_chunks)
    return planes


def video_sink(path: Path, engine: Engine) -> VideoSink:
    """The engine's video sink with the engine's settings (codec, CRF, preset, fps)."""
    config = engine.config
    return VideoSink(path, config.fps, config.crf, config.codec, config.preset)


def encode(frames: list[EncoderFrame], path: Path, engine: Engine) -> None:
    """Frames as the sink's `prepare` made them, through the engine's video sink, flushed and closed."""
    with video_sink(path, engine) as sink:
        for frame in frames:
            sink.write(frame)


def wall(slowest: str, efficiency: float, overlap: float) -> str:
    """What limits the end-to-end rate: the slowest stage when the pipeline reaches it (efficiency >= 0.8), else
    the stages' competition for the cores or the GIL, told apart by how far the pipeline beats running the
    stages one after the other (`overlap` = end to end / serial frames/s)."""
    if efficiency >= 0.8:
        return f"{slowest} (the slowest stage; the pipeline reaches {efficiency:.0%} of it)"
    return (f"contention: the stages together reach {efficiency:.0%} of the slowest stage ({slowest}) alone, "
            f"{overlap:.2g}x the rate of running them one after the other; they compete for the cores or the GIL")


def bench_pipeline(source: str | Path, model: str | Path, provider: str = "cpu", batch_size: int = 256,
                   repeats: int = 3, warmup: int = 1, **engine_options) -> dict:
    """Median seconds of each stage alone over all frames of `source`, and of the engine's whole render of them
    to an MP4, in `repeats` alternating rounds after `warmup` untimed ones; frames/s of each, the slowest stage,
    the efficiency and what limits the whole (`wall`).

    `engine_options` go to the `Engine` (overlap, threads, crf, preset, codec, ...)."""
    pixels = decode(source)
    if not pixels:
        raise OppyError(f"no readable frame in {str(source)!r}")
    if len({p.shape for p in pixels}) > 1:
        raise OppyError(f"the frames of {str(source)!r} differ in size: give an archive of one frame size")
    count = len(pixels)
    with tempfile.TemporaryDirectory() as tmp, Engine(model, provider=provider, batch_size=batch_size,
                                                      overwrite=True, **engine_options) as engine:
        contract, overlap = engine.contract, engine.overlap
        threads = decode_threads(engine.config.decode_threads)
        plans = [plan_tiles(*p.shape[:2], contract.tile_size, overlap) for p in pixels]
        packer = BatchPacker(batch_size, contract.tile_size, contract.l_scale, contract.l_shift)
        preparer = video_sink(Path(tmp) / "unused.mp4", engine)  # only its `prepare`: it opens no file

        def one_round() -> dict[str, float]:
            """Every stage once over all frames, each fed what the one before it made; seconds of each."""
            seconds: dict[str, float] = {}

            def timed(name: str, work: Callable[[], object]):
                start = time.perf_counter()
                result = work()
                seconds[name] = time.perf_counter() - start
                return result

            frames = timed("decode", lambda: decode(source, threads))
            lightness = timed("to_l", lambda: [to_lightness(p) for p in frames])
            chunks, batches = timed("tile", lambda: tile(packer, lightness, plans))
            timed("infer", lambda: infer(engine, packer, batches))
            ab = timed("blend", lambda: blend(packer, chunks, plans, contract.ab_scale))
            rgb = timed("to_rgb", lambda: [l_ab_to_rgb(lum, chroma) for lum, chroma in zip(lightness, ab, strict=True)])
            prepared = timed("prepare", lambda: [preparer.prepare(frame) for frame in rgb])
            timed("encode", lambda: encode(prepared, Path(tmp) / "encode.mp4", engine))
            return seconds

        # rounds alternate with whole renders, so that a change in the machine's load hits both alike
        rounds, reports = [], []
        for i in range(warmup + repeats):
            stage_seconds = one_round()
            report = engine.render(source, Path(tmp) / "e2e.mp4")
            if i >= warmup:
                rounds.append(stage_seconds)
                reports.append(report)
        seconds = {name: statistics.median(r[name] for r in rounds) for name in STAGES}
        median_report = sorted(reports, key=lambda r: r.frames_per_second)[len(reports) // 2]
        provider_used, tiles_per_frame, config = engine.provider, plans[0].count, engine.config
    rows = [{"stage": name, "seconds": seconds[name], "frames_per_s": count / seconds[name],
             "ms_per_frame": 1000 * seconds[name] / count} for name in STAGES]
    slowest = min(rows, key=lambda r: r["frames_per_s"])
    e2e = statistics.median(r.frames_per_second for r in reports)
    serial = 1000 / sum(r["ms_per_frame"] for r in rows)  # every stage one after the other, nothing overlapped
    height, width = pixels[0].shape[:2]
    return {
        "input": str(source), "frames": count, "size": f"{width}x{height}", "model": str(model),
        "provider": provider_used, "batch_size": batch_size, "overlap": overlap, "tiles_per_frame": tiles_per_frame,
        "decode_threads": threads, "codec": config.codec, "preset": config.preset,
        "repeats": repeats, "stages": rows, "slowest_stage": slowest["stage"],
        "slowest_frames_per_s": slowest["frames_per_s"], "e2e_frames_per_s": e2e,
        "efficiency": e2e / slowest["frames_per_s"], "serial_frames_per_s": serial,
        "wall": wall(slowest["stage"], e2e / slowest["frames_per_s"], e2e / serial),
        "e2e_stage_busy_seconds": median_report.stage_busy_seconds, "e2e_wall_seconds": median_report.wall_seconds,
    }
