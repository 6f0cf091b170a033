"""Each pipeline stage's throughput alone, on the same frames, beside the engine's end-to-end render of them.

The slowest stage bounds what a pipeline of threads can do; efficiency = end-to-end frames/s / slowest stage's
frames/s says how much of that bound the engine reaches (1.0: every other stage hidden behind the slowest).
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from oppy.engine import Engine, OppyError
from oppy.engine.inputs.sources import SourceFrame, decode_threads, open_source
from oppy.engine.journey import Work, in_turn
from oppy.engine.outputs.sinks import EncoderFrame, VideoSink


def decode(source: str | Path, threads: int = 1) -> list[np.ndarray]:
    """Every frame of a folder (decoded by `threads` threads) or video as arrays (skipped files left out)."""
    return [item.pixels for item in open_source(source, threads=threads) if isinstance(item, SourceFrame)]


def video_sink(path: Path, engine: Engine) -> VideoSink:
    """The engine's video sink with the engine's settings (codec, CRF, preset, fps)."""
    config = engine.config
    return VideoSink(path, config.fps, config.crf, config.codec, config.preset, config.pix_fmt,
                     threads=config.encoder_threads)


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
                   repeats: int = 3, warmup: int = 1, against_scale: str | float | None = None,
                   against_temporal: float | None = None, against_precision: str | None = None,
                   against_encoder_threads: int | None = None, **engine_options) -> dict:
    """Median seconds of each stage alone over all frames of `source`, and of the engine's whole render of them
    to an MP4, in `repeats` alternating rounds after `warmup` untimed ones; frames/s of each, the slowest stage,
    the efficiency and what limits the whole (`wall`). With `against_scale`, `against_temporal`,
    `against_precision` or `against_encoder_threads`, each round also renders the same frames with that setting
    changed (the reference; the two renders take turns going first), and the result has its frames/s and tiles and
    the ratios (the end-to-end one the median of the rounds' own ratios).

    `engine_options` go to the `Engine` (overlap, chroma_scale, threads, crf, preset, codec, ...)."""
    pixels = decode(source)
    if not pixels:
        raise OppyError(f"no readable frame in {str(source)!r}")
    if len({p.shape for p in pixels}) > 1:
        raise OppyError(f"the frames of {str(source)!r} differ in size: give an archive of one frame size")
    count = len(pixels)
    against = {key: value for key, value in (("chroma_scale", against_scale), ("temporal", against_temporal),
                                             ("precision", against_precision),
                                             ("encoder_threads", against_encoder_threads)) if value is not None}
    reference_options = {**engine_options, **against}
    with tempfile.TemporaryDirectory() as tmp, Engine(model, provider=provider, batch_size=batch_size,
                                                      overwrite=True, **engine_options) as engine, \
            (Engine(model, provider=provider, batch_size=batch_size, overwrite=True, **reference_options)
             if against else contextlib.nullcontext()) as reference:
        threads = decode_threads(engine.config.decode_threads)
        preparer = video_sink(Path(tmp) / "unused.mp4", engine)  # only its `prepare`: it opens no file

        def one_round() -> dict[str, float]:
            """Every stage once over all frames, each fed what the one before it made; seconds of each."""
            seconds: dict[str, float] = {}

            def timed(name: str, work: Callable[[], object]):
                start = time.perf_counter()
                result = work()
                seconds[name] = time.perf_counter() - start
                return result

            stages = engine.stages()  # a fresh temporal window each round: the first frame starts afresh
            frames = timed("decode", lambda: decode(source, threads))
            works = [Work(index, f"frame {index}", pixels) for index, pixels in enumerate(frames)]
            in_turn(stages, works, timed)
            prepared = timed("prepare", lambda: [preparer.prepare(work.rgb) for work in works])
            timed("encode", lambda: encode(prepared, Path(tmp) / "encode.mp4", engine))
            last_round[:] = works
            return seconds

        last_round: list[Work] = []
        # rounds alternate with whole renders, so that a change in the machine's load hits both alike
        rounds, reports, references = [], [], []
        for i in range(warmup + repeats):
            stage_seconds = one_round()
            # the two renders of a round take turns going first, so that neither always follows the other
            if against and i % 2:
                other = reference.render(source, Path(tmp) / "reference.mp4")
                report = engine.render(source, Path(tmp) / "e2e.mp4")
            else:
                report = engine.render(source, Path(tmp) / "e2e.mp4")
                other = reference.render(source, Path(tmp) / "reference.mp4") if against else None
            if i >= warmup:
                rounds.append(stage_seconds)
                reports.append(report)
                references.append(other)
        # decode, the journey's stages as the engine runs them (`journey.steps`), prepare and encode, in order
        stage_names = list(rounds[0])
        seconds = {name: statistics.median(r[name] for r in rounds) for name in stage_names}
        median_report = sorted(reports, key=lambda r: r.frames_per_second)[len(reports) // 2]
        provider_used, config, overlap = engine.provider, engine.config, engine.overlap
        engine_precision = engine.precision
        tiles_per_frame, chroma_scale = last_round[0].plan.count, last_round[0].chroma_scale
    rows = [{"stage": name, "seconds": seconds[name], "frames_per_s": count / seconds[name],
             "ms_per_frame": 1000 * seconds[name] / count} for name in stage_names]
    slowest = min(rows, key=lambda r: r["frames_per_s"])
    e2e = statistics.median(r.frames_per_second for r in reports)
    serial = 1000 / sum(r["ms_per_frame"] for r in rows)  # every stage one after the other, nothing overlapped
    height, width = pixels[0].shape[:2]
    compared = {}
    if against:
        reference_e2e = statistics.median(r.frames_per_second for r in references)
        compared = {"reference": {"chroma_scale_setting": str(against.get("chroma_scale", config.chroma_scale)),
                                  "temporal": against.get("temporal", config.temporal),
                                  "precision": reference.precision,
                                  "encoder_threads": against.get("encoder_threads", config.encoder_threads),
                                  "chroma_scales": references[0].chroma_scales,
                                  "tiles_per_frame": references[0].tiles / count, "e2e_frames_per_s": reference_e2e},
                    # the median of each round's own ratio: a change in the machine's load between rounds cancels
                    "e2e_speedup_vs_reference": statistics.median(
                        r.frames_per_second / o.frames_per_second for r, o in zip(reports, references, strict=True)),
                    "tiles_ratio_reference_over_this": references[0].tiles / count / tiles_per_frame}
    return {
        "input": str(source), "frames": count, "size": f"{width}x{height}", "model": str(model),
        "provider": provider_used, "batch_size": batch_size, "overlap": overlap, "chroma_scale": chroma_scale,
        "chroma_scale_setting": str(config.chroma_scale), "temporal": config.temporal,
        "precision": engine_precision,
        "tiles_per_frame": tiles_per_frame,
        "decode_threads": threads, "codec": config.codec, "preset": config.preset,
        "encoder_threads": config.encoder_threads,
        "repeats": repeats, "stages": rows, "slowest_stage": slowest["stage"],
        "slowest_frames_per_s": slowest["frames_per_s"], "e2e_frames_per_s": e2e,
        "efficiency": e2e / slowest["frames_per_s"], "serial_frames_per_s": serial,
        "wall": wall(slowest["stage"], e2e / slowest["frames_per_s"], e2e / serial),
        "e2e_stage_busy_seconds": median_report.stage_busy_seconds, "e2e_wall_seconds": median_report.wall_seconds,
        **compared,
    }
