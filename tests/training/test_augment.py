"""Photometric augmentation: each change keeps the target the colour of what the input shows."""

import numpy as np
import pytest

from oppy.engine.kernels.lab import rgb_to_lab
from oppy.training.augment import (
    FLAT_PIVOT,
    Photometric,
    exposed,
    flat_curve,
    gamma_curve,
    grey_of,
    jpeg,
    lightness_of,
    noisy,
    posterised,
)
from oppy.training.cli import main
from oppy.training.data import _crops, split_files

from .conftest import lawful_photo


def test_an_exposure_is_the_photo_taken_with_that_much_light():
    rgb = lawful_photo(48, 64, seed=1)
    np.testing.assert_allclose(exposed(rgb, 1.0) * 255, rgb, atol=1e-3)
    darker = rgb_to_lab(exposed(rgb, 0.25))
    plain = rgb_to_lab(rgb)
    assert (darker[..., 0] < plain[..., 0] - 5).mean() > 0.99
    # the hue of each pixel stays (linear light scales the three channels alike); its chroma falls with its lightness
    hue = np.arctan2(plain[..., 2], plain[..., 1])
    hue_darker = np.arctan2(darker[..., 2], darker[..., 1])
    assert np.abs(np.angle(np.exp(1j * (hue - hue_darker)))).mean() < 0.05


def test_drawn_exposure_and_tone_change_input_and_target_together():
    rgb = lawful_photo(48, 64, seed=2)
    augment = Photometric(exposure=2.0, gamma=1.8, chance=1.0)
    lab = augment.lab(rgb, np.random.default_rng(7))
    replay = np.random.default_rng(7)
    replay.random()
    gain = 2.0 ** replay.uniform(-2.0, 0.5)
    replay.random()
    gamma = float(np.exp(replay.uniform(-1, 1) * np.log(1.8)))
    expected = rgb_to_lab(exposed(rgb, gain))
    np.testing.assert_allclose(lab[..., 1:], expected[..., 1:], atol=1e-4)  # a*, b* of the exposed photo
    np.testing.assert_allclose(lab[..., 0], gamma_curve(expected[..., 0], gamma), atol=1e-3)  # its L*, toned


def test_tone_curves_act_on_lightness_alone():
    lightness = np.linspace(0, 100, 101, dtype=np.float32)
    np.testing.assert_allclose(gamma_curve(lightness, 1.8)[[0, 100]], [0, 100], atol=1e-4)
    assert (gamma_curve(lightness, 1.8)[1:-1] < lightness[1:-1]).all()
    np.testing.assert_allclose(flat_curve(lightness, 0.5), lightness * 0.5 + FLAT_PIVOT * 0.5, atol=1e-4)
    rgb = lawful_photo(32, 32, seed=3)
    lab = Photometric(contrast=0.4, chance=1.0).lab(rgb, np.random.default_rng(0))
    np.testing.assert_allclose(lab[..., 1:], rgb_to_lab(rgb)[..., 1:], atol=1e-5)


def test_grey_frame_losses_act_on_the_grey_levels_the_engine_would_read():
    lightness = rgb_to_lab(lawful_photo(64, 64, seed=4))[..., 0]
    np.testing.assert_allclose(lightness_of(grey_of(lightness)), lightness, atol=0.25)  # 8-bit rounding only
    rng = np.random.default_rng(0)
    residual = grey_of(noisy(lightness, 6.0, rng)) - np.round(grey_of(lightness))
    assert 5.0 < residual.std() < 7.0
    assert np.unique(np.round(grey_of(posterised(lightness, 8)))).size <= 8
    compressed = jpeg(lightness, 30)
    assert compressed.shape == lightness.shape and 0 < np.abs(compressed - lightness).mean() < 3


def test_degrading_leaves_the_target_alone_and_validation_crops_are_never_augmented(lawful_dataset):
    augment = Photometric(exposure=3.0, gamma=2.0, contrast=0.3, noise=10, jpeg=20, blur=1.5, levels=8, chance=1.0)
    files = split_files(lawful_dataset, "val")
    plain = list(_crops(files, 4, seed=0, training=False))
    augmented = list(_crops(files, 4, seed=0, training=False, photometric=augment))
    for (l_plain, ab_plain), (l_aug, ab_aug) in zip(plain, augmented, strict=True):
        np.testing.assert_array_equal(l_plain, l_aug)
        np.testing.assert_array_equal(ab_plain, ab_aug)
    trained = next(_crops(split_files(lawful_dataset, "train"), 4, seed=0, training=True, photometric=augment))
    untouched = next(_crops(split_files(lawful_dataset, "train"), 4, seed=0, training=True))
    assert trained[0].shape == untouched[0].shape and not np.array_equal(trained[0], untouched[0])


@pytest.mark.parametrize("strengths", [{"exposure": -1.0}, {"gamma": 0.5}, {"contrast": 0.0}, {"noise": np.nan},
                                       {"jpeg": 3}, {"jpeg": 101}, {"blur": 9.0}, {"levels": 1}, {"chance": 1.5}])
def test_strengths_out_of_range_are_refused(strengths):
    with pytest.raises(ValueError, match="augmentation"):
        Photometric(**strengths)


def test_oppy_train_fit_refuses_an_augmentation_out_of_range_in_one_line(lawful_dataset, tmp_path, capsys):
    assert main(["fit", str(lawful_dataset), "--out", str(tmp_path / "run"), "--aug-noise", "-2"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "augmentation noise must be in" in error
