"""A model's colours beside the baselines: training's evaluation metrics, plus seam blockiness and flicker.

Seam blockiness (1.0 = no tile grid): the mean |Δab| between neighbouring pixels, folded into bins of one tile
stride along columns and rows, max bin / median bin. Flicker: mean |Δab| between consecutive frames, relative
to the ground truth's own change where it is known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice, pairwise
from pathlib import Path

import numpy as np

from oppy.engine.config import AUTO, fixed_chroma_scale, parse_chroma_scale
from oppy.engine.kernels.chroma_scale import choose_scale, grow_bilinear, scaled_size
from oppy.engine.kernels.lab import rgb_to_lab, to_lightness
from oppy.engine.kernels.tiles import TilePlan, plan_tiles
from oppy.training.data import split_files
from oppy.training.evaluate import baselines, evaluate, load_predictor, model_method, read_rgb
from oppy.training.prepare import DEFAULT_MIN_CHROMA

ChromaMethod = Callable[[np.ndarray], np.ndarray]  # HxW L* -> 2xHxW a*, b*


def _folded(ab: np.ndarray, plan: TilePlan, ratio: tuple[float, float] = (1.0, 1.0),
            bins: int | None = None) -> np.ndarray:
    """Sums and counts [2 axes (columns, rows), 2 (sum, count), bins] of the mean over a*, b* of |Δ| between
    horizontally (columns) and vertically (rows) neighbouring pixels of 2xHxW `ab`, binned by where the step
    lies on the tile grid of `plan`, the grid of a copy `ratio` (rows, columns: the copy's size over ab's) the
    size of `ab` (the chroma scale it was predicted at).

    The stride period is cut into `bins` bins (default: the stride in pixels of `ab`); bin 0 holds the steps into
    the first pixel of a tile's stride period (padded coordinate a multiple of the stride): with overlap 0 and at
    scale 1 exactly where two tiles are stitched."""
    stride = plan.stride
    bins = bins or max(1, round(stride / ratio[1]))
    out = np.zeros((2, 2, bins))
    ab = np.asarray(ab, np.float64)
    for i, (axis, pad, scale) in enumerate(((2, plan.pad_left, ratio[1]), (1, plan.pad_top, ratio[0]))):
        step = np.abs(np.diff(ab, axis=axis)).mean(axis=0)  # [H, W-1] or [H-1, W]
        profile = step.sum(axis=0 if axis == 2 else 1)  # per position of the step along that axis
        phase = (np.arange(1, len(profile) + 1) * scale + pad) % stride  # on the copy's padded grid
        where = np.minimum((phase * bins / stride).astype(np.int64), bins - 1)
        out[i, 0] = np.bincount(where, weights=profile, minlength=bins)
        out[i, 1] = np.bincount(where, minlength=bins) * step.shape[0 if axis == 2 else 1]
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


def seam_blockiness(ab: np.ndarray, plan: TilePlan, ratio: tuple[float, float] = (1.0, 1.0)) -> float | None:
    """Seam blockiness of one 2xHxW a*, b* image tiled by `plan` on a copy `ratio` its size (1.0: no grid shows)."""
    return blockiness(_folded(ab, plan, ratio))


class SeamMeter:
    """A chroma method that also folds the |Δab| profile of everything it returns on the grid of tiles of
    `tile` px overlapping by `overlap` (the grid its method tiles with, or the model's for methods without), cut
    from the copy of each frame at the chroma scale `scale_of(height, width)` gives (default 1)."""

    def __init__(self, method: ChromaMethod, tile: int, overlap: int,
                 scale_of: Callable[[int, int], float] | None = None):
        self.method, self.tile, self.overlap = method, tile, overlap
        self.scale_of = scale_of or (lambda height, width: 1.0)
        self.profile: np.ndarray | None = None

    def __call__(self, lightness: np.ndarray) -> np.ndarray:
        ab = self.method(lightness)
        height, width = lightness.shape
        small = scaled_size(height, width, self.scale_of(height, width))
        plan = plan_tiles(*small, self.tile, self.overlap)
        bins = None if self.profile is None else self.profile.shape[-1]
        folded = _folded(ab, plan, (small[0] / height, small[1] / width), bins)
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
                  limit: int | None = None, upscale: float = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(HxWx3 uint8 RGB, its LAB) of the photos among the first `limit` of `split` that evaluation takes: those
    whose ground truth is not greyscale (mean C*ab at least `min_chroma`), enlarged `upscale` times (`read_rgb`)."""
    for path in split_files(dataset_dir, split)[:limit]:
        rgb = read_rgb(path, upscale)
        lab = rgb_to_lab(rgb)
        if np.hypot(lab[..., 1], lab[..., 2]).mean() >= min_chroma:
            yield rgb, lab


def sequence_flicker(methods: dict[str, ChromaMethod], dataset_dir: Path, split: str = "val",
                     sequence: Path | None = None, photos: int = 4, frames: int = 8, pan: int = 2,
                     min_chroma: float = DEFAULT_MIN_CHROMA, upscale: float = 1) -> dict:
    """Each method's flicker: on the grey frames of `sequence` (a folder, natural order) in absolute a*, b*
    units; without one, on slow pans (`pan_sequence`) over the first `photos` colour photos of `split` (enlarged
    `upscale` times, the pan too), as a ratio to the ground truth's own frame-to-frame change (1.0: no more change
    than the scene's)."""
    if sequence is not None:
        from oppy.engine.inputs.sources import ImageFolder, SourceFrame

        lightness = [to_lightness(item.pixels) for item in ImageFolder(sequence) if isinstance(item, SourceFrame)]
        return {"sequence": str(sequence), "frames": len(lightness), "unit": "a*b* per frame (absolute)",
                "methods": {name: flicker([m(np.ascontiguousarray(lum)) for lum in lightness])
                            for name, m in methods.items()}}
    step = max(1, round(pan * upscale))
    rgbs = [rgb for rgb, _ in islice(colour_photos(Path(dataset_dir), split, min_chroma, upscale=upscale), photos)]
    if not rgbs:
        raise ValueError(f"no colour photo in {Path(dataset_dir) / split} to pan over")
    ratios: dict[str, list[float]] = {name: [] for name in methods}
    for rgb in rgbs:
        labs = [rgb_to_lab(crop) for crop in pan_sequence(rgb, frames, step)]
        truth = flicker([lab[..., 1:].transpose(2, 0, 1) for lab in labs])
        for name, method in methods.items():
            change = flicker([method(np.ascontiguousarray(lab[..., 0])) for lab in labs])
            ratios[name].append(change / truth)
    return {"sequence": f"pans of {frames} frames, {step} px a frame, over {len(rgbs)} {split} photos",
            "frames": frames, "unit": "ratio to the ground truth's own change",
            "methods": {name: float(np.mean(r)) for name, r in ratios.items()}}


def truth_blockiness(dataset_dir: Path, split: str, tile: int, overlap: int, limit: int | None,
                     min_chroma: float = DEFAULT_MIN_CHROMA, upscale: float = 1,
                     scale_of: Callable[[int, int], float] | None = None) -> float | None:
    """The ground truth's own blockiness on the model's blended grid (at the chroma scale `scale_of` gives): what a
    photo without any tiling scores."""
    meter = SeamMeter(lambda lightness: lightness, tile, overlap, scale_of)
    for _, lab in colour_photos(dataset_dir, split, min_chroma, limit, upscale):
        meter.method = lambda lightness, lab=lab: lab[..., 1:].transpose(2, 0, 1)
        meter(lab[..., 0])
    return meter.blockiness


class _Counted:
    """A tile predictor that counts the tiles it is given."""

    def __init__(self, predict):
        self.predict, self.tiles = predict, 0

    def __call__(self, tiles: np.ndarray, *context: np.ndarray) -> np.ndarray:
        self.tiles += len(tiles)
        return self.predict(tiles, *context)


def bench_quality(dataset_dir: str | Path, model: str | Path, split: str = "val", limit: int | None = None,
                  overlap: int | None = None, sequence: str | Path | None = None, photos: int = 4,
                  frames: int = 8, pan: int = 2, chroma_scale: str | float = AUTO, upscale: float = 1,
                  references: bool = True, cast_matched: bool = False) -> dict:
    """The model (through the engine's blended tiling at `chroma_scale`, and stitched from non-overlapping tiles
    at full resolution as the seed did) beside the constant, lightness and grey baselines on `split` of a prepared
    dataset (`oppy-train prepare`), its photos enlarged `upscale` times: ΔE00, ab PSNR, colourfulness ratio, seam
    blockiness, flicker and tiles per photo. Where the scale is not 1, the model at scale 1 and at the same scale
    grown back bilinearly (without L's guidance) are rows too. `cast_matched`: each row's ΔE00 also with each photo's
    mean a*, b* set to the truth's (`evaluate`), what the photos' overall colour cast costs."""
    dataset_dir = Path(dataset_dir)
    predict, contract = load_predictor(model)
    tile = contract.tile_size
    blend_overlap = contract.overlap if overlap is None else overlap
    setting = parse_chroma_scale(chroma_scale)
    scaled = setting != 1 and not (setting == AUTO and contract.scene_size is None)

    def scale_of(height: int, width: int) -> float:
        return choose_scale(height, width, fixed_chroma_scale(setting), contract.scene_size, contract.tile_size)

    counters = {"model": _Counted(predict)}
    chroma = {"model": model_method(counters["model"], contract, blend_overlap, setting)}
    if scaled and references:
        counters["model, chroma scale 1"] = _Counted(predict)
        chroma["model, chroma scale 1"] = model_method(counters["model, chroma scale 1"], contract, blend_overlap)
        chroma["model, bilinear growth"] = model_method(predict, contract, blend_overlap, setting, grow_bilinear)
    if references:
        counters["model, stitched (seed-style)"] = _Counted(predict)
        chroma["model, stitched (seed-style)"] = model_method(counters["model, stitched (seed-style)"], contract, 0)
    chroma.update(baselines(dataset_dir))
    grid = {name: 0 if "stitched" in name else blend_overlap for name in chroma}
    at_scale = {"model", "model, bilinear growth"} if scaled else set()
    meters = {name: SeamMeter(method, tile, grid[name], scale_of if name in at_scale else None)
              for name, method in chroma.items()}
    metrics = evaluate(meters, dataset_dir, split, limit=limit, upscale=upscale, cast_matched=cast_matched)
    tiles = {name: counter.tiles / metrics["photos"] for name, counter in counters.items()}
    motion = sequence_flicker(chroma, dataset_dir, split, Path(sequence) if sequence else None, photos, frames, pan,
                              upscale=upscale)
    rows = [{"method": name, **metrics["methods"][name], "seam_blockiness": meters[name].blockiness,
             "grid_stride": tile - grid[name], "flicker": motion["methods"][name],
             "tiles_per_photo": tiles.get(name)} for name in chroma]
    scales = [scale_of(*rgb.shape[:2]) for rgb, _ in colour_photos(dataset_dir, split, limit=limit, upscale=upscale)]
    return {"dataset": str(dataset_dir), "split": split, "model": str(model), "photos": metrics["photos"],
            "skipped_greyscale": metrics["skipped_greyscale"], "overlap": blend_overlap, "upscale": upscale,
            "chroma_scale": str(setting), "scene_size": contract.scene_size,
            "chroma_scales_used": {"min": min(scales), "median": float(np.median(scales)), "max": max(scales)},
            "rows": rows,
            "truth_blockiness": truth_blockiness(dataset_dir, split, tile, blend_overlap, limit, upscale=upscale,
                                                 scale_of=scale_of if scaled else None),
            "flicker": {k: v for k, v in motion.items() if k != "methods"}}


def bench_chroma_rule(dataset_dir: str | Path, model: str | Path, upscales: tuple[float, ...] = (2, 4),
                      multiples: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5, 2.0), split: str = "val",
                      limit: int | None = 100, overlap: int | None = None) -> dict:
    """What `auto`'s rule is chosen by: on the photos of `split` enlarged K times (each of `upscales`), the model's
    ΔE00 and colourfulness ratio when the copy's long side is each of `multiples` x the model's scene size (never
    above scale 1, never under one tile), and at scale 1; the multiple with the lowest ΔE00 at each K."""
    from oppy.engine.kernels.chroma_scale import chroma_at_scale
    from oppy.engine.kernels.tiles import predict_chroma

    predict, contract = load_predictor(model)
    if contract.scene_size is None:
        raise ValueError(f"{model} states no scene size (oppy.scene_size): there is no rule to measure")
    blend_overlap = contract.overlap if overlap is None else overlap

    def at_multiple(multiple: float | None) -> ChromaMethod:
        def method(lightness: np.ndarray) -> np.ndarray:
            height, width = lightness.shape
            scale = 1.0 if multiple is None else min(1.0, max(multiple * contract.scene_size / max(height, width),
                                                              contract.tile_size / min(height, width)))
            return chroma_at_scale(lightness, lambda small: predict_chroma(small, predict, contract, blend_overlap),
                                   scale, contract.scene_size, contract.tile_size)

        return method

    rows, best = [], {}
    for upscale in upscales:
        methods = {f"{m:g}x scene": at_multiple(m) for m in multiples} | {"scale 1": at_multiple(None)}
        metrics = evaluate(methods, dataset_dir, split, limit=limit, upscale=upscale)
        for name, values in metrics["methods"].items():
            rows.append({"upscale": upscale, "copy": name, **values})
        scored = [row for row in rows if row["upscale"] == upscale and row["copy"] != "scale 1"]
        best[str(upscale)] = min(scored, key=lambda row: row["delta_e00"])["copy"]
    return {"dataset": str(dataset_dir), "split": split, "limit": limit, "model": str(model),
            "scene_size": contract.scene_size, "photos": metrics["photos"], "rows": rows, "best": best}
