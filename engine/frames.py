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


def natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: `sol9` before `sol10`."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def display_name(name: str) -> str:
    """A file name as it can be printed and written to JSON: bytes that are not UTF-8 become `\\xNN`."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")
