"""When each frame of a video is shown: at a fixed rate, or at the timestamps the frames came with.

A folder of stills has no timing of its own and is shown at `--fps` (default 5 frames/s); a video input keeps its
own timestamps (variable frame rates too) unless `--fps` retimes it.
"""

from __future__ import annotations

from fractions import Fraction

from ..frames import FrameTiming

#: frames/s of a video made from frames without timestamps (a folder of stills), unless `--fps` says otherwise
DEFAULT_FPS = 5.0
#: a rate an input declares is believed within these bounds (the ones --fps takes); past them, the default
MIN_DECLARED_FPS, MAX_DECLARED_FPS = 0.001, 1000.0


def rate_fraction(fps: float) -> Fraction:
    """A frame rate as the fraction a video stores, the closest with a denominator up to 1001 (30000 / 1001 given
    as a float comes back as 30000/1001)."""
    return Fraction(fps).limit_denominator(1001)


def _has_time(timing: FrameTiming | None) -> bool:
    return timing is not None and timing.pts is not None and timing.time_base is not None and timing.time_base > 0


class VideoClock:
    """The timestamps of a video's frames, decided at its first frame (`first`): with `fps`, frame i at i / fps
    ("fps"); else, where the first frame has a timestamp, each frame at its own, shifted so the video starts at 0
    ("input"); else, where the input declares a rate (`source_rate`: a video whose packets carry no timestamps, such
    as a raw H.264 stream), at that rate ("declared"); else at `DEFAULT_FPS` ("default", for stills and raw frames).
    The video declares `source_rate` where it keeps the input's timestamps."""

    def __init__(self, fps: float | None, first: FrameTiming | None, source_rate: Fraction | None = None):
        if fps is None and _has_time(first):
            self.kind = "input"
            self.time_base: Fraction = first.time_base
            self.rate = source_rate if source_rate and source_rate > 0 else rate_fraction(DEFAULT_FPS)
            self._shift = -Fraction(first.pts) * first.time_base  # seconds added to an input time
        elif fps is None and source_rate and MIN_DECLARED_FPS <= source_rate <= MAX_DECLARED_FPS:
            # a stream whose packets carry no times (raw H.264), at a rate a video can be written at
            self.kind = "declared"
            self.rate = source_rate
            self.time_base = 1 / self.rate
            self._shift = Fraction(0)
        else:
            self.kind = "fps" if fps is not None else "default"
            self.rate = rate_fraction(DEFAULT_FPS if fps is None else fps)
            self.time_base = 1 / self.rate
            self._shift = Fraction(0)
        #: a frame's duration at the nominal rate, in ticks of the time base (what a frame without a time gets)
        self._step = max(1, round(1 / (self.rate * self.time_base)))
        #: the fewest ticks between two frames: one of the container's own time base (MKV counts milliseconds), so
        #: that no two frames share a time there (`at_least`)
        self._least = 1
        self._last: int | None = None
        #: times that did not rise (a joined or damaged input): the timeline was continued past them
        self.breaks = 0

    def at_least(self, container_time_base: Fraction) -> None:
        """Keep frames at least one tick of the container's time base apart (known once its header is written)."""
        self._least = max(1, -(-container_time_base // self.time_base))

    def stamp(self, index: int, timing: FrameTiming | None) -> int:
        """The pts of frame `index` (0-based, in order) in `time_base` ticks, always later than the one before.
        A frame whose time does not rise past the last (a joined or damaged input) starts a new stretch one nominal
        frame after it, and the frames after it keep their spacing from there; one without a time comes one
        nominal frame after the last."""
        if self.kind != "input":
            pts = index
        elif _has_time(timing):
            pts = round((timing.pts * timing.time_base + self._shift) / self.time_base)
            if self._last is not None and pts < self._last + self._least:
                wanted = self._last + max(self._step, self._least)
                self._shift += (wanted - pts) * self.time_base
                self.breaks += 1
                pts = wanted
        else:
            pts = 0 if self._last is None else self._last + max(self._step, self._least)
        self._last = pts
        return pts

    def describe(self) -> str:
        """How the frames are timed, for a log line or a report."""
        if self.kind == "input":
            breaks = f"; continued past {self.breaks} times that did not rise" if self.breaks else ""
            return f"the input's own timestamps (average {float(self.rate):.4g} frames/s{breaks})"
        if self.kind == "fps":
            return f"{float(self.rate):.4g} frames/s, as --fps asks"
        if self.kind == "declared":
            return f"{float(self.rate):.4g} frames/s, the rate the input declares (its frames carry no timestamps)"
        return f"{float(self.rate):.4g} frames/s, the default for frames without timestamps (set it with --fps)"
