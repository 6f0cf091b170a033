from pathlib import Path

import numpy as np

from oppy.bench.models import benchmark_model, build_free_standin, build_unet_standin
from oppy.engine.api import DEFAULT_MODEL
from oppy.engine.session import ModelSession


def test_the_unet_stand_in_honours_the_contract_and_names_its_architecture(tmp_path):
    session = ModelSession(build_unet_standin(tmp_path / "unet.onnx"), "cpu", 3)
    assert session.contract.info["oppy.architecture"] == "unet-standin-w24"
    session.input_buffer[:] = np.random.default_rng(0).random(session.input_buffer.shape)
    out = session.run()
    assert out.shape == (3, 64, 64, 2) and np.abs(out).max() <= 1 and out.std() > 0  # tanh, and not constant


def test_a_benchmark_runs_the_given_model_else_the_packaged_one_else_a_unet_stand_in(tmp_path, monkeypatch):
    assert benchmark_model("given.onnx", tmp_path) == (Path("given.onnx"), "given.onnx")
    if DEFAULT_MODEL.is_file():
        assert benchmark_model(None, tmp_path)[0] == DEFAULT_MODEL
    monkeypatch.setattr("oppy.engine.api.DEFAULT_MODEL", tmp_path / "missing.onnx")
    path, what = benchmark_model(None, tmp_path)
    assert path == tmp_path / "unet-standin.onnx" and path.is_file()
    assert "unet stand-in" in what


def test_the_free_stand_in_returns_its_input_twice(tmp_path):
    session = ModelSession(build_free_standin(tmp_path / "free.onnx"), "cpu", 2)
    tiles = np.random.default_rng(1).random(session.input_buffer.shape, dtype=np.float32)
    np.testing.assert_array_equal(session.run(tiles), np.concatenate([tiles, tiles], axis=-1))
