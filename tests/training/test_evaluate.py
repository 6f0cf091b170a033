import numpy as np

from oppy.training.evaluate import baselines, evaluate, fit_lightness_table
from tests.training.conftest import chroma_of


def test_lightness_table_learns_the_colour_law(lawful_dataset):
    overall, table = fit_lightness_table(lawful_dataset)
    lightness = np.arange(35, 70)
    a, b = chroma_of(lightness.astype(np.float64))
    assert np.abs(table[lightness, 0] - a).max() < 2.5 and np.abs(table[lightness, 1] - b).max() < 2.5
    assert overall.shape == (2,)


def test_lightness_baseline_beats_constant_and_grey(lawful_dataset):
    result = evaluate(baselines(lawful_dataset), lawful_dataset)
    methods = result["methods"]
    assert result["photos"] == 4 and result["skipped_greyscale"] == 0
    assert methods["lightness"]["delta_e00"] < 0.5 * methods["constant"]["delta_e00"]
    assert methods["constant"]["delta_e00"] < methods["grey"]["delta_e00"]
    assert methods["lightness"]["ab_psnr"] > methods["constant"]["ab_psnr"]
    assert methods["grey"]["colourfulness_ratio"] < 0.05
    assert 0.8 < methods["lightness"]["colourfulness_ratio"] < 1.2


def test_the_cast_matched_error_takes_away_a_photo_wide_shift_and_nothing_else(lawful_dataset):
    def law(lightness):
        return np.stack(chroma_of(lightness.astype(np.float64))).astype(np.float32)

    def shifted(lightness):  # the right colours under another light: every pixel off by the same a*, b*
        return law(lightness) + np.array([12.0, -9.0], np.float32)[:, None, None]

    def flat(lightness):  # the right mean, none of the variation within the photo
        return np.broadcast_to(law(lightness).mean(axis=(1, 2), keepdims=True), (2, *lightness.shape)).copy()

    methods = evaluate({"law": law, "shifted": shifted, "flat": flat}, lawful_dataset, cast_matched=True)["methods"]
    assert methods["shifted"]["delta_e00"] > 5 * methods["law"]["delta_e00"]
    assert abs(methods["shifted"]["delta_e00_cast_matched"] - methods["law"]["delta_e00_cast_matched"]) < 0.2
    assert methods["law"]["delta_e00_cast_matched"] <= methods["law"]["delta_e00"] + 0.05
    assert methods["flat"]["delta_e00_cast_matched"] > 3 * methods["law"]["delta_e00_cast_matched"]
    assert "delta_e00_cast_matched" not in evaluate({"law": law}, lawful_dataset)["methods"]["law"]
