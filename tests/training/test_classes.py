import numpy as np
import pytest

from oppy.export.layers import AnnealedMean
from oppy.training.architectures import AB_SCALE, TEMPERATURE, ab_bins, build
from oppy.training.classes import bin_of, class_weights, rebalanced_cross_entropy
from tests.training.conftest import save_rgb


def test_each_bin_centre_is_its_own_bin_and_far_chroma_goes_to_the_edge():
    centres = ab_bins()
    assert len(centres) == 13 * 13 and centres[0].tolist() == [-60, -60] and centres[1].tolist() == [-60, -50]
    np.testing.assert_array_equal(bin_of(centres), np.arange(len(centres)))
    assert bin_of(np.array([[3.9, -3.9]])) == bin_of(np.array([[0.0, 0.0]]))
    assert bin_of(np.array([[500.0, -500.0]])) == bin_of(np.array([[60.0, -60.0]]))


def test_rare_bins_weigh_more_and_the_expected_weight_is_one(tmp_path):
    # photos of one common ochre, with a little saturated blue in one of them
    for i in range(4):
        rgb = np.full((64, 64, 3), (170, 110, 70), np.uint8)
        if i == 0:
            rgb[:8, :8] = (40, 60, 200)
        save_rgb(tmp_path / f"p{i}.png", rgb)
    weights = class_weights(sorted(tmp_path.glob("*.png")))
    ochre, blue = (bin_of(ab) for ab in ([[12.0, 30.0]], [[20.0, -50.0]]))
    assert weights[blue] > 5 * weights[ochre]
    assert weights.dtype == np.float32 and weights.min() > 0


def annealed_mean_reference(logits: np.ndarray) -> np.ndarray:
    scaled = logits / TEMPERATURE
    scaled -= scaled.max(axis=-1, keepdims=True)
    probabilities = np.exp(scaled) / np.exp(scaled).sum(axis=-1, keepdims=True)
    return probabilities @ (ab_bins() / AB_SCALE)


def test_the_annealed_mean_decodes_logits_into_chroma():
    decode = AnnealedMean(ab_bins() / AB_SCALE, TEMPERATURE)
    logits = np.random.default_rng(0).normal(0, 3, (2, 4, 4, len(ab_bins()))).astype(np.float32)
    np.testing.assert_allclose(np.asarray(decode(logits)), annealed_mean_reference(logits), atol=1e-6)
    sure = np.full((1, 1, 1, len(ab_bins())), -50.0, np.float32)
    sure[..., bin_of(np.array([20.0, 40.0]))] = 50.0  # all weight on one bin: its centre
    np.testing.assert_allclose(np.asarray(decode(sure))[0, 0, 0], [20 / AB_SCALE, 40 / AB_SCALE], atol=1e-6)


def test_the_loss_weighs_each_pixels_cross_entropy_by_its_bin():
    count = len(ab_bins())
    ab = np.zeros((1, 8, 8, 2), np.float32)
    ab[..., 0] = 20 / AB_SCALE  # every pixel in the bin (20, 0)
    target = bin_of(np.array([20.0, 0.0]))
    logits = np.zeros((1, 2, 2, count), np.float32)  # one logit per 4x4 pixels
    weights = np.ones(count, np.float32)
    uniform = float(rebalanced_cross_entropy(weights)(ab, logits))
    assert uniform == pytest.approx(np.log(count), rel=1e-5)  # uniform logits: log Q
    weights[target] = 3.0
    assert float(rebalanced_cross_entropy(weights)(ab, logits)) == pytest.approx(3 * np.log(count), rel=1e-5)


def test_a_classification_head_gives_logits_and_their_annealed_mean():
    network = build("unet-context-classes")
    tiles = np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 1)).astype(np.float32)
    out = network([tiles, tiles], training=False)
    logits, ab = np.asarray(out["logits"]), np.asarray(out["ab"])
    assert logits.shape == (2, 16, 16, len(ab_bins())) and ab.shape == (2, 64, 64, 2)
    half = annealed_mean_reference(logits)  # the 16x16 decode, then a bilinear 4x, which keeps its mean
    np.testing.assert_allclose(ab.mean(axis=(1, 2)), half.mean(axis=(1, 2)), atol=2e-3)
