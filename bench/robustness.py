"""Robustness: models on the validation photos as the archive shows scenes (other exposures, tone curves, noise,
JPEG), on real grey frames (no truth), and on slow pans; with the palette guard off and on.

Per perturbation (`PERTURBATIONS`), each photo becomes an input L* and a truth:
- exposure (gain in linear light, `training.augment.exposed`): the truth is the photo as it would have been taken;
- a tone curve on L* alone (gamma, flat): the truth keeps its a*, b* at the new L*;
- noise, JPEG: the input's grey frame loses detail; the truth is the photo as it is.
ΔE00 is the output's colour (its a*, b* at the truth's L*, as a viewer sees it: 8-bit RGB) against the truth, and
the ratio to the same method's ΔE00 on the photos as they are. A photo is blotched where more than 0.5% of its
pixels take a hue the truth does not have there (`training.metrics.blotched`: blue or green).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from oppy.engine.config import AUTO
from oppy.engine.kernels.lab import l_ab_to_rgb, rgb_to_lab
from oppy.training.augment import exposed, flat_curve, gamma_curve, jpeg, noisy
from oppy.training.evaluate import baselines, load_predictor, model_method
from oppy.training.metrics import HUES, blotched, delta_e_ciede2000, hue_shares, invented_hue_share

from .quality import ChromaMethod, colour_photos, sequence_flicker

#: each perturbation: (photo RGB, its LAB, a random generator) -> (input L*, truth LAB)
Perturbation = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _exposure(gain: float) -> Perturbation:
    def perturb(rgb, lab, rng):
        truth = rgb_to_lab(exposed(rgb, gain))
        return np.ascontiguousarray(truth[..., 0]), truth

    return perturb


def _tone(curve: Callable[[np.ndarray], np.ndarray]) -> Perturbation:
    def perturb(rgb, lab, rng):
        lightness = np.ascontiguousarray(curve(lab[..., 0]))
        seen = l_ab_to_rgb(lightness, np.ascontiguousarray(lab[..., 1:].transpose(2, 0, 1)))
        return lightness, rgb_to_lab(seen)

    return perturb


def _grey_loss(loss: Callable[[np.ndarray, np.random.Generator], np.ndarray]) -> Perturbation:
    def perturb(rgb, lab, rng):
        return np.ascontiguousarray(loss(np.ascontiguousarray(lab[..., 0]), rng)), lab

    return perturb


PERTURBATIONS: dict[str, Perturbation | None] = {
    "as is": None,
    "exposure x0.5": _exposure(0.5),
    "exposure x0.2": _exposure(0.2),
    "gamma 1.8": _tone(lambda lightness: gamma_curve(lightness, 1.8)),
    "flat": _tone(lambda lightness: flat_curve(lightness, 0.5)),
    "noise 6": _grey_loss(lambda lightness, rng: noisy(lightness, 6.0, rng)),
    "jpeg 30": _grey_loss(lambda lightness, rng: jpeg(lightness, 30)),
}


def _settings(name: str, has_palette: bool, guard: tuple[bool, ...]) -> list[tuple[bool, str]]:
    """(guard on?, label) for each of the `guard` settings a model has: one, named as the model, without a palette."""
    settings = guard if has_palette else (False,)
    return [(on, f"{name}, guard {'on' if on else 'off'}" if len(settings) > 1 else name) for on in settings]


def model_methods(models: dict[str, str | Path], chroma_scale: str | float = AUTO,
                  guard: tuple[bool, ...] = (False, True)) -> dict[str, ChromaMethod]:
    """Each model as chroma methods through the engine's path at `chroma_scale`, with the palette guard off and on
    (`NAME, guard on` only where the model has a palette)."""
    methods = {}
    for name, path in models.items():
        predict, contract = load_predictor(path)
        for on, label in _settings(name, contract.palette is not None, guard):
            methods[label] = model_method(predict, contract, contract.overlap, chroma_scale, palette_guard=on)
    return methods


def perturbed_quality(methods: dict[str, ChromaMethod], dataset_dir: str | Path, split: str = "val",
                      limit: int | None = None, perturbations: tuple[str, ...] = tuple(PERTURBATIONS),
                      seed: int = 0) -> dict:
    """ΔE00, its ratio to the photos as they are, and the blotch rate of each method under each perturbation."""
    unknown = [name for name in perturbations if name not in PERTURBATIONS]
    if unknown:
        raise ValueError(f"unknown perturbation {unknown[0]!r}: choose from {', '.join(PERTURBATIONS)}")
    totals = {p: {m: {"delta_e00": 0.0, "blotched": 0, "invented": 0.0} for m in methods} for p in perturbations}
    photos = 0
    for index, (rgb, lab) in enumerate(colour_photos(Path(dataset_dir), split, limit=limit)):
        photos += 1
        for name in perturbations:
            perturb = PERTURBATIONS[name]
            rng = np.random.default_rng([seed, index])
            lightness, truth = ((np.ascontiguousarray(lab[..., 0]), lab) if perturb is None
                                else perturb(rgb, lab, rng))
            truth_lightness = np.ascontiguousarray(truth[..., 0])
            for method_name, method in methods.items():
                chroma = np.ascontiguousarray(method(lightness), np.float32)
                seen = rgb_to_lab(l_ab_to_rgb(truth_lightness, chroma))
                total = totals[name][method_name]
                total["delta_e00"] += float(delta_e_ciede2000(seen, truth).mean())
                total["blotched"] += blotched(seen, truth)
                total["invented"] += invented_hue_share(seen, truth)
    if not photos:
        raise ValueError(f"no colour photo in {Path(dataset_dir) / split}")
    rows = []
    for method_name in methods:
        row = {"method": method_name}
        plain = totals["as is"][method_name]["delta_e00"] / photos if "as is" in totals else None
        for name in perturbations:
            total = totals[name][method_name]
            delta = total["delta_e00"] / photos
            row[name] = {"delta_e00": delta, "ratio": delta / plain if plain else None,
                         "blotch_rate": total["blotched"] / photos, "invented_share": total["invented"] / photos}
        rows.append(row)
    return {"split": split, "photos": photos, "perturbations": list(perturbations), "rows": rows}


def grey_frames_hues(models: dict[str, str | Path], folder: str | Path,
                     guard: tuple[bool, ...] = (False, True)) -> dict:
    """Each model (guard off and on) through the engine on a folder of real grey frames (no truth): the frames
    blotched (more than 0.5% of the pixels blue or green) by name, and the mean share of the pixels by hue."""
    from oppy.engine import Engine
    from oppy.engine.inputs.sources import ImageFolder, SourceFrame

    frames = [(item.name, item.pixels) for item in ImageFolder(folder) if isinstance(item, SourceFrame)]
    if not frames:
        raise ValueError(f"no frames in {folder}")
    rows = []
    for name, path in models.items():
        with Engine(path, provider="cpu") as engine:
            has_palette = engine.contract.palette is not None
        for on, label in _settings(name, has_palette, guard):
            shares, blotches = dict.fromkeys(HUES, 0.0), []
            with Engine(path, provider="cpu", palette_guard=on) as engine:
                for frame_name, pixels in frames:
                    lab = rgb_to_lab(engine.colorize(pixels))
                    for hue, share in hue_shares(lab).items():
                        shares[hue] += share / len(frames)
                    if blotched(lab):
                        blotches.append(frame_name)
            rows.append({"method": label, "frames": len(frames), "blotched_frames": len(blotches),
                         "blotched": blotches, "hue_shares": shares})
    return {"folder": str(folder), "frames": len(frames), "rows": rows}


def bench_robustness(dataset_dir: str | Path | None, models: dict[str, str | Path], split: str = "val",
                     limit: int | None = None, grey: str | Path | None = None,
                     perturbations: tuple[str, ...] = tuple(PERTURBATIONS), flicker_photos: int = 8,
                     lightness_baseline: bool = True) -> dict:
    """`perturbed_quality` and the pans' flicker on a prepared dataset (with the lightness baseline beside the
    models), and `grey_frames_hues` on a folder of real grey frames, either or both."""
    if dataset_dir is None and grey is None:
        raise ValueError("give a prepared dataset, a folder of grey frames (--grey), or both")
    result: dict = {"models": {name: str(path) for name, path in models.items()}}
    if dataset_dir is not None:
        methods = model_methods(models)
        if lightness_baseline:
            methods["chroma from lightness"] = baselines(dataset_dir)["lightness"]
        result["perturbed"] = perturbed_quality(methods, dataset_dir, split, limit, perturbations)
        if flicker_photos > 0:  # 0: no pans
            result["flicker"] = sequence_flicker(methods, Path(dataset_dir), split, photos=flicker_photos)
    if grey is not None:
        result["grey"] = grey_frames_hues(models, grey)
    return result
