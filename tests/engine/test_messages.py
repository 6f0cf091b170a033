"""Messages a user reads: one line, no library noise, no value echoed whole, saying what a thing is."""

import os

import pytest

from oppy.engine.cli import main
from oppy.engine.errors import one_line


def test_one_line_drops_colour_codes_and_library_log_lines_and_cuts_long_values():
    message = ("'m.onnx' is not a loadable ONNX model: \x1b[1;31mbad graph\x1b[m\n"
               "2026-12-04 16:00:00.1 [E:onnxruntime:, inference_session.cc:12 Load] noise\n  and   more")
    assert one_line(message) == "'m.onnx' is not a loadable ONNX model: bad graph and more"
    cut = one_line("unknown camera '" + "x" * 10_000 + "': use one of navcam")
    assert len(cut) < 200 and "(10003 characters)" in cut and cut.endswith("use one of navcam")
    assert one_line("a short 'value'") == "a short 'value'"


@pytest.mark.parametrize("option", ["--camera", "--codec", "--order", "--model", "--input-size", "--caption"])
def test_a_huge_option_value_is_not_echoed_whole(archive, tmp_path, capsys, option):
    try:
        code = main([str(archive), str(tmp_path / "o.mp4"), option, "x" * 10_000])
    except SystemExit as exit:  # a usage error (argparse's)
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("oppy-stream: error:") and "\n" not in err and len(err) < 500


def test_a_model_that_is_a_named_pipe_or_a_folder_is_named_for_what_it_is(archive, tmp_path, capsys):
    pipe = tmp_path / "model.onnx"
    os.mkfifo(pipe)
    assert main([str(archive), str(tmp_path / "o.mp4"), "--model", str(pipe)]) == 2  # returns: no open() blocks
    assert "is a named pipe, not a model file" in capsys.readouterr().err
    assert main([str(archive), str(tmp_path / "o.mp4"), "--model", str(tmp_path)]) == 2
    assert "is a folder, not a model file" in capsys.readouterr().err


def test_sheet_frames_without_a_sheet_is_refused(archive, tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main([str(archive), str(tmp_path / "o.mp4"), "--sheet-frames", "4"])
    assert caught.value.code == 2 and "give --sheet" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()
