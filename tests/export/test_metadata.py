import json

import onnx
import pytest
from onnx import helper

from oppy.engine.contract import KEY_ARCHITECTURE, KEY_EXPORTER, KEY_METRICS, KEY_TRAINING, ModelContract
from oppy.engine.contract import TRAINING_CONTRACT as CONTRACT
from oppy.engine.errors import ModelError
from oppy.export.metadata import exporter_versions, run_contract, stamp, with_exporter


def test_the_runs_own_scaling_and_records_are_used(tmp_path):
    trained = ModelContract("L", "ab", 64, l_scale=0.01, l_shift=0.0, ab_scale=100.0)
    run = {"architecture": "seed", "loss": "mse", "epochs_run": 3, "train_seconds": 12.5,
           "machine": {"processor": "x86_64"}, "contract": trained.to_metadata()}
    (tmp_path / "run.json").write_text(json.dumps(run))
    (tmp_path / "eval.json").write_text(json.dumps({"split": "val", "methods": {"model": {"delta_e00": 7.5}}}))
    contract = run_contract(tmp_path, "ignored", 64, overlap=8)
    assert (contract.l_scale, contract.l_shift, contract.ab_scale, contract.overlap) == (0.01, 0.0, 100.0, 8)
    assert contract.info[KEY_ARCHITECTURE] == "seed"
    assert json.loads(contract.info[KEY_TRAINING]) == {k: v for k, v in run.items() if k != "contract"}
    assert json.loads(contract.info[KEY_METRICS])["methods"]["model"]["delta_e00"] == 7.5


def test_a_bare_network_says_what_it_lacks(caplog):
    contract = run_contract(None, "unet", 64)
    assert (contract.l_scale, contract.l_shift, contract.ab_scale) == (CONTRACT.l_scale, CONTRACT.l_shift,
                                                                      CONTRACT.ab_scale)
    assert contract.info[KEY_ARCHITECTURE] == "unet"
    assert json.loads(contract.info[KEY_TRAINING]) == {"none": "no run.json in the model's folder"}
    assert "oppy-train evaluate" in json.loads(contract.info[KEY_METRICS])["none"]
    assert "assuming the current training scaling" in caplog.text


def test_a_network_of_another_tile_than_its_run_is_refused():
    with pytest.raises(ModelError, match="takes 32x32 tiles but was trained under a contract for 64x64"):
        run_contract(None, "unet", 32, overlap=8)


def test_stamp_replaces_the_metadata_with_the_contract():
    model = helper.make_model(helper.make_graph([], "empty", [], []))
    model.metadata_props.add(key="stale", value="1")
    contract = with_exporter(CONTRACT, {"tools": exporter_versions()})
    stamp(model, contract)
    metadata = {e.key: e.value for e in model.metadata_props}
    assert metadata == contract.to_metadata() and "stale" not in metadata
    assert ModelContract.from_metadata(metadata) == contract
    assert {"tf2onnx", "tensorflow", "keras", "onnx", "onnxruntime"} <= set(json.loads(metadata[KEY_EXPORTER])["tools"])
    assert isinstance(model, onnx.ModelProto)
