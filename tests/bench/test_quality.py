import numpy as np
import pytest

from oppy.bench.quality import (
    SeamMeter,
    bench_quality,
    blockiness,
    flicker,
    pan_sequence,
    seam_blockiness,
    sequence_flicker,
)
from oppy.engine.kernels.lab import rgb_to_lab
from oppy.engine.kernels.tiles import plan_tiles, predict_chroma
from oppy.engine.session import ModelSession
from tests.training import conftest as training_fixtures
from tests.training.conftest import lawful_photo

lawful_dataset = training_fixtures.lawful_dataset


def test_a_smooth_ramp_shows_no_grid_and_steps_on_the_tile_grid_do():
    plan = plan_tiles(200, 260, 64, 16)  # stride 48, padded and centred: the grid does not start at pixel 0
    y, x = np.mgrid[0:200, 0:260].astype(np.float64)
    ramp = np.stack([0.2 * x + 0.1 * y, -0.1 * x])
    assert seam_blockiness(ramp, plan) == pytest.approx(1.0)
    # a jump of 5 into every tile's first pixel (padded x a multiple of 48), on top of the ramp
    jumps = 5.0 * np.floor((np.arange(260) + plan.pad_left) / plan.stride)
    assert seam_blockiness(ramp + jumps[None, None, :], plan) > 10


def test_blockiness_is_undefined_for_a_constant_chroma():
    plan = plan_tiles(100, 100, 64, 16)
    assert seam_blockiness(np.ones((2, 100, 100), np.float32), plan) is None
    assert blockiness(None) is None


def test_stitched_tiles_of_a_border_sensitive_model_score_clearly_worse_than_blended_ones(blur):
    session = ModelSession(blur, "cpu", 64)
    contract = session.contract
    blended = SeamMeter(lambda lum: predict_chroma(lum, session.predict, contract, 16), 64, 16)
    stitched = SeamMeter(lambda lum: predict_chroma(lum, session.predict, contract, 0), 64, 0)
    truth = SeamMeter(lambda lum: np.stack([lum, -lum]), 64, 16)  # chroma with no tiles at all
    for seed in range(4):
        lightness = np.ascontiguousarray(rgb_to_lab(lawful_photo(192, 192, seed))[..., 0])  # textured, no horizon
        for meter in (blended, stitched, truth):
            meter(lightness)
    assert truth.blockiness < 1.2
    assert blended.blockiness < 1.5
    assert stitched.blockiness > 3
    assert stitched.blockiness > 2 * blended.blockiness


def test_flicker_is_the_mean_absolute_change_between_consecutive_frames():
    frames = [np.full((2, 4, 4), v, np.float32) for v in (0, 1, 3, 3)]
    assert flicker(frames) == pytest.approx((1 + 2 + 0) / 3)
    assert flicker([frames[0]] * 5) == 0
    with pytest.raises(ValueError, match="two frames"):
        flicker(frames[:1])


def test_a_pan_moves_the_crop_by_its_step():
    rgb = np.random.default_rng(0).integers(0, 256, (20, 40, 3), dtype=np.uint8)
    crops = list(pan_sequence(rgb, frames=5, pan=3))
    assert len(crops) == 5 and all(c.shape == (20, 28, 3) for c in crops)
    np.testing.assert_array_equal(crops[2], rgb[:, 6:34])
    with pytest.raises(ValueError, match="too narrow"):
        list(pan_sequence(rgb, frames=20, pan=2))


def test_flicker_of_a_perfect_method_on_a_pan_equals_the_truths_own(lawful_dataset):
    from tests.training.conftest import chroma_of

    def law(lightness):
        return np.stack(chroma_of(lightness)).astype(np.float32)

    result = sequence_flicker({"law": law, "frozen": lambda lum: np.zeros((2, *lum.shape), np.float32)},
                              lawful_dataset, photos=2, frames=4, pan=3)
    assert result["unit"].startswith("ratio") and result["frames"] == 4
    assert result["methods"]["law"] == pytest.approx(1.0, abs=0.05)  # 8-bit rounding of the photos aside
    assert result["methods"]["frozen"] == 0


def test_flicker_on_a_grey_sequence_is_absolute(lawful_dataset, synth_archive):
    result = sequence_flicker({"copy L": lambda lum: np.stack([lum, lum])}, lawful_dataset, sequence=synth_archive)
    assert result["unit"].startswith("a*b* per frame") and result["frames"] == 3
    assert result["methods"]["copy L"] > 0


def test_quality_puts_the_model_blended_and_stitched_beside_the_baselines(blur, lawful_dataset, synth_archive):
    result = bench_quality(lawful_dataset, blur, photos=2, frames=3)
    rows = {row["method"]: row for row in result["rows"]}
    assert set(rows) == {"model", "model, stitched (seed-style)", "constant", "lightness", "grey"}
    assert result["photos"] == 4 and result["overlap"] == 16
    for row in rows.values():
        assert row["delta_e00"] > 0 and np.isfinite(row["ab_psnr"]) and row["colourfulness_ratio"] >= 0
        assert row["flicker"] >= 0
    assert rows["grey"]["colourfulness_ratio"] == pytest.approx(0, abs=0.01)
    assert rows["grey"]["seam_blockiness"] is None and rows["constant"]["seam_blockiness"] is None
    assert (rows["model"]["grid_stride"], rows["model, stitched (seed-style)"]["grid_stride"]) == (48, 64)
    assert rows["model, stitched (seed-style)"]["seam_blockiness"] > 2 * rows["model"]["seam_blockiness"]
    assert result["truth_blockiness"] == pytest.approx(1.0, abs=0.5)


def test_quality_at_a_chroma_scale_puts_scale_one_and_bilinear_growth_beside_it(blur, lawful_dataset, tmp_path):
    import onnx

    model = onnx.load(blur)
    model.metadata_props.add(key="oppy.scene_size", value="128")  # the lawful photos' long side
    onnx.save(model, tmp_path / "scene.onnx")
    result = bench_quality(lawful_dataset, tmp_path / "scene.onnx", photos=1, frames=2, upscale=2)
    rows = {row["method"]: row for row in result["rows"]}
    assert {"model", "model, chroma scale 1", "model, bilinear growth"} <= set(rows)
    assert result["upscale"] == 2 and result["chroma_scale"] == "auto" and result["scene_size"] == 128
    assert result["chroma_scales_used"] == {"min": 0.5, "median": 0.5, "max": 0.5}  # 192x256 photos
    assert rows["model"]["tiles_per_photo"] == 2 * 3 and rows["model, chroma scale 1"]["tiles_per_photo"] == 4 * 5
    # the guided growth keeps more of the colour's contrast than bilinear growth does
    assert rows["model"]["colourfulness_ratio"] > rows["model, bilinear growth"]["colourfulness_ratio"]
    assert rows["model"]["seam_blockiness"] < 1.5
    at_one = bench_quality(lawful_dataset, tmp_path / "scene.onnx", photos=1, frames=2, upscale=2, chroma_scale=1)
    assert {row["method"] for row in at_one["rows"]} == {"model", "model, stitched (seed-style)", "constant",
                                                         "lightness", "grey"}
    one = next(row for row in at_one["rows"] if row["method"] == "model")
    assert one["delta_e00"] == pytest.approx(rows["model, chroma scale 1"]["delta_e00"])


def test_the_chroma_rule_scores_each_multiple_of_the_scene_and_names_the_best(blur, lawful_dataset, tmp_path):
    import onnx

    from oppy.bench.quality import bench_chroma_rule

    model = onnx.load(blur)
    model.metadata_props.add(key="oppy.scene_size", value="128")
    onnx.save(model, tmp_path / "scene.onnx")
    result = bench_chroma_rule(lawful_dataset, tmp_path / "scene.onnx", upscales=(2,), multiples=(0.5, 1.0),
                               limit=2)
    assert [(row["upscale"], row["copy"]) for row in result["rows"]] == [(2, "0.5x scene"), (2, "1x scene"),
                                                                         (2, "scale 1")]
    by_copy = {row["copy"]: row for row in result["rows"]}
    assert result["best"]["2"] == min(("0.5x scene", "1x scene"), key=lambda c: by_copy[c]["delta_e00"])
    assert by_copy["1x scene"]["delta_e00"] != by_copy["scale 1"]["delta_e00"]  # 0.5 of 192x256: a copy of its own
    with pytest.raises(ValueError, match="no scene size"):
        bench_chroma_rule(lawful_dataset, blur, upscales=(2,), limit=1)


@pytest.fixture
def context_onnx(tmp_path):
    from tests.conftest import context_model

    return context_model(tmp_path / "context.onnx", context_gain=(0.2, 0.3))


def test_only_the_model_and_the_worst_photos_stand_out(blur, lawful_dataset, tmp_path, context_onnx):
    import onnx

    model = onnx.load(blur)
    model.metadata_props.add(key="oppy.scene_size", value="128")
    onnx.save(model, tmp_path / "scene.onnx")
    result = bench_quality(lawful_dataset, tmp_path / "scene.onnx", photos=1, frames=2, upscale=2, references=False)
    rows = {row["method"]: row for row in result["rows"]}
    assert set(rows) == {"model", "constant", "lightness", "grey"}
    for row in rows.values():  # the 95th percentile of the photos' means lies between their mean and their worst
        assert row["delta_e00_p95"] >= row["delta_e00"] * 0.999
    # a model with a context input goes through the same evaluation, its context cut as the engine cuts it
    with_context = bench_quality(lawful_dataset, context_onnx, photos=1, frames=2, references=False)
    assert {row["method"] for row in with_context["rows"]} >= {"model"}
