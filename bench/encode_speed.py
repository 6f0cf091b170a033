"""The encode stage's choices, each against the alternatives in the same run: RGB -> YUV (4:2:0 or 4:4:4, BT.601 or
BT.709) by the engine's kernel, FFmpeg's scaler or (BT.601 4:2:0 only) OpenCV; x264 on frame threads or on slice
threads (PyAV's default); and the video sink converting each frame in the writer's thread or taking frames its
`prepare` made ahead in a thread of their own."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import av
import cv2
import numpy as np

from oppy.engine.kernels.lab import gray_to_l, l_ab_to_rgb
from oppy.engine.kernels.yuv import BT601, BT709, ColourStandard, colour_standard, rgb_to_yuv, rgb_to_yuv_frame
from oppy.engine.outputs.sinks import VideoSink

from .synth import synth_frames
from .timing import median_seconds


def colour_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """Synthetic archive frames coloured as the engine colours them: their lightness, with a smooth chroma field."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    ab = np.stack([12 + 8 * np.sin(x / 97 + y / 131), 25 + 10 * np.cos(y / 83)]).astype(np.float32)
    return [l_ab_to_rgb(gray_to_l(grey), ab) for _, grey in synth_frames(count, width, height, seed=5)]


#: FFmpeg's scaler's names for the two matrices
_SCALER_MATRIX = {"bt601": av.video.reformatter.Colorspace.ITU601, "bt709": av.video.reformatter.Colorspace.ITU709}
STANDARDS = {"bt601": BT601, "bt709": BT709}


def _scaler(rgb: np.ndarray, standard: ColourStandard, pix_fmt: str) -> np.ndarray:
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format=pix_fmt, dst_colorspace=_SCALER_MATRIX[standard.name], dst_color_range=1)
    return frame.to_ndarray().reshape(-1, rgb.shape[1])  # yuv444p comes as 3xHxW: planes one under the other


def _as_frame(planes: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    """YUV planes one under the other as a PyAV frame (which takes yuv444p as 3xHxW)."""
    return av.VideoFrame.from_ndarray(planes if pix_fmt == "yuv420p" else planes.reshape(3, -1, planes.shape[1]),
                                      format=pix_fmt)


def _planes(made: np.ndarray | av.VideoFrame, width: int) -> np.ndarray:
    return (made.to_ndarray() if isinstance(made, av.VideoFrame) else made).reshape(-1, width)


def encode_seconds(planes: list[np.ndarray], thread_type: str, preset: str, crf: int = 20,
                   pix_fmt: str = "yuv420p") -> float:
    """Wall seconds to encode YUV `planes` (`pix_fmt`, planes one under the other) with libx264 into memory,
    flushed, on `thread_type` threads."""
    width = planes[0].shape[1]
    height = planes[0].shape[0] * 2 // 3 if pix_fmt == "yuv420p" else planes[0].shape[0] // 3
    start = time.perf_counter()
    with av.open(io.BytesIO(), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(5))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {"crf": str(crf), "preset": preset}
        stream.codec_context.thread_type = thread_type
        for index, plane in enumerate(planes):
            frame = _as_frame(plane, pix_fmt)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return time.perf_counter() - start


def sink_seconds(rgb: list[np.ndarray], preset: str, ahead: bool, crf: int = 20, pix_fmt: str = "yuv420p") -> float:
    """Wall seconds for the engine's video sink to take RGB frames into memory, flushed: converting each in the
    writer's thread (`write(rgb)`), or, `ahead`, written as another thread `prepare`s them (the engine's way)."""
    start = time.perf_counter()
    with VideoSink(io.BytesIO(), 5.0, crf, "libx264", preset, pix_fmt) as sink:
        if ahead:
            with ThreadPoolExecutor(1) as preparer:
                for frame in preparer.map(sink.prepare, rgb):
                    sink.write(frame)
        else:
            for frame in rgb:
                sink.write(frame)
    return time.perf_counter() - start


def bench_encode(frames: int = 64, width: int = 1024, height: int = 1024, preset: str = "veryfast",
                 repeats: int = 3, standard: str | None = None, pix_fmt: str = "yuv420p") -> dict:
    """Milliseconds per frame of each conversion (median over the frames, `repeats` rounds) and of each x264
    threading (median of `repeats` whole encodes, alternating, after a warm-up), with the ratios, and how far each
    conversion is from the scaler's on these frames (OpenCV takes each chroma sample from one pixel of its 2x2
    block, which shows at sharp colour edges). `standard`: "bt601" or "bt709"; by default the sink's for the size."""
    matrix = STANDARDS[standard] if standard else colour_standard(width, height)
    rgb = colour_frames(frames, width, height)
    planes = [rgb_to_yuv(frame, matrix, pix_fmt) for frame in rgb]
    scaled = np.stack([_scaler(frame, matrix, pix_fmt) for frame in rgb]).astype(int)
    conversions = {
        "engine (rgb_to_yuv, Numba)": lambda frame: rgb_to_yuv(frame, matrix, pix_fmt),
        "FFmpeg scaler (PyAV reformat)": lambda frame: _scaler(frame, matrix, pix_fmt),
        # what the video sink hands x264: a PyAV frame, converted into its planes or copied there from an array
        "engine, into a PyAV frame (the sink's way)": lambda frame: rgb_to_yuv_frame(frame, matrix, pix_fmt),
        "engine, then VideoFrame.from_ndarray": lambda frame: _as_frame(rgb_to_yuv(frame, matrix, pix_fmt), pix_fmt),
    }
    if matrix is BT601 and pix_fmt == "yuv420p":  # OpenCV's only conversion to planar 4:2:0
        conversions["OpenCV cvtColor(RGB2YUV_I420)"] = lambda frame: cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)
    rows = []
    for name, convert in conversions.items():
        seconds = median_seconds(lambda convert=convert: [convert(frame) for frame in rgb], repeats, warmup=1)
        made = np.stack([_planes(convert(frame), width) for frame in rgb]).astype(int)
        difference = np.abs(made - scaled)
        rows.append({"how": name, "ms_per_frame": 1e3 * seconds / frames,
                     "y_max_vs_scaler": int(difference[:, :height].max()),
                     "uv_max_vs_scaler": int(difference[:, height:].max()),
                     "uv_mean_vs_scaler": float(difference[:, height:].mean())})
    ms = {row["how"]: row["ms_per_frame"] for row in rows}
    work = {"FRAME": lambda: encode_seconds(planes, "FRAME", preset, pix_fmt=pix_fmt),
            "SLICE": lambda: encode_seconds(planes, "SLICE", preset, pix_fmt=pix_fmt),
            "in the writer's thread": lambda: sink_seconds(rgb, preset, ahead=False, pix_fmt=pix_fmt),
            "prepared ahead": lambda: sink_seconds(rgb, preset, ahead=True, pix_fmt=pix_fmt)}
    encode_seconds(planes[:2], "FRAME", preset, pix_fmt=pix_fmt)  # warm-up: the encoder's tables and threads
    times = {name: [] for name in work}
    for _ in range(repeats):
        for name, run in work.items():
            times[name].append(run())
    encode_ms = {name: 1e3 * float(np.median(t)) / frames for name, t in times.items()}
    sink = [{"conversion": name, "ms_per_frame": encode_ms[name]} for name in ("in the writer's thread",
                                                                              "prepared ahead")]
    return {
        "frames": frames, "size": f"{width}x{height}", "preset": preset, "repeats": repeats,
        "standard": matrix.name, "pix_fmt": pix_fmt, "conversion": rows,
        "conversion_speedup": ms["FFmpeg scaler (PyAV reformat)"] / ms["engine (rgb_to_yuv, Numba)"],
        "into_frame_speedup": ms["engine, then VideoFrame.from_ndarray"]
        / ms["engine, into a PyAV frame (the sink's way)"],
        "x264": [{"threads": f"{name.lower()} threads", "ms_per_frame": encode_ms[name]}
                 for name in ("FRAME", "SLICE")],
        "frame_threads_speedup": encode_ms["SLICE"] / encode_ms["FRAME"],
        "sink": sink, "prepare_ahead_speedup": encode_ms["in the writer's thread"] / encode_ms["prepared ahead"],
    }
