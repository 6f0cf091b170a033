from fractions import Fraction

import av
import pytest

from oppy.engine import Engine, EngineConfig, OppyError
from oppy.engine.cli import main
from oppy.engine.config import ENCODERS, encoder_problems
from oppy.engine.inputs.sources import RawFrames
from oppy.engine.outputs import encoders
from oppy.engine.outputs.encoders import choose_encoder, encoder_options
from tests.conftest import gradient_frame, write_image


@pytest.mark.parametrize(("codec", "crf", "preset", "pix_fmt", "says"), [
    ("libx264", 20, "fastest", "yuv420p", "ultrafast, superfast, veryfast"),
    ("libx264", 52, "fast", "yuv420p", "0..51"),
    ("libx265", -1, "fast", "yuv420p", "x265's constant rate factor"),
    ("h264_nvenc", 0, "p4", "yuv420p", "1..51"),
    ("h264_nvenc", 20, "p8", "yuv420p", "p1, p2"),
    ("libx264", 20, "fast", "rgb24", "yuv420p, yuv444p"),
    ("mpeg4", 20, "fast", "yuv420p", "libx264, libx265, h264_nvenc, hevc_nvenc"),
])
def test_settings_no_encoder_takes_are_refused_naming_the_valid_values(codec, crf, preset, pix_fmt, says):
    problems = encoder_problems(codec, crf, preset, pix_fmt)
    assert len(problems) == 1 and says in problems[0]
    with pytest.raises(OppyError, match=says.split(",")[0]):  # before any work: the options themselves
        EngineConfig(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt)


def test_every_encoders_own_settings_pass():
    for name, encoder in ENCODERS.items():
        for preset in encoder.presets:
            assert encoder_problems(name, encoder.crf_range[1], preset, "yuv444p") == []


def test_nvenc_gets_its_own_constant_quality_and_presets():
    nvenc = ENCODERS["h264_nvenc"]
    assert encoder_options(nvenc, 24, "veryfast") == {"rc": "vbr", "cq": "24", "b": "0", "preset": "p2"}
    assert encoder_options(nvenc, 30, "p7")["preset"] == "p7"
    assert encoder_options(ENCODERS["libx264"], 18, "slow") == {"crf": "18", "preset": "slow"}


def test_a_hardware_encoder_this_machine_lacks_falls_back_to_its_software_twin(monkeypatch):
    monkeypatch.setattr(encoders, "opens", lambda codec, pix_fmt: "no NVIDIA device" if "nvenc" in codec else None)
    choice = choose_encoder("h264_nvenc", 22, "p6")
    assert (choice.codec, choice.options) == ("libx264", {"crf": "22", "preset": "slower"})
    assert "h264_nvenc is not available here (no NVIDIA device): encoding with libx264" in choice.fallback
    assert choose_encoder("hevc_nvenc", 22, "medium").codec == "libx265"
    assert choose_encoder("libx264", 22, "medium").fallback is None


def test_a_software_encoder_missing_from_the_build_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(encoders, "opens", lambda codec, pix_fmt: "not in this FFmpeg build")
    with pytest.raises(OppyError, match="cannot encode yuv420p video with libx265 on this machine"):
        choose_encoder("libx265", 22, "medium")


@pytest.mark.skipif(encoders.opens("h264_nvenc", "yuv420p") is None, reason="this machine has an NVIDIA encoder")
def test_an_nvenc_render_here_is_announced_and_encoded_by_libx264(archive, constant_model, tmp_path, caplog):
    with Engine(constant_model, provider="cpu", codec="h264_nvenc", preset="p1", crf=25) as engine:
        report = engine.render(archive, tmp_path / "out.mp4")
    assert report.encoder == "libx264" and "h264_nvenc is not available here" in report.encoder_fallback
    assert "encoding with libx264" in caplog.text
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in container.decode(video=0)) == 6


def test_libx265_renders_hevc(archive, constant_model, tmp_path):
    with Engine(constant_model, provider="cpu", codec="libx265", preset="ultrafast") as engine:
        report = engine.render(archive, tmp_path / "out.mkv")
    assert (report.encoder, report.encoder_fallback) == ("libx265", None)
    with av.open(str(tmp_path / "out.mkv")) as container:
        assert container.streams.video[0].codec_context.name == "hevc"
        assert sum(1 for _ in container.decode(video=0)) == 6


@pytest.mark.parametrize(("size", "fits"), [((12, 8), False), ((16, 14), False), ((15, 16), True), ((16, 16), True)])
def test_libx265_takes_frames_of_16_px_a_side_and_says_so_for_smaller_ones(constant_model, tmp_path, size, fits):
    width, height = size
    (tmp_path / "in").mkdir()
    for index in range(2):
        write_image(tmp_path / "in" / f"{index}.png", gradient_frame(height, width, index))
    with Engine(constant_model, provider="cpu", codec="libx265", preset="ultrafast") as engine:
        if fits:  # an odd side is padded to even first: 15 becomes 16
            engine.render(tmp_path / "in", tmp_path / "out.mp4")
            with av.open(str(tmp_path / "out.mp4")) as container:
                assert sum(1 for _ in container.decode(video=0)) == 2
            return
        with pytest.raises(OppyError, match=rf"at least 16x16 pixels, and these are {width}x{height}: use --codec "
                                            "libx264"):
            engine.render(tmp_path / "in", tmp_path / "out.mp4")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith((".out", "out"))]


def encoder_opens(codec: str, width: int, height: int, options: dict[str, str]) -> bool:
    """Whether the encoder itself opens for frames of this size (the reference the size checks are measured on)."""
    context = av.CodecContext.create(codec, "w")
    context.width, context.height, context.pix_fmt = width, height, "yuv420p"
    context.time_base, context.options = Fraction(1, 5), options
    try:
        context.open()
    except av.FFmpegError:
        return False
    return True


@pytest.mark.parametrize(("codec", "preset", "width", "height"), [
    ("libx264", "veryfast", 16384, 2), ("libx264", "veryfast", 2, 16384), ("libx264", "veryfast", 16386, 2),
    ("libx264", "veryfast", 2, 16386), ("libx264", "veryfast", 16385, 1),
    ("libx265", "medium", 16, 16), ("libx265", "medium", 16, 14), ("libx265", "medium", 4216, 16),
    ("libx265", "medium", 30, 4216), ("libx265", "medium", 4218, 16), ("libx265", "veryfast", 30, 4218),
    ("libx265", "medium", 32, 4218), ("libx265", "medium", 16386, 64), ("libx265", "ultrafast", 4208, 16),
    ("libx265", "ultrafast", 16, 4210), ("libx265", "placebo", 16, 16), ("libx265", "placebo", 32, 32)])
def test_the_sizes_an_encoder_is_said_to_refuse_are_those_it_cannot_open(codec, preset, width, height):
    choice = choose_encoder(codec, 20, preset)
    encoded = (width + width % 2, height + height % 2)
    assert (choice.size_problem(width, height) is None) == encoder_opens(codec, *encoded, choice.options)


def test_frames_too_large_for_libx264_are_refused_naming_the_limit_and_a_folder_of_pngs():
    problem = choose_encoder("libx264", 20, "veryfast").size_problem(70000, 1)
    assert "libx264 encodes frames of at most 16384 pixels a side, and these are 70000x1" in problem
    assert "write a folder of PNGs" in problem


def test_raw_frames_too_wide_are_refused_before_any_is_read(constant_model, tmp_path, monkeypatch):
    raw = tmp_path / "wide.raw"
    raw.write_bytes(bytes(20000 * 10))
    monkeypatch.setattr(RawFrames, "__iter__", lambda self: pytest.fail("the input was read"))
    with Engine(constant_model, provider="cpu", input_size=(20000, 10)) as engine, \
            pytest.raises(OppyError, match="at most 16384 pixels a side, and these are 20000x10"):
        engine.render(raw, tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["constant.onnx", "wide.raw"]


def test_a_folder_of_frames_too_wide_fails_in_one_line_at_the_first_frame(constant_model, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / "a.png", gradient_frame(1, 16390))
    code = main([str(tmp_path / "in"), str(tmp_path / "out.mp4"), "--model", str(constant_model), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "at most 16384 pixels a side, and these are 16390x1" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["constant.onnx", "in"]


@pytest.mark.parametrize(("flag", "says"), [(["--preset", "turbo"], "not one of libx264's: ultrafast"),
                                            (["--codec", "h264_nvenc", "--crf", "0"], "0 would mean automatic"),
                                            (["--codec", "vp9"], "codec must be one of libx264, libx265"),
                                            (["--pix-fmt", "yuv422p"], "invalid choice")])
def test_bad_encoder_options_fail_in_one_line_before_any_work(archive, constant_model, tmp_path, capsys, flag, says):
    out = tmp_path / "o.mp4"
    try:
        code = main([str(archive), str(out), "--model", str(constant_model), "-q", *flag])
    except SystemExit as exit:  # a choice argparse checks
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]
    assert sorted(tmp_path.iterdir()) == sorted([archive, constant_model])  # nothing written, not even a temporary
