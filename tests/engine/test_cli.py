import json
import subprocess
import sys

import av
import pytest

from oppy.engine.cli import main


def test_renders_and_writes_a_report(archive, constant_model, tmp_path, capsys):
    out, report_path = tmp_path / "out.mp4", tmp_path / "report.json"
    code = main([str(archive), str(out), "--model", str(constant_model), "--provider", "cpu",
                 "--batch-size", "4", "--overlap", "8", "--fps", "10", "--crf", "30", "--report", str(report_path)])
    assert code == 0
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height, stream.guessed_rate) == (128, 96, 10)
        assert sum(1 for _ in container.decode(stream)) == 6
    report = json.loads(report_path.read_text())
    assert report["frames_in"] == report["frames_out"] == 6
    assert report["provider"] == "CPUExecutionProvider"
    assert report["config"]["overlap"] == "8" and report["config"]["batch_size"] == "4"
    assert report["tiles"] == 6 * 2 * 3 and report["wall_seconds"] > 0
    assert "wrote" in capsys.readouterr().err


def test_refuses_to_overwrite_with_one_clear_line(archive, constant_model, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"x")
    assert main([str(archive), str(out), "--model", str(constant_model), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"oppy-stream: error: output {str(out)!r} already exists: pass --overwrite "
                   "(overwrite=True) to replace it"]
    assert main([str(archive), str(out), "--model", str(constant_model), "-q", "--overwrite"]) == 0
    assert out.stat().st_size > 1000


def test_nothing_to_render_exits_non_zero(tmp_path, constant_model, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.jpg").write_text("no")
    assert main([str(tmp_path / "in"), str(tmp_path / "o.mp4"), "--model", str(constant_model), "-q"]) == 2
    err = capsys.readouterr().err
    assert "nothing to render" in err and "Traceback" not in err


def test_missing_model_names_the_option(archive, tmp_path, capsys):
    assert main([str(archive), str(tmp_path / "o.mp4"), "-q"]) == 2
    assert "--model" in capsys.readouterr().err


def test_installed_entry_point_shows_help():
    result = subprocess.run([sys.executable, "-m", "oppy.engine.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--model", "--provider", "--batch-size", "--overlap", "--fps", "--crf", "--overwrite", "--report"):
        assert flag in result.stdout


@pytest.mark.parametrize("flag", [["--batch-size", "0"], ["--crf", "99"], ["--fps", "0"]])
def test_bad_options_are_one_line_errors(archive, constant_model, tmp_path, capsys, flag):
    assert main([str(archive), str(tmp_path / "o.mp4"), "--model", str(constant_model), "-q", *flag]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
