import numpy as np
import pytest
from skimage import color

from oppy.engine.kernels.lab import gray_to_l, l_ab_to_rgb, lab_to_rgb, rgb_to_lab, to_lightness


def all_8bit_colours() -> np.ndarray:
    """Every 24-bit colour once, as a 4096 x 4096 x 3 uint8 image."""
    levels = np.arange(256, dtype=np.uint8)
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    return np.stack([r, g, b], axis=-1).reshape(4096, 4096, 3)


@pytest.fixture(scope="module")
def cube():
    return all_8bit_colours()


@pytest.mark.slow
def test_rgb_to_lab_matches_scikit_image_over_every_8bit_colour(cube):
    worst = 0.0
    for rows in np.array_split(np.arange(4096), 16):
        ours = rgb_to_lab(cube[rows])
        reference = color.rgb2lab(cube[rows])
        worst = max(worst, float(np.abs(ours - reference).max()))
    assert worst < 2e-3  # float32 kernels vs float64 reference (about 2e-4 reached)


@pytest.mark.slow
def test_lab_to_rgb_round_trips_every_8bit_colour_exactly(cube):
    for rows in np.array_split(np.arange(4096), 16):
        np.testing.assert_array_equal(lab_to_rgb(rgb_to_lab(cube[rows])), cube[rows])


@pytest.mark.filterwarnings("ignore:Conversion from CIE-LAB to XYZ")
def test_lab_to_rgb_matches_scikit_image_outside_the_rgb_gamut():
    """Random LAB, most of it outside sRGB: both clip per channel. Where scikit-image extrapolates negative
    XYZ (no real colour), the kernel clamps XYZ at zero first, so those samples are compared separately."""
    rng = np.random.default_rng(1)
    lab = np.stack([rng.uniform(0, 100, (256, 256)), rng.uniform(-128, 127, (256, 256)),
                    rng.uniform(-128, 127, (256, 256))], axis=-1).astype(np.float32)
    xyz = color.lab2xyz(lab.astype(np.float64))
    physical = (xyz >= 0).all(axis=-1)
    reference = np.round(np.clip(color.xyz2rgb(np.clip(xyz, 0, None)), 0, 1) * 255).astype(int)
    ours = lab_to_rgb(lab).astype(int)
    assert physical.mean() > 0.5
    assert np.abs(ours - reference)[physical].max() <= 1
    assert np.abs(ours - reference)[~physical].max() <= 1


def test_gray_to_l_matches_scikit_image_for_8_and_16_bit():
    grey8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    reference = color.rgb2lab(np.repeat(grey8[..., None], 3, axis=2))[..., 0]
    np.testing.assert_allclose(gray_to_l(grey8), reference, atol=1e-3)
    grey16 = np.linspace(0, 65535, 1024).astype(np.uint16).reshape(32, 32)
    reference16 = color.rgb2lab(np.repeat(grey16[..., None] / 65535.0, 3, axis=2))[..., 0]
    np.testing.assert_allclose(gray_to_l(grey16), reference16, atol=1e-3)


def test_float_and_16bit_rgb_agree_with_8bit():
    rgb8 = np.random.default_rng(2).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    lab8 = rgb_to_lab(rgb8)
    np.testing.assert_allclose(rgb_to_lab(rgb8.astype(np.uint16) * 257), lab8, atol=1e-3)
    np.testing.assert_allclose(rgb_to_lab(rgb8 / 255.0), lab8, atol=1e-3)


def test_l_ab_to_rgb_applies_ab_scale():
    lightness = np.full((4, 4), 60.0, np.float32)
    ab = np.full((2, 4, 4), 0.25, np.float32)
    expected = lab_to_rgb(np.dstack([lightness, np.full((4, 4, 2), 32.0, np.float32)]))
    np.testing.assert_array_equal(l_ab_to_rgb(lightness, ab, ab_scale=128.0), expected)


def test_to_lightness_reduces_every_input_layout():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    expected = rgb_to_lab(rgb)[..., 0]
    np.testing.assert_allclose(to_lightness(rgb), expected, atol=1e-5)
    rgba = np.dstack([rgb, np.zeros((20, 30), np.uint8)])
    np.testing.assert_allclose(to_lightness(rgba), expected, atol=1e-5)
    grey = rgb[..., 0]
    np.testing.assert_allclose(to_lightness(np.dstack([grey] * 3)), gray_to_l(grey), atol=1e-5)
    with pytest.raises(ValueError):
        to_lightness(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(TypeError):
        gray_to_l(np.zeros((2, 2), np.int32))
    as_float = grey / 255.0  # float grey in [0, 1], as float RGB is
    np.testing.assert_allclose(to_lightness(as_float), gray_to_l(grey), atol=1e-4)
    np.testing.assert_allclose(to_lightness(as_float), to_lightness(np.dstack([as_float] * 3)), atol=1e-4)


SPECIAL = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 3.4e38, -3.4e38, 1e-45, -0.0], np.float32)


def test_lab_to_rgb_takes_every_float_and_leaves_the_finite_pixels_as_they_were():
    # NaN and infinities, in L and in a, b, at random places among ordinary values: no read outside the tables
    rng = np.random.default_rng(7)
    lightness = rng.uniform(0, 100, (64, 96)).astype(np.float32)
    ab = rng.uniform(-80, 80, (2, 64, 96)).astype(np.float32)
    clean = l_ab_to_rgb(lightness, ab)
    spoiled = rng.random((64, 96)) < 0.3
    hostile_l, hostile_ab = lightness.copy(), ab.copy()
    hostile_l[spoiled] = rng.choice(SPECIAL, spoiled.sum())
    hostile_ab[:, spoiled] = rng.choice(SPECIAL, (2, spoiled.sum()))
    out = l_ab_to_rgb(hostile_l, hostile_ab)
    assert out.dtype == np.uint8 and out.shape == (64, 96, 3)
    np.testing.assert_array_equal(out[~spoiled], clean[~spoiled])


@pytest.mark.parametrize("value", SPECIAL)
def test_a_frame_of_one_special_float_converts_to_a_defined_colour(value):
    plane = np.full((8, 8), value, np.float32)
    for lightness, ab in ((plane, np.zeros((2, 8, 8), np.float32)), (np.full((8, 8), 50, np.float32),
                                                                     np.stack([plane, plane]))):
        out = l_ab_to_rgb(lightness, ab)
        assert (out == out[0, 0]).all()  # the same colour everywhere, whatever it is
    assert (l_ab_to_rgb(np.full((8, 8), np.nan, np.float32), np.full((2, 8, 8), np.nan, np.float32)) == 0).all()


def test_float_pixels_with_equal_channels_are_lightness_too():
    grey = np.arange(256, dtype=np.uint8)[None].repeat(4, 0)
    as_float = np.dstack([grey / 255] * 3).astype(np.float32)
    np.testing.assert_allclose(to_lightness(as_float), gray_to_l(grey), atol=1e-4)
