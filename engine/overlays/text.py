"""Small legible text drawn into RGB frames (OpenCV's Hershey font): names on a contact sheet, captions on frames.

OpenCV's fonts draw ASCII only, so other characters are shown as `?`; text too long for its box is cut with `...`.
"""

from __future__ import annotations

import unicodedata

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE = (255, 255, 255)


#: typographic characters drawn as their nearest ASCII
_NEAREST = str.maketrans({"\u00b7": "-", "\u2022": "-", "\u2013": "-", "\u2014": "-", "\u2018": "'",
                          "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2026": "...", "\u00b0": " deg",
                          "\u00d7": "x"})


def printable(text: str) -> str:
    """`text` as the font can draw it: ASCII, one line (accents dropped, dashes and dots as `-`, the rest `?`)."""
    text = unicodedata.normalize("NFKD", " ".join(text.split()).translate(_NEAREST))
    return "".join(c if " " <= c <= "~" else "?" for c in text if not unicodedata.combining(c))


def fitted(text: str, width: int, scale: float, thickness: int) -> str:
    """`text`, cut with `...` where it is wider than `width` pixels at this font scale."""
    if cv2.getTextSize(text, _FONT, scale, thickness)[0][0] <= width:
        return text
    while text and cv2.getTextSize(text + "...", _FONT, scale, thickness)[0][0] > width:
        text = text[:-1]
    return text + "..." if text else ""


def text_box(height: int) -> tuple[float, int]:
    """The font scale and stroke thickness whose capitals fill about 60% of a box `height` pixels tall."""
    scale = max(0.3, 0.6 * height / cv2.getTextSize("H", _FONT, 1.0, 1)[0][1])
    return scale, max(1, round(scale * 1.5))


def draw_text(image: np.ndarray, text: str, origin: tuple[int, int], width: int, height: int,
              background: tuple[int, int, int] | None = None) -> None:
    """Draw `text` in white into HxWx3 uint8 `image`, in place, in the box of `width` x `height` pixels whose top
    left corner is `origin` (x, y): on `background` where given, else on the image as it is. Nothing outside the
    box changes."""
    left, top = origin
    box = image[max(0, top):max(0, top + height), max(0, left):max(0, left + width)]
    if box.size == 0:
        return
    if background is not None:
        box[:] = background
    scale, thickness = text_box(box.shape[0])
    line = fitted(printable(text), box.shape[1] - 4, scale, thickness)
    (_, text_height), _ = cv2.getTextSize("H", _FONT, scale, thickness)
    canvas = np.ascontiguousarray(box)  # drawing on a view of the box: OpenCV clips to it
    cv2.putText(canvas, line, (2, (box.shape[0] + text_height) // 2), _FONT, scale, _WHITE, thickness, cv2.LINE_AA)
    box[:] = canvas
