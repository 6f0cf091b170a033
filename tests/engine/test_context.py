import numpy as np
import onnx
import pytest
from onnx import helper

from oppy.engine import Engine
from oppy.engine.contract import ModelContract
from oppy.engine.errors import ModelError
from oppy.engine.kernels.context import context_copy, cut_context
from oppy.engine.kernels.lab import gray_to_l, l_ab_to_rgb
from oppy.engine.kernels.tiles import blend_tiles, cut_tiles, plan_tiles, predict_chroma
from oppy.engine.session import ModelSession

from ..conftest import affine_model, context_model, contract_model, gradient_frame


def reference_context(copy: np.ndarray, top: int, left: int, plane_shape, tile: int) -> np.ndarray:
    """One context tile the slow way: the copy padded by repeating its edge, the window centred on the tile."""
    height, width = plane_shape
    pad = 2 * tile
    padded = np.pad(copy, pad, mode="edge")
    row = int(np.rint((top + tile / 2) * copy.shape[0] / height - tile / 2))
    col = int(np.rint((left + tile / 2) * copy.shape[1] / width - tile / 2))
    return padded[row + pad: row + pad + tile, col + pad: col + pad + tile]


@pytest.mark.parametrize(("height", "width", "factor"), [(256, 256, 4), (200, 333, 4), (64, 64, 2), (70, 500, 8)])
def test_the_context_cut_matches_a_reference(height, width, factor):
    plane = np.random.default_rng(height).uniform(0, 100, (height, width)).astype(np.float32)
    copy = context_copy(plane, factor)
    assert copy.shape == (max(1, round(height / factor)), max(1, round(width / factor)))
    plan = plan_tiles(height, width, 64, 16)
    tops, lefts = plan.corners()
    cut = cut_context(copy, tops, lefts, plane.shape, 64, scale=0.5, shift=-1.0)
    assert cut.shape == (plan.count, 64, 64, 1)
    for i in range(plan.count):
        np.testing.assert_array_equal(cut[i, ..., 0], reference_context(copy, tops[i], lefts[i], plane.shape, 64)
                                      * np.float32(0.5) - np.float32(1.0))


def test_a_tiles_corners_are_where_the_tiles_are_cut():
    plan = plan_tiles(100, 150, 64, 16)
    tops, lefts = plan.corners()
    assert tops[0] == -plan.pad_top and lefts[0] == -plan.pad_left
    assert lefts[1] - lefts[0] == plan.stride and tops[plan.cols] - tops[0] == plan.stride


def test_the_context_shows_the_scene_around_the_tile():
    # a bright disc far from the tile shows in its context (four tiles wide), not in the tile
    plane = np.full((512, 512), 20.0, np.float32)
    plane[40:80, 300:340] = 90.0
    plan = plan_tiles(512, 512, 64, 0)
    tops, lefts = plan.corners()
    cut = cut_context(context_copy(plane, 4), tops, lefts, plane.shape, 64)
    index = 1 * plan.cols + 3  # the tile at rows 64..128, columns 192..256: the disc is outside it
    assert plane[64:128, 192:256].max() == 20.0 and cut[index].max() > 80


def test_a_context_model_is_fed_its_context_by_the_engine(tmp_path):
    model = context_model(tmp_path / "context.onnx", context_gain=(0.5, -0.25))
    grey = gradient_frame(300, 420)
    lightness = gray_to_l(grey)
    contract = ModelContract("L", "ab", 64, 0.01, 0.0, 128.0, context_input="context", context_factor=4)

    def reference(tiles, context):  # what the graph computes
        return np.concatenate([context * 0.5, context * -0.25], axis=-1)

    expected = predict_chroma(lightness, reference, contract, 16)
    with Engine(model, provider="cpu", batch_size=7, chroma_scale=1) as engine:
        frames = list(engine.stream([grey, grey[::-1].copy()]))
        single = engine.colorize(grey)
    np.testing.assert_array_equal(frames[0], single)
    np.testing.assert_array_equal(single, l_ab_to_rgb(lightness, expected))


def test_a_plain_model_is_unchanged_and_contracts_are_checked(tmp_path):
    plain = affine_model(tmp_path / "plain.onnx", gain=(0.3, 0.1))
    grey = gradient_frame(96, 128)
    lightness = gray_to_l(grey)
    plan = plan_tiles(96, 128, 64, 16)
    with Engine(plain, provider="cpu", chroma_scale=1) as engine:
        frame = engine.colorize(grey)
    tiles = cut_tiles(lightness, plan, 0.01, 0.0)
    ab = blend_tiles(np.concatenate([tiles * 0.3, tiles * 0.1], axis=-1), plan, 128.0)
    np.testing.assert_array_equal(frame, l_ab_to_rgb(lightness, ab))
    base = ModelContract("L", "ab", 64, 0.01, 0.0, 128.0).to_metadata()
    for bad in ({"oppy.context_input": "context"}, {"oppy.context_factor": "4"},
                {"oppy.context_input": "context", "oppy.context_factor": "1"},
                {"oppy.context_input": "L", "oppy.context_factor": "4"}):
        with pytest.raises(ModelError, match="context input"):
            ModelContract.from_metadata({**base, **bad})


def test_a_model_whose_graph_and_contract_disagree_on_context_is_refused(tmp_path):
    contract = ModelContract("L", "ab", 64, 0.01, 0.0, 128.0, context_input="context", context_factor=4)
    lying = affine_model(tmp_path / "lying.onnx", contract=None, metadata=contract.to_metadata())
    with pytest.raises(ModelError, match="context input"):
        Engine(lying, provider="cpu")


def test_the_session_checks_a_context_against_its_tiles_and_its_fixed_batch(tmp_path):
    session = ModelSession(context_model(tmp_path / "c.onnx"), provider="cpu", batch_size=8)
    tiles = np.zeros((5, 64, 64, 1), np.float32)
    with pytest.raises(ValueError, match="the context must have the tiles' shape"):
        session.predict(tiles, tiles[:1])  # broadcasting would hide it
    with pytest.raises(ValueError, match="its context must be"):
        session.run(context=np.zeros((8, 64, 64, 2), np.float32))
    with pytest.raises(ValueError, match="takes a context input"):
        session.predict(tiles)
    assert session.predict(tiles, tiles + 0.5).shape == (5, 64, 64, 2)
    session.close()
    contract = ModelContract("L", "ab", 64, 0.01, 0.0, 128.0, context_input="context", context_factor=4)
    fixed = contract_model(tmp_path / "fixed.onnx", "fixed",
                           [helper.make_node("Concat", ["L", "context"], ["ab"], axis=3)], contract=contract)
    model = onnx.load(fixed)
    model.graph.input[1].type.tensor_type.shape.dim[0].dim_value = 8  # the context's batch fixed, the tiles' not
    onnx.save(model, fixed)
    with pytest.raises(ModelError, match="fixed batch of 8 \\(input 'context'\\)"):
        ModelSession(fixed, provider="cpu", batch_size=4)
