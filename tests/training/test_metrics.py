import numpy as np
import pytest
from skimage import color

from oppy.training.metrics import ab_psnr, colourfulness, delta_e_ciede2000


def test_ciede2000_matches_scikit_image():
    rng = np.random.default_rng(0)
    lab1 = np.stack([rng.uniform(0, 100, 5000), rng.uniform(-100, 100, 5000), rng.uniform(-100, 100, 5000)], -1)
    lab2 = lab1 + rng.normal(0, 8, lab1.shape)
    lab2[:100, 1:] = 0  # achromatic pairs take the special branch
    np.testing.assert_allclose(delta_e_ciede2000(lab1, lab2), color.deltaE_ciede2000(lab1, lab2), atol=1e-6)
    assert delta_e_ciede2000(lab1, lab1).max() == 0


def test_ab_psnr():
    truth = np.zeros((4, 4, 3))
    pred = truth.copy()
    pred[..., 1] = 10.0  # MSE over a and b = 50
    assert abs(ab_psnr(pred, truth) - 10 * np.log10(255**2 / 50)) < 1e-9
    assert ab_psnr(truth, truth) == float("inf")


def test_colourfulness_is_zero_for_grey_and_grows_with_saturation():
    grey = np.repeat(np.linspace(0, 255, 100)[:, None, None], 3, axis=2) * np.ones((1, 10, 1))
    assert colourfulness(grey) == 0
    pale = np.dstack([np.full((8, 8), 140.0), np.full((8, 8), 120.0), np.full((8, 8), 100.0)])
    vivid = np.dstack([np.full((8, 8), 200.0), np.full((8, 8), 100.0), np.full((8, 8), 30.0)])
    assert 0 < colourfulness(pale) < colourfulness(vivid)


def test_hue_classes_tell_blue_and_green_from_mars_colours():
    from oppy.training.metrics import hue_classes

    # a* and b* of: grey, Mars ochre, a pale yellow with a* just below 0, green, blue, purple
    lab = np.array([[[50, 1, -2], [50, 12, 25], [97, -4.4, 20.6], [50, -20, 5], [40, 5, -40], [40, 20, -10]]],
                   np.float32)
    classes = hue_classes(lab)
    assert classes["neutral"][0].tolist() == [True, False, False, False, False, False]
    assert classes["warm"][0].tolist() == [False, True, True, False, False, False]
    assert classes["green"][0].tolist() == [False, False, False, True, False, False]
    assert classes["blue"][0].tolist() == [False, False, False, False, True, True]
    assert sum(mask.astype(int) for mask in classes.values()).tolist() == [[1] * 6]


def test_a_blotch_is_a_hue_the_truth_does_not_have_there():
    from oppy.training.metrics import blotched, invented_hue_share

    truth = np.zeros((10, 10, 3), np.float32)
    truth[..., 0], truth[..., 2] = 50, 20
    painted = truth.copy()
    painted[0, :2, 2] = -30  # 2% of the pixels blue
    assert invented_hue_share(painted, truth) == pytest.approx(0.02) and blotched(painted, truth)
    truth[0, :2, 2] = -30  # the truth is blue there too (a sunset): nothing invented
    assert invented_hue_share(painted, truth) == 0 and not blotched(painted, truth)
    assert blotched(painted)  # without a truth, any blue counts
