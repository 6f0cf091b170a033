"""Opening the video encoder asked for: its own options for `--crf` and `--preset`, and the fallback from a hardware
encoder this machine cannot open to libx264 / libx265, all decided before any frame is rendered (the encoders, their
presets and the range of `--crf` for each are `config.ENCODERS`).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from fractions import Fraction

import av

from ..config import ENCODERS, X264_PRESET_OF_NVENC, Encoder, encoder_problems
from ..errors import OppyError

log = logging.getLogger(__name__)

#: x264's preset names as NVENC's own (p1 fastest .. p7 best), so one `--preset` serves both kinds of encoder
NVENC_PRESET_OF_X264 = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p3",
                        "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7", "placebo": "p7"}


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
        return EncoderChoice(codec, encoder_options(encoder, crf, preset))
    if encoder.fallback is None or opens(encoder.fallback, pix_fmt) is not None:
        raise OppyError(f"cannot encode {pix_fmt} video with {codec} on this machine ({why}): choose another --codec "
                        f"({', '.join(ENCODERS)}) or --pix-fmt")
    preset = X264_PRESET_OF_NVENC.get(preset, preset)
    fallback = f"{codec} is not available here ({why}): encoding with {encoder.fallback} (crf {crf}, preset {preset})"
    log.warning(fallback)
    return EncoderChoice(encoder.fallback, encoder_options(ENCODERS[encoder.fallback], crf, preset), fallback)
