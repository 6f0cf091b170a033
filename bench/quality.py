"""A model's colours beside the baselines: training's evaluation metrics, plus seam blockiness and flicker.

Seam blockiness (1.0 = no tile grid): the mean |Δab| between neighbouring pixels, folded into bins of one tile
stride along columns and rows, max bin / median bin. Flicker: mean |Δab| between consecutive frames, relative
to the ground truth's own change where it is known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice, pairwise
from pathlib import Path

import cv2
import numpy as np

from oppy.engine.lab import rgb_to_lab, to_lightness
from oppy.engine.tiles import TilePlan, plan_tiles
from oppy.training.data import split_files
from oppy.training.evaluate import baselines, evaluate, load_predictor, model_method
from oppy.training.prepare import DEFAULT_MIN_CHROMA

ChromaMethod = Callable[[np.ndarray], np.ndarray]  # HxW L* -> 2xHxW a*, b*


def _folded(ab: np.ndarray, plan: TilePlan) -> np.ndarray:
    """Sums and counts [2 axes (columns, rows), 2 (sum, count), stride] of the mean over a*, b* of |Δ| between
    horizontally (columns) and vertically (rows) neighbouring pixels of 2xHxW `ab`, binned by where the step
    lies on the tile grid of `plan`.

    Bin 0 holds the steps into the first pixel of a tile's stride period (padded coordinate a multiple of the
    stride): with overlap 0 exactly where two tiles are stitched."""
    stride = plan.stride
    out = np.zeros((2, 2, stride))
    ab = np.asarray(ab, np.float64)
    for i, (axis, pad) in enumerate(((2, plan.pad_left), (1, plan.pad_top))):
        step = np.abs(np.diff(ab, axis=axis)).mean(axis=0)  # [H, W-1] or [H-1, W]
        profile = step.sum(axis=0 if axis == 2 else 1)  # per position of the step along that axis
        bins = (np.arange(1, len(profile) + 1) + pad) % stride
        out[i, 0] = np.bincount(bins, weights=profile, minlength=stride)
        out[i, 1] = np.bincount(bins, minlength=stride) * step.shape[0 if axis == 2 else 1]
    return out


def blockiness(folded: np.ndarray | None) -> float | None:
    """max bin / median bin of a folded |Δab| profile (`_folded`, summed over images), the column and row
    profiles averaged bin by bin; None where there is no profile, or no change at all (a constant chroma has no
    grid to show)."""
    if folded is None:
        return None
    means = (folded[:, 0] / np.maximum(folded[:, 1], 1)).mean(axis=0)
    median = float(np.median(means))
    return float(means.max() / median) if median > 0 else None


def seam_blockiness(ab: np.ndarray, plan: TilePlan) -> float | None:
    """Seam blockiness of one 2xHxW a*, b* image tiled by `plan` (1.0: no tile grid shows)."""
    return blockiness(_folded(ab, plan))


class SeamMeter:
    """A chroma method that also folds the |Δab| profile of everything it returns on the grid of tiles of
    `tile` px overlapping by `overlap` (the grid its method tiles with, or the model's for methods without)."""

    def __init__(self, method: ChromaMethod, tile: int, overlap: int):
        self.method, self.tile, self.overlap = method, tile, overlap
        self.profile: np.ndarray | None = None

    def __call__(self, lightness: np.ndarray) -> np.ndarray:
        ab = self.method(lightness)
        folded = _folded(ab, plan_tiles(*lightness.shape, self.tile, self.overlap))
        self.profile = folded if self.profile is None else self.profile + folded
        return ab

    @property
    def blockiness(self) -> float | None:
        return blockiness(self.profile)


def flicker(chroma: list[np.ndarray]) -> float:
    """Mean |Δ| in a*, b* units between consecutive 2xHxW chroma frames, over pixels, channels and pairs."""
    if len(chroma) < 2:
        raise ValueError("flicker needs a sequence of at least two frames")
    return float(np.mean([np.abs(np.asarray(b, np.float64) - a).mean() for a, b in pairwise(chroma)]))


def pan_sequence(rgb: np.ndarray, frames: int = 8, pan: int = 2) -> Iterator[np.ndarray]:
    """`frames` crops of an HxWx3 photo, each `pan` px right of the last: a slow camera pan with known colour."""
    width = rgb.shape[1] - pan * (frames - 1)
    if width < 16:
        raise ValueError(f"a photo {rgb.shape[1]} px wide is too narrow for {frames} frames panning {pan} px")
    for i in range(frames):
        yield np.ascontiguousarray(rgb[:, i * pan : i * pan + width])


def colour_photos(dataset_dir: Path, split: str, min_chroma: float = DEFAULT_MIN_CHROMA,
                  limit: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(HxWx3 uint8 RGB, its LAB) of the photos among the first `limit` of `split` that evaluation takes: those
    whose ground truth is not greyscale (mean C*ab at least `min_chroma`)."""
    for path in split_files(dataset_dir, split)[:limit]:
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        lab = rgb_to_lab(rgb)
        if np.hypot(lab[..., 1], lab[..., 2]).mean() >= min_chroma:
            yield rgb, lab


def sequence_flicker(methods: dict[str, ChromaMethod], dataset_dir: Path, split: str = "val",
                     sequence: Path | None = None, photos: int = 4, frames: int = 8, pan: int = 2,
                     min_chroma: float = DEFAULT_MIN_CHROMA) -> dict:
    """Each method's flicker: on the grey frames of `sequence` (a folder, natural order) in absolute a*, b*
    units; without one, on slow pans (`pan_sequence`) over the first `photos` colour photos of `split`, as a
    ratio to the ground truth's own frame-to-frame change (1.0: no more change than the scene's)."""
    if sequence is not None:
        from oppy.engine.sources import ImageFolder, SourceFrame

        lightness = [to_lightness(item.pixels) for item in ImageFolder(sequence) if isinstance(item, SourceFrame)]
        return {"sequence": str(sequence), "frames": len(lightness), "unit": "a*b* per frame (absolute)",
                "methods": {name: flicker([m(np.ascontiguousarray(lum)) for lum in lightness])
                            for name, m in methods.items()}}
    rgbs = [rgb for rgb, _ in islice(colour_photos(Path(dataset_dir), split, min_chroma), photos)]
    if not rgbs:
        raise ValueError(f"no colour photo in {Path(dataset_dir) / split} to pan over")
    ratios: dict[str, list[float]] = {name: [] for name in methods}
    for rgb in rgbs:
        labs = [rgb_to_lab(crop) for crop in pan_sequence(rgb, frames, pan)]
        truth = flicker([lab[..., 1:].transpose(2, 0, 1) for lab in labs])
        for name, method in methods.items():
            change = flicker([method(np.ascontiguousarray(lab[..., 0])) for lab in labs])
            ratios[name].append(change / truth)
    return {"sequence": f"pans of {frames} frames, {pan} px a frame, over {len(rgbs)} {split} photos",
            "frames": frames, "unit": "ratio to the ground truth's own change",
            "methods": {name: float(np.mean(r)) for name, r in ratios.items()}}


def truth_blockiness(dataset_dir: Path, split: str, tile: int, overlap: int, limit: int | None,
                     min_chroma: float = DEFAULT_MIN_CHROMA) -> float | None:
    """The ground truth's own blockiness on the blended grid: what a photo without any tiling scores."""
    total = None
    for _, lab in colour_photos(dataset_dir, split, min_chroma, limit):
        folded = _folded(lab[..., 1:].transpose(2, 0, 1), plan_tiles(*lab.shape[:2], tile, overlap))
        total = folded if total is None else total + folded
    return blockiness(total)


def bench_quality(dataset_dir: str | Path, model: str | Path, split: str = "val", limit: int | None = None,
                  overlap: int | None = None, sequence: str | Path | None = None, photos: int = 4,
                  frames: int = 8, pan: int = 2) -> dict:
    """The model (through the engine's blended tiling, and stitched from non-overlapping tiles as the seed
    did) beside the constant, lightness and grey baselines on `split` of a prepared dataset (`oppy-train
    prepare`): ΔE00, ab PSNR, colourfulness ratio, seam blockiness and flicker."""
    dataset_dir = Path(dataset_dir)
    predict, contract = load_predictor(model)
    tile = contract.tile_size
    blend_overlap = contract.overlap if overlap is None else overlap
    chroma = {"model": model_method(predict, contract, blend_overlap),
              "model, stitched (seed-style)": model_method(predict, contract, 0),
              **baselines(dataset_dir)}
    grid = {name: 0 if "stitched" in name else blend_overlap for name in chroma}
    meters = {name: SeamMeter(method, tile, grid[name]) for name, method in chroma.items()}
    metrics = evaluate(meters, dataset_dir, split, limit=limit)
    motion = sequence_flicker(chroma, dataset_dir, split, Path(sequence) if sequence else None, photos, frames, pan)
    rows = [{"method": name, **metrics["methods"][name], "seam_blockiness": meters[name].blockiness,
             "grid_stride": tile - grid[name], "flicker": motion["methods"][name]} for name in chroma]
    return {"dataset": str(dataset_dir), "split": split, "model": str(model), "photos": metrics["photos"],
            "skipped_greyscale": metrics["skipped_greyscale"], "overlap": blend_overlap, "rows": rows,
            "truth_blockiness": truth_blockiness(dataset_dir, split, tile, blend_overlap, limit),
            "flicker": {k: v for k, v in motion.items() if k != "methods"}}
