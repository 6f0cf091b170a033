"""Evaluation on the validation split through the engine's real tiling and blending path, beside baselines.

Baselines are fitted on the train split: constant mean chroma, chroma from lightness alone (mean a*, b* at
each integer L*, a 101-entry table), and plain grey. Metrics come from `oppy.training.metrics`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from oppy.engine.config import fixed_chroma_scale
from oppy.engine.contract import DEFAULT_OVERLAP, TRAINING_CONTRACT, ModelContract
from oppy.engine.kernels.chroma_scale import Upsampler, chroma_at_scale, grow
from oppy.engine.kernels.lab import l_ab_to_rgb, rgb_to_lab
from oppy.engine.kernels.tiles import predict_chroma
from oppy.export.network import RUN_SUMMARY, keras_predict
from oppy.training.metrics import ab_psnr, colourfulness, delta_e_ciede2000

from .data import DEFAULT_MIN_CHROMA, split_files

Predictor = Callable[[np.ndarray], np.ndarray]  # L tiles [n, T, T, 1] -> raw ab tiles [n, T, T, 2]
ChromaMethod = Callable[[np.ndarray], np.ndarray]  # HxW L* -> 2xHxW a*, b*


def read_rgb(path: Path, upscale: float = 1) -> np.ndarray:
    """A prepared photo as HxWx3 uint8 RGB; with `upscale` K, enlarged K times (bicubic), as if a camera of K times
    the resolution had taken the same scene (for measuring only: never train on enlarged photos)."""
    rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if upscale != 1:
        height, width = rgb.shape[:2]
        rgb = cv2.resize(rgb, (round(width * upscale), round(height * upscale)), interpolation=cv2.INTER_CUBIC)
    return rgb


def fit_lightness_table(dataset_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(mean a*, b* over all train pixels [2], mean a*, b* per integer L* 0..100 [101, 2]), photo by photo.

    An L* bin no train pixel falls in takes the overall mean."""
    sums, counts = np.zeros((101, 2)), np.zeros(101)
    for path in split_files(dataset_dir, "train"):
        lab = rgb_to_lab(read_rgb(path)).reshape(-1, 3)
        bins = np.clip(np.rint(lab[:, 0]), 0, 100).astype(int)
        counts += np.bincount(bins, minlength=101)
        for channel in range(2):
            sums[:, channel] += np.bincount(bins, weights=lab[:, 1 + channel], minlength=101)
    if not counts.sum():
        raise FileNotFoundError(f"no train photos in {dataset_dir}")
    overall = sums.sum(axis=0) / counts.sum()
    table = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], overall)
    return overall, table


def baselines(dataset_dir: str | Path) -> dict[str, ChromaMethod]:
    """The three reference methods, fitted on the train split."""
    overall, table = fit_lightness_table(dataset_dir)
    table32 = table.astype(np.float32)

    def constant(lightness):
        return np.broadcast_to(overall.astype(np.float32)[:, None, None], (2, *lightness.shape))

    def from_lightness(lightness):
        return np.ascontiguousarray(table32[np.clip(np.rint(lightness), 0, 100).astype(int)].transpose(2, 0, 1))

    def grey(lightness):
        return np.zeros((2, *lightness.shape), np.float32)

    return {"constant": constant, "lightness": from_lightness, "grey": grey}


def model_method(predict: Predictor, contract: ModelContract = TRAINING_CONTRACT, overlap: int = DEFAULT_OVERLAP,
                 chroma_scale: str | float = 1.0, upsample: Upsampler = grow,
                 palette_guard: bool = True) -> ChromaMethod:
    """A model as a chroma method, through the engine's tiling and blending at `chroma_scale` ("auto" or a number in
    (0, 1], as `EngineConfig.chroma_scale`), the palette guard where the contract has a palette and `palette_guard`
    (as `EngineConfig.palette_guard`), grown back to full resolution by `upsample`."""
    palette = contract.palette if palette_guard else None

    def chroma_of(small: np.ndarray) -> np.ndarray:
        ab = predict_chroma(small, predict, contract, overlap)
        if palette is not None:
            ab = np.ascontiguousarray(ab, np.float32)
            palette.guard(small, ab)
        return ab

    def method(lightness: np.ndarray) -> np.ndarray:
        return chroma_at_scale(lightness, chroma_of, fixed_chroma_scale(chroma_scale), contract.scene_size,
                               contract.tile_size,
                               upsample)

    return method


def evaluate(methods: dict[str, ChromaMethod], dataset_dir: str | Path, split: str = "val",
             min_chroma: float = DEFAULT_MIN_CHROMA, limit: int | None = None, upscale: float = 1,
             cast_matched: bool = False) -> dict:
    """Mean CIEDE2000 (and the 95th percentile of the photos' own means: where the worst photos stand), mean ab PSNR
    and the colourfulness ratio of each method on `split` (its photos enlarged `upscale` times, see `read_rgb`).

    The output compared is what a viewer gets: the method's chroma with the photo's own L*, converted to
    8-bit RGB (gamut clipped) and back. Photos whose ground truth is greyscale are skipped and counted.

    With `cast_matched`, also `delta_e00_cast_matched`: the mean ΔE00 once each photo's chroma is shifted so that its
    mean a*, b* is the truth's, an oracle that no method has; what remains is the error within the photo, and the
    difference is what the photo's overall colour cast (its light, its camera's colour) costs the method.
    """
    files = split_files(dataset_dir, split)[:limit]
    totals = {name: {"delta_e00": 0.0, "ab_psnr": 0.0, "colourfulness": 0.0, "cast_matched": 0.0} for name in methods}
    per_photo: dict[str, list[float]] = {name: [] for name in methods}
    truth_colourfulness, photos, skipped = 0.0, 0, 0
    for path in files:
        rgb = read_rgb(path, upscale)
        truth = rgb_to_lab(rgb)
        chroma = np.hypot(truth[..., 1], truth[..., 2]).mean()
        if chroma < min_chroma:
            skipped += 1
            continue
        lightness = np.ascontiguousarray(truth[..., 0])
        photos += 1
        truth_colourfulness += colourfulness(rgb)
        for name, method in methods.items():
            chroma = np.ascontiguousarray(method(lightness), np.float32)
            out = l_ab_to_rgb(lightness, chroma)
            seen = rgb_to_lab(out)
            if cast_matched:
                shift = truth[..., 1:].mean(axis=(0, 1)) - chroma.mean(axis=(1, 2))
                matched = l_ab_to_rgb(lightness, np.ascontiguousarray(chroma + shift[:, None, None], np.float32))
                totals[name]["cast_matched"] += float(delta_e_ciede2000(rgb_to_lab(matched), truth).mean())
            photo_delta = float(delta_e_ciede2000(seen, truth).mean())
            totals[name]["delta_e00"] += photo_delta
            per_photo[name].append(photo_delta)
            totals[name]["ab_psnr"] += ab_psnr(seen, truth)
            totals[name]["colourfulness"] += colourfulness(out)
    if not photos:
        raise ValueError(f"no colour photo to evaluate in {Path(dataset_dir) / split}")
    results = {name: {"delta_e00": t["delta_e00"] / photos,
                      "delta_e00_p95": float(np.percentile(per_photo[name], 95)), "ab_psnr": t["ab_psnr"] / photos,
                      "colourfulness_ratio": t["colourfulness"] / truth_colourfulness,
                      **({"delta_e00_cast_matched": t["cast_matched"] / photos} if cast_matched else {})}
               for name, t in totals.items()}
    return {"split": split, "photos": photos, "skipped_greyscale": skipped, "upscale": upscale, "methods": results}


def load_predictor(model: str | Path, batch_size: int = 256) -> tuple[Predictor, ModelContract]:
    """A run directory, a .keras file or an exported .onnx model as a tile predictor with its contract."""
    path = Path(model)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise FileNotFoundError(f"no model at {path}: give a run directory, a .keras file or an .onnx model")
    if path.suffix == ".onnx":
        from oppy.engine.session import ModelSession

        session = ModelSession(path, provider="cpu", batch_size=batch_size)
        return session.predict, session.contract
    import keras

    from oppy.export import layers  # noqa: F401 (registers the layers a network may hold, for loading)

    network = keras.models.load_model(path, compile=False)
    run = path.parent / RUN_SUMMARY
    contract = ModelContract.from_metadata(json.loads(run.read_text())["contract"]) if run.is_file() else \
        TRAINING_CONTRACT

    def predict(tiles: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
        return keras_predict(network, tiles, batch_size, context)

    return predict, contract
