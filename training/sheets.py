"""Contact sheets: a grid of labelled thumbnails in one PNG, for looking at what a filter or a model did."""

from __future__ import annotations

import contextlib
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


def spread(items: list, count: int) -> list:
    """`count` items evenly spaced through a sorted list (all of them if there are fewer), so that a sheet
    shows many sols rather than one scene."""
    if count >= len(items):
        return list(items)
    return [items[round(i * (len(items) - 1) / max(1, count - 1))] for i in range(count)]


def validation_sheet(dataset_dir: str | Path, models: dict[str, str | Path], count: int = 8,
                     split: str = "val", cell: int = 160) -> np.ndarray:
    """One row per photo of `split`: grey input, each model's colouring (engine tiling and blending, the
    photo's own L*), ground truth."""
    from oppy.engine.kernels.lab import l_ab_to_rgb, rgb_to_lab

    from .data import split_files
    from .evaluate import load_predictor, model_method, read_rgb

    methods = {}
    for name, model in models.items():
        predict, contract = load_predictor(model)
        methods[name] = model_method(predict, contract)
    items = []
    for path in spread(split_files(dataset_dir, split), count):
        rgb = read_rgb(path)
        lightness = np.ascontiguousarray(rgb_to_lab(rgb)[..., 0])
        items.append((f"grey {path.stem}", cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)))
        for name, method in methods.items():
            items.append((name, l_ab_to_rgb(lightness, np.ascontiguousarray(method(lightness), np.float32))))
        items.append(("ground truth", rgb))
    return contact_sheet(items, columns=len(methods) + 2, cell=cell)


def frames_sheet(frames_dir: str | Path, model: str | Path | None = None, count: int = 12, pairs_per_row: int = 2,
                 cell: int = 200, chroma_scales: tuple[str | float, ...] = ("auto",), crop: int | None = None
                 ) -> np.ndarray:
    """Real greyscale frames beside their colouring by the engine itself (`model`: the packaged default when None)
    at each of `chroma_scales` (e.g. 1 and "auto", to compare them); with `crop`, the central `crop` px of each
    frame at full resolution rather than the whole frame."""
    from oppy.engine import Engine
    from oppy.engine.errors import FrameError
    from oppy.engine.inputs.images import read_image
    from oppy.engine.inputs.sources import ImageFolder

    def cropped(image: np.ndarray) -> np.ndarray:
        if crop is None:
            return image
        top, left = max(0, (image.shape[0] - crop) // 2), max(0, (image.shape[1] - crop) // 2)
        return image[top : top + crop, left : left + crop]

    items = []
    with contextlib.ExitStack() as stack:
        engines = [stack.enter_context(Engine(model, chroma_scale=scale)) for scale in chroma_scales]
        for path in spread(ImageFolder(frames_dir).files, count):
            try:
                pixels = read_image(path)
            except FrameError:  # not a frame: the sheet shows the frames there are
                continue
            before = pixels if pixels.dtype == np.uint8 else (pixels >> 8).astype(np.uint8)
            if before.ndim == 3:
                before = cv2.cvtColor(np.ascontiguousarray(before[..., :3]), cv2.COLOR_RGB2GRAY)
            items.append((path.stem, cropped(before)))
            for engine in engines:
                coloured = engine.colorize(pixels)
                label = "coloured" if len(engines) == 1 else f"chroma {engine.config.chroma_scale}"
                items.append((label, cropped(coloured)))
    return contact_sheet(items, columns=(1 + len(engines)) * pairs_per_row, cell=cell)
