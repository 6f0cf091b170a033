"""The video encoders the engine offers, what `--crf` and `--preset` mean to each, and the fallback from a hardware
encoder this machine cannot open to libx264, all decided before any frame is rendered.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from fractions import Fraction

import av

from ..config import ENCODERS, X264_PRESET_OF_NVENC, encoder_problems
from ..errors import OppyError

log = logging.getLogger(__name__)



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
