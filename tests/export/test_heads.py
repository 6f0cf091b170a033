"""The exported graphs of the newer architectures: a classification head's decode and a context input."""

import keras
import numpy as np
import onnxruntime as ort

from oppy.engine.contract import ModelContract
from oppy.export.convert import to_onnx
from oppy.export.layers import AnnealedMean
from oppy.training.architectures import AB_SCALE, TEMPERATURE, ab_bins, build
from tests.training.test_classes import annealed_mean_reference

CONTRACT = ModelContract("L", "ab", 64, 1 / 50, -1.0, 128.0)


def run(model, **feed):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feed)[0]


def test_the_annealed_mean_inside_the_exported_graph_matches_numpy():
    count = len(ab_bins())
    rng = np.random.default_rng(0)
    weight, bias = rng.normal(0, 4, count).astype(np.float32), rng.normal(0, 2, count).astype(np.float32)
    tiles = keras.Input((64, 64, 1), name="L")
    conv = keras.layers.Conv2D(count, 1)
    network = keras.Model(tiles, AnnealedMean(ab_bins() / AB_SCALE, TEMPERATURE, name="ab")(conv(tiles)))
    conv.set_weights([weight.reshape(1, 1, 1, count), bias])
    lightness = rng.uniform(-1, 1, (3, 64, 64, 1)).astype(np.float32)
    exported = run(to_onnx(network, CONTRACT), L=lightness)
    np.testing.assert_allclose(exported, annealed_mean_reference(lightness * weight + bias), atol=1e-5)


def test_a_context_network_exports_both_inputs_by_name_in_order():
    contract = ModelContract("L", "ab", 64, 1 / 50, -1.0, 128.0, context_input="context", context_factor=4)
    network = build("unet-context-classes")
    model = to_onnx(network, contract)
    assert [value.name for value in model.graph.input] == ["L", "context"]
    rng = np.random.default_rng(1)
    tiles, context = (rng.uniform(-1, 1, (2, 64, 64, 1)).astype(np.float32) for _ in range(2))
    theirs = np.asarray(network([tiles, context], training=False)["ab"])
    np.testing.assert_allclose(run(model, L=tiles, context=context), theirs, atol=1e-4)
    swapped = run(model, L=context, context=tiles)
    # the two inputs are not interchangeable: the names matter (an untrained network answers near 0: relative)
    assert np.abs(swapped - theirs).max() > 0.5 * np.abs(theirs).max()
