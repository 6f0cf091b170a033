import json

from oppy.bench.cli import main


def test_export_times_every_graph_and_folds_the_upsamplings_as_oppy_export_does(tmp_path, capsys):
    assert main(["--json", str(tmp_path / "x.json"), "export", "--batch-size", "4", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "| NHWC export, ORT all (shipped) |" in out and "upsampling repeats (no fold)" in out
    saved = json.loads((tmp_path / "x.json").read_text())["export"]
    assert len(saved["variants"]) == 8 and all(row["ms_per_batch"] > 0 for row in saved["variants"])
    assert saved["upsamplings_folded"] == {"nhwc": 2, "nchw": 2}  # the unet's two nearest upsamplings
    nodes = saved["graph_nodes"]
    assert nodes["unfolded"]["all"] > nodes["nhwc"]["all"] + 20  # each fold drops about 25 nodes of repeats
    assert nodes["unfolded"]["Transpose"] == nodes["nhwc"]["Transpose"] + 4
    assert saved["inputs_as_nchw_same_graph_as_nhwc_after_ort"] is True
    assert all(0 < error < saved["fp16"]["tolerance"] for error in saved["fp16"]["ort_cpu_max_abs_ab"].values())
