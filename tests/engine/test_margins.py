"""Black margins around the picture: found exactly, filled for the model, kept black in the output."""

import numpy as np
import pytest

from oppy.bench.synth import synth_frames
from oppy.engine import Engine
from oppy.engine.kernels.lab import rgb_to_lab
from oppy.engine.kernels.margins import MIN_MARGIN, clear_margins, content_box, filled


def picture(height=600, width=720, seed=0):
    return np.random.default_rng(seed).uniform(20, 90, (height, width)).astype(np.float32)


@pytest.mark.parametrize("box", [(0, 600, 120, 720), (105, 480, 0, 720), (MIN_MARGIN, 498, 99, 600), (0, 600, 0, 360)])
def test_the_picture_inside_black_margins_is_found_exactly(box):
    plane = np.zeros((600, 720), np.float32)
    top, bottom, left, right = box
    plane[top:bottom, left:right] = picture()[top:bottom, left:right]
    assert content_box(plane) == box


def test_frames_without_a_margin_worth_the_name_are_left_alone():
    plane = picture()
    assert content_box(plane) is None
    plane[:, : MIN_MARGIN - 1] = 0  # a dark line at the edge, as many pictures have
    plane[-2:] = 0
    assert content_box(plane) is None
    assert content_box(np.zeros((600, 720), np.float32)) is None  # a black frame: no picture to read
    sliver = np.zeros((600, 720), np.float32)
    sliver[:, 300:304] = 50
    assert content_box(sliver) is None
    assert content_box(np.zeros((10, 12), np.float32)) is None


def test_a_margin_with_compression_ringing_and_a_hot_pixel_is_still_a_margin():
    rng = np.random.default_rng(1)
    plane = picture()
    plane[:, :120] = rng.uniform(0, 2.5, (600, 120))  # a JPEG's black: not exactly 0
    plane[77, 5] = 80  # one hot pixel
    assert content_box(plane) == (0, 600, 120, 720)
    plane[78:90, 116] = 80  # a run of bright pixels down a column is picture
    assert content_box(plane) == (0, 600, 116, 720)


def test_margins_are_filled_with_the_picture_mirrored_and_cleared_in_the_colour():
    plane = np.zeros((600, 720), np.float32)
    plane[:, 150:] = picture()[:, 150:]
    box = content_box(plane)
    full = filled(plane, box)
    np.testing.assert_array_equal(full[:, 150:], plane[:, 150:])
    np.testing.assert_array_equal(full[:, 149], plane[:, 151])  # mirrored about the picture's first column
    np.testing.assert_array_equal(full[:, 0], plane[:, 300])
    ab = np.ones((2, 600, 720), np.float32)
    clear_margins(ab, box)
    assert not ab[:, :, :150].any() and ab[:, :, 150:].all()


def test_the_ground_beside_a_black_band_takes_the_colour_it_has_without_the_band(monkeypatch):
    """A subframe on a black canvas: the picture's colour must not depend on the band beside it."""
    (_, frame), = synth_frames(1, 512, 632, seed=3)
    band = 120
    banded = frame.copy()
    banded[:, :band] = 0
    with Engine(provider="cpu", temporal=0) as engine:
        whole = rgb_to_lab(engine.colorize(frame))
        beside = rgb_to_lab(engine.colorize(banded))
        monkeypatch.setattr("oppy.engine.journey.content_box", lambda lightness: None)
        unaware = rgb_to_lab(engine.colorize(banded))

    def error_near_the_band(lab):
        return float(np.abs(lab[:, band : band + 160, 1:] - whole[:, band : band + 160, 1:]).mean())

    assert error_near_the_band(beside) < 0.5 * error_near_the_band(unaware), (
        error_near_the_band(beside), error_near_the_band(unaware))
    assert np.abs(beside[:, :band, 1:]).max() < 1.0  # the band stays black, not tinted


def test_the_evaluation_path_fills_and_clears_margins_as_the_engine_does():
    from oppy.engine.kernels.chroma_scale import chroma_at_scale

    plane = np.zeros((600, 720), np.float32)
    plane[:, 150:] = picture()[:, 150:]
    seen = []

    def chroma_of(small):
        seen.append(small.copy())
        return np.full((2, *small.shape), 9.0, np.float32)

    ab = chroma_at_scale(plane, chroma_of, 0.5, None, 64)
    assert seen[0][:, :75].min() > 15  # the model read the picture mirrored, not black
    assert not ab[:, :, :150].any() and np.allclose(ab[:, :, 150:], 9.0)
