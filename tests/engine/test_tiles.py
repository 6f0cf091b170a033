import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oppy.engine.kernels.tiles import axis_weights, blend_pieces, blend_tiles, cut_tiles, plan_tiles

SIZES = [(1, 1), (3, 200), (64, 64), (65, 130), (96, 128), (517, 333)]


@pytest.mark.parametrize(("height", "width", "overlap"),
                         [(h, w, o) for h, w in SIZES for o in (0, 5, 16, 31, 48)] + [(1024, 1024, 16)])
def test_cut_then_blend_reconstructs_any_frame(height, width, overlap):
    plan = plan_tiles(height, width, 64, overlap)
    field = np.random.default_rng(height * width + overlap).random((height, width), dtype=np.float32)
    tiles = cut_tiles(field, plan)
    assert tiles.shape == (plan.count, 64, 64, 1)
    np.testing.assert_allclose(blend_tiles(tiles, plan)[0], field, atol=1e-5)


@pytest.mark.parametrize("overlap", [0, 8, 16, 32, 48])
@pytest.mark.parametrize("count", [1, 2, 5])
def test_axis_weights_sum_to_one_and_are_smooth(overlap, count):
    weights = axis_weights(count, 64, overlap)
    stride = 64 - overlap
    coverage = np.zeros((count - 1) * stride + 64)
    for i in range(count):
        coverage[i * stride : i * stride + 64] += weights[i]
    np.testing.assert_allclose(coverage, 1.0, atol=1e-6)
    assert (weights > 0).all()
    if overlap:
        steps = np.abs(np.diff(weights, axis=1)).max()
        assert steps < 2.5 / overlap  # a raised cosine, never a jump


def test_weights_sum_to_one_in_two_dimensions():
    plan = plan_tiles(200, 300, 64, 16)
    ones = np.ones((plan.count, 64, 64, 1), np.float32)
    np.testing.assert_allclose(blend_tiles(ones, plan), 1.0, atol=1e-6)


def test_overlap_zero_equals_plain_stitching():
    plan = plan_tiles(128, 192, 64, 0)
    assert (plan.rows, plan.cols, plan.pad_top, plan.pad_left) == (2, 3, 0, 0)
    tiles = np.random.default_rng(0).random((6, 64, 64, 2), dtype=np.float32)
    stitched = tiles.reshape(2, 3, 64, 64, 2).transpose(4, 0, 2, 1, 3).reshape(2, 128, 192)
    np.testing.assert_array_equal(blend_tiles(tiles, plan), stitched)


def test_padding_is_a_reflection_of_the_frame():
    plan = plan_tiles(40, 50, 64, 16)
    field = np.arange(40 * 50, dtype=np.float32).reshape(40, 50)
    tile = cut_tiles(field, plan)[0, ..., 0]
    padded = np.pad(field, ((plan.pad_top, 64 - 40 - plan.pad_top), (plan.pad_left, 64 - 50 - plan.pad_left)),
                    mode="reflect")
    np.testing.assert_array_equal(tile, padded)


def test_cut_applies_the_model_scaling():
    plan = plan_tiles(64, 64, 64, 16)
    field = np.full((64, 64), 50.0, np.float32)
    np.testing.assert_allclose(cut_tiles(field, plan, scale=0.02, shift=-1.0), 0.0)


def test_blend_rejects_tiles_of_another_plan():
    with pytest.raises(ValueError, match="plan wants"):
        blend_tiles(np.zeros((3, 64, 64, 2), np.float32), plan_tiles(64, 64, 64, 16))
    with pytest.raises(ValueError, match="overlap"):
        plan_tiles(64, 64, 64, 64)


@settings(max_examples=60, deadline=None)
@given(height=st.integers(1, 300), width=st.integers(1, 300), tile=st.sampled_from([8, 16, 32, 64]), data=st.data())
def test_tiling_invariants_hold_for_any_frame(height, width, tile, data):
    overlap = data.draw(st.integers(0, tile - 1), label="overlap")
    plan = plan_tiles(height, width, tile, overlap)
    for size, count, pad, source in ((height, plan.rows, plan.pad_top, plan.row_source),
                                     (width, plan.cols, plan.pad_left, plan.col_source)):
        covered = (count - 1) * plan.stride + tile
        # coverage: the tiles reach past both edges, with as few tiles as that takes, the frame centred
        assert covered >= size and (count == 1 or covered - plan.stride < size)
        assert pad == (covered - size) // 2 and source.shape == (covered,)
        np.testing.assert_array_equal(source[pad : pad + size], np.arange(size))
        assert source.min() >= 0 and source.max() < size  # padding reflects pixels of the frame
    weights_sum = blend_tiles(np.ones((plan.count, tile, tile, 1), np.float32), plan)
    np.testing.assert_allclose(weights_sum, 1.0, atol=1e-5)
    assert (plan.row_weights > 0).all() and (plan.col_weights > 0).all()
    field = np.random.default_rng(height * 1000 + width).random((height, width), dtype=np.float32)
    tiles = cut_tiles(field, plan)
    assert tiles.shape == (plan.count, tile, tile, 1)
    back = blend_tiles(tiles, plan)
    assert back.shape == (1, height, width)
    np.testing.assert_allclose(back[0], field, atol=1e-5)


def test_tiles_cut_into_rows_of_a_batch_equal_the_whole_cut_and_a_range_past_the_end_is_refused():
    field = np.random.default_rng(2).random((150, 90), dtype=np.float32)
    plan = plan_tiles(150, 90, 64, 16)  # 3 x 2 tiles
    whole = cut_tiles(field, plan, 0.5, 1.0)
    batch = np.zeros((8, 64, 64, 1), np.float32)
    cut_tiles(field, plan, 0.5, 1.0, out=batch[3:7], first=2)
    np.testing.assert_array_equal(batch[3:7], whole[2:6])
    np.testing.assert_array_equal(batch[:3], 0.0)
    with pytest.raises(ValueError, match=r"cannot cut tiles 3\.\.7 of 6"):
        cut_tiles(field, plan, out=batch[:4], first=3)


@pytest.mark.parametrize("splits", [[6], [1, 5], [2, 2, 2], [5, 1], [1, 1, 1, 1, 1, 1]])
def test_blending_a_frames_tiles_in_pieces_equals_blending_them_whole(splits):
    plan = plan_tiles(150, 90, 64, 16)
    tiles = np.random.default_rng(3).random((plan.count, 64, 64, 2), dtype=np.float32)
    pieces = np.split(tiles, np.cumsum(splits)[:-1])
    stale = np.full((2, 150, 90), 9.0, np.float32)  # a reused output array: the first piece starts afresh
    np.testing.assert_allclose(blend_pieces(pieces, plan, 3.0, out=stale), blend_tiles(tiles, plan, 3.0), atol=1e-5)


def test_pieces_that_do_not_make_up_the_frame_are_refused():
    plan = plan_tiles(150, 90, 64, 16)
    tiles = np.zeros((plan.count, 64, 64, 2), np.float32)
    with pytest.raises(ValueError, match="hold 5 tiles, the plan 6"):
        blend_pieces([tiles[:2], tiles[2:5]], plan)
    with pytest.raises(ValueError, match="does not fit"):
        blend_pieces([tiles, tiles[:1]], plan)
    with pytest.raises(ValueError, match="blends into float32"):  # the kernel checks no bounds: nor may it read past
        blend_pieces([tiles[:3], tiles[3:, ..., :1]], plan)
    with pytest.raises(ValueError, match="blends into float32"):
        blend_pieces([tiles], plan, out=np.zeros((2, 150, 91), np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        blend_pieces([tiles[..., 0]], plan)
