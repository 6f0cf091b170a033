import pytest

from oppy.engine import Engine, OppyError
from tests.engine.test_sources import write_video


def test_a_video_cut_short_is_a_skip_in_the_report_and_the_counts_hold(constant_model, tmp_path, caplog):
    path = tmp_path / "clip.mp4"
    write_video(path, 10, {"movflags": "faststart"})
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 6 // 10])
    with Engine(constant_model, provider="cpu") as engine:
        report = engine.render(path, tmp_path / "out.mp4")
    assert 0 < report.frames_out < 10 and report.frames_in == report.frames_out + 1
    [skip] = report.skipped
    assert skip["name"] == f"clip#{report.frames_out:06d}"
    assert skip["reason"].startswith(f"the video ended after {report.frames_out} of its 10 declared frames")
    assert f"skipped clip#{report.frames_out:06d}: the video ended after" in caplog.text


@pytest.mark.parametrize("name", ["a" * 256, "/".join(["d"] * 2100)])
def test_an_input_path_too_long_for_the_system_is_a_user_error(constant_model, tmp_path, name):
    with Engine(constant_model, provider="cpu") as engine, \
            pytest.raises(OppyError, match=r"cannot open input .*File name too long"):
        engine.render(tmp_path / name, tmp_path / "out.mp4")
