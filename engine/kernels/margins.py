"""Black rectangular margins around a frame's picture: a subframe on a larger canvas, a letterboxed video.

A tile that straddles the edge of the picture sees part black and answers for the whole tile as if the ground were
in deep shadow: on a Pancam subframe with a black band beside it, the ground along the band came out grey-brown
and the rest orange, the edge a tile wide. So the engine finds the margins (`content_box`), fills them with the
picture mirrored at its edge for the model (`filled`), as the picture would go on, and keeps them black (a*, b* 0).
Only whole rows and columns at the edges count: the black outside a round field of view (a fisheye Hazcam's, a
ChemCam's) is part of the picture.
"""

from __future__ import annotations

import cv2
import numpy as np

from .parallel import cached_njit

#: a margin's pixels are at most this L* (grey level 8 of 255): black, with a JPEG's ringing
MARGIN_LIGHTNESS = 3.0
#: a margin narrower than this, px, is left as it is: a camera's border is wide (118 px on a Spirit Pancam
#: subframe), while a photo's own dark edge that slides in a pan makes its colour jump each time it crosses the
#: width: at 32 px, oppy-bench temporal's pans (browse photos enlarged 4x) flickered with every model and the
#: context model's frame means jumped (docs/how-it-works.md)
MIN_MARGIN = 96
#: a line of a margin may hold one brighter pixel in this many of its own (hot pixels, compression), at least one
BRIGHT_ALLOWANCE = 256


@cached_njit(nogil=True)
def _is_dark(line, threshold, allowance):  # pragma: no cover - compiled
    """Whether at most `allowance` values of a row or column exceed `threshold` (stops at the one past it)."""
    bright = 0
    for value in line:
        if value > threshold:
            bright += 1
            if bright > allowance:
                return False
    return True


@cached_njit(nogil=True)
def _dark_lines(plane, threshold, row_allowance, column_allowance):  # pragma: no cover - compiled
    """(top, bottom, left, right): the picture's rows [top, bottom) and columns [left, right), where the rows
    outside hold at most `row_allowance` pixels above `threshold` each, and the columns `column_allowance`. Each
    edge stops at its first bright line."""
    height, width = plane.shape
    top, bottom, left, right = 0, height, 0, width
    while top < height and _is_dark(plane[top], threshold, row_allowance):
        top += 1
    while bottom > top and _is_dark(plane[bottom - 1], threshold, row_allowance):
        bottom -= 1
    while left < width and _is_dark(plane[top:bottom, left], threshold, column_allowance):
        left += 1
    while right > left and _is_dark(plane[top:bottom, right - 1], threshold, column_allowance):
        right -= 1
    return top, bottom, left, right


def content_box(lightness: np.ndarray, threshold: float = MARGIN_LIGHTNESS,
                min_margin: int = MIN_MARGIN) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the picture inside black margins of an HxW L* plane (rows [top, bottom),
    columns [left, right)), or None where there is no margin at least `min_margin` px wide, or no picture (a black
    frame). Margins narrower than `min_margin` are kept as picture."""
    height, width = lightness.shape
    if height < 2 * min_margin + 1 or width < 2 * min_margin + 1:
        return None
    plane = np.ascontiguousarray(lightness, np.float32)
    top, bottom, left, right = _dark_lines(plane, np.float32(threshold), max(1, width // BRIGHT_ALLOWANCE),
                                           max(1, height // BRIGHT_ALLOWANCE))
    if bottom - top < min_margin or right - left < min_margin:
        return None  # black, or a sliver of picture: nothing a tile could read better
    top, left = (top if top >= min_margin else 0), (left if left >= min_margin else 0)
    bottom = bottom if height - bottom >= min_margin else height
    right = right if width - right >= min_margin else width
    box = (top, bottom, left, right)
    return None if box == (0, height, 0, width) else box


def filled(lightness: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The L* plane with its margins outside `box` filled by the picture mirrored at its edges (float32)."""
    top, bottom, left, right = box
    height, width = lightness.shape
    picture = np.ascontiguousarray(lightness[top:bottom, left:right], np.float32)
    return cv2.copyMakeBorder(picture, top, height - bottom, left, width - right, cv2.BORDER_REFLECT_101)


def clear_margins(ab: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """Set a*, b* (2xHxW, in place) to 0 outside `box`: the margins stay black, not tinted."""
    top, bottom, left, right = box
    ab[:, :top] = 0
    ab[:, bottom:] = 0
    ab[:, :, :left] = 0
    ab[:, :, right:] = 0
