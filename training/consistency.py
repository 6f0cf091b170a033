"""Shift consistency: the same ground, seen a few pixels further along, must get the same colour.

A model that reads each tile alone answers a little differently when the scene moves under the tile grid; in a
video that is flicker on every pan. Training with `--shift-consistency W` cuts each crop twice, the second a few
pixels (up to `--shift-range`) away in the same photo, fits both to their truth, and adds W times the mean over the
tile of |difference| of the two answers, the second answer shifted back onto the first's pixels and the pixels
outside their overlap counted as 0 (so a pair shifted further weighs a little less: at the default range of 8 px,
about W x 0.87 per overlapping pixel). The network trained is the architecture's own: only the training graph
wraps it.
"""

from __future__ import annotations

import os

import keras
import numpy as np
from keras import ops

from oppy.engine.contract import TRAINING_CONTRACT

TILE = TRAINING_CONTRACT.tile_size
#: the largest shift of a crop's partner, px: a tile's partner still overlaps it by at least half along each axis
MAX_SHIFT_RANGE = TILE // 2
#: the bound of the consistency loss's weight
MAX_CONSISTENCY_WEIGHT = 100.0


def check(weight: float, shift_range: int) -> None:
    """ValueError in one line for a weight or a shift range out of range."""
    if not (np.isfinite(weight) and 0 <= weight <= MAX_CONSISTENCY_WEIGHT):
        raise ValueError(f"the shift consistency weight must be in [0, {MAX_CONSISTENCY_WEIGHT:g}], not {weight!r}")
    if not (isinstance(shift_range, int | np.integer) and 1 <= shift_range <= MAX_SHIFT_RANGE):
        raise ValueError(f"the shift range must be 1 to {MAX_SHIFT_RANGE} px, not {shift_range!r}")


def partner_corners(tops: np.ndarray, lefts: np.ndarray, shape: tuple[int, int], shift_range: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The top left corners of each crop's partner: up to `shift_range` px away in each direction, inside a photo of
    `shape` (height, width)."""
    height, width = shape
    rows = np.clip(tops + rng.integers(-shift_range, shift_range + 1, len(tops)), 0, height - TILE)
    cols = np.clip(lefts + rng.integers(-shift_range, shift_range + 1, len(lefts)), 0, width - TILE)
    return rows, cols


def align(partner: np.ndarray, down: int, right: int) -> tuple[np.ndarray, np.ndarray]:
    """numpy reference: a partner crop [T, T, C] cut `down`, `right` px from its crop, moved back onto the crop's
    pixels (zeros where it does not reach), and the mask [T, T, 1] of where it does."""
    aligned = np.zeros_like(partner)
    mask = np.zeros((*partner.shape[:2], 1), partner.dtype)
    size = partner.shape[0]
    rows = slice(max(0, down), size + min(0, down)), slice(max(0, -down), size + min(0, -down))
    cols = slice(max(0, right), size + min(0, right)), slice(max(0, -right), size + min(0, -right))
    aligned[rows[0], cols[0]] = partner[rows[1], cols[1]]
    mask[rows[0], cols[0]] = 1
    return aligned, mask


@keras.saving.register_keras_serializable("oppy")
class ShiftDisagreement(keras.layers.Layer):
    """(answer [n, T, T, C], partner's answer, down [n], right [n]) -> the difference of the answer and the
    partner's moved back onto its pixels, zero where the two crops do not overlap. Pixel (i, j) of the crop is
    pixel (i - down, j - right) of its partner; the move is two products with one-hot matrices, so the graph keeps
    static shapes."""

    def call(self, answer, partner, down, right):
        size = answer.shape[1]
        steps = ops.arange(size, dtype="int32")
        rows = ops.cast(ops.equal(steps[None, :, None] - ops.cast(down, "int32")[:, None, None],
                                  steps[None, None, :]), answer.dtype)
        cols = ops.cast(ops.equal(steps[None, :, None] - ops.cast(right, "int32")[:, None, None],
                                  steps[None, None, :]), answer.dtype)
        moved = ops.einsum("njm,nimc->nijc", cols, ops.einsum("nik,nkmc->nimc", rows, partner))
        mask = ops.sum(rows, axis=-1)[:, :, None, None] * ops.sum(cols, axis=-1)[:, None, :, None]
        return mask * (answer - moved)


def paired(model: keras.Model) -> keras.Model:
    """The training graph around `model`: its inputs twice (the partner's with a "_partner" suffix) and the shift
    ("down", "right"); outputs "ab" (the crop's answer), "ab_partner" and "disagreement"."""
    tiles = model.inputs if isinstance(model.inputs, list) else [model.inputs]
    names = [tensor.name.split(":")[0] for tensor in tiles]
    own = {name: keras.Input(tensor.shape[1:], name=name) for name, tensor in zip(names, tiles, strict=True)}
    theirs = {name: keras.Input(tensor.shape[1:], name=f"{name}_partner")
              for name, tensor in zip(names, tiles, strict=True)}
    down, right = keras.Input((), name="down", dtype="int32"), keras.Input((), name="right", dtype="int32")

    def answer(inputs):
        out = model([inputs[name] for name in names] if len(names) > 1 else inputs[names[0]])
        return out["ab"] if isinstance(out, dict) else out

    mine, partner = answer(own), answer(theirs)
    disagreement = ShiftDisagreement(name="disagreement")(mine, partner, down, right)
    outputs = {"ab": keras.layers.Identity(name="ab")(mine),
               "ab_partner": keras.layers.Identity(name="ab_partner")(partner), "disagreement": disagreement}
    inputs = {**own, **{f"{name}_partner": tensor for name, tensor in theirs.items()}, "down": down, "right": right}
    return keras.Model(inputs, outputs, name=f"{model.name}-paired")


class SaveBest(keras.callbacks.Callback):
    """Saves `model` (the network inside the training graph) whenever `monitor` improves on `best`."""

    def __init__(self, model: keras.Model, path: str, monitor: str, best: float | None = None):
        super().__init__()
        self.network, self.path, self.monitor = model, path, monitor
        self.best = np.inf if best is None else best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value < self.best:
            self.best = float(value)
            partial = f"{self.path}.partial.keras"  # a run killed while saving keeps its previous best whole
            self.network.save(partial)
            os.replace(partial, self.path)
