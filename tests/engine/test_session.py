import numpy as np
import pytest

from oppy.engine.contract import KEY_AB_SCALE, ModelContract
from oppy.engine.errors import ModelError, OppyError
from oppy.engine.session import ModelSession, choose_providers
from tests.conftest import affine_model


def test_runs_full_batches_through_io_binding(tmp_path):
    session = ModelSession(affine_model(tmp_path / "m.onnx", gain=(2.0, -1.0), offset=(0.5, 0.0)),
                           provider="cpu", batch_size=8)
    session.input_buffer[:] = np.arange(8, dtype=np.float32)[:, None, None, None]
    out = session.run()
    np.testing.assert_allclose(out[:, 0, 0, 0], 2 * np.arange(8) + 0.5)
    session.input_buffer[:] = 1.0  # the bound buffer is read afresh on every run
    np.testing.assert_allclose(session.run()[..., 1], -1.0)


def test_predict_handles_any_tile_count(tmp_path):
    session = ModelSession(affine_model(tmp_path / "m.onnx", gain=(1.0, 3.0)), provider="cpu", batch_size=4)
    tiles = np.random.default_rng(0).random((11, 64, 64, 1), dtype=np.float32)
    out = session.predict(tiles)
    np.testing.assert_allclose(out, np.concatenate([tiles, 3 * tiles], axis=-1), rtol=1e-6)


def test_provider_fallback_is_announced(tmp_path, caplog):
    model = affine_model(tmp_path / "m.onnx")
    session = ModelSession(model, provider="cpu")
    assert session.provider == "CPUExecutionProvider" and session.fallback is None
    chosen, _ = choose_providers("cuda")
    if "CUDAExecutionProvider" in chosen:
        pytest.skip("this machine can load CUDA: no fallback to observe")
    session = ModelSession(model, provider="cuda")
    assert session.provider == "CPUExecutionProvider"
    assert "CUDAExecutionProvider unavailable" in session.fallback
    assert "CUDAExecutionProvider unavailable" in caplog.text


def test_unknown_provider_is_refused():
    with pytest.raises(OppyError, match="unknown provider 'tpu'"):
        choose_providers("tpu")


def test_missing_and_broken_models_are_refused(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        ModelSession(tmp_path / "nope.onnx", provider="cpu")
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        ModelSession(junk, provider="cpu")


def test_model_without_contract_metadata_is_refused(tmp_path):
    metadata = ModelContract("L", "ab", 64, 0.01, 0.0, 128.0).to_metadata()
    del metadata[KEY_AB_SCALE]
    with pytest.raises(ModelError, match=f"missing metadata {KEY_AB_SCALE}"):
        ModelSession(affine_model(tmp_path / "m.onnx", metadata=metadata), provider="cpu")


def test_graph_that_breaks_the_declared_contract_is_refused(tmp_path):
    wrong_name = ModelContract("gray", "ab", 64, 0.01, 0.0, 128.0)
    path = affine_model(tmp_path / "m.onnx", metadata=wrong_name.to_metadata())
    with pytest.raises(ModelError, match="declares input 'gray'"):
        ModelSession(path, provider="cpu")
    wrong_tile = ModelContract("L", "ab", 32, 0.01, 0.0, 128.0)
    path = affine_model(tmp_path / "m2.onnx", metadata=wrong_tile.to_metadata())
    with pytest.raises(ModelError, match=r"contract wants float32 \[N, 32, 32, 1\]"):
        ModelSession(path, provider="cpu")
    path = affine_model(tmp_path / "m3.onnx", batch=16)
    with pytest.raises(ModelError, match="fixed batch of 16"):
        ModelSession(path, provider="cpu", batch_size=8)
    assert ModelSession(path, provider="cpu", batch_size=16).batch_size == 16


def test_a_batch_of_ones_own_is_read_in_place_and_checked(tmp_path):
    session = ModelSession(affine_model(tmp_path / "m.onnx", gain=(2.0, 1.0)), provider="cpu", batch_size=4)
    batch = np.zeros_like(session.input_buffer)
    batch[:] = 3.0
    np.testing.assert_allclose(session.run(batch)[..., 0], 6.0)
    batch[:] = -1.0  # the same array again, changed: read afresh
    np.testing.assert_allclose(session.run(batch)[..., 0], -2.0)
    session.input_buffer[:] = 0.5  # and back to the session's own buffer
    np.testing.assert_allclose(session.run()[..., 0], 1.0)
    for wrong in (np.zeros((3, 64, 64, 1), np.float32), np.zeros((4, 64, 64, 1)),
                  np.zeros((4, 64, 64, 2), np.float32)[..., :1]):
        with pytest.raises(ValueError, match="C-contiguous float32"):
            session.run(wrong)


def test_the_output_goes_where_the_caller_asks_and_is_checked(tmp_path):
    session = ModelSession(affine_model(tmp_path / "m.onnx", gain=(1.0, 1.0)), provider="cpu", batch_size=2)
    batch = np.full_like(session.input_buffer, 1.0)
    first, second = (np.zeros((2, 64, 64, 2), np.float32) for _ in range(2))
    assert session.run(batch, first) is first
    batch[:] = 2.0
    assert session.run(batch, second) is second
    shared = session.run(batch)
    batch[:] = 3.0
    session.run(batch)
    np.testing.assert_allclose(first, 1.0)
    np.testing.assert_allclose(second, 2.0)
    np.testing.assert_allclose(shared, 3.0)  # without `out`: the session's own array, written by every run
    with pytest.raises(ValueError, match="C-contiguous float32"):
        session.run(batch, np.zeros((2, 64, 64, 1), np.float32))


def test_a_model_whose_file_name_is_not_utf8_loads(tmp_path, archive):
    import json
    import os

    from oppy.engine import Engine
    from oppy.engine.cli import main
    from tests.conftest import affine_model

    name = os.fsdecode(os.fsencode(str(tmp_path)) + b"/model-\xff\xfe.onnx")
    affine_model(tmp_path / "plain.onnx", offset=(0.2, 0.1)).rename(name)
    with Engine(name, provider="cpu") as engine:
        assert engine.colorize(np.full((70, 90), 120, np.uint8)).shape == (70, 90, 3)
    assert main([str(archive), str(tmp_path / "out.mp4"), "--model", name, "--report", str(tmp_path / "r.json"),
                 "-q"]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["model"].endswith("model-\\xff\\xfe.onnx")
    os.remove(name)
    with pytest.raises(ModelError, match=r"model-\\xff\\xfe.onnx' not found"):
        ModelSession(name, "cpu")


def test_a_batch_is_refused_where_the_network_s_working_memory_would_not_fit(monkeypatch):
    from oppy.engine import session

    monkeypatch.setattr(session, "physical_memory", lambda: 8 * 2**30)
    session.check_batch_fits(4096, 64)  # about 2.8 GiB in all
    # 40,000 tiles: 3.7 GiB of arrays alone, which fit; with the network's working memory (24 GiB) they do not
    with pytest.raises(OppyError, match=r"pass a smaller --batch-size \(at most \d+\)"):
        session.check_batch_fits(40_000, 64)
    monkeypatch.setattr(session, "physical_memory", lambda: None)  # unknown: nothing refused
    session.check_batch_fits(40_000, 64)
