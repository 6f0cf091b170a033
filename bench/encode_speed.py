"""The encode stage's choices, each against the alternatives in the same run: RGB -> yuv420p by the engine's
kernel, FFmpeg's scaler or OpenCV; x264 on frame threads or on slice threads (PyAV's default); and the video sink
converting each frame in the writer's thread or taking frames its `prepare` made ahead in a thread of their own."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import av
import cv2
import numpy as np

from oppy.engine.lab import gray_to_l, l_ab_to_rgb
from oppy.engine.sinks import VideoSink, rgb_to_yuv420p, rgb_to_yuv420p_frame

from .synth import synth_frames
from .timing import median_seconds


def colour_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """Synthetic archive frames coloured as the engine colours them: their lightness, with a smooth chroma field."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    ab = np.stack([12 + 8 * np.sin(x / 97 + y / 131), 25 + 10 * np.cos(y / 83)]).astype(np.float32)
    return [l_ab_to_rgb(gray_to_l(grey), ab) for _, grey in synth_frames(count, width, height, seed=5)]


def _scaler(rgb: np.ndarray) -> np.ndarray:
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()


def encode_seconds(planes: list[np.ndarray], thread_type: str, preset: str, crf: int = 20) -> float:
    """Wall seconds to encode yuv420p `planes` with libx264 into memory, flushed, on `thread_type` threads."""
    height, width = planes[0].shape[0] * 2 // 3, planes[0].shape[1]
    start = time.perf_counter()
    with av.open(io.BytesIO(), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(5))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        stream.codec_context.thread_type = thread_type
        for index, plane in enumerate(planes):
            frame = av.VideoFrame.from_ndarray(plane, format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return time.perf_counter() - start


def sink_seconds(rgb: list[np.ndarray], preset: str, ahead: bool, crf: int = 20) -> float:
    """Wall seconds for the engine's video sink to take RGB frames into memory, flushed: converting each in the
    writer's thread (`write(rgb)`), or, `ahead`, written as another thread `prepare`s them (the engine's way)."""
    start = time.perf_counter()
    with VideoSink(io.BytesIO(), 5.0, crf, "libx264", preset) as sink:
        if ahead:
            with ThreadPoolExecutor(1) as preparer:
                for frame in preparer.map(sink.prepare, rgb):
                    sink.write(frame)
        else:
            for frame in rgb:
                sink.write(frame)
    return time.perf_counter() - start


def bench_encode(frames: int = 64, width: int = 1024, height: int = 1024, preset: str = "veryfast",
                 repeats: int = 3) -> dict:
    """Milliseconds per frame of each conversion (median over the frames, `repeats` rounds) and of each x264
    threading (median of `repeats` whole encodes, alternating, after a warm-up), with the ratios, and how far each
    conversion is from the scaler's on these frames (OpenCV takes each chroma sample from one pixel of its 2x2
    block, which shows at sharp colour edges)."""
    rgb = colour_frames(frames, width, height)
    planes = [rgb_to_yuv420p(frame) for frame in rgb]
    scaled = np.stack([_scaler(frame) for frame in rgb]).astype(int)
    conversions = {
        "engine (rgb_to_yuv420p, Numba)": rgb_to_yuv420p,
        "FFmpeg scaler (PyAV reformat)": _scaler,
        "OpenCV cvtColor(RGB2YUV_I420)": lambda frame: cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420),
        # what the video sink hands x264: a PyAV frame, converted into its planes or copied there from an array
        "engine, into a PyAV frame (the sink's way)": rgb_to_yuv420p_frame,
        "engine, then VideoFrame.from_ndarray": lambda frame: av.VideoFrame.from_ndarray(rgb_to_yuv420p(frame),
                                                                                         format="yuv420p"),
    }
    rows = []
    for name, convert in conversions.items():
        seconds = median_seconds(lambda convert=convert: [convert(frame) for frame in rgb], repeats, warmup=1)
        made = [convert(frame) for frame in rgb]
        made = [m.to_ndarray() if isinstance(m, av.VideoFrame) else m for m in made]
        difference = np.abs(np.stack(made).astype(int) - scaled)
        rows.append({"how": name, "ms_per_frame": 1e3 * seconds / frames,
                     "y_max_vs_scaler": int(difference[:, :height].max()),
                     "uv_max_vs_scaler": int(difference[:, height:].max()),
                     "uv_mean_vs_scaler": float(difference[:, height:].mean())})
    work = {"FRAME": lambda: encode_seconds(planes, "FRAME", preset),
            "SLICE": lambda: encode_seconds(planes, "SLICE", preset),
            "in the writer's thread": lambda: sink_seconds(rgb, preset, ahead=False),
            "prepared ahead": lambda: sink_seconds(rgb, preset, ahead=True)}
    encode_seconds(planes[:2], "FRAME", preset)  # warm-up: the encoder's tables and threads
    times = {name: [] for name in work}
    for _ in range(repeats):
        for name, run in work.items():
            times[name].append(run())
    encode_ms = {name: 1e3 * float(np.median(t)) / frames for name, t in times.items()}
    sink = [{"conversion": name, "ms_per_frame": encode_ms[name]} for name in ("in the writer's thread",
                                                                              "prepared ahead")]
    return {
        "frames": frames, "size": f"{width}x{height}", "preset": preset, "repeats": repeats, "conversion": rows,
        "conversion_speedup": rows[1]["ms_per_frame"] / rows[0]["ms_per_frame"],
        "into_frame_speedup": rows[4]["ms_per_frame"] / rows[3]["ms_per_frame"],
        "x264": [{"threads": f"{name.lower()} threads", "ms_per_frame": encode_ms[name]}
                 for name in ("FRAME", "SLICE")],
        "frame_threads_speedup": encode_ms["SLICE"] / encode_ms["FRAME"],
        "sink": sink, "prepare_ahead_speedup": encode_ms["in the writer's thread"] / encode_ms["prepared ahead"],
    }
