"""Every engine option with its default, in one frozen dataclass, and the words and ranges each option takes; the
CLI maps its flags onto it one to one.

The vocabularies live here, and the modules that act on an option import them from here, so that building an
`EngineConfig` (and checking it) loads nothing heavy: no ONNX Runtime, PyAV, OpenCV or Numba.
"""

from __future__ import annotations

import argparse
import math
import numbers
import os
import string
from dataclasses import dataclass
from pathlib import Path

from .errors import OppyError
from .inputs.facts import camera_wanted

# -- where the model runs -----------------------------------------------------------------------------------------
#: each `provider` as the ONNX Runtime execution providers tried, in order
PROVIDERS = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
    "auto": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}
#: the precisions a model runs in: its own file (fp32), or the copy `oppy-export --fp16` / `--int8` wrote beside it
#: (STEM.fp16.onnx, STEM.int8.onnx); auto takes int8 on the CPU and fp16 on a GPU where the copy is there
PRECISIONS = ("auto", "fp32", "fp16", "int8")

# -- inputs ------------------------------------------------------------------------------------------------------
#: `order`: a folder's frames by name or by the time their label or product id gives; `stretch`: none or one for
#: the whole archive
ORDERS = ("name", "time")
STRETCHES = ("none", "archive")
#: "letterbox": keep the aspect ratio and add black bars; "scale": stretch to the video's size
RESIZE_MODES = ("letterbox", "scale")

# -- outputs -----------------------------------------------------------------------------------------------------
#: what `EngineConfig.format` may name: a video container, or raw RGB24 frames without a header
OUTPUT_FORMATS = {"mp4": "mp4", "mkv": "matroska", "mov": "mov", "rawvideo": None}
#: the YUV layouts a video can be written in: 4:2:0 (half the chroma resolution each way; plays everywhere) and
#: 4:4:4 (full chroma: the whole of what the model predicted; High 4:4:4 / Main 4:4:4 profiles)
PIXEL_FORMATS = ("yuv420p", "yuv444p")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
NVENC_PRESETS = ("p1", "p2", "p3", "p4", "p5", "p6", "p7")
#: and back, for a fallback from NVENC to x264 / x265
X264_PRESET_OF_NVENC = {"p1": "superfast", "p2": "veryfast", "p3": "faster", "p4": "medium", "p5": "slow",
                        "p6": "slower", "p7": "veryslow"}


@dataclass(frozen=True)
class Encoder:
    """One encoder: its presets, the range of `crf` and what it means to it, and where it falls back to."""

    name: str
    presets: tuple[str, ...]
    crf_range: tuple[int, int]
    crf_meaning: str
    #: the software encoder used where this one cannot be opened (a hardware encoder without its device)
    fallback: str | None = None
    #: the smallest width and height it encodes (x265 refuses frames under 16 px a side with a bare "Invalid argument")
    min_side: int = 1

    def problems(self, crf: int, preset: str, pix_fmt: str) -> list[str]:
        """What is wrong with these settings for this encoder, one sentence each."""
        found = []
        if preset not in self.presets:
            found.append(f"preset {preset!r} is not one of {self.name}'s: {', '.join(self.presets)}")
        low, high = self.crf_range
        if not low <= crf <= high:
            found.append(f"crf for {self.name} is {self.crf_meaning}, {low}..{high}, not {crf}")
        if pix_fmt not in PIXEL_FORMATS:
            found.append(f"pixel format must be one of {', '.join(PIXEL_FORMATS)}, not {pix_fmt!r}")
        return found


ENCODERS = {
    "libx264": Encoder("libx264", X264_PRESETS, (0, 51), "x264's constant rate factor (0 lossless, 23 its default)"),
    "libx265": Encoder("libx265", X264_PRESETS, (0, 51), "x265's constant rate factor (28 its default)",
                       min_side=16),
    "h264_nvenc": Encoder("h264_nvenc", NVENC_PRESETS + X264_PRESETS, (1, 51),
                          "NVENC's constant quality level -cq (0 would mean automatic)", fallback="libx264"),
    "hevc_nvenc": Encoder("hevc_nvenc", NVENC_PRESETS + X264_PRESETS, (1, 51),
                          "NVENC's constant quality level -cq (0 would mean automatic)", fallback="libx265"),
}


def encoder_problems(codec: str, crf: int, preset: str, pix_fmt: str) -> list[str]:
    """Why these encoder settings cannot be used (empty when they can), without opening anything."""
    encoder = ENCODERS.get(codec)
    if encoder is None:
        return [f"codec must be one of {', '.join(ENCODERS)}, not {codec!r}"]
    return encoder.problems(crf, preset, pix_fmt)


#: the fields a caption may name: those of `ProductInfo`, the frame's file name and its index in the render
CAPTION_FIELDS = ("sol", "camera", "instrument", "start_time", "sclk", "product_id", "rover", "name", "index")
_MAX_CAPTION = 200


def check_caption(caption: str) -> None:
    """A `ValueError` naming the fix for a caption that is not plain text with `{field}`s of `CAPTION_FIELDS`
    (no attribute, index, conversion or format spec: a caption is untrusted too)."""
    if len(caption) > _MAX_CAPTION:
        raise ValueError(f"a caption is at most {_MAX_CAPTION} characters, not {len(caption)}")
    try:
        parts = list(string.Formatter().parse(caption))
    except ValueError as exc:
        raise ValueError(f"caption {caption!r} is not a format: {exc} (write a brace as {{{{ or }}}})") from exc
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in CAPTION_FIELDS or spec or conversion:
            raise ValueError(f"caption field {{{field}{'!' + conversion if conversion else ''}"
                             f"{':' + spec if spec else ''}}} is not one of "
                             f"{', '.join('{' + name + '}' for name in CAPTION_FIELDS)}")


# -- the chroma scale and the temporal smoothing ---------------------------------------------------------------
AUTO = "auto"
#: the strength `EngineConfig.temporal` takes by default (measured: docs/temporal.md)
DEFAULT_TEMPORAL = 1.0


def parse_chroma_scale(value: object) -> str | float:
    """`"auto"`, or a number in (0, 1] (a string such as "0.25" too); ValueError naming the valid range."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        scale = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        scale = math.nan
    if isinstance(value, bool) or not 0 < scale <= 1:  # NaN fails the comparison too
        raise ValueError(f"chroma scale must be 'auto' or a number in (0, 1], not {value!r}")
    return scale


def fixed_chroma_scale(setting: str | float) -> float | None:
    """The scale a parsed chroma-scale setting fixes, or None for "auto" (the kernels' `choose_scale` takes that)."""
    return None if setting == AUTO else float(setting)


def chroma_scale_argument(text: str) -> str | float:
    """`parse_chroma_scale` as an argparse type: a bad value is a usage error that names the valid range."""
    try:
        return parse_chroma_scale(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def check_strength(value: object) -> float:
    """A temporal strength in [0, 1] as a float; a `ValueError` naming the range otherwise."""
    try:
        strength = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        strength = math.nan
    if isinstance(value, bool) or not 0 <= strength <= 1:  # NaN fails it too
        raise ValueError(f"temporal strength must be a number in [0, 1] (0: off), not {value!r}")
    return strength


#: the frame rates a video can be written at: a rate is stored as a fraction with a denominator up to 1001
MIN_FPS, MAX_FPS = 0.001, 1000.0
#: the largest raw input frame: OpenCV's limit for one image, 2^30 pixels, and 65,536 on a side
MAX_INPUT_PIXELS, MAX_INPUT_SIDE = 1 << 30, 1 << 16
#: counts past which an option asks for more than any machine holds (memory is checked once the model is known)
MAX_BATCH_SIZE, MAX_THREADS, MAX_QUEUE_SIZE = 1 << 20, 1024, 1024
#: x264's own limit on its threads
MAX_ENCODER_THREADS = 128


def physical_memory() -> int | None:
    """Bytes of memory this machine has, where the system says."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


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


#: what each option of `EngineConfig` may be, by Python type (None is allowed where the default is None)
_NUMBERS, _WHOLE, _TEXT = (numbers.Real,), (numbers.Integral,), (str,)
_OPTION_TYPES = {
    "model": (str, Path), "provider": _TEXT, "precision": _TEXT, "batch_size": _WHOLE, "overlap": _WHOLE,
    "chroma_scale": (str, numbers.Real), "palette_guard": (bool,), "threads": _WHOLE,
    "queue_size": _WHOLE, "decode_threads": _WHOLE, "fps": _NUMBERS, "crf": _WHOLE, "codec": _TEXT, "preset": _TEXT,
    "encoder_threads": _WHOLE, "pix_fmt": _TEXT, "overwrite": (bool,), "resize": _TEXT, "format": _TEXT,
    "order": _TEXT, "camera": _TEXT, "stretch": _TEXT, "caption": _TEXT, "input_size": (tuple, list)}


KIND_NAMES = {str: "text", numbers.Real: "a number", Path: "a path", bool: "True or False", tuple: "a tuple",
              list: "a list"}


def _type_problems(config: EngineConfig) -> list[str]:
    """The options whose value is of the wrong kind (a number given as text, a fraction where a count goes, a
    flag where a number goes), each in words."""
    problems = []
    for name, kinds in _OPTION_TYPES.items():
        value = getattr(config, name)
        if value is None and getattr(EngineConfig, name) is None:
            continue
        flag_for_number = isinstance(value, bool) and bool not in kinds
        if flag_for_number or not isinstance(value, kinds):
            kind = {_WHOLE: "a whole number", _NUMBERS: "a number", _TEXT: "text"}.get(kinds, " or ".join(
                KIND_NAMES.get(k, k.__name__) for k in kinds))
            problems.append(f"{name.replace('_', ' ')} must be {kind}, not {value!r}")
    return problems


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
    #: at `outputs.timing.DEFAULT_FPS` (5)
    fps: float | None = None
    #: the encoder's quality level, lower is better: x264 / x265's constant rate factor, NVENC's constant quality
    crf: int = 20
    #: libx264, libx265, or NVIDIA's h264_nvenc / hevc_nvenc (which fall back to libx264 / libx265 where this
    #: machine has no NVIDIA encoder, announced)
    codec: str = "libx264"
    #: the encoder's speed preset: x264's names (ultrafast .. placebo), or NVENC's p1..p7 (x264's names map onto them)
    preset: str = "veryfast"
    #: threads of the video encoder (x264's and x265's frame threads; NVENC, PNG folders and raw frames have none);
    #: 0: its own choice (x264: 1.5 a core)
    encoder_threads: int = 0
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
    #: a caption burned into each frame, e.g. "sol {sol} · {camera}" (`CAPTION_FIELDS`); a frame without
    #: a field it names gets none
    caption: str | None = None
    #: (width, height) of raw 8-bit grey input frames, read from stdin (`-`) or a file; None: the input is a
    #: folder of images or a video
    input_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        problems = _type_problems(self)
        if problems:  # the checks below compare and format values of the right types only
            raise OppyError("; ".join(problems))
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
        if not 0 <= self.encoder_threads <= MAX_ENCODER_THREADS:
            problems.append(f"encoder threads must be 0 (the encoder's own choice) to {MAX_ENCODER_THREADS}, not "
                            f"{self.encoder_threads}")
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
