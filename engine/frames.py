"""What every part of the engine says of a frame, whatever its source or sink: its timing in a video, the skip
that takes its place when it cannot be used, and how its name is ordered and printed."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class FrameTiming:
    """A PyAV frame's timing, kept so that `Engine.stream` can hand back a PyAV frame with the same pts."""

    pts: int | None
    time_base: Fraction | None


@dataclass(frozen=True)
class Skipped:
    """An input that could not be used, and why."""

    name: str
    reason: str


def natural_key(name: str) -> tuple:
    """Sort key that orders runs of the digits 0-9 by value: `sol9` before `sol10`; names equal by that (`a1` and
    `a01`, `A` and `a`) in the order of their exact text, so that the order never depends on the folder's listing.
    Other characters that Python counts as digits (`²`, `٣`) sort as text."""
    parts = re.split(r"([0-9]+)", name)  # text at even places, digit runs at odd ones: like is compared with like
    return [int(part) if place % 2 else part.lower() for place, part in enumerate(parts)], name


def display_name(name: str) -> str:
    """A file name as it can be printed and written to JSON: bytes that are not UTF-8 become `\\xNN`."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")
