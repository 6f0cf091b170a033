"""Colour that holds still, measured without ground truth: the engine's stream with temporal smoothing and without, in
one run, on pans over the validation photos (where the truth is known too) and on folders of frames in order.

- chroma warp error (Lai et al. 2018, on a*, b*): optical flow (OpenCV DIS) on the input's L from frame t to t-1,
  the previous output's a*, b* warped onto frame t, mean |Δa*b*| over the pixels whose forward and backward flows
  agree;
- jitter: the RMS over time of the second difference of the frame's mean a*, b*;
- CDC (TCVC, Liu et al.): the Jensen-Shannon divergence of the RGB histograms of frames 1, 2 and 4 apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from oppy.engine import Engine
from oppy.engine.kernels.lab import rgb_to_lab, to_lightness
from oppy.training.metrics import delta_e_ciede2000

from .quality import colour_photos

#: the pans: photos enlarged UPSCALE times, a WINDOW px square moving PAN px a frame for FRAMES frames
UPSCALE, WINDOW, PAN, FRAMES = 4.0, 512, 6, 16
CDC_STEPS = (1, 2, 4)


def pan_frames(rgb: np.ndarray, frames: int = FRAMES, window: int = WINDOW, pan: int = PAN) -> list[np.ndarray]:
    """`frames` square crops of `window` px (smaller where the photo is) of an HxWx3 photo, each `pan` px right of
    the last (and down, where the photo is wider than tall is not enough): a slow pan whose colour is known."""
    height, width = rgb.shape[:2]
    side = min(window, height, width - pan * (frames - 1))
    if side < 16:
        raise ValueError(f"a {width}x{height} photo is too small for {frames} frames panning {pan} px")
    top = (height - side) // 2
    return [np.ascontiguousarray(rgb[top: top + side, i * pan: i * pan + side]) for i in range(frames)]


def _flows(previous: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(map x, map y) taking each pixel of `current` to where it was in `previous` (both HxW L*), and the mask of
    pixels whose forward and backward flows agree (Lai et al.'s occlusion test)."""
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    planes = [np.clip(lum * 2.55 + 0.5, 0, 255).astype(np.uint8) for lum in (current, previous)]
    backward = flow.calc(planes[0], planes[1], None)
    forward = flow.calc(planes[1], planes[0], None)
    height, width = current.shape
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x, map_y = grid_x + backward[..., 0], grid_y + backward[..., 1]
    returned = cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    error = np.square(backward + returned).sum(axis=2)
    allowed = 0.01 * (np.square(backward).sum(axis=2) + np.square(returned).sum(axis=2)) + 0.5
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return (map_x, map_y), (error < allowed) & inside


def warp_error(lightness: list[np.ndarray], chroma: list[np.ndarray]) -> float:
    """Mean |Δ| over a*, b* between each frame's chroma (HxWx2) and the previous frame's warped onto it, over the
    pixels whose flows agree (flow on the input's L*); the mean over consecutive pairs."""
    errors = []
    for t in range(1, len(chroma)):
        (map_x, map_y), held = _flows(lightness[t - 1], lightness[t])
        warped = cv2.remap(chroma[t - 1], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if held.any():
            errors.append(float(np.abs(chroma[t] - warped)[held].mean()))
    return float(np.mean(errors)) if errors else 0.0


def jitter(chroma: list[np.ndarray]) -> float:
    """RMS over time and over a*, b* of the second difference of each frame's mean a*, b* (HxWx2 frames)."""
    means = np.array([frame.reshape(-1, 2).mean(axis=0) for frame in chroma], np.float64)
    if len(means) < 3:
        return 0.0
    return float(np.sqrt(np.mean(np.square(means[2:] - 2 * means[1:-1] + means[:-2]))))


def _channel_histograms(rgb: np.ndarray) -> np.ndarray:
    counts = np.stack([np.bincount(rgb[..., c].ravel(), minlength=256) for c in range(3)]).astype(np.float64)
    return counts / counts.sum(axis=1, keepdims=True)


def _jensen_shannon(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    middle = (p + q) / 2

    def kl(a: np.ndarray) -> np.ndarray:
        ratio = np.divide(a, middle, out=np.ones_like(a), where=a > 0)
        return (a * np.log(ratio)).sum(axis=-1)

    return (kl(p) + kl(q)) / 2


def cdc(rgbs: list[np.ndarray], steps: Iterable[int] = CDC_STEPS) -> float:
    """Colour distribution consistency: the mean over `steps` t of the Jensen-Shannon divergence (natural log)
    between the R, G and B histograms of frames t apart (HxWx3 uint8), over channels and pairs (0: unchanging)."""
    histograms = [_channel_histograms(rgb) for rgb in rgbs]
    per_step = [np.mean([_jensen_shannon(histograms[i], histograms[i + t]).mean() for i in range(len(rgbs) - t)])
                for t in steps if t < len(rgbs)]
    return float(np.mean(per_step)) if per_step else 0.0


def sequence_measures(lightness: list[np.ndarray], rgbs: list[np.ndarray]) -> dict[str, float]:
    """Warp error, jitter and CDC of a coloured sequence: its input L* and its RGB output."""
    chroma = [rgb_to_lab(rgb)[..., 1:] for rgb in rgbs]
    return {"warp_error": warp_error(lightness, chroma), "jitter": jitter(chroma), "cdc": cdc(rgbs)}


def _truth_error(rgbs: list[np.ndarray], labs: list[np.ndarray]) -> float:
    """Mean ΔE00 of the output's a*, b* at the truth's L* against the truth."""
    errors = []
    for rgb, truth in zip(rgbs, labs, strict=True):
        seen = rgb_to_lab(rgb)
        seen[..., 0] = truth[..., 0]
        errors.append(float(delta_e_ciede2000(seen, truth).mean()))
    return float(np.mean(errors))


def _mean(rows: list[dict]) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def _pans(runs: dict[str, Engine], dataset: Path, split: str, photos: int) -> dict:
    """The pans over `photos` photos, back to back in one stream per engine (so each pan after the first begins
    with a cut): the figures of each pan, averaged; and at each cut, the ΔE00 of the smoothed frame against the
    same frame coloured alone."""
    pans = [pan_frames(rgb) for rgb, _ in islice(colour_photos(dataset, split, upscale=UPSCALE), photos)]
    if not pans:
        raise ValueError(f"no colour photo in {dataset / split} to pan over")
    labs = [[rgb_to_lab(frame) for frame in frames] for frames in pans]
    lightness = [[np.ascontiguousarray(lab[..., 0]) for lab in sequence] for sequence in labs]
    outputs = {name: list(engine.stream([frame for frames in pans for frame in frames]))
               for name, engine in runs.items()}
    rows: dict[str, list[dict]] = {"truth": [sequence_measures(lum, frames)
                                             for lum, frames in zip(lightness, pans, strict=True)]}
    for name, out in outputs.items():
        rows[name], first = [], 0
        for sequence, lum in zip(labs, lightness, strict=True):
            mine = out[first: first + len(sequence)]
            rows[name].append({**sequence_measures(lum, mine), "delta_e00": _truth_error(mine, sequence)})
            first += len(sequence)
    starts = [0, *np.cumsum([len(frames) for frames in pans])[:-1].tolist()]
    at_cuts = [float(delta_e_ciede2000(rgb_to_lab(outputs["smoothed"][i]), rgb_to_lab(outputs["alone"][i])).mean())
               for i in starts[1:]]
    series = {"truth": [lab[..., 1:].reshape(-1, 2).mean(axis=0).tolist() for sequence in labs for lab in sequence],
              **{name: [rgb_to_lab(rgb)[..., 1:].reshape(-1, 2).mean(axis=0).tolist() for rgb in out]
                 for name, out in outputs.items()}}
    result = {"photos": len(pans), "frames": FRAMES, "window": WINDOW, "pan_px": PAN, "upscale": UPSCALE,
              **{name: _mean(values) for name, values in rows.items()},
              "cut_delta_e00_vs_alone": {"max": max(at_cuts), "mean": float(np.mean(at_cuts))} if at_cuts else None,
              "starts": starts, "series": series}
    result["ratios"] = _ratios(result)
    return result


def _folder(runs: dict[str, Engine], folder: str | Path) -> dict:
    """The figures of each engine on a folder of frames in natural order (warp error only where they share a
    size)."""
    from oppy.engine.inputs.sources import ImageFolder, SourceFrame

    grey = [item.pixels for item in ImageFolder(folder) if isinstance(item, SourceFrame)]
    if len(grey) < 3:
        raise ValueError(f"{folder} holds {len(grey)} readable frames: a sequence needs at least 3")
    lightness = [to_lightness(frame) for frame in grey]
    one_size = len({frame.shape[:2] for frame in grey}) == 1
    row = {"folder": str(folder), "frames": len(grey)}
    for name, engine in runs.items():
        out = list(engine.stream(grey))
        row[name] = sequence_measures(lightness, out) if one_size else {
            "jitter": jitter([rgb_to_lab(rgb)[..., 1:] for rgb in out]), "cdc": cdc(out)}
    row["ratios"] = _ratios(row)
    return row


def bench_temporal(model: str | Path | None, dataset: str | Path | None = None, folders: Iterable[str | Path] = (),
                   strength: float | None = None, photos: int = 8, split: str = "val", provider: str = "cpu",
                   **engine_options) -> dict:
    """The engine with temporal strength `strength` (default: the engine's) and with 0, in one run: on pans over
    the first `photos` colour photos of `split` of a prepared `dataset` (with the truth's own figures, ΔE00 against
    it, and the frame after each cut against itself coloured alone), and on each folder of frames in `folders`."""
    if dataset is None and not folders:
        raise ValueError("give a prepared dataset (pans over its photos) or a folder of frames in order, or both")
    smoothing = {"temporal": strength} if strength is not None else {}
    with Engine(model, provider=provider, **{**engine_options, "temporal": 0.0}) as alone, \
            Engine(model, provider=provider, **{**engine_options, **smoothing}) as smoothed:
        runs = {"alone": alone, "smoothed": smoothed}
        result: dict = {"model": str(model or "packaged default"), "strength": smoothed.config.temporal,
                        "provider": smoothed.provider}
        if dataset is not None:
            result["pans"] = _pans(runs, Path(dataset), split, photos)
        result["folders"] = [_folder(runs, folder) for folder in folders]
    return result


def _ratios(rows: dict) -> dict[str, float]:
    """Each figure of the smoothed run over the same figure alone."""
    smoothed, alone = rows["smoothed"], rows["alone"]
    return {key: smoothed[key] / alone[key] for key in smoothed if alone.get(key)}
