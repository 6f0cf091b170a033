"""The tf.data input pipeline: random 64x64 crops of prepared photos as (L, ab) pairs, scaled per the contract.

L and ab come from the engine's own LAB kernels, so the model learns exactly what the engine will feed it.
Validation crops are a fixed function of the file name: the same every run and every epoch.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from oppy.engine.contract import TRAINING_CONTRACT
from oppy.engine.kernels.context import context_copy, cut_context
from oppy.engine.kernels.lab import rgb_to_lab

from .augment import Photometric
from .consistency import partner_corners

if TYPE_CHECKING:
    import tensorflow as tf

TILE = TRAINING_CONTRACT.tile_size
#: a photo whose mean C*ab lies below this is greyscale, whatever the file's channel count: `prepare` leaves it out
#: and the evaluation skips it
DEFAULT_MIN_CHROMA = 4.0


def split_files(dataset_dir: str | Path, split: str) -> list[Path]:
    """The prepared photos of one split, sorted."""
    return sorted((Path(dataset_dir) / split).glob("*.png"))


def scene_size(dataset_dir: str | Path, split: str = "train") -> int:
    """The median long side, px, of the photos of one split: the scale of the scenes a model learns from there."""
    sides = []
    for path in split_files(dataset_dir, split):
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            raise OSError(f"cannot read prepared photo {path}")
        sides.append(max(pixels.shape[:2]))
    if not sides:
        raise FileNotFoundError(f"no {split} photos in {dataset_dir}")
    return int(np.median(sides))


def load_rgb(path: Path) -> np.ndarray:
    """A prepared photo as HxWx3 uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read prepared photo {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_lab(path: Path) -> np.ndarray:
    """A prepared photo as HxWx3 float32 LAB (engine kernels)."""
    return rgb_to_lab(load_rgb(path))


def scale_pair(lab_tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LAB tiles [n, T, T, 3] -> (model input L [n, T, T, 1], target ab [n, T, T, 2]), both float32."""
    lightness = lab_tiles[..., :1] * TRAINING_CONTRACT.l_scale + TRAINING_CONTRACT.l_shift
    return lightness.astype(np.float32), (lab_tiles[..., 1:] / TRAINING_CONTRACT.ab_scale).astype(np.float32)


def _cut(lab: np.ndarray, tops: np.ndarray, lefts: np.ndarray, copy: np.ndarray | None,
         mirrored: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The crops [n, T, T, 3] at these corners and, from a context `copy`, their context [n, T, T, 1]; those
    `mirrored` flipped left-right with their context."""
    crops = np.stack([lab[t : t + TILE, s : s + TILE] for t, s in zip(tops, lefts, strict=True)])
    context = None if copy is None else cut_context(copy, tops, lefts, lab.shape[:2], TILE)
    if mirrored is not None:
        crops[mirrored] = crops[mirrored, :, ::-1]
        if context is not None:
            context[mirrored] = context[mirrored, :, ::-1]
    return crops, context


def random_crops(lab: np.ndarray, count: int, rng: np.random.Generator, flip: bool,
                 context_factor: int | None = None, shift_range: int | None = None) -> tuple:
    """`count` random TILE x TILE crops [count, T, T, 3]; with `flip`, half of them mirrored left-right
    (never upside down: the sky stays on top). With `context_factor`, also each crop's context [count, T, T, 1]
    (L* around it over a window that many tiles wide, `engine.context`, mirrored with its crop), else None.
    With `shift_range`, also each crop's partner up to that many px away (`training.consistency`), its context, and
    the shift (down, right) that takes a pixel of the crop to the partner's pixel of the same ground: a 6-tuple."""
    height, width = lab.shape[:2]
    tops = rng.integers(0, height - TILE + 1, count)
    lefts = rng.integers(0, width - TILE + 1, count)
    copy = None
    if context_factor is not None:
        copy = context_copy(np.ascontiguousarray(lab[..., 0]), context_factor)
    mirrored = rng.random(count) < 0.5 if flip else None
    crops, context = _cut(lab, tops, lefts, copy, mirrored)
    if shift_range is None:
        return crops, context
    partner_tops, partner_lefts = partner_corners(tops, lefts, (height, width), shift_range, rng)
    partners, partner_context = _cut(lab, partner_tops, partner_lefts, copy, mirrored)
    down, right = partner_tops - tops, partner_lefts - lefts
    if mirrored is not None:  # a mirrored pair's shift runs the other way
        right = np.where(mirrored, -right, right)
    return crops, context, partners, partner_context, down.astype(np.int32), right.astype(np.int32)


def jittered(lab: np.ndarray, rng: np.random.Generator, smallest: float) -> np.ndarray:
    """The photo shrunk by a random factor in [`smallest`, 1] (area averaging; never enlarged, and never below a
    tile on its short side): the scales the engine serves, not only the photo's own."""
    height, width = lab.shape[:2]
    factor = rng.uniform(max(smallest, TILE / min(height, width)), 1.0)
    if factor >= 1.0:
        return lab
    size = (max(TILE, round(width * factor)), max(TILE, round(height * factor)))
    return cv2.resize(lab, size, interpolation=cv2.INTER_AREA)


def _scaled_context(context: np.ndarray) -> np.ndarray:
    return context * TRAINING_CONTRACT.l_scale + TRAINING_CONTRACT.l_shift


def _crops(files: list[Path], crops_per_photo: int, seed: int, training: bool, context_factor: int | None = None,
           scale_jitter: float | None = None, photometric: Photometric | None = None,
           shift_range: int | None = None) -> Iterator[tuple]:
    epoch_rng = np.random.default_rng(seed)
    order = epoch_rng.permutation(len(files)) if training else range(len(files))
    for i in order:
        path = files[i]
        rng = epoch_rng if training else np.random.default_rng(zlib.crc32(path.name.encode()))
        augment = photometric if training and photometric is not None and photometric.active else None
        lab = augment.lab(load_rgb(path), rng) if augment else load_lab(path)
        if training and scale_jitter is not None:
            lab = jittered(lab, rng, scale_jitter)
        if augment:  # the grey frame's losses at the scale the crops are cut at
            lab[..., 0] = augment.degrade(lab[..., 0], rng)
        cut = random_crops(lab, crops_per_photo, rng, training, context_factor, shift_range)
        lightness, ab = scale_pair(cut[0])
        context = cut[1]
        if shift_range is not None:
            partner_lightness, partner_ab = scale_pair(cut[2])
            inputs = {"L": lightness, "L_partner": partner_lightness, "down": cut[4], "right": cut[5]}
            if context is not None:
                inputs |= {"context": _scaled_context(context), "context_partner": _scaled_context(cut[3])}
            yield inputs, {"ab": ab, "ab_partner": partner_ab, "disagreement": np.zeros_like(ab)}
        elif context is None:
            yield lightness, ab
        else:
            yield (lightness, _scaled_context(context)), ab


def tile_dataset(dataset_dir: str | Path, split: str, batch_size: int = 64, crops_per_photo: int = 8,
                 seed: int = 0, training: bool | None = None, context_factor: int | None = None,
                 scale_jitter: float | None = None, photometric: Photometric | None = None,
                 shift_range: int | None = None) -> tf.data.Dataset:
    """Batches of (L [B, 64, 64, 1], ab [B, 64, 64, 2]) float32 from one split of a prepared dataset; with
    `context_factor`, ((L, context [B, 64, 64, 1]), ab).

    Training (the default for the `train` split): new random crops and flips every epoch, shuffled, from photos
    shrunk by a random factor down to `scale_jitter` where given, through the `photometric` augmentation where given
    (`training.augment`). Otherwise: fixed crops per photo, in file order. With `shift_range`, pairs for
    `training.consistency.paired`: ({"L", "L_partner", ["context", "context_partner",] "down", "right"},
    {"ab", "ab_partner", "disagreement"}).
    """
    # imported here, so that the split layout above (evaluation, benchmarks) need no TensorFlow
    import tensorflow as tf

    files = split_files(dataset_dir, split)
    if not files and split == "val":
        raise FileNotFoundError(f"no validation photos in {Path(dataset_dir) / split}: `oppy-train prepare` puts "
                                "a Mars day (or, without a product id, a name) in val only where the photos span "
                                "two or more; add photos of another day, or prepare again into a new dataset with "
                                "a --splits file (columns file and split) that names some photos val")
    if not files:
        raise FileNotFoundError(f"no prepared photos in {Path(dataset_dir) / split}: run `oppy-train prepare`")
    training = split == "train" if training is None else training
    epochs = iter(range(seed, seed + 1_000_000))

    def generator():
        return _crops(files, crops_per_photo, next(epochs), training, context_factor, scale_jitter, photometric,
                      shift_range)

    tiles, ab = tf.TensorSpec((None, TILE, TILE, 1), tf.float32), tf.TensorSpec((None, TILE, TILE, 2), tf.float32)
    if shift_range is not None:
        shift = tf.TensorSpec((None,), tf.int32)
        inputs = {"L": tiles, "L_partner": tiles, "down": shift, "right": shift}
        if context_factor is not None:
            inputs |= {"context": tiles, "context_partner": tiles}
        signature = (inputs, {"ab": ab, "ab_partner": ab, "disagreement": ab})
    else:
        signature = (tiles if context_factor is None else (tiles, tiles), ab)
    dataset = tf.data.Dataset.from_generator(generator, output_signature=signature).unbatch()
    if training:
        dataset = dataset.shuffle(64 * crops_per_photo, seed=seed)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
