from oppy.export.cli import main


def test_the_report_names_every_file_written(exported):
    out, report = exported
    assert report["float32"]["path"] == str(out) and out.is_file()
    assert report["float16"]["path"] == str(out.with_name("colour.fp16.onnx"))
    assert report["float32"]["parity"]["ok"] and report["float16"]["parity"]["ok"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["colour.fp16.onnx", "colour.onnx", "report.json"]


def test_a_missing_model_is_one_error_line(tmp_path, capsys):
    assert main([str(tmp_path / "no-run"), str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("oppy-export: error: no Keras model at") and "\n" not in err
    assert not (tmp_path / "m.onnx").exists()


def test_an_overlap_that_does_not_fit_the_tile_is_refused(trained_run, tmp_path, capsys):
    assert main([str(trained_run), str(tmp_path / "m.onnx"), "--overlap", "64"]) == 2
    assert "overlap 64 px does not fit a 64 px tile" in capsys.readouterr().err
