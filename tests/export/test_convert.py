import json

import numpy as np
import onnx
import pytest

from oppy.engine import Engine, ModelError
from oppy.engine.contract import (
    KEY_AB_SCALE,
    KEY_ARCHITECTURE,
    KEY_CONTRACT,
    KEY_EXPORTER,
    KEY_INPUT,
    KEY_L_SCALE,
    KEY_METRICS,
    KEY_OUTPUT,
    KEY_SCENE_SIZE,
    KEY_TRAINING,
    REQUIRED_KEYS,
)
from oppy.engine.contract import TRAINING_CONTRACT as CONTRACT
from oppy.engine.kernels.lab import l_ab_to_rgb, to_lightness
from oppy.engine.kernels.tiles import cut_tiles, plan_tiles, predict_chroma
from oppy.engine.session import ModelSession
from oppy.export import ExportOptions, convert, export_model
from oppy.export.network import keras_predict
from oppy.export.parity import FP16_TOLERANCE
from tests.conftest import gradient_frame
from tests.training.conftest import lawful_photo


def shape(value: onnx.ValueInfoProto) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_the_graph_has_the_contract_names_and_a_symbolic_batch(exported):
    model = onnx.load(exported[0])
    assert [(v.name, shape(v)) for v in model.graph.input] == [("L", ["N", 64, 64, 1])]
    assert [(v.name, shape(v)) for v in model.graph.output] == [("ab", ["N", 64, 64, 2])]
    assert {o.domain: o.version for o in model.opset_import}[""] >= 17


def test_the_metadata_holds_the_contract_training_and_metrics(exported, trained_run):
    metadata = {e.key: e.value for e in onnx.load(exported[0]).metadata_props}
    assert set(REQUIRED_KEYS) <= set(metadata)
    assert (float(metadata[KEY_L_SCALE]), float(metadata[KEY_AB_SCALE])) == (CONTRACT.l_scale, CONTRACT.ab_scale)
    assert metadata[KEY_ARCHITECTURE] == "unet"
    run = json.loads((trained_run / "run.json").read_text())
    training = json.loads(metadata[KEY_TRAINING])
    assert {k: training[k] for k in ("loss", "epochs_run", "train_seconds", "machine")} == \
        {k: run[k] for k in ("loss", "epochs_run", "train_seconds", "machine")}
    assert json.loads(metadata[KEY_METRICS]) == json.loads((trained_run / "eval.json").read_text())
    assert int(metadata[KEY_SCENE_SIZE]) == run["scene_size"] == 128  # the long side of every training photo
    exporter = json.loads(metadata[KEY_EXPORTER])
    assert {"tf2onnx", "tensorflow", "onnx", "onnxruntime"} <= set(exporter["tools"])
    assert exporter["parity"]["ok"] and exporter["precision"] == "float32"
    # the unet's two nearest upsamplings are one Resize each (its bilinear output upsampling was one already)
    assert exporter["graph_rewrites"] == {"nearest_upsampling_to_resize": 2}
    ops = [node.op_type for node in onnx.load(exported[0]).graph.node]
    assert ops.count("Resize") == 3 and "Tile" not in ops


def test_the_engine_colourises_a_frame_as_tensorflow_would(exported, network):
    gray = gradient_frame(100, 150)
    # the palette guard off: the network's own answer, as TensorFlow gives it (the guard has tests of its own)
    with Engine(model=exported[0], provider="cpu", batch_size=32, chroma_scale=1, palette_guard=False) as engine:
        rgb = engine.colorize(gray)
        overlap = engine.session.contract.overlap
    lightness = to_lightness(gray)
    expected = l_ab_to_rgb(lightness, predict_chroma(lightness, lambda t: keras_predict(network, t), CONTRACT, overlap))
    assert rgb.shape == (100, 150, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - expected).max() <= 1
    assert (rgb.max(axis=2).astype(int) - rgb.min(axis=2)).max() > 0  # colour, not grey


def test_tensorflow_and_onnx_runtime_agree_on_random_and_real_looking_tiles(exported, network):
    rng = np.random.default_rng(7)
    random = rng.uniform(-1, 1, (20, 64, 64, 1)).astype(np.float32)
    lightness = to_lightness(lawful_photo(150, 200, seed=3))
    real = cut_tiles(lightness, plan_tiles(150, 200), CONTRACT.l_scale, CONTRACT.l_shift)
    session = ModelSession(exported[0], provider="cpu", batch_size=16)
    for tiles in (random, real):
        assert np.abs(session.predict(tiles) - keras_predict(network, tiles)).max() <= 1e-4


@pytest.mark.parametrize(("change", "message"), [
    ({KEY_L_SCALE: None}, f"missing metadata {KEY_L_SCALE}"),
    ({KEY_INPUT: None, KEY_AB_SCALE: None}, f"missing metadata {KEY_INPUT}, {KEY_AB_SCALE}"),
    ({KEY_CONTRACT: "2"}, "contract version '2'"),
    ({KEY_OUTPUT: "Identity:0"}, "declares input 'L' and output 'Identity:0'"),
])
def test_a_model_with_broken_metadata_is_refused(exported, tmp_path, change, message):
    model = onnx.load(exported[0])
    kept = [(e.key, change.get(e.key, e.value)) for e in model.metadata_props]
    del model.metadata_props[:]
    for key, value in kept:
        if value is not None:
            model.metadata_props.add(key=key, value=value)
    onnx.save(model, tmp_path / "broken.onnx")
    with pytest.raises(ModelError, match=message):
        Engine(model=tmp_path / "broken.onnx", provider="cpu")


def test_the_float16_copy_keeps_float32_io_and_its_tolerance(exported, network):
    fp16 = exported[0].with_name("colour.fp16.onnx")
    model = onnx.load(fp16)
    assert {v.type.tensor_type.elem_type for v in (*model.graph.input, *model.graph.output)} == {onnx.TensorProto.FLOAT}
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    assert "float16" in json.loads({e.key: e.value for e in model.metadata_props}[KEY_EXPORTER])["precision"]
    tiles = np.random.default_rng(1).uniform(-1, 1, (8, 64, 64, 1)).astype(np.float32)
    with Engine(model=fp16, provider="cpu", batch_size=8) as engine:
        assert np.abs(engine.session.predict(tiles) - keras_predict(network, tiles)).max() <= FP16_TOLERANCE


def test_optimize_writes_the_ort_graph_only_when_it_is_faster(trained_run, tmp_path):
    out = tmp_path / "m.onnx"
    report = export_model(trained_run, out, ExportOptions(optimize=True, parity_tiles=8, speed_batch=16,
                                                          speed_rounds=2))
    optimized = report["optimized"]
    assert set(optimized["seconds_per_batch"]) == {"plain", "optimized"} and optimized["parity"]["ok"]
    written = tmp_path / "m.optimized.onnx"
    assert written.exists() == (optimized["path"] is not None)
    if written.exists():
        with Engine(model=written, provider="cpu", batch_size=8) as engine:
            assert engine.session.contract.info[KEY_ARCHITECTURE] == "unet"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", *([written.name] if written.exists() else [])]


def test_an_export_that_does_not_match_tensorflow_is_not_written(trained_run, tmp_path, monkeypatch):
    faithful = convert.to_onnx

    def slightly_off(network, contract, opset=17):
        model = faithful(network, contract, opset)
        weights = next(t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and t.dims)
        weights.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(weights) * 1.01, weights.name))
        return model

    monkeypatch.setattr(convert, "to_onnx", slightly_off)
    with pytest.raises(ModelError, match="differs from the Keras model by up to"):
        export_model(trained_run, tmp_path / "m.onnx", ExportOptions(parity_tiles=8))
    assert list(tmp_path.iterdir()) == []


def test_inputs_as_nchw_is_honoured(network):
    model = convert.to_onnx(network, CONTRACT, inputs_as_nchw=True)
    assert [(v.name, shape(v)) for v in model.graph.input] == [("L", ["N", 1, 64, 64])]


def test_a_sequential_network_converts_too():
    import keras

    sequential = keras.Sequential([keras.Input((64, 64, 1)), keras.layers.Conv2D(2, 3, padding="same")])
    model = convert.to_onnx(sequential, CONTRACT)
    assert [v.name for v in model.graph.input] == ["L"] and [v.name for v in model.graph.output] == ["ab"]
