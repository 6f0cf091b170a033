import importlib.util
import json

import pytest

from oppy.bench.cli import main
from tests.training import conftest as training_fixtures

lawful_dataset = training_fixtures.lawful_dataset


def test_tiles_prints_a_table_writes_json_and_plots(tiny_seed, tmp_path, capsys):
    plot = tmp_path / "tiles.png"
    args = ["--json", str(tmp_path / "tiles.json"), "tiles", "--model", str(tiny_seed), "--providers", "cpu,cuda",
            "--batch-sizes", "1,3", "--precision", "fp32", "--repeats", "1", "--warmup", "0", "--max-seconds", "0.1",
            "--cuda-graph", "--nhwc"]
    if importlib.util.find_spec("matplotlib"):  # the optional extra `plot`
        args += ["--plot", str(plot)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| cpu fp32, host buffers | 1 |" in out and "| cpu fp32, host buffers | 3 |" in out
    assert "GFLOP per tile" in out and "best batch size per variant" in out
    saved = json.loads((tmp_path / "tiles.json").read_text())
    assert saved["machine"]["cores"] >= 1
    assert saved["tiles"]["model"] == str(tiny_seed)
    assert [r["batch_size"] for r in saved["tiles"]["rows"] if r["provider"] == "cpu"] == [1, 3]
    # cpu; cuda host, device, graph, NHWC, graph and NHWC: two batch sizes each
    assert len(saved["tiles"]["rows"]) == 2 + 5 * 2
    assert "channels-last kernels (tiles/s with / without" in out
    if "--plot" in args:
        assert plot.is_file()


def test_pipeline_names_the_slowest_stage_and_the_efficiency(tiny_seed, synth_archive, tmp_path, capsys):
    assert main(["--json", str(tmp_path / "p.json"), "pipeline", str(synth_archive), "--model", str(tiny_seed),
                 "--batch-size", "8", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "| **end to end** |" in out and "slowest stage: " in out and "pipeline efficiency" in out
    saved = json.loads((tmp_path / "p.json").read_text())["pipeline"]
    assert len(saved["stages"]) == 11 and saved["slowest_stage"] in out


def test_pipeline_with_a_free_model_measures_the_hosts_ceiling(synth_archive, tmp_path, capsys):
    assert main(["--json", str(tmp_path / "p.json"), "pipeline", str(synth_archive), "--free-model",
                 "--decode-threads", "2", "--batch-size", "8", "--repeats", "1", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert "free stand-in" in out and "2 decode threads" in out
    saved = json.loads((tmp_path / "p.json").read_text())["pipeline"]
    assert saved["decode_threads"] == 2 and saved["e2e_frames_per_s"] > 0


def test_quality_prints_every_method(blur, lawful_dataset, tmp_path, capsys):
    assert main(["--json", str(tmp_path / "q.json"), "quality", str(lawful_dataset), "--model", str(blur),
                 "--flicker-photos", "1", "--flicker-frames", "3"]) == 0
    out = capsys.readouterr().out
    for method in ("| model |", "| model, stitched (seed-style) |", "| constant |", "| lightness |", "| grey |"):
        assert method in out
    assert json.loads((tmp_path / "q.json").read_text())["quality"]["photos"] == 4


def test_compare_seed_prints_both_approaches_and_the_ratio(synth_archive, tmp_path, capsys, monkeypatch):
    calls = []

    def fake(source, seed_model, provider, batch_size, repeats, model, **options):
        calls.append((str(source), seed_model, provider, batch_size, repeats, model, options))
        return {"frames": 3, "size": "128x128", "weights": "untrained seed", "ratio": 25.0, "ratio_same_weights": 2.5,
                "seed": {"seconds": 5.0, "frames_per_s": 0.6, "tiles": 12, "how": "keras"},
                "oppy": {"seconds": 0.2, "frames_per_s": 15.0, "tiles": 3, "ratio": 25.0, "how": "engine"},
                "oppy_same_weights": {"seconds": 2.0, "frames_per_s": 1.5, "tiles": 27, "ratio": 2.5, "how": "e"}}

    monkeypatch.setattr("oppy.bench.seed_compare.bench_compare_seed", fake)
    assert main(["--json", str(tmp_path / "c.json"), "compare-seed", str(synth_archive), "--overlap", "0",
                 "--model", "m.onnx"]) == 0
    assert calls == [(str(synth_archive), None, "cpu", 256, 1, "m.onnx", {"overlap": 0})]
    out = capsys.readouterr().out
    assert "| seed (original) | 5 |" in out and "| oppy-stream, its defaults | 0.2 |" in out
    assert "| oppy-stream, the seed's weights | 2 |" in out and "25x with its defaults, 2.5x on the same" in out
    assert json.loads((tmp_path / "c.json").read_text())["compare_seed"]["ratio"] == 25.0


@pytest.mark.parametrize(("flags", "standard", "opencv"), [([], "bt601", True),
                                                      (["--standard", "bt709"], "bt709", False),
                                                      (["--pix-fmt", "yuv444p"], "bt601", False)])
def test_encode_compares_the_conversions_and_both_threadings(tmp_path, capsys, flags, standard, opencv):
    assert main(["--json", str(tmp_path / "e.json"), "encode", "--frames", "3", "--size", "96x64",
                 "--repeats", "1", *flags]) == 0
    out = capsys.readouterr().out
    assert "| engine (rgb_to_yuv, Numba) |" in out and "| frame threads |" in out
    assert "| prepared ahead |" in out and ("| OpenCV" in out) == opencv
    saved = json.loads((tmp_path / "e.json").read_text())["encode"]
    assert len(saved["sink"]) == 2 and saved["standard"] == standard  # 96x64 is below HD: BT.601 by default
    engine, _, into_frame, copied = saved["conversion"][:4]
    # the engine's colour is smooth: its conversion agrees with the scaler's on luma and nearly on chroma
    assert engine["y_max_vs_scaler"] <= 1 and engine["uv_mean_vs_scaler"] < 0.5
    for key in ("y_max_vs_scaler", "uv_max_vs_scaler", "uv_mean_vs_scaler"):  # the same kernel, either way
        assert into_frame[key] == copied[key] == engine[key]

def test_agreement_compares_a_provider_with_the_cpu_frame_by_frame(tiny_seed, synth_archive, tmp_path, capsys):
    assert main(["--json", str(tmp_path / "a.json"), "agreement", str(synth_archive), "--model", str(tiny_seed),
                 "--provider", "cpu", "--batch-size", "4", "--limit", "2"]) == 0
    assert "| rgb_max |" in capsys.readouterr().out
    saved = json.loads((tmp_path / "a.json").read_text())["agreement"]
    assert saved["frames"] == 2 and saved["provider"] == saved["reference"] == "CPUExecutionProvider"
    assert {"rgb_max", "rgb_mean", "share_over_1", "worst_frame"} <= set(saved)  # test_agreement: real differences


def test_grow_times_the_shrink_and_both_growths_on_one_frame(tmp_path, capsys):
    assert main(["--json", str(tmp_path / "g.json"), "grow", "--size", "200x120", "--scale", "0.5",
                 "--repeats", "1"]) == 0
    rows = {row["step"]: row for row in json.loads((tmp_path / "g.json").read_text())["grow"]}
    assert set(rows) == {"shrink (area)", "grow, guided by L (the engine's, one Numba pass)",
                         "grow, guided by L (the OpenCV chain it replaced)", "grow, bilinear"}
    assert {row["copy"] for row in rows.values()} == {"100x60"} and rows["grow, bilinear"]["vs_bilinear"] == 1
    assert rows["shrink (area)"]["vs_bilinear"] is None
    assert "| grow, guided by L (the engine's, one Numba pass) | 200x120 | 100x60 |" in capsys.readouterr().out


def test_quality_with_the_cast_matched_column(blur, lawful_dataset, tmp_path, capsys):
    assert main(["--json", str(tmp_path / "q.json"), "quality", str(lawful_dataset), "--model", str(blur),
                 "--only-model", "--cast-matched", "--flicker-photos", "1", "--flicker-frames", "3"]) == 0
    assert "delta_e00_cast_matched" in capsys.readouterr().out
    rows = json.loads((tmp_path / "q.json").read_text())["quality"]["rows"]
    assert [row["method"] for row in rows] == ["model", "constant", "lightness", "grey"]
    constant = next(row for row in rows if row["method"] == "constant")
    assert constant["delta_e00_cast_matched"] < constant["delta_e00"]
