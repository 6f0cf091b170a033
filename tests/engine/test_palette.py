"""The palette guard: chroma outside the training photos' palette pulled to the nearest colour they hold."""

import json
from dataclasses import replace

import numpy as np
import pytest

from oppy.engine import Engine
from oppy.engine.contract import KEY_PALETTE, ModelContract
from oppy.engine.errors import ModelError
from oppy.engine.palette import AB_MIN, AB_STEP, CELLS, L_BINS, L_STEP, MAX_PALETTE_CHARS, Palette

from ..conftest import affine_model, gradient_frame


def reference_guard(lightness, ab, occupied):
    """The guard pixel by pixel in plain numpy: the nearest occupied cell (by centre, first in row-major order on a
    tie) at the pixel's L* bin, and the pixel's a*, b* clipped into its box."""
    out = ab.copy()
    for y in range(lightness.shape[0]):
        for x in range(lightness.shape[1]):
            level = min(max(int(lightness[y, x] / L_STEP), 0), L_BINS - 1)
            a, b = float(ab[0, y, x]), float(ab[1, y, x])
            cell = np.clip(np.floor((np.array([a, b]) - AB_MIN) / AB_STEP).astype(int), 0, CELLS - 1)
            held = np.argwhere(occupied[level])
            target = held[np.argmin(((held - cell) ** 2).sum(axis=1))]
            low = AB_MIN + target * AB_STEP
            out[0, y, x] = min(max(a, low[0]), low[0] + AB_STEP)
            out[1, y, x] = min(max(b, low[1]), low[1] + AB_STEP)
    return out


def warm_palette() -> Palette:
    """Reds and ochres only (a* in [0, 32), b* in [8, 40)) at every lightness, as a Mars dataset holds."""
    occupied = np.zeros((L_BINS, CELLS, CELLS), bool)
    occupied[:, 16:24, 18:26] = True
    return Palette(occupied)


def test_the_guard_matches_a_plain_numpy_reference():
    rng = np.random.default_rng(0)
    lightness = rng.uniform(-5, 105, (24, 20)).astype(np.float32)
    ab = rng.normal(0, 40, (2, 24, 20)).astype(np.float32)
    palette = warm_palette()
    expected = reference_guard(lightness, ab, palette.occupied)
    guarded = ab.copy()
    moved = palette.guard(lightness, guarded)
    np.testing.assert_array_equal(guarded, expected)
    assert moved == int((expected != ab).any(axis=0).sum()) > 0


def test_colours_the_palette_holds_and_grey_are_kept():
    lightness = np.full((4, 4), 50, np.float32)
    ab = np.zeros((2, 4, 4), np.float32)
    ab[0, :2], ab[1, :2] = 12.0, 20.0  # an ochre the palette holds
    ab[:, 2:] = 0.5  # near grey: the neutral cells are always held
    kept = ab.copy()
    assert warm_palette().guard(lightness, kept) == 0
    np.testing.assert_array_equal(kept, ab)
    blue = np.zeros((2, 2, 2), np.float32)
    blue[1] = -40.0
    warm_palette().guard(np.full((2, 2), 30, np.float32), blue)
    assert (blue[1] >= -AB_STEP).all()  # pulled to the nearest held colour: the neutral cells, not blue


def test_a_palette_survives_its_metadata_and_is_built_from_photo_counts():
    counts = np.zeros((L_BINS, CELLS, CELLS))
    counts[3, 20, 22] = 50  # held by 50 of 1000 photos
    counts[3, 5, 5] = 1  # one odd photo: not a colour of the dataset
    palette = Palette.from_counts(counts, photos=1000, min_share=0.01, grow_cells=1)
    assert palette.occupied[3, 20, 22] and palette.occupied[3, 21, 22] and palette.occupied[3, 20, 21]
    assert not palette.occupied[3, 5, 5] and not palette.occupied[3, 22, 22]
    again = Palette.from_metadata(palette.to_metadata())
    np.testing.assert_array_equal(again.occupied, palette.occupied)


@pytest.mark.parametrize("text, problem", [
    ("not json", "malformed palette"),
    (json.dumps({"version": 1}), "malformed palette"),
    ("x" * (MAX_PALETTE_CHARS + 1), "more than"),
    (json.dumps({"version": 1, "l_step": float("nan"), "l_bins": 10, "ab_step": 4.0, "ab_min": -64.0,
                 "cells": 32, "occupied": ""}), "layout"),
    (json.dumps({"version": 1, "l_step": 10.0, "l_bins": 10, "ab_step": 4.0, "ab_min": -64.0, "cells": 32,
                 "occupied": "AAAA"}), "bytes of cells"),
    (json.dumps({"version": 1, "l_step": 10.0, "l_bins": 10, "ab_step": 4.0, "ab_min": -64.0, "cells": 32,
                 "occupied": "not base64!"}), "malformed palette"),
])
def test_a_malformed_huge_or_nan_palette_is_refused_in_one_line(text, problem):
    metadata = {**ModelContract("L", "ab", 64, 0.01, 0.0, 128.0).to_metadata(), KEY_PALETTE: text}
    with pytest.raises(ModelError, match=problem) as caught:
        ModelContract.from_metadata(metadata)
    assert "\n" not in str(caught.value)


def test_a_model_without_a_palette_is_untouched_and_one_with_a_palette_is_guarded(tmp_path):
    contract = ModelContract("L", "ab", 64, 0.01, 0.0, 128.0)
    blue = (0.0, 0.0), (0.05, -0.35)  # a* 6, b* -45: a saturated blue everywhere
    plain = affine_model(tmp_path / "plain.onnx", *blue, contract=contract)
    guarded = affine_model(tmp_path / "guarded.onnx", *blue, contract=replace(contract, palette=warm_palette()))
    frame = gradient_frame(96, 128)
    with Engine(plain, provider="cpu") as on, Engine(plain, provider="cpu", palette_guard=False) as off:
        np.testing.assert_array_equal(on.colorize(frame), off.colorize(frame))
        assert next(iter(on.stream([frame]))).tolist() == off.colorize(frame).tolist()
    with Engine(guarded, provider="cpu") as on, Engine(guarded, provider="cpu", palette_guard=False) as off:
        assert on.contract.palette is not None
        np.testing.assert_array_equal(off.colorize(frame), Engine(plain, provider="cpu").colorize(frame))
        rgb = on.colorize(frame).astype(int)
        assert (rgb[..., 2] - rgb[..., 0]).max() <= 6  # no pixel bluer than grey
        np.testing.assert_array_equal(next(iter(on.stream([frame]))), on.colorize(frame))
