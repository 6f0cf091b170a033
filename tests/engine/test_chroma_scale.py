import math

import numpy as np
import pytest

from oppy.engine.config import AUTO, fixed_chroma_scale, parse_chroma_scale
from oppy.engine.contract import ModelContract
from oppy.engine.kernels.chroma_scale import (
    choose_scale,
    chroma_at_scale,
    grow,
    grow_bilinear,
    guide_slopes,
    scaled_size,
    shrink,
)

WITH_SCENE = ModelContract("L", "ab", 64, 0.01, 0.0, 128.0, scene_size=256)
WITHOUT_SCENE = ModelContract("L", "ab", 64, 0.01, 0.0, 128.0)


def scale_for(height: int, width: int, setting, contract: ModelContract) -> float:
    return choose_scale(height, width, fixed_chroma_scale(setting), contract.scene_size, contract.tile_size)


# -- references in plain numpy, written from the definitions -----------------------------------------------------
def box_reference(plane: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window, the border mirrored without repeating the edge pixel."""
    padded = np.pad(plane.astype(np.float64), radius, mode="reflect")
    side = 2 * radius + 1
    out = np.zeros(plane.shape)
    for dy in range(side):
        for dx in range(side):
            out += padded[dy : dy + plane.shape[0], dx : dx + plane.shape[1]]
    return out / side**2


def bilinear_reference(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixel centres aligned ((x + 0.5) * ratio - 0.5), coordinates clamped to the plane."""
    def axis(size: int, source: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        position = np.clip((np.arange(size) + 0.5) * source / size - 0.5, 0, source - 1)
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, source - 1)
        return low, high, position - low

    y0, y1, fy = axis(height, plane.shape[0])
    x0, x1, fx = axis(width, plane.shape[1])
    p = plane.astype(np.float64)
    top = p[y0][:, x0] * (1 - fx) + p[y0][:, x1] * fx
    bottom = p[y1][:, x0] * (1 - fx) + p[y1][:, x1] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


def guided_reference(ab, guide, lightness, radius, epsilon):
    """Bilinear chroma plus the guided filter's slope times the detail of L the small copy lacks, in float64."""
    mean_i = box_reference(guide, radius)
    variance = box_reference(guide * guide.astype(np.float64), radius) - mean_i**2
    detail = lightness - bilinear_reference(guide, *lightness.shape)
    out = []
    for plane in ab:
        covariance = box_reference(guide * plane.astype(np.float64), radius) - mean_i * box_reference(plane, radius)
        slope = box_reference(covariance / (variance + epsilon), radius)
        grown = bilinear_reference(plane, *lightness.shape) + bilinear_reference(slope, *lightness.shape) * detail
        padded = np.pad(plane.astype(np.float64), 1, mode="edge")
        windows = np.stack([padded[dy : dy + plane.shape[0], dx : dx + plane.shape[1]]
                            for dy in range(3) for dx in range(3)])
        low, high = (bilinear_reference(extreme, *lightness.shape) for extreme in (windows.min(0), windows.max(0)))
        out.append(np.clip(grown, low, high))  # never past what the model gave within a pixel of the copy
    return np.stack(out)


# -- the setting -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("given, expected", [("auto", AUTO), (" AUTO ", AUTO), ("0.25", 0.25), (1, 1.0),
                                             (0.001, 0.001), ("1e-1", 0.1)])
def test_a_chroma_scale_is_auto_or_a_number_in_zero_to_one(given, expected):
    assert parse_chroma_scale(given) == expected


@pytest.mark.parametrize("given", [0, "0", -0.5, 1.0001, "2", "abc", "", float("nan"), "inf", None, True, "1/4"])
def test_anything_else_is_refused_naming_the_valid_range(given):
    with pytest.raises(ValueError, match=r"'auto' or a number in \(0, 1\]"):
        parse_chroma_scale(given)


def test_auto_brings_the_long_side_to_the_models_scene_and_never_upscales_or_goes_below_a_tile():
    assert scale_for(1024, 1024, AUTO, WITH_SCENE) == 0.25
    assert scale_for(1200, 1344, AUTO, WITH_SCENE) == pytest.approx(256 / 1344)
    assert scale_for(256, 192, AUTO, WITH_SCENE) == 1.0  # a training photo's own size
    assert scale_for(40, 30, AUTO, WITH_SCENE) == 1.0  # smaller than a tile: never upscaled
    assert scale_for(256, 4096, AUTO, WITH_SCENE) == 0.25  # very wide: the short side keeps one tile
    height, width = scaled_size(256, 4096, 0.25)
    assert min(height, width) == 64
    assert scale_for(100, 5000, AUTO, WITH_SCENE) == pytest.approx(0.64)
    assert scale_for(1024, 1024, AUTO, WITHOUT_SCENE) == 1.0  # a model that does not say: full resolution
    assert scale_for(1024, 1024, 0.5, WITHOUT_SCENE) == 0.5  # a number is taken as given


def test_the_small_copy_is_an_area_average_of_full_resolution_l():
    lightness = np.random.default_rng(0).uniform(0, 100, (64, 96)).astype(np.float32)
    small = shrink(lightness, 0.25)
    expected = lightness.reshape(16, 4, 24, 4).mean(axis=(1, 3))
    assert small.shape == (16, 24) and small.dtype == np.float32
    np.testing.assert_allclose(small, expected, atol=1e-4)
    assert shrink(lightness, 1.0) is lightness
    assert shrink(np.ones((3, 2), np.float32), 0.01).shape == (1, 1)  # never below one pixel


# -- growing the chroma back -------------------------------------------------------------------------------------
@pytest.mark.parametrize("small, full, radius, epsilon", [((16, 24), (64, 96), 1, 4.0), ((13, 7), (50, 29), 2, 1.0),
                                                          ((1, 5), (3, 19), 1, 16.0)])
def test_the_guided_upsampler_matches_its_numpy_reference(small, full, radius, epsilon):
    rng = np.random.default_rng(1)
    lightness = rng.uniform(0, 100, full).astype(np.float32)
    guide = shrink(lightness, small[0] / full[0]) if small[0] > 1 else rng.uniform(0, 100, small).astype(np.float32)
    guide = np.ascontiguousarray(np.resize(guide, small), np.float32)
    ab = rng.uniform(-60, 60, (2, *small)).astype(np.float32)
    grown = grow(ab, guide, lightness, radius, epsilon)
    assert grown.shape == (2, *full) and grown.dtype == np.float32
    np.testing.assert_allclose(grown, guided_reference(ab, guide, lightness, radius, epsilon), atol=2e-3)


@pytest.mark.parametrize("full, scale", [((1024, 1024), 0.25), ((1200, 1344), 0.19), ((333, 517), 0.37), ((5, 7), 0.3)])
def test_the_one_pass_growth_is_the_opencv_chain_it_replaced_within_float_rounding(full, scale):
    import cv2

    from oppy.bench.grow_speed import grow_chain

    rng = np.random.default_rng(2)
    lightness = cv2.GaussianBlur(rng.uniform(0, 100, full).astype(np.float32), (0, 0), 2)
    small = shrink(lightness, scale)
    ab = rng.uniform(-30, 40, (2, *small.shape)).astype(np.float32)
    np.testing.assert_allclose(grow(ab, small, lightness), grow_chain(ab, small, lightness), atol=1e-4, rtol=0)


def test_chroma_that_is_a_linear_function_of_l_comes_back_exactly():
    # L with detail finer than the copy's pixels, but not beyond what neighbouring pixels of the copy span
    import cv2

    noise = np.random.default_rng(2).uniform(10, 90, (80, 120)).astype(np.float32)
    lightness = cv2.GaussianBlur(noise, (0, 0), 3)
    small = shrink(lightness, 0.25)
    slopes = guide_slopes(np.stack([0.5 * small - 10, -0.25 * small + 30]), small, 1, 1e-3)
    np.testing.assert_allclose(slopes, np.stack([np.full_like(small, 0.5), np.full_like(small, -0.25)]), atol=0.01)
    grown = grow(np.stack([0.5 * small - 10, -0.25 * small + 30]), small, lightness, 1, 1e-3)
    truth = np.stack([0.5 * lightness - 10, -0.25 * lightness + 30])
    # to within a unit or so of a* and b* (below a visible difference, about 2): the growth never goes past
    # what the copy's neighbouring pixels span, so peaks of L finer than a pixel of the copy, and the trend within
    # half a pixel of the frame's edge, are held at the copy's extremes there
    error = np.abs(grown - truth)
    assert error.max() < 1.5 and error.mean() < 0.05


def test_where_chroma_does_not_follow_l_it_is_the_bilinear_chroma():
    rng = np.random.default_rng(4)
    lightness = rng.uniform(0, 100, (64, 64)).astype(np.float32)
    small = shrink(lightness, 0.25)
    ab = np.stack([np.full_like(small, 12.0), np.full_like(small, -7.0)])  # one colour whatever L does
    np.testing.assert_allclose(grow(ab, small, lightness), grow_bilinear(ab, small, lightness), atol=1e-4)


def test_chroma_edges_follow_the_edges_of_full_resolution_l():
    # a bright ridge of rock beside dark sand, its border between two pixels of the small copy's grid
    height, width, edge = 64, 256, 130
    lightness = np.full((height, width), 30, np.float32)
    lightness[:, edge:] = 70
    truth = np.where(lightness > 50, 25, 5).astype(np.float32)
    truth = np.stack([truth, truth * 0.5])
    small_l, small_ab = shrink(lightness, 0.25), np.stack([shrink(plane, 0.25) for plane in truth])
    guided = grow(small_ab, small_l, lightness)
    bilinear = grow_bilinear(small_ab, small_l, lightness)
    near = slice(edge - 8, edge + 8)
    guided_error = np.abs(guided - truth)[..., near].mean()
    bilinear_error = np.abs(bilinear - truth)[..., near].mean()
    assert guided_error < 0.25 * bilinear_error
    # the colour's contrast across the edge survives: a pixel either side is close to its own side's colour
    assert abs(guided[0, 0, edge - 1] - 5) < 2 and abs(guided[0, 0, edge] - 25) < 2
    assert abs(bilinear[0, 0, edge - 1] - 5) > 4


def test_fine_texture_under_a_steep_slope_makes_no_colour_of_its_own():
    # a near-isoluminant colour edge (49 against 51) under a checker of +-20: the slope there is steep, and the
    # texture times the slope would reach far past the +-40 the model gave
    lightness = np.where(np.arange(512) < 256, 49, 51).astype(np.float32)[None].repeat(512, 0)
    lightness += ((np.indices((512, 512)).sum(0) % 2) * 40 - 20).astype(np.float32)
    small = shrink(lightness, 0.25)
    ab = np.stack([np.where(np.arange(128) < 64, -40, 40)[None].repeat(128, 0)] * 2).astype(np.float32)
    grown = grow(ab, small, lightness)
    assert np.abs(grown).max() <= 40 + 1e-4


def test_flat_lightness_gives_smooth_chroma_without_the_small_grid():
    lightness = np.full((80, 80), 50, np.float32)
    ramp = np.linspace(-20, 20, 20, dtype=np.float32)
    small_ab = np.stack([np.tile(ramp, (20, 1)), np.tile(ramp[:, None], (1, 20))])
    grown = grow(small_ab, shrink(lightness, 0.25), lightness)
    steps = np.abs(np.diff(grown[0], axis=1))
    assert steps.max() < 3 * np.median(steps) + 1e-3  # no jumps every 4 px
    assert np.isfinite(grown).all()


def test_the_chroma_path_at_scale_one_is_the_models_own_output():
    lightness = np.random.default_rng(3).uniform(0, 100, (40, 50)).astype(np.float32)
    calls = []

    def chroma_of(small):
        calls.append(small.shape)
        return np.stack([small, -small])

    out = chroma_at_scale(lightness, chroma_of, 1.0, WITH_SCENE.scene_size, WITH_SCENE.tile_size)
    np.testing.assert_array_equal(out, np.stack([lightness, -lightness]))
    out = chroma_at_scale(lightness, chroma_of, 0.5, WITH_SCENE.scene_size, WITH_SCENE.tile_size)
    assert calls == [(40, 50), (20, 25)] and out.shape == (2, 40, 50)
    assert math.isclose(float(out[0].mean()), float(lightness.mean()), rel_tol=0.02)
