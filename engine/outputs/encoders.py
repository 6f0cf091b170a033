"""The video encoders the engine offers, what `--crf` and `--preset` mean to each, and the fallback from a hardware
encoder this machine cannot open to libx264, all decided before any frame is rendered.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from fractions import Fraction

import av

from ..errors import OppyError
from ..kernels.yuv import PIXEL_FORMATS

log = logging.getLogger(__name__)

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
NVENC_PRESETS = ("p1", "p2", "p3", "p4", "p5", "p6", "p7")
#: x264's preset names as NVENC's own (p1 fastest .. p7 best), so one `--preset` serves both kinds of encoder
NVENC_PRESET_OF_X264 = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p3",
                        "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7", "placebo": "p7"}
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

    def options(self, crf: int, preset: str) -> dict[str, str]:
        """The encoder's own options for a `crf` and a `preset` (both checked)."""
        if self.name.endswith("_nvenc"):
            # constant quality: VBR rate control capped by nothing (b=0), at quantiser level `cq`
            return {"rc": "vbr", "cq": str(crf), "b": "0", "preset": NVENC_PRESET_OF_X264.get(preset, preset)}
        options = {"crf": str(crf), "preset": preset}
        if self.name == "libx265":
            options["x265-params"] = "log-level=error"  # x265 prints its settings to stderr otherwise
        return options

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
        """Why the encoder cannot take frames of `width` x `height` (as encoded: even), or None where it can."""
        side = ENCODERS[self.codec].min_side
        if min(width, height) >= side:
            return None
        return (f"{self.codec} encodes frames of at least {side}x{side} pixels, and these are {width}x{height}: "
                f"use --codec libx264 (any size), or give larger frames")


def choose_encoder(codec: str, crf: int, preset: str, pix_fmt: str = "yuv420p") -> EncoderChoice:
    """The encoder for these settings, checked: `OppyError` for settings no encoder takes, or an encoder this
    machine cannot open that has no fallback; a hardware encoder falls back to its software twin, announced."""
    if problems := encoder_problems(codec, crf, preset, pix_fmt):
        raise OppyError("; ".join(problems))
    encoder = ENCODERS[codec]
    why = opens(codec, pix_fmt)
    if why is None:
        return EncoderChoice(codec, encoder.options(crf, preset))
    if encoder.fallback is None or opens(encoder.fallback, pix_fmt) is not None:
        raise OppyError(f"cannot encode {pix_fmt} video with {codec} on this machine ({why}): choose another --codec "
                        f"({', '.join(ENCODERS)}) or --pix-fmt")
    preset = X264_PRESET_OF_NVENC.get(preset, preset)
    fallback = f"{codec} is not available here ({why}): encoding with {encoder.fallback} (crf {crf}, preset {preset})"
    log.warning(fallback)
    return EncoderChoice(encoder.fallback, ENCODERS[encoder.fallback].options(crf, preset), fallback)
