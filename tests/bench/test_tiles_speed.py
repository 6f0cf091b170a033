import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from oppy.bench import tiles_speed
from oppy.bench.flops import fix_batch, flops_per_tile
from oppy.bench.tiles_speed import (
    BoundRun,
    Variant,
    bench_tiles,
    best_rows,
    cuda_graph_speedup,
    nhwc_speedup,
    open_session,
    sample_tiles,
    time_batches,
)
from oppy.engine import session as engine_session
from oppy.engine.session import ModelSession, cuda_driver_present

no_gpu = pytest.mark.skipif(cuda_driver_present(), reason="checks what a machine without an NVIDIA driver reports")


@pytest.fixture(scope="module")
def result(tiny_seed):
    return bench_tiles(tiny_seed, ["cpu", "cuda", "tensorrt"], [1, 5], ["fp32", "fp16"], cuda_graph=True, repeats=2,
                       warmup=1, min_repeat_seconds=0.001, max_seconds=0.2, nhwc=True)


def test_every_combination_has_a_row_and_the_cpu_ones_ran(result, tiny_seed):
    variants = {(r["provider"], r["precision"], r["binding"], r["cuda_graph"], r["nhwc"]) for r in result["rows"]}
    # cpu: fp32, fp16; cuda: host, device, graph, NHWC, graph and NHWC each; tensorrt: both
    assert len(variants) == 2 + 2 * 5 + 2
    assert len(result["rows"]) == 2 * len(variants)
    flops = flops_per_tile(tiny_seed)["flops_per_tile"]
    assert result["flops"]["flops_per_tile"] == flops > 0
    cpu = [r for r in result["rows"] if r["provider"] == "cpu"]
    assert [r["status"] for r in cpu] == ["ok"] * 4
    for row in cpu:
        assert row["tiles_per_s"] > 0 and row["repeats"] >= 1
        assert row["tiles_per_s"] == pytest.approx(row["batch_size"] / (row["ms_per_batch"] / 1000))
        assert row["flops_per_s"] == pytest.approx(row["tiles_per_s"] * flops)
        assert row["pct_of_roof"] == "unknown"
    fp32 = [r["max_abs_vs_first"] for r in cpu if r["precision"] == "fp32"]
    fp16 = [r["max_abs_vs_first"] for r in cpu if r["precision"] == "fp16"]
    assert fp32 == [0.0, 0.0]
    assert all(0 < error < 1e-2 for error in fp16)  # float16 weights round, but stay close
    assert {r["variant"] for r in result["best"]} == {"cpu fp32, host buffers", "cpu fp16, host buffers"}


@no_gpu
def test_gpu_providers_are_skipped_with_the_reason_here(result):
    gpu = [r for r in result["rows"] if r["provider"] != "cpu"]
    assert gpu and all(r["status"] == "skipped" and "no NVIDIA driver" in r["reason"] for r in gpu)
    assert result["cuda_graph_speedup"] == {} and result["nhwc_speedup"] == {}
    assert result["gpu"] is None and result["peak_flops"] == "unknown"


def test_a_failing_variant_is_reported_in_its_rows_and_the_others_run(tiny_seed, monkeypatch):
    real = tiles_speed.open_session

    def broken_fp16(model, variant, *args):
        if variant.precision == "fp16":
            raise RuntimeError("no float16 kernels today\nsecond line")
        return real(model, variant, *args)

    monkeypatch.setattr(tiles_speed, "open_session", broken_fp16)
    rows = bench_tiles(tiny_seed, ["cpu"], [1, 2], ["fp32", "fp16"], repeats=1, warmup=0, max_seconds=0.1)["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok", "skipped", "skipped"]
    assert rows[2]["reason"] == rows[3]["reason"] == "RuntimeError: no float16 kernels today"


def test_without_onnxconverter_common_float16_is_skipped_with_a_reason(tiny_seed, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnxconverter_common", None)
    rows = bench_tiles(tiny_seed, ["cpu"], [1], ["fp32", "fp16"], repeats=1, warmup=0, max_seconds=0.1)["rows"]
    assert rows[0]["status"] == "ok"
    assert rows[1]["status"] == "skipped" and "onnxconverter-common" in rows[1]["reason"]


def test_bound_buffers_give_what_the_engine_session_gives(tiny_seed, tmp_path):
    session = ModelSession(tiny_seed, "cpu", 6)
    tiles = sample_tiles(session.contract, 6)
    assert tiles.shape == (6, 64, 64, 1) and tiles.std() > 0
    expected = session.predict(tiles)
    bound = BoundRun(open_session(tiny_seed, Variant("cpu", "fp32"), 0, tmp_path), session.contract, 6, "host")
    bound.load(np.zeros_like(tiles))
    bound.run()
    bound.load(tiles)  # the buffers stay where they were bound: new data, same addresses
    bound.run()
    np.testing.assert_allclose(bound.output(), expected, atol=1e-6)


def test_provider_options_ask_for_cuda_graphs_and_a_cached_tensorrt_engine(monkeypatch, tmp_path):
    monkeypatch.setattr(tiles_speed, "choose_providers", lambda provider: (
        {"cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
         "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]}[provider], None))
    graph = tiles_speed._provider_options(Variant("cuda", "fp16", "device", True), tmp_path)
    assert graph == [("CUDAExecutionProvider", {"enable_cuda_graph": "1"}), "CPUExecutionProvider"]
    plain = tiles_speed._provider_options(Variant("cuda", "fp32", "device"), tmp_path)
    assert plain[0] == ("CUDAExecutionProvider", {})
    nhwc = tiles_speed._provider_options(Variant("cuda", "fp16", "device", nhwc=True), tmp_path)
    assert nhwc[0] == ("CUDAExecutionProvider", {"prefer_nhwc": "1"})
    # the host-buffer rows are the engine's way: its own CUDA options
    host = next(v for v in tiles_speed._variants(["cuda"], ["fp32"], False) if v.binding == "host")
    assert tiles_speed._provider_options(host, tmp_path)[0] == (
        "CUDAExecutionProvider", engine_session._provider_options("CUDAExecutionProvider"))
    trt = tiles_speed._provider_options(Variant("tensorrt", "fp16", "device"), tmp_path)
    assert trt[0] == ("TensorrtExecutionProvider", {"trt_fp16_enable": "True", "trt_engine_cache_enable": "True",
                                                    "trt_engine_cache_path": str(tmp_path)})
    assert trt[1:] == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_a_graph_with_its_batch_fixed_computes_the_same(tiny_seed, tmp_path):
    fixed = fix_batch(onnx.load(str(tiny_seed)), 5)
    for value in (*fixed.graph.input, *fixed.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_value == 5
    onnx.save(fixed, tmp_path / "fixed.onnx")
    tiles = sample_tiles(ModelSession(tiny_seed, "cpu", 5).contract, 5)
    dynamic = ort.InferenceSession(str(tiny_seed), providers=["CPUExecutionProvider"]).run(None, {"L": tiles})[0]
    static = ort.InferenceSession(str(tmp_path / "fixed.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(static.run(None, {"L": tiles})[0], dynamic, atol=1e-6)
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        static.run(None, {"L": tiles[:4]})


def test_time_batches_warms_up_repeats_and_keeps_to_its_time_limit():
    calls = []
    seconds, repeats = time_batches(lambda: calls.append(1), warmup=3, repeats=4, min_repeat_seconds=0)
    assert repeats == 4 and len(calls) == 3 + 1 + 4 and seconds >= 0
    seconds, repeats = time_batches(lambda: time.sleep(0.01), warmup=0, repeats=1000, min_repeat_seconds=0,
                                    max_seconds=0.05)
    assert 1 <= repeats < 1000 and seconds >= 0.01


def test_best_rows_and_cuda_graph_speedup_read_the_rows():
    def row(binding, graph, batch, rate, nhwc=False):
        return {"status": "ok", "provider": "cuda", "precision": "fp16", "binding": binding, "cuda_graph": graph,
                "nhwc": nhwc, "batch_size": batch, "tiles_per_s": rate, "variant": f"{binding}{graph}{nhwc}"}

    rows = [row("device", False, 1, 100.0), row("device", False, 64, 1000.0), row("device", True, 1, 300.0),
            row("device", True, 64, 1100.0), {**row("host", False, 1, 0.0), "status": "skipped"},
            row("device", False, 64, 1500.0, nhwc=True), row("device", True, 64, 2000.0, nhwc=True)]
    # the row with both features counts towards neither feature's own speed-up
    assert cuda_graph_speedup(rows) == {"fp16 batch 1": 3.0, "fp16 batch 64": 1.1}
    assert nhwc_speedup(rows) == {"fp16 batch 64": 1.5}
    assert [(r["variant"], r["batch_size"]) for r in best_rows(rows)] == [
        ("deviceFalseFalse", 64), ("deviceTrueFalse", 64), ("deviceFalseTrue", 64), ("deviceTrueTrue", 64)]


def test_int8_runs_the_models_int8_copy_and_is_skipped_without_one(tiny_seed, tmp_path):
    import shutil

    model = tmp_path / "seed.onnx"
    shutil.copy(tiny_seed, model)
    rows = bench_tiles(model, ["cpu"], [1], ["fp32", "int8"], repeats=1, warmup=0, max_seconds=0.1)["rows"]
    assert rows[1]["status"] == "skipped" and "no int8 copy beside the model (seed.int8.onnx)" in rows[1]["reason"]
    shutil.copy(tiny_seed, tmp_path / "seed.int8.onnx")  # any graph stands in: the plumbing is what is tested
    result = bench_tiles(model, ["cpu"], [1, 2], ["fp32", "int8"], repeats=1, warmup=0, max_seconds=0.1)
    assert [r["status"] for r in result["rows"]] == ["ok"] * 4
    rate = {(r["precision"], r["batch_size"]): r["tiles_per_s"] for r in result["rows"]}
    assert result["int8_speedup"] == {f"cpu batch {b}": rate[("int8", b)] / rate[("fp32", b)] for b in (1, 2)}
