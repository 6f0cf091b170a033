"""Captions that cannot fit a frame are left out with one warning; an empty caption draws nothing."""

import logging

import numpy as np
import pytest

from oppy.engine import Engine
from oppy.engine.overlays.captions import MAX_CAPTION_SHARE, burn_caption, caption_box
from tests.conftest import gradient_frame


@pytest.mark.parametrize("width, height", [(1, 1), (16, 16), (4000, 20), (30, 26), (8, 400)])
def test_a_caption_that_cannot_fit_is_left_out(width, height):
    assert caption_box(width, height, "sol 12") is None
    frame = np.full((height, width, 3), 90, np.uint8)
    assert not burn_caption(frame, "sol 12") and (frame == 90).all()


@pytest.mark.parametrize("width, height", [(64, 48), (200, 120), (1024, 1024), (4000, 300)])
def test_a_caption_that_fits_sits_at_the_bottom_inside_the_frame(width, height):
    left, top, box_width, box_height = caption_box(width, height, "sol 12 navcam")
    assert left > 0 and top > 0 and top + box_height < height and left + box_width < width
    assert box_height + 2 * left <= MAX_CAPTION_SHARE * height and top > height / 3
    frame = np.full((height, width, 3), 90, np.uint8)
    assert burn_caption(frame, "sol 12 navcam") and (frame != 90).any()


def test_an_empty_caption_draws_nothing():
    frame = np.full((120, 200, 3), 90, np.uint8)
    assert not burn_caption(frame, "") and not burn_caption(frame, "   ") and (frame == 90).all()


def test_a_render_leaves_the_caption_out_of_tiny_frames_with_one_warning(constant_model, caplog):
    frames = [gradient_frame(16, 16, seed=i) for i in range(3)] + [gradient_frame(120, 200)]
    with Engine(constant_model, provider="cpu") as plain:
        expected = [plain.colorize(f) for f in frames]
    with caplog.at_level(logging.WARNING), Engine(constant_model, provider="cpu", caption="frame {index}") as engine:
        out = list(engine.stream(frames))
    for got, want in zip(out[:3], expected[:3], strict=True):
        np.testing.assert_array_equal(got, want)
    assert (out[3] != expected[3]).any()  # the frame that can hold it has its caption
    warnings = [r.message for r in caplog.records if "too small for a caption" in r.message]
    assert warnings == ["frames of 16x16 are too small for a caption: it is left out of them"]
    with Engine(constant_model, provider="cpu", caption="") as engine:
        np.testing.assert_array_equal(next(iter(engine.stream(frames[3:]))), expected[3])
