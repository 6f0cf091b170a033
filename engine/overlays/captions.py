"""Captions burned into output frames (`--caption "sol {sol} {camera}"`) from what each frame's label or product
id says; a frame without a field the caption names gets no caption.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..inputs.facts import ProductInfo
from .text import draw_text, printable, text_box

#: the most of a frame's height a caption band and its margins may cover
MAX_CAPTION_SHARE = 0.6
_BLACK = (0, 0, 0)


def _value(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def caption_text(caption: str, name: str, index: int, info: ProductInfo | None) -> str | None:
    """The caption for one frame, or None where a field it names is unknown for the frame."""
    fields = {"name": name, "index": index, **(info.fields() if info is not None else {})}
    try:
        return caption.format_map({key: _value(value) for key, value in fields.items()})
    except KeyError:
        return None


def caption_box(width: int, height: int, text: str) -> tuple[int, int, int, int] | None:
    """(left, top, box width, box height) of a caption in a `width` x `height` frame: bottom left, a band 1/30 of
    the frame high (16 px at least) and as wide as its text (the frame's width at most); None where the band and
    its margins would cover more than `MAX_CAPTION_SHARE` of the frame's height or the frame is too narrow for a
    character: such a frame gets no caption, rather than one that hides it."""
    box_height = max(16, round(height / 30))
    margin = box_height // 3
    if box_height + 2 * margin > MAX_CAPTION_SHARE * height or width < 2 * margin + box_height:
        return None
    scale, thickness = text_box(box_height)
    text_width = cv2.getTextSize(printable(text), cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0]
    box_width = min(width - 2 * margin, text_width + 4 + box_height // 2)
    return margin, height - box_height - margin, box_width, box_height


def burn_caption(rgb: np.ndarray, text: str) -> bool:
    """Draw `text` in white on a black band into the bottom left of an HxWx3 uint8 frame, in place; False (nothing
    drawn) where the text is empty or the frame too small to hold a caption (`caption_box`)."""
    box = caption_box(rgb.shape[1], rgb.shape[0], text) if text.strip() else None
    if box is None:
        return False
    left, top, width, height = box
    draw_text(rgb, text, (left, top), width, height, background=_BLACK)
    return True
