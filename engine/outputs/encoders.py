"""Opening the video encoder asked for: its own options for `--crf` and `--preset`, the fallback from a hardware
encoder this machine cannot open to libx264 / libx265, and the frame sizes it takes, all decided before any frame is
rendered (the encoders, their presets and the range of `--crf` for each are `config.ENCODERS`); and a colour frame
made into what the encoder takes.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from ..config import ENCODERS, X264_PRESET_OF_NVENC, Encoder, encoder_problems
from ..errors import OppyError
from ..kernels.yuv import colour_standard, rgb_to_yuv_frame

log = logging.getLogger(__name__)

#: x264's preset names as NVENC's own (p1 fastest .. p7 best), so one `--preset` serves both kinds of encoder
NVENC_PRESET_OF_X264 = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p3",
                        "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7", "placebo": "p7"}
#: the longest side each software encoder takes (measured: libx264 opens 16384x2 and 2x16384, not 16386x2 or 2x16386;
#: libx265 opens 64x65536 and 65536x64). NVENC's are not known here (no NVIDIA encoder to measure): not checked
MAX_SIDE = {"libx264": 16384}
#: libx265 takes a side under 32 pixels only while the other is at most this long, by preset (measured with sides of
#: 16 to 30, yuv420p and yuv444p: ultrafast 4208, not 4210; the others 4216, not 4218; placebo no side under 32): longer
#: frames make x265 choose a level that needs blocks of 32 pixels
X265_NARROW_SIDE, X265_NARROW_LONGEST = 32, {"ultrafast": 4208, "placebo": 0}
_X265_NARROW_LONGEST_OTHERWISE = 4216


def encoder_options(encoder: Encoder, crf: int, preset: str) -> dict[str, str]:
    """The encoder's own options for a `crf` and a `preset` (both checked by `EngineConfig`)."""
    if encoder.name.endswith("_nvenc"):
        # constant quality: VBR rate control capped by nothing (b=0), at quantiser level `cq`
        return {"rc": "vbr", "cq": str(crf), "b": "0", "preset": NVENC_PRESET_OF_X264.get(preset, preset)}
    options = {"crf": str(crf), "preset": preset}
    if encoder.name == "libx265":
        options["x265-params"] = "log-level=error"  # x265 prints its settings to stderr otherwise
    return options


@functools.cache
def opens(codec: str, pix_fmt: str) -> str | None:
    """Why `codec` cannot encode `pix_fmt` on this machine, or None where it can: a software encoder must be in this
    FFmpeg build; a hardware encoder is opened once per process at 256x256 (it needs its device and driver)."""
    if codec not in av.codecs_available:
        return "not in this FFmpeg build"
    if ENCODERS[codec].fallback is None:
        return None
    try:
        context = av.CodecContext.create(codec, "w")
        context.width = context.height = 256
        context.pix_fmt = pix_fmt
        context.time_base = Fraction(1, 25)
        context.open()
    except (av.FFmpegError, ValueError) as exc:
        return str(exc).strip() or type(exc).__name__
    return None


@dataclass(frozen=True)
class EncoderChoice:
    """The encoder a video is written with, its options, and why it is not the one asked for (None: it is)."""

    codec: str
    options: dict[str, str]
    fallback: str | None = None

    def size_problem(self, width: int, height: int) -> str | None:
        """Why the encoder cannot take frames of `width` x `height` (odd sides padded to even, as they are encoded),
        or None where it can, as far as its limits are known (`MAX_SIDE`)."""
        short, long = sorted((width + width % 2, height + height % 2))
        size, smallest, largest = f"{width}x{height}", ENCODERS[self.codec].min_side, MAX_SIDE.get(self.codec)
        if short < smallest:
            return (f"{self.codec} encodes frames of at least {smallest}x{smallest} pixels, and these are {size}: use "
                    "--codec libx264 (from 1 pixel a side) or give larger frames")
        if largest is not None and long > largest:
            return (f"{self.codec} encodes frames of at most {largest} pixels a side, and these are {size}: write a "
                    "folder of PNGs (an OUTPUT name without suffix) or give smaller frames")
        if self.codec == "libx265" and short < X265_NARROW_SIDE:
            return self._narrow_x265_problem(long, size)
        return None

    def _narrow_x265_problem(self, long: int, size: str) -> str | None:
        """Why libx265 at this preset cannot take a frame with a side under 32 pixels whose other side is `long`."""
        preset = self.options.get("preset", "")
        longest = X265_NARROW_LONGEST.get(preset, _X265_NARROW_LONGEST_OTHERWISE)
        if not longest:
            return (f"libx265 at preset {preset} encodes frames of at least {X265_NARROW_SIDE}x{X265_NARROW_SIDE} "
                    f"pixels, and these are {size}: use another --preset, --codec libx264, or give larger frames")
        if long <= longest:
            return None
        return (f"libx265 at preset {preset} encodes a frame with a side under {X265_NARROW_SIDE} pixels only up to "
                f"{longest} pixels on the other side, and these are {size}: use --codec libx264 or write a folder of "
                "PNGs (an OUTPUT name without suffix)")

    def check_size(self, width: int, height: int) -> None:
        """`OppyError` for frames of a size the encoder cannot take (`size_problem`)."""
        if problem := self.size_problem(width, height):
            raise OppyError(problem)


def choose_encoder(codec: str, crf: int, preset: str, pix_fmt: str = "yuv420p") -> EncoderChoice:
    """The encoder for these settings, checked: `OppyError` for settings no encoder takes, or an encoder this
    machine cannot open that has no fallback; a hardware encoder falls back to its software twin, announced."""
    if problems := encoder_problems(codec, crf, preset, pix_fmt):
        raise OppyError("; ".join(problems))
    encoder = ENCODERS[codec]
    why = opens(codec, pix_fmt)
    if why is None:
        return EncoderChoice(codec, encoder_options(encoder, crf, preset))
    if encoder.fallback is None or opens(encoder.fallback, pix_fmt) is not None:
        raise OppyError(f"cannot encode {pix_fmt} video with {codec} on this machine ({why}): choose another --codec "
                        f"({', '.join(ENCODERS)}) or --pix-fmt")
    preset = X264_PRESET_OF_NVENC.get(preset, preset)
    fallback = f"{codec} is not available here ({why}): encoding with {encoder.fallback} (crf {crf}, preset {preset})"
    log.warning(fallback)
    return EncoderChoice(encoder.fallback, encoder_options(ENCODERS[encoder.fallback], crf, preset), fallback)


@dataclass(frozen=True)
class EncoderFrame:
    """An RGB frame of `width` x `height` made into what a video's encoder takes (`encoder_frame`)."""

    frame: av.VideoFrame
    width: int
    height: int


def even_sized(rgb: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides: repeat the last row / column where a side is odd."""
    height, width = rgb.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return rgb
    return np.pad(rgb, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def encoder_frame(rgb: np.ndarray, pix_fmt: str) -> EncoderFrame:
    """An HxWx3 uint8 RGB frame converted to `pix_fmt` by the engine's kernel (odd sides padded, the colour standard
    chosen by size: `yuv.colour_standard`), tagged, for the encoder."""
    height, width = rgb.shape[:2]
    even = even_sized(rgb)
    standard = colour_standard(even.shape[1], even.shape[0])
    return EncoderFrame(rgb_to_yuv_frame(even, standard, pix_fmt), width, height)
