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


def test_a_network_saved_before_the_layer_recorded_its_centres_loads_with_the_bins_it_was_built_with(tmp_path):
    import json
    import zipfile

    from oppy.export.layers import LEGACY_CENTRES

    logits = keras.Input((4, 4, len(ab_bins())), name="logits")
    network = keras.Model(logits, AnnealedMean(ab_bins() / AB_SCALE, TEMPERATURE, name="ab")(logits))
    network.save(tmp_path / "new.keras")
    with zipfile.ZipFile(tmp_path / "new.keras") as new, zipfile.ZipFile(tmp_path / "old.keras", "w") as old:
        for item in new.infolist():
            data = new.read(item)
            if item.filename == "config.json":  # as a file saved before holds it: no centres, no temperature
                config = json.loads(data)
                layer = next(entry for entry in config["config"]["layers"] if entry["class_name"] == "AnnealedMean")
                assert layer["config"].pop("centres") and layer["config"].pop("temperature")
                data = json.dumps(config).encode()
            old.writestr(item, data)
    loaded = keras.models.load_model(tmp_path / "old.keras", compile=False)
    np.testing.assert_array_equal(loaded.get_layer("ab").centres, LEGACY_CENTRES.astype(np.float32))
    sample = np.random.default_rng(1).normal(0, 2, (1, 4, 4, len(ab_bins()))).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(sample)), np.asarray(network(sample)), atol=1e-6)
