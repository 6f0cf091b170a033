"""Contact sheets: a grid of labelled thumbnails in one PNG, for looking at what a filter or a model did."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def _thumbnail(rgb: np.ndarray, cell: int) -> np.ndarray:
    if rgb.ndim == 2:
        rgb = np.dstack([rgb] * 3)
    height, width = rgb.shape[:2]
    scale = cell / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    canvas = np.full((cell, cell, 3), 32, np.uint8)
    top, left = (cell - small.shape[0]) // 2, (cell - small.shape[1]) // 2
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
    return canvas


def contact_sheet(items: list[tuple[str, np.ndarray]], columns: int = 6, cell: int = 160) -> np.ndarray:
    """Lay out (label, grey or RGB uint8 image) pairs in a grid; each label is printed under its image."""
    label_height = 18
    rows = max(1, -(-len(items) // columns))
    sheet = np.full((rows * (cell + label_height), columns * cell, 3), 16, np.uint8)
    for i, (label, image) in enumerate(items):
        top, left = (i // columns) * (cell + label_height), (i % columns) * cell
        sheet[top : top + cell, left : left + cell] = _thumbnail(image, cell)
        cv2.putText(sheet, label[: cell // 7], (left + 3, top + cell + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                    (230, 230, 230), 1, cv2.LINE_AA)
    return sheet


def save_sheet(path: str | Path, sheet: np.ndarray) -> None:
    """Write an RGB sheet as PNG."""
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
