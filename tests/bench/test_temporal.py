"""The temporal measures against hand-computed values, and `oppy-bench temporal` end to end."""

import json
import math

import numpy as np
import pytest
from onnx import helper, numpy_helper

from oppy.bench.cli import main
from oppy.bench.temporal import cdc, jitter, pan_frames, warp_error
from tests.conftest import contract_model, write_image
from tests.training import conftest as training_fixtures

lawful_dataset = training_fixtures.lawful_dataset


def tile_mean_model(path):
    """a*, b* = one colour per tile, from the tile's mean L: as a pan moves the scene across the fixed grid of tiles,
    each tile's answer changes, so every frame alone flickers (as a network's does, more)."""
    nodes = [helper.make_node("ReduceMean", ["L"], ["mean"], axes=[1, 2], keepdims=1),
             helper.make_node("Mul", ["mean", "gain"], ["cast"]),
             helper.make_node("Mul", ["L", "zero"], ["zeros"]),
             helper.make_node("Add", ["zeros", "cast"], ["shifted"]),
             helper.make_node("Sub", ["shifted", "offset"], ["ab"])]
    return contract_model(path, "tile-mean", nodes, [numpy_helper.from_array(np.array([0.8, 0.6], np.float32), "gain"),
                                                     numpy_helper.from_array(np.zeros(2, np.float32), "zero"),
                                                     numpy_helper.from_array(np.array([0.3, 0.2], np.float32),
                                                                             "offset")])


def textured(height=64, width=64, seed=0):
    rng = np.random.default_rng(seed)
    import cv2

    return cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), 2) * 100


def test_warp_error_of_flat_chroma_is_the_mean_change_whatever_the_flow():
    lightness = [textured(seed=0), np.roll(textured(seed=0), 2, axis=1), textured(seed=5)]
    chroma = [np.full((64, 64, 2), value, np.float32) for value in (0.0, 1.0, 3.0)]
    assert warp_error(lightness, chroma) == pytest.approx(1.5, abs=1e-5)
    # chroma that moves with the scene, warped by the flow, has next to none
    moving = [np.stack([lum, -lum], axis=2) * 0.2 for lum in lightness[:2]]
    assert warp_error(lightness[:2], moving) < 0.1 * warp_error(lightness[:2], [moving[0], moving[0]])


def test_jitter_is_the_rms_second_difference_of_the_mean_cast_and_cdc_the_histograms_divergence():
    frames = [np.full((4, 4, 2), value, np.float32) for value in (0.0, 1.0, 4.0, 9.0)]
    assert jitter(frames) == pytest.approx(2.0)  # second differences 2 and 2
    assert jitter(frames[:2]) == 0.0
    dark, bright = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 200, np.uint8)
    assert cdc([dark, dark, dark], steps=(1,)) == 0.0
    assert cdc([dark, bright], steps=(1,)) == pytest.approx(math.log(2))  # disjoint histograms
    assert cdc([dark, bright, dark], steps=(1, 2)) == pytest.approx(math.log(2) / 2)


def test_a_pan_moves_its_window_right_by_the_step():
    photo = np.random.default_rng(1).integers(0, 255, (40, 120, 3), np.uint8)
    frames = pan_frames(photo, frames=4, window=32, pan=5)
    assert [f.shape for f in frames] == [(32, 32, 3)] * 4
    np.testing.assert_array_equal(frames[1][:, :-5], frames[0][:, 5:])
    with pytest.raises(ValueError, match="too small"):
        pan_frames(photo[:8], frames=4, window=32, pan=5)


def test_oppy_bench_temporal_measures_smoothing_against_frames_alone(lawful_dataset, tmp_path, capsys):
    model = tile_mean_model(tmp_path / "tile-mean.onnx")
    folder = tmp_path / "sequence"
    folder.mkdir()
    for i in range(4):
        write_image(folder / f"f{i}.png", (np.roll(textured(96, 96), 3 * i, axis=1) * 2.55).astype(np.uint8))
    assert main(["--json", str(tmp_path / "t.json"), "temporal", str(lawful_dataset), str(folder), "--model",
                 str(model), "--photos", "2", "--strength", "1", "--plot", str(tmp_path / "t.png")]) == 0
    out = capsys.readouterr().out
    assert "smoothed / alone" in out and "after each cut" in out and (tmp_path / "t.png").stat().st_size > 1000
    result = json.loads((tmp_path / "t.json").read_text())["temporal"]
    pans = result["pans"]
    assert pans["photos"] == 2 and pans["truth"]["warp_error"] < 0.05 and pans["starts"] == [0, 16]
    assert [len(pans["series"][name]) for name in ("truth", "alone", "smoothed")] == [32, 32, 32]
    assert pans["ratios"]["warp_error"] < 0.8 and pans["ratios"]["jitter"] < 1.0
    assert pans["cut_delta_e00_vs_alone"]["max"] < 0.5  # the second pan starts from itself alone
    assert result["folders"][0]["frames"] == 4 and result["folders"][0]["ratios"]["warp_error"] < 1.0
    assert main(["temporal", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
