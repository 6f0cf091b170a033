"""The int8 copy: calibrated on the engine's own tiles of training photos, the contract kept, close to float, run by
the engine where asked (or by auto on the CPU)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest

from oppy.engine import Engine, OppyError
from oppy.engine.cli import main as stream_main
from oppy.engine.contract import ModelContract
from oppy.engine.errors import ModelError
from oppy.engine.session import choose_precision, precision_copy
from oppy.export.cli import main as export_main
from oppy.export.quantize import KEY_INT8, KEY_PRECISION, even_batches, quantize_int8
from tests.conftest import gradient_frame, write_image


@pytest.fixture(scope="module")
def int8_pair(exported, lawful_dataset, tmp_path_factory):
    """The exported float model copied into a folder of its own, with the int8 copy `oppy-export --int8` writes."""
    folder = tmp_path_factory.mktemp("int8")
    model = folder / "colour.onnx"
    shutil.copy(exported[0], model)
    report = folder / "report.json"
    assert export_main([str(model), str(model), "--int8", str(lawful_dataset), "--report", str(report), "-q"]) == 0
    return model, json.loads(report.read_text())["int8"]


def test_the_int8_copy_keeps_the_contract_records_its_calibration_and_stays_close(int8_pair):
    model, record = int8_pair
    copy = precision_copy(model, "int8")
    assert record["path"] == str(copy) and copy.is_file()
    quantized = onnx.load(str(copy))
    metadata = {prop.key: prop.value for prop in quantized.metadata_props}
    float_metadata = {prop.key: prop.value for prop in onnx.load(str(model)).metadata_props}
    assert ModelContract.from_metadata(metadata) == ModelContract.from_metadata(float_metadata)
    assert metadata[KEY_PRECISION] == "int8"
    calibration = json.loads(metadata[KEY_INT8])
    assert calibration["photos"] == 12 and calibration["tiles"] > 0 and len(calibration["kept_float"]) == 2
    assert {node.op_type for node in quantized.graph.node} >= {"QuantizeLinear", "DequantizeLinear"}
    # a* and b* units, on the calibration tiles: close everywhere, further only on the rarest values
    assert record["mean_abs_ab_difference"] < 0.5 and record["max_abs_ab_difference"] < 8.0


def test_the_engine_runs_the_copy_where_asked_and_auto_takes_it_on_the_cpu(int8_pair, tmp_path, capsys):
    model, _ = int8_pair
    frame = gradient_frame(96, 128)
    with Engine(model, provider="cpu", precision="fp32") as plain, \
            Engine(model, provider="cpu", precision="int8") as int8, Engine(model, provider="cpu") as auto:
        assert (plain.precision, int8.precision, auto.precision) == ("fp32", "int8", "int8")
        assert auto.session.path == precision_copy(model, "int8")
        ours, theirs = int8.colorize(frame).astype(int), plain.colorize(frame).astype(int)
        assert np.abs(ours - theirs).max() <= 12 and not np.array_equal(ours, theirs)
    folder = tmp_path / "frames"
    folder.mkdir()
    write_image(folder / "a.png", frame)
    assert stream_main([str(folder), str(tmp_path / "out"), "--model", str(model), "--report",
                        str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["precision"] == "int8"
    assert "CPUExecutionProvider, int8" in capsys.readouterr().err


def test_a_precision_the_model_lacks_is_one_line_and_auto_falls_back_to_float(exported, tmp_path, capsys):
    model = tmp_path / "alone.onnx"
    shutil.copy(exported[0], model)
    assert choose_precision(model, "auto", "cpu") == (model, "fp32")
    assert choose_precision(model, "fp32", "cpu") == (model, "fp32")
    with pytest.raises(ModelError, match=r"no int8 copy \(no 'alone.int8.onnx' beside it\): write one with"):
        choose_precision(model, "int8", "cpu")
    frames = tmp_path / "frames"
    frames.mkdir()
    write_image(frames / "a.png", gradient_frame(64, 64))
    assert stream_main([str(frames), str(tmp_path / "o.mp4"), "--model", str(model), "--precision", "fp16"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "no fp16 copy" in error[0]
    with pytest.raises(SystemExit) as stopped:
        stream_main([str(frames), str(tmp_path / "o.mp4"), "--precision", "int4"])
    assert stopped.value.code == 2
    with pytest.raises(OppyError, match="precision must be one of auto, fp32, fp16, int8"):
        Engine(model, precision="int4")


def test_calibration_needs_a_prepared_dataset(exported, tmp_path):
    with pytest.raises(OppyError, match="no train folder"):
        quantize_int8(exported[0], tmp_path, tmp_path / "x.int8.onnx")
    (tmp_path / "train").mkdir()
    with pytest.raises(OppyError, match="holds no photos"):
        quantize_int8(exported[0], tmp_path, tmp_path / "x.int8.onnx")


def test_calibration_batches_are_of_one_size_however_few_the_tiles():
    feeds = [{"L": np.full((n, 4, 4, 1), n, np.float32)} for n in (70, 70)]
    assert [len(batch["L"]) for batch in even_batches(feeds)] == [64, 64]
    few = even_batches([{"L": np.zeros((3, 4, 4, 1), np.float32)}, {"L": np.ones((2, 4, 4, 1), np.float32)}])
    assert len(few) == 1 and few[0]["L"].shape == (5, 4, 4, 1) and few[0]["L"][3:].min() == 1
