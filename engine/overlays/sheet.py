"""A contact sheet of a render: frames spread over the whole input, each as its grey input beside its colour
output, with its name, so a render can be checked at a glance without watching it.

The sheet is made from frames in the pipeline (their lightness and chroma, before they become RGB), never from a
second decode of the input: a render's frames pass through `ContactSheet.offer` in order, and it keeps small
copies of an evenly spread sample, whatever the length of the input, known or not.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from ..errors import OppyError
from ..kernels.lab import l_ab_to_rgb
from ..outputs.files import write_file
from .text import draw_text

#: the longest side of each picture on the sheet, in pixels
THUMB_SIDE = 256
#: frames on the sheet by default, and at most
DEFAULT_SHEET_FRAMES, MAX_SHEET_FRAMES = 8, 64
_GAP, _LABEL, _BACKGROUND, _PAIRS_PER_ROW = 8, 22, 24, 2


def _thumb(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(plane, (width, height), interpolation=cv2.INTER_AREA)


class ContactSheet:
    """Up to `frames` frames of a render, spread evenly over it, grey beside colour, written as a PNG at `path`.

    It keeps every `stride`-th frame offered; when it holds twice `frames`, it drops every other one and doubles
    the stride. Memory stays bounded (2 x `frames` pictures of `THUMB_SIDE`) and the sample stays even, from the
    first frame to near the last, for inputs of unknown length too.
    """

    def __init__(self, path: str | Path, frames: int = DEFAULT_SHEET_FRAMES):
        if not 1 <= frames <= MAX_SHEET_FRAMES:
            raise OppyError(f"a contact sheet holds 1 to {MAX_SHEET_FRAMES} frames, not {frames}")
        if Path(path).suffix.lower() != ".png":
            raise OppyError(f"the contact sheet {str(path)!r} is a PNG: give it a name ending in .png")
        self.path, self.frames = Path(path), frames
        self._kept: list[tuple[int, str, np.ndarray, np.ndarray]] = []  # (ordinal, name, grey, colour)
        self._offered, self._stride = 0, 1
        self._lock = threading.Lock()

    def offer(self, index: int, name: str, lightness: np.ndarray, ab: np.ndarray) -> None:
        """The next frame of the render, in order: HxW float32 L* and 2xHxW float32 a*, b*, as it is colourised."""
        with self._lock:
            ordinal, self._offered = self._offered, self._offered + 1
            if ordinal % self._stride:
                return
        height, width = lightness.shape
        fit = THUMB_SIDE / max(height, width)
        size = (max(1, round(width * fit)), max(1, round(height * fit)))
        small_l = _thumb(lightness, *size)
        small_ab = np.stack([_thumb(plane, *size) for plane in ab])
        # L* without chroma: the grey the engine saw (sRGB's white point puts blue a code off now and then: green
        # alone is kept, on all three)
        grey = np.repeat(l_ab_to_rgb(small_l, np.zeros_like(small_ab))[..., 1:2], 3, axis=2)
        colour = l_ab_to_rgb(small_l, small_ab)
        with self._lock:
            self._kept.append((ordinal, name or f"frame {index}", grey, colour))
            if len(self._kept) >= 2 * self.frames:
                self._stride *= 2
                self._kept = [kept for kept in self._kept if kept[0] % self._stride == 0]

    def chosen(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(name, grey, colour) of the frames on the sheet: `frames` of those kept, evenly spaced, in order."""
        kept = self._kept
        if len(kept) > self.frames:
            picks = np.linspace(0, len(kept) - 1, self.frames).round().astype(int)
            kept = [kept[i] for i in picks]
        return [(name, grey, colour) for _, name, grey, colour in kept]

    def image(self) -> np.ndarray | None:
        """The sheet as HxWx3 uint8 RGB: rows of (grey, colour) pairs, each under its frame's name; None when no
        frame was offered."""
        chosen = self.chosen()
        if not chosen:
            return None
        cell_width = 2 * THUMB_SIDE + _GAP
        cell_height = _LABEL + THUMB_SIDE
        columns = min(_PAIRS_PER_ROW, len(chosen))
        rows = -(-len(chosen) // columns)
        sheet = np.full((_GAP + rows * (cell_height + _GAP), _GAP + columns * (cell_width + _GAP), 3), _BACKGROUND,
                        np.uint8)
        for number, (name, grey, colour) in enumerate(chosen):
            top = _GAP + (number // columns) * (cell_height + _GAP)
            left = _GAP + (number % columns) * (cell_width + _GAP)
            draw_text(sheet, name, (left, top), cell_width, _LABEL)
            height, width = grey.shape[:2]
            sheet[top + _LABEL:top + _LABEL + height, left:left + width] = grey
            sheet[top + _LABEL:top + _LABEL + height, left + THUMB_SIDE + _GAP:left + THUMB_SIDE + _GAP + width] = \
                colour
        return sheet

    def write(self) -> str | None:
        """Write the sheet (through a temporary, as every output); returns its path, or None with no frame."""
        sheet = self.image()
        if sheet is None:
            return None
        ok, data = cv2.imencode(".png", np.ascontiguousarray(sheet[..., ::-1]))
        if not ok:
            raise OppyError(f"cannot encode the contact sheet {str(self.path)!r} as PNG")
        write_file(self.path, data.tobytes(), "the contact sheet")
        return str(self.path)
