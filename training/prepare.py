"""Dataset preparation: keep the usable colour photos of a folder, resized down where large, split into train and
validation: by a splits file, else by the Mars day in the photo's product id, else by a stable hash of its name.

Every rejected file is reported with its reason. Files are handled one at a time, and a re-run skips what
the manifest already records, so a large archive never sits in memory and an interrupted run resumes.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from oppy.engine.frames import natural_key
from oppy.engine.inputs.facts import day_of
from oppy.engine.inputs.images import IMAGE_SUFFIXES, truncation
from oppy.engine.kernels.lab import rgb_to_lab

from .data import DEFAULT_MIN_CHROMA

# Chosen on the 6,164 real Curiosity photos (see training/README.md for the distributions and counts).
DEFAULT_MIN_SHARPNESS = 10.0  # variance of the Laplacian of 8-bit grey below this is blurry
DEFAULT_MAX_SIDE = 1024
DEFAULT_MIN_SIDE = 64  # the tile

DEFAULT_VAL_FRACTION = 0.1

log = logging.getLogger(__name__)

MANIFEST = "manifest.tsv"
REJECTED = "rejected.tsv"


@dataclass(frozen=True)
class Thresholds:
    min_chroma: float = DEFAULT_MIN_CHROMA
    min_sharpness: float = DEFAULT_MIN_SHARPNESS
    min_side: int = DEFAULT_MIN_SIDE
    max_side: int = DEFAULT_MAX_SIDE


def mean_chroma(rgb: np.ndarray) -> float:
    """Mean CIE C*ab of an RGB photo: about 0 for greyscale, even when stored as three equal channels."""
    lab = rgb_to_lab(rgb)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the photo's 8-bit grey: low for blurry (or featureless) photos."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def fit_within(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Resize down (area filter) so that the long side is at most `max_side`; never upscale."""
    height, width = rgb.shape[:2]
    if max(height, width) <= max_side:
        return rgb
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def judge(path: Path, thresholds: Thresholds) -> tuple[np.ndarray | None, str, dict[str, float]]:
    """Decode and check one photo: (RGB uint8 or None, rejection reason or "", measurements)."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}", {}
    if data.size == 0:
        return None, "empty file", {}
    if truncation(data):
        return None, "truncated", {}
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        return None, "not an image", {}
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if min(rgb.shape[:2]) < thresholds.min_side:
        return None, f"too small ({rgb.shape[1]}x{rgb.shape[0]})", {}
    rgb = fit_within(rgb, thresholds.max_side)
    stats = {"chroma": mean_chroma(rgb), "sharpness": sharpness(rgb)}
    if stats["chroma"] < thresholds.min_chroma:
        return None, "greyscale", stats
    if stats["sharpness"] < thresholds.min_sharpness:
        return None, "blurry", stats
    return rgb, "", stats


def read_splits(path: str | Path) -> dict[str, str]:
    """file name -> split, from a TSV with `file` and `split` columns."""
    with open(path, newline="") as handle:
        return {row["file"]: row["split"] for row in csv.DictReader(handle, delimiter="\t")}


def split_of(name: str, val_fraction: float = DEFAULT_VAL_FRACTION) -> str:
    """"val" or "train" for a photo without a splits file: photos of one Mars day (the sol in a Curiosity product id,
    the clock's day in a MER or MSL one, `facts.day_of`) go together, so that validation scenes are not the
    training scenes seen again; a name without a product id is its own group. A group is in val when a stable hash
    of it (SHA-1, the same on every machine and run) falls in the first `val_fraction` of its range."""
    return "val" if _position(name) < val_fraction else "train"


def _group(name: str) -> str:
    return day_of(name) or name


def _position(name: str) -> float:
    """Where the stable hash of a photo's group falls in [0, 1)."""
    group = _group(name).encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.sha1(group).digest()[:8], "big") / 2.0 ** 64


def _val_groups(dataset_dir: Path) -> set[str]:
    """The days (or names) an earlier run of `prepare` put in val: new photos of them go there too."""
    manifest = dataset_dir / MANIFEST
    if not manifest.exists():
        return set()
    with open(manifest, newline="") as handle:
        return {_group(row["file"]) for row in csv.DictReader(handle, delimiter="\t") if row.get("split") == "val"}


def _ensure_validation(dataset_dir: Path) -> str | None:
    """Where the hash put no kept photo in val but the kept photos span two groups (days, or names) or more, the
    group whose hash lies lowest goes to val, so that a small folder still has a validation split; returns that
    group, else None."""
    manifest = dataset_dir / MANIFEST
    if not manifest.exists():
        return None
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or any(row["split"] == "val" for row in rows) or len({_group(r["file"]) for r in rows}) < 2:
        return None
    chosen = _group(min(rows, key=lambda row: _position(row["file"]))["file"])
    (dataset_dir / "val").mkdir(exist_ok=True)
    for row in rows:
        if _group(row["file"]) == chosen:
            stem = Path(row["file"]).stem
            source = dataset_dir / "train" / f"{stem}.png"
            if source.exists():  # two raw files of one stem share a prepared file: moved with the first
                os.replace(source, dataset_dir / "val" / f"{stem}.png")
            row["split"] = "val"
    with open(manifest.with_suffix(".tmp"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(manifest.with_suffix(".tmp"), manifest)
    return chosen


def _done(dataset_dir: Path) -> set[str]:
    names = set()
    for table in (MANIFEST, REJECTED):
        if (dataset_dir / table).exists():
            with open(dataset_dir / table, newline="") as handle:
                names |= {row["file"] for row in csv.DictReader(handle, delimiter="\t")}
    return names


def _append(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row), delimiter="\t")
        if new:
            writer.writeheader()
        writer.writerow(row)


def prepare(raw_dir: str | Path, dataset_dir: str | Path, splits: str | Path | None = None,
            thresholds: Thresholds = Thresholds(), val_fraction: float = DEFAULT_VAL_FRACTION
            ) -> Iterator[tuple[str, str]]:
    """Filter the photos of `raw_dir` into `dataset_dir/<split>/NAME.png`; yields (file, reason or split).

    With `splits`, each photo goes where the file says, and to `train` where it is not named; without, `split_of`
    decides (`val_fraction` of the days in val; at least one day, or name, where the kept photos span two or
    more). Kept photos are listed in manifest.tsv (file, split, width, height, chroma, sharpness), rejected ones in
    rejected.tsv.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"--val-fraction must be in [0, 1), not {val_fraction}")
    raw_dir, dataset_dir = Path(raw_dir), Path(dataset_dir)
    named = read_splits(splits) if splits else None
    dataset_dir.mkdir(parents=True, exist_ok=True)
    done = _done(dataset_dir)
    val_groups = _val_groups(dataset_dir) if named is None else set()
    files = sorted((p for p in raw_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: natural_key(p.name))
    for path in files:
        if path.name in done:
            continue
        rgb, reason, stats = judge(path, thresholds)
        rounded = {k: f"{v:.2f}" for k, v in stats.items()}
        if rgb is None:
            _append(dataset_dir / REJECTED, {"file": path.name, "reason": reason, **rounded})
            yield path.name, reason
            continue
        split = (named.get(path.name, "train") if named is not None
                 else "val" if _group(path.name) in val_groups else split_of(path.name, val_fraction))
        (dataset_dir / split).mkdir(exist_ok=True)
        cv2.imwrite(str(dataset_dir / split / f"{path.stem}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        _append(dataset_dir / MANIFEST, {"file": path.name, "split": split, "width": rgb.shape[1],
                                         "height": rgb.shape[0], **rounded})
        yield path.name, split
    if named is None and val_fraction > 0:
        moved = _ensure_validation(dataset_dir)
        if moved is not None:
            log.info("no photo fell in val by the hash: the photos of %s went to val, so that there is one", moved)


def filter_sheets(raw_dir: str | Path, dataset_dir: str | Path, out_dir: str | Path, per_sheet: int = 30) -> list[Path]:
    """Contact sheets of what `prepare` did: rejects by reason, and the borderline keeps (the least colourful
    and the least sharp photos kept), each labelled with its measurement. Returns the PNG files written."""
    from .sheets import contact_sheet, save_sheet

    raw_dir, dataset_dir, out_dir = Path(raw_dir), Path(dataset_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def rows(table: str) -> list[dict]:
        if not (dataset_dir / table).exists():
            return []
        with open(dataset_dir / table, newline="") as handle:
            return list(csv.DictReader(handle, delimiter="\t"))

    def label(row: dict, key: str) -> str:
        return f"{row.get(key) or row['reason']} {row['file'][:12]}"

    rejected, kept = rows(REJECTED), rows(MANIFEST)
    groups = {f"rejected-{reason.split()[0]}": [(r, "chroma" if reason == "greyscale" else "sharpness")
                                                for r in rejected if r["reason"] == reason]
              for reason in sorted({r["reason"] for r in rejected})}
    groups["kept-least-colourful"] = [(r, "chroma") for r in sorted(kept, key=lambda r: float(r["chroma"]))]
    groups["kept-least-sharp"] = [(r, "sharpness") for r in sorted(kept, key=lambda r: float(r["sharpness"]))]
    written = []
    for name, members in groups.items():
        items = []
        for row, key in members[:per_sheet]:
            image = cv2.imread(str(raw_dir / row["file"]), cv2.IMREAD_COLOR)
            if image is not None:
                items.append((label(row, key), cv2.cvtColor(image, cv2.COLOR_BGR2RGB)))
        if items:
            save_sheet(out_dir / f"{name}.png", contact_sheet(items))
            written.append(out_dir / f"{name}.png")
    return written
