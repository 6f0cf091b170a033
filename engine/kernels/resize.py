"""Fitting a frame of another size into a video whose size the first frame set: scaled, or letterboxed.

A frame is fitted before it is colourised (so a huge frame never reaches the tiler at full size); for a
letterbox the colourised content is then placed on a black canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Placement:
    """Where a fitted frame lies on the video's canvas: `width` x `height` pixels at (`left`, `top`)."""

    canvas: tuple[int, int]  # (width, height) of the video
    left: int
    top: int
    width: int
    height: int

    @property
    def fills_canvas(self) -> bool:
        return (self.width, self.height) == self.canvas


def frame_size(pixels: np.ndarray) -> tuple[int, int]:
    """(width, height) of an HxW or HxWxC frame."""
    return pixels.shape[1], pixels.shape[0]


def placement(size: tuple[int, int], canvas: tuple[int, int], mode: str) -> Placement:
    """Where a frame of `size` (width, height) goes on `canvas`: all of it ("scale"), or the largest centred
    box with the frame's aspect ratio, at least one pixel on each side ("letterbox"; `config.RESIZE_MODES`)."""
    canvas_width, canvas_height = canvas
    if mode == "scale":
        return Placement(canvas, 0, 0, canvas_width, canvas_height)
    width, height = size
    ratio = min(canvas_width / width, canvas_height / height)
    fitted_width = min(canvas_width, max(1, round(width * ratio)))
    fitted_height = min(canvas_height, max(1, round(height * ratio)))
    return Placement(canvas, (canvas_width - fitted_width) // 2, (canvas_height - fitted_height) // 2,
                     fitted_width, fitted_height)


def scale_pixels(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize HxW or HxWxC (C up to 4) uint8/uint16 pixels to `height` x `width`, same dtype and channels.

    Shrinking averages areas (no aliasing); enlarging interpolates linearly.
    """
    shrinking = width * height < pixels.shape[0] * pixels.shape[1]
    scaled = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if pixels.ndim == 3 and scaled.ndim == 2:  # OpenCV drops a single channel axis
        scaled = scaled[..., None]
    return scaled


def place(rgb: np.ndarray, where: Placement) -> np.ndarray:
    """Put an HxWx3 uint8 frame of the placement's size on a black canvas; returns canvas-sized HxWx3 uint8."""
    if where.fills_canvas:
        return rgb
    width, height = where.canvas
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[where.top : where.top + where.height, where.left : where.left + where.width] = rgb
    return canvas
