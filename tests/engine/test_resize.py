import numpy as np
import pytest

from oppy.engine.kernels.resize import Placement, place, placement, scale_pixels


@pytest.mark.parametrize(("size", "expected"), [
    ((128, 96), Placement((128, 96), 0, 0, 128, 96)),   # same aspect: fills the canvas
    ((40, 100), Placement((128, 96), 45, 0, 38, 96)),   # tall: bars left and right
    ((300, 50), Placement((128, 96), 0, 37, 128, 21)),  # wide: bars above and below
    ((1, 1), Placement((128, 96), 16, 0, 96, 96)),
    ((3200, 2400), Placement((128, 96), 0, 0, 128, 96)),
    ((1, 5000), Placement((128, 96), 63, 0, 1, 96)),    # never thinner than a pixel
])
def test_letterbox_keeps_the_aspect_ratio_centred(size, expected):
    assert placement(size, (128, 96), "letterbox") == expected


def test_scale_fills_the_canvas_whatever_the_aspect():
    assert placement((40, 100), (128, 96), "scale") == Placement((128, 96), 0, 0, 128, 96)


@pytest.mark.parametrize("pixels", [
    np.full((2400, 3200), 77, np.uint8),
    np.full((1, 1), 77, np.uint8),
    np.full((51, 77, 4), 77, np.uint8),
    np.full((100, 40, 3), 77 * 257, np.uint16),
])
def test_scaling_keeps_dtype_channels_and_values(pixels):
    scaled = scale_pixels(pixels, 38, 96)
    assert scaled.shape == (96, 38, *pixels.shape[2:]) and scaled.dtype == pixels.dtype
    np.testing.assert_array_equal(scaled, pixels.flat[0])  # a flat frame stays flat, up or down


def test_shrinking_averages_areas():
    checker = np.indices((64, 64)).sum(axis=0) % 2 * 200
    assert np.all(scale_pixels(checker.astype(np.uint8), 16, 16) == 100)


def test_place_puts_the_frame_on_a_black_canvas():
    rgb = np.full((96, 38, 3), (200, 100, 50), np.uint8)
    out = place(rgb, Placement((128, 96), 45, 0, 38, 96))
    assert out.shape == (96, 128, 3)
    np.testing.assert_array_equal(out[:, 45:83], rgb)
    assert not out[:, :45].any() and not out[:, 83:].any()
    full = np.zeros((96, 128, 3), np.uint8)
    assert place(full, Placement((128, 96), 0, 0, 128, 96)) is full
