"""Every engine option with its default, in one frozen dataclass; the CLI maps its flags onto it one to one."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from .errors import OppyError
from .inputs.archive import ORDERS, STRETCHES
from .inputs.facts import camera_wanted
from .kernels.chroma_scale import AUTO, parse_chroma_scale
from .kernels.resize import RESIZE_MODES
from .outputs.encoders import encoder_problems
from .outputs.sinks import OUTPUT_FORMATS
from .overlays.captions import check_caption
from .session import PRECISIONS, PROVIDERS
from .temporal import DEFAULT_TEMPORAL, check_strength

#: the frame rates a video can be written at: a rate is stored as a fraction with a denominator up to 1001
MIN_FPS, MAX_FPS = 0.001, 1000.0
#: the largest raw input frame: OpenCV's limit for one image, 2^30 pixels, and 65,536 on a side
MAX_INPUT_PIXELS, MAX_INPUT_SIDE = 1 << 30, 1 << 16
#: counts past which an option asks for more than any machine holds (memory is checked once the model is known)
MAX_BATCH_SIZE, MAX_THREADS, MAX_QUEUE_SIZE = 1 << 20, 1024, 1024


def parse_size(text: str) -> tuple[int, int]:
    """`WIDTHxHEIGHT` (e.g. `640x480`, any case of x) -> (width, height) in digits; a `ValueError` naming the form
    otherwise (the bounds are the option's own to check). The one parser of a size every command line uses."""
    width, x, height = str(text).strip().lower().partition("x")
    if not (x and width.isascii() and height.isascii() and width.isdigit() and height.isdigit()):
        raise ValueError(f"{text!r} is not WIDTHxHEIGHT, e.g. 640x480")
    return int(width), int(height)


def size_argument(text: str) -> tuple[int, int]:
    """`parse_size` as an argparse type: its error is a usage error."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


@dataclass(frozen=True)
class EngineConfig:
    """Options of an `Engine`. `model=None` means the packaged default model."""

    model: str | Path | None = None
    #: "auto" (TensorRT, then CUDA, then CPU: whatever loads), "tensorrt", "cuda" or "cpu"
    provider: str = "auto"
    #: the model's numeric precision: "auto" (the int8 copy on the CPU provider, the fp16 copy on CUDA and TensorRT,
    #: where the model has one beside it; else float32), "fp32", "fp16" or "int8" (`session.choose_precision`)
    precision: str = "auto"
    #: tiles per inference call; tiles of consecutive frames share batches, the last one is padded
    batch_size: int = 256
    #: pixels shared by neighbouring tiles (at the chroma scale); None: the model's recommended overlap
    overlap: int | None = None
    #: the scale the chroma is predicted at, on a smaller copy of L and grown back guided by full-resolution L:
    #: "auto" (from the model's scene size and the frame's size, never above 1) or a number in (0, 1]; 1 is the
    #: frame's own resolution
    chroma_scale: str | float = AUTO
    #: pull chroma the model answers outside its training photos' palette (`oppy.palette`) to the nearest colour
    #: they hold at that lightness (`engine.palette`); a model without a palette runs as before either way
    palette_guard: bool = True
    #: colour carried from frame to frame in `stream` and `render` (`engine.temporal`): 0 colours every frame
    #: alone, 1 the most; cuts (a new scene, size, camera, a gap in time, a skipped frame) start afresh.
    #: `colorize` (one frame) never smooths. The default is measured: see `oppy-bench temporal` in docs/temporal.md
    temporal: float = DEFAULT_TEMPORAL
    #: ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose
    threads: int = 0
    #: frames in flight between two pipeline stages
    queue_size: int = 4
    #: threads decoding the image files of a folder ahead of the pipeline; 0: one per core, up to 8
    decode_threads: int = 0
    #: frames/s of the video; None: a video input keeps its own timestamps, frames without any (stills) are shown
    #: at `timing.DEFAULT_FPS` (5)
    fps: float | None = None
    #: the encoder's quality level, lower is better: x264 / x265's constant rate factor, NVENC's constant quality
    crf: int = 20
    #: libx264, libx265, or NVIDIA's h264_nvenc / hevc_nvenc (which fall back to libx264 / libx265 where this
    #: machine has no NVIDIA encoder, announced)
    codec: str = "libx264"
    #: the encoder's speed preset: x264's names (ultrafast .. placebo), or NVENC's p1..p7 (x264's names map onto them)
    preset: str = "veryfast"
    #: "yuv420p" (plays everywhere) or "yuv444p" (chroma at full resolution)
    pix_fmt: str = "yuv420p"
    overwrite: bool = False
    #: frames of another size than the first: "letterbox" (aspect kept, black bars) or "scale" (stretched)
    resize: str = "letterbox"
    #: output format: "mp4", "mkv", "mov" or "rawvideo" (RGB24 frames, no header); None: from the output's
    #: suffix (a name without one is a folder of PNGs), and an MP4 stream for stdout (`-`)
    format: str | None = None
    #: the order of a folder's frames: "name" (natural order) or "time" (a PDS label's clock or start time, or the
    #: clock of a MER / MSL product id in the name; frames without a time follow in name order)
    order: str = "name"
    #: keep only this camera's frames (e.g. "navcam", "hazcam", "front_hazcam", a MER camera letter; several
    #: comma-separated), from the label's INSTRUMENT_ID or the name's product id; None: every frame
    camera: str | None = None
    #: brightness: "none" (each product mapped by its bit depth, images as they are) or "archive" (one percentile
    #: stretch measured on a sample of the archive, the same for every frame)
    stretch: str = "none"
    #: a caption burned into each frame, e.g. "sol {sol} · {camera}" (`captions.CAPTION_FIELDS`); a frame without
    #: a field it names gets none
    caption: str | None = None
    #: (width, height) of raw 8-bit grey input frames, read from stdin (`-`) or a file; None: the input is a
    #: folder of images or a video
    input_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.provider not in PROVIDERS:
            problems.append(f"provider must be one of {', '.join(PROVIDERS)}, not {self.provider!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            problems.append(f"batch size must be 1 to {MAX_BATCH_SIZE}, not {self.batch_size}")
        if self.overlap is not None and self.overlap < 0:
            problems.append(f"overlap must be 0 or more pixels, not {self.overlap}")
        try:
            object.__setattr__(self, "chroma_scale", parse_chroma_scale(self.chroma_scale))
        except ValueError as exc:
            problems.append(str(exc))
        try:
            object.__setattr__(self, "temporal", check_strength(self.temporal))
        except ValueError as exc:
            problems.append(str(exc))
        if not 0 <= self.threads <= MAX_THREADS:
            problems.append(f"threads must be 0 (automatic) to {MAX_THREADS}, not {self.threads}")
        if not 0 <= self.decode_threads <= MAX_THREADS:
            problems.append(f"decode threads must be 0 (automatic) to {MAX_THREADS}, not {self.decode_threads}")
        if not 1 <= self.queue_size <= MAX_QUEUE_SIZE:
            problems.append(f"queue size must be 1 to {MAX_QUEUE_SIZE}, not {self.queue_size}")
        if self.fps is not None and not MIN_FPS <= self.fps <= MAX_FPS:  # NaN fails it too
            problems.append(f"fps must be {MIN_FPS:g} to {MAX_FPS:g}, not {self.fps}")
        problems += encoder_problems(self.codec, self.crf, self.preset, self.pix_fmt)
        if self.resize not in RESIZE_MODES:
            problems.append(f"resize must be one of {', '.join(RESIZE_MODES)}, not {self.resize!r}")
        if self.format is not None and self.format not in OUTPUT_FORMATS:
            problems.append(f"format must be one of {', '.join(OUTPUT_FORMATS)}, not {self.format!r}")
        if self.input_size is not None and (
                len(self.input_size) != 2 or not all(1 <= side <= MAX_INPUT_SIDE for side in self.input_size)
                or self.input_size[0] * self.input_size[1] > MAX_INPUT_PIXELS):
            problems.append(f"input size must be (width, height), each 1 to {MAX_INPUT_SIDE} and at most "
                            f"{MAX_INPUT_PIXELS} pixels in all, not {self.input_size!r}")
        if self.order not in ORDERS:
            problems.append(f"order must be one of {', '.join(ORDERS)}, not {self.order!r}")
        if self.stretch not in STRETCHES:
            problems.append(f"stretch must be one of {', '.join(STRETCHES)}, not {self.stretch!r}")
        for check, value in ((camera_wanted, self.camera), (check_caption, self.caption)):
            try:
                if value is not None:
                    check(value)
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise OppyError("; ".join(problems))
