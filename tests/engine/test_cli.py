import functools
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from oppy.engine import Engine, OppyError
from oppy.engine import api as engine_module
from oppy.engine.cli import main
from oppy.engine.contract import ModelContract
from tests.conftest import affine_model, contract_model, gradient_frame, hostile_archive, write_image


def test_renders_and_writes_a_report(archive, constant_model, tmp_path, capsys):
    out, report_path = tmp_path / "out.mp4", tmp_path / "report.json"
    code = main([str(archive), str(out), "--model", str(constant_model), "--provider", "cpu",
                 "--batch-size", "4", "--overlap", "8", "--fps", "10", "--crf", "30", "--decode-threads", "3",
                 "--report", str(report_path)])
    assert code == 0
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height, stream.guessed_rate) == (128, 96, 10)
        assert sum(1 for _ in container.decode(stream)) == 6
    report = json.loads(report_path.read_text())
    assert report["frames_in"] == report["frames_out"] == 6
    assert report["provider"] == "CPUExecutionProvider"
    assert report["config"]["overlap"] == "8" and report["config"]["batch_size"] == "4"
    assert report["config"]["decode_threads"] == "3"
    assert report["tiles"] == 6 * 2 * 3 and report["wall_seconds"] > 0
    assert "wrote" in capsys.readouterr().err


def test_the_report_and_the_summary_state_the_chroma_scale_and_the_tiles(tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(2):
        write_image(folder / f"{i}.png", gradient_frame(256, 512, seed=i))
    contract = ModelContract("L", "ab", 64, 0.01, 0.0, 128.0, scene_size=128)
    model = affine_model(tmp_path / "scene.onnx", offset=(0.1, 0.2), contract=contract)
    report_path = tmp_path / "report.json"
    assert main([str(folder), str(tmp_path / "out.mp4"), "--model", str(model), "--report", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["chroma_scales"] == {"512x256": 0.25} and report["tiles"] == 2 * 3  # 128x64: 3 tiles a frame
    assert report["config"]["chroma_scale"] == "auto"
    assert "6 tiles (chroma x0.25 for 512x256)" in capsys.readouterr().err
    assert main([str(folder), str(tmp_path / "one.mp4"), "--model", str(model), "--chroma-scale", "1",
                 "--report", str(tmp_path / "one.json")]) == 0
    assert json.loads((tmp_path / "one.json").read_text())["chroma_scales"] == {"512x256": 1.0}


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


def test_missing_model_names_the_option(archive, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(engine_module, "DEFAULT_MODEL", tmp_path / "absent.onnx")
    assert main([str(archive), str(tmp_path / "o.mp4"), "-q"]) == 2
    assert "--model" in capsys.readouterr().err


def test_renders_with_the_packaged_model_when_no_model_is_given(archive, tmp_path):
    report = tmp_path / "report.json"
    assert main([str(archive), str(tmp_path / "o.mp4"), "-q", "--provider", "cpu", "--report", str(report)]) == 0
    written = json.loads(report.read_text())  # the packaged model's int8 copy: precision auto on the CPU
    assert written["model"].endswith("default.int8.onnx") and written["precision"] == "int8"


def test_installed_entry_point_shows_help():
    result = subprocess.run([sys.executable, "-m", "oppy.engine.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--model", "--provider", "--batch-size", "--overlap", "--fps", "--crf", "--overwrite", "--report"):
        assert flag in result.stdout


@pytest.mark.parametrize("flag", [["--batch-size", "0"], ["--crf", "99"], ["--fps", "0"], ["--decode-threads", "-1"]])
def test_bad_options_are_one_line_errors(archive, constant_model, tmp_path, capsys, flag):
    assert main([str(archive), str(tmp_path / "o.mp4"), "--model", str(constant_model), "-q", *flag]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


CLI = [sys.executable, "-m", "oppy.engine.cli"]
# Root reads and writes past permission bits; this drops the two capabilities that allow it, then runs Python.
_WITHOUT_ROOTS_FILE_ACCESS = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH\n"
    "    if libc.prctl(24, cap, 0, 0, 0):  # PR_CAPBSET_DROP\n"
    "        sys.exit(77)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"
)


@functools.cache
def cli_bound_by_permissions() -> list[str] | None:
    """The command that runs the CLI with file permissions in force: as it is for a user; for root, through a
    process without the capabilities that bypass them (None where they cannot be dropped)."""
    if os.geteuid() != 0:
        return CLI
    wrapper = [sys.executable, "-c", _WITHOUT_ROOTS_FILE_ACCESS]
    if subprocess.run([*wrapper, "-c", "pass"], capture_output=True).returncode != 0:
        return None
    return [*wrapper, "-m", "oppy.engine.cli"]


def test_hostile_archive_end_to_end(constant_model, tmp_path):
    runner = cli_bound_by_permissions()
    frames, skipped = hostile_archive(tmp_path / "archive", locked=runner is not None)
    out, report_path = tmp_path / "out.mp4", tmp_path / "report.json"
    result = subprocess.run([*(runner or CLI), str(tmp_path / "archive"), str(out), "--model", str(constant_model),
                             "--provider", "cpu", "--resize", "scale", "--report", str(report_path), "-q"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    skip_lines = [line for line in result.stderr.splitlines() if line.startswith("WARNING: skipped ")]
    assert [line.split(": ")[1] for line in skip_lines] == [f"skipped {name}" for name in sorted(skipped)]
    assert all(skipped[line.split(": ")[1][8:]] in line for line in skip_lines)
    report = json.loads(report_path.read_text())
    assert report["frames_in"] == report["frames_out"] + len(report["skipped"]) == len(frames) + len(skipped)
    assert report["frames_out"] == len(frames) and report["frames_resized"] == 4
    assert {skip["name"] for skip in report["skipped"]} == set(skipped)
    assert report["config"]["resize"] == "scale" and report["written"] == str(out)
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(frames)


def feed_until_encoded(process: subprocess.Popen, partial: Path, frames: int = 60) -> None:
    """Write raw 64x48 frames to the CLI's stdin, leaving it open, and wait until encoded video is on disk."""
    for i in range(frames):
        process.stdin.write(gradient_frame(48, 64, seed=i).tobytes())
        process.stdin.flush()
    while not list(partial.parent.glob(partial.name)) and process.poll() is None:  # x264 holds a few frames back
        time.sleep(0.05)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_keeps_a_playable_video_of_every_frame_encoded(constant_model, tmp_path, signum, status):
    out, report_path = tmp_path / "out.mp4", tmp_path / "report.json"
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = subprocess.Popen([*CLI, "-", str(out), "--input-size", "64x48", "--model", str(constant_model),
                                    "--provider", "cpu", "--report", str(report_path), "-q"],
                                   stdin=subprocess.PIPE, stderr=stderr)
        try:
            feed_until_encoded(process, tmp_path / ".out.mp4.*.partial")
            process.send_signal(signum)
            assert process.wait(timeout=60) == status  # stdin is still open: the blocked read must give way
        finally:
            process.kill()
            process.stdin.close()
    report = json.loads(report_path.read_text())
    assert report["interrupted"] and report["written"] == str(tmp_path / "out.partial.mp4")
    assert 1 <= report["frames_out"] <= 60 and report["frames_in"] == report["frames_out"]
    with av.open(report["written"]) as container:
        assert sum(1 for _ in container.decode(video=0)) == report["frames_out"]
    assert not out.exists() and not list(tmp_path.glob(".out.mp4.*.partial"))
    kept = f"kept {report['written']}: {report['frames_out']} frames"
    assert f"interrupted by {signal.Signals(signum).name}: {kept}" in (tmp_path / "stderr.txt").read_text()
    # the rerun that finishes the render replaces the unfinished render's report without --overwrite
    rerun = subprocess.run([*CLI, "-", str(out), "--input-size", "64x48", "--model", str(constant_model),
                            "--provider", "cpu", "--report", str(report_path), "-q"],
                           input=bytes(64 * 48 * 3), capture_output=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert json.loads(report_path.read_text())["frames_out"] == 3 and out.exists()


@pytest.mark.parametrize(("options", "message"), [
    (["--model", "missing.onnx"], "model file 'missing.onnx' not found"),
    (["--model", "{junk}"], "is not a loadable ONNX model"),
    (["--model", "{wrong_shape}"], "the contract wants float32 [N, 32, 32, 1]"),
    (["--model", "{no_metadata}"], "missing metadata oppy.ab_scale"),
    (["--provider", "tpu"], "argument --provider: invalid choice: 'tpu'"),
    (["--overlap", "64"], "overlap 64 must be smaller than the model's tile of 64 px"),
    (["--batch-size", "0"], "batch size must be 1 to 1048576, not 0"),
    (["--batch-size", "1000000000"], "batch size must be 1 to 1048576, not 1000000000"),
    (["--batch-size", "1000000"], "GiB of arrays, more than this machine's"),
    (["--fps", "inf"], "fps must be 0.001 to 1000, not inf"),
    (["--fps", "1e-9"], "fps must be 0.001 to 1000, not 1e-09"),
    (["--fps", "nan"], "fps must be 0.001 to 1000, not nan"),
    (["--queue-size", "100000"], "queue size must be 1 to 1024"),
    (["--encoder-threads", "-1"], "encoder threads must be 0 (the encoder's own choice) to 128, not -1"),
    (["--encoder-threads", "129"], "encoder threads must be 0 (the encoder's own choice) to 128, not 129"),
    (["--input-size", "100000x100000"], "input size must be (width, height), each 1 to 65536"),
    (["--model", "{fixed_batch}"], "failed in ONNX Runtime on a batch of 256 tiles"),
    (["--resize", "crop"], "argument --resize: invalid choice: 'crop'"),
    (["--input-size", "64"], "'64' is not WIDTHxHEIGHT"),
    *[(["--chroma-scale", bad], f"argument --chroma-scale: chroma scale must be 'auto' or a number in (0, 1], "
                                f"not '{bad}'") for bad in ("0", "-0.5", "1.5", "abc", "nan", "inf", "")],
])
def test_bad_models_and_options_are_one_line_with_a_non_zero_exit(archive, constant_model, tmp_path, capsys,
                                                                   options, message):
    metadata = ModelContract("L", "ab", 64, 0.01, 0.0, 128.0).to_metadata()
    del metadata["oppy.ab_scale"]
    (tmp_path / "junk.onnx").write_text("not a model")
    models = {"junk": tmp_path / "junk.onnx", "no_metadata": affine_model(tmp_path / "nm.onnx", metadata=metadata),
              "wrong_shape": affine_model(tmp_path / "ws.onnx", metadata=ModelContract(
                  "L", "ab", 32, 0.01, 0.0, 128.0).to_metadata()),
              "fixed_batch": fixed_batch_model(tmp_path / "fb.onnx")}
    options = [option.format(**models) for option in options]
    argv = [str(archive), str(tmp_path / "o.mp4"), "--model", str(constant_model), "--provider", "cpu", *options]
    assert exit_status(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("oppy-stream: error: ") and message in err[0], err
    assert not (tmp_path / "o.mp4").exists()
    if "argument" not in message and "WIDTHx" not in message:
        with pytest.raises(OppyError, match=re.escape(message)):  # --debug: the exception, with its traceback
            main([*argv, "--debug"])


def fixed_batch_model(path):
    """A model whose graph declares any batch but reshapes to a batch of 4 inside: it fails at run time."""
    from onnx import TensorProto, helper

    return contract_model(
        path, "fixed-batch", [helper.make_node("Reshape", ["L", "shape"], ["fixed"]),
                              helper.make_node("Concat", ["fixed", "fixed"], ["ab"], axis=3)],
        [helper.make_tensor("shape", TensorProto.INT64, [4], [4, 64, 64, 1])])


def exit_status(argv: list[str]) -> int:
    """What `main` exits with, whether it returns (render errors) or argparse exits (usage errors)."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return exit_info.code


def test_usage_errors_exit_2(capsys):
    assert exit_status(["in"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "oppy-stream: error: the following arguments are required: output (see oppy-stream --help)"]


def test_stdin_needs_a_size(constant_model, tmp_path, capsys):
    assert main(["-", str(tmp_path / "o.mp4"), "--model", str(constant_model)]) == 2
    assert "needs their size: pass --input-size WxH" in capsys.readouterr().err


def colourised_reference(model: Path, frames: list[np.ndarray]) -> list[np.ndarray]:
    with Engine(model, provider="cpu") as engine:
        return [engine.colorize(frame) for frame in frames]


def grey_video_frames(tmp_path: Path, count: int = 9) -> list[np.ndarray]:
    """A grey clip written and decoded again by PyAV: what `ffmpeg -pix_fmt gray` would send down a pipe."""
    with av.open(str(tmp_path / "grey.mkv"), "w") as container:
        stream = container.add_stream("ffv1", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "gray"
        for i in range(count):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(gradient_frame(48, 64, seed=6 * i), format="gray")))
        container.mux(stream.encode(None))
    with av.open(str(tmp_path / "grey.mkv")) as container:
        return [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]


@pytest.mark.parametrize("output_format", ["rawvideo", "mp4"])
def test_pipes_with_pyav_on_both_ends(constant_model, tmp_path, output_format):
    frames = grey_video_frames(tmp_path)
    options = ["--format", "rawvideo"] if output_format == "rawvideo" else []
    result = subprocess.run([*CLI, "-", "-", "--input-size", "64x48", "--model", str(constant_model), "--provider",
                             "cpu", "-q", *options], input=b"".join(f.tobytes() for f in frames),
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    reference = colourised_reference(constant_model, frames)
    if output_format == "rawvideo":
        assert len(result.stdout) == len(frames) * 48 * 64 * 3
        np.testing.assert_array_equal(np.frombuffer(result.stdout, np.uint8).reshape(-1, 48, 64, 3),
                                      np.stack(reference))
    else:
        with av.open(io.BytesIO(result.stdout)) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(decoded) == len(frames)
        assert max(np.abs(ours.astype(int) - ref).mean() for ours, ref in zip(decoded, reference, strict=True)) < 3


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (apt-get install ffmpeg)")
def test_drops_into_an_ffmpeg_pipeline(constant_model, tmp_path):
    out = tmp_path / "colour.mp4"
    cli = " ".join(shlex.quote(part) for part in CLI)
    pipeline = (
        "set -o pipefail; "
        "ffmpeg -loglevel error -f lavfi -i testsrc=size=96x64:rate=5 -frames:v 12 -f rawvideo -pix_fmt gray - | "
        f"{cli} - - --input-size 96x64 --format rawvideo --model {shlex.quote(str(constant_model))} --provider cpu "
        f"-q | ffmpeg -loglevel error -f rawvideo -pix_fmt rgb24 -s 96x64 -r 5 -i - {shlex.quote(str(out))}"
    )
    result = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="rgb24").astype(int) for f in container.decode(video=0)]
    assert len(decoded) == 12 and decoded[0].shape == (64, 96, 3)
    assert all(f[..., 0].mean() - f[..., 2].mean() > 10 for f in decoded)  # colourised on the way through


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to fill a disk")
def test_a_full_disk_on_stdout_is_one_line(archive, constant_model, monkeypatch, capsys):
    with open("/dev/full", "w") as full:
        monkeypatch.setattr(sys, "stdout", full)
        assert main([str(archive), "-", "--format", "rawvideo", "--model", str(constant_model), "-q"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["oppy-stream: error: writing stdout failed after 0 frames: no space left on the device: free "
                   "some space or write the output elsewhere"]


def test_an_unwritable_output_folder_is_one_line(archive, constant_model, tmp_path):
    runner = cli_bound_by_permissions()
    if runner is None:
        pytest.skip("running as root without the right to drop CAP_DAC_OVERRIDE: permissions cannot bind here")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = subprocess.run([*runner, str(archive), str(locked / "out.mp4"), "--model", str(constant_model)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"oppy-stream: error: cannot write {str(locked / 'out.mp4')!r}: folder "
                                          f"{str(locked)!r} is not writable: choose an output folder you may write to"]


def test_a_ctrl_c_while_the_command_is_still_starting_is_one_line(monkeypatch, capsys):
    import importlib.abc

    from oppy.engine import launch

    class Interrupted(importlib.abc.MetaPathFinder):
        """Imports of the CLI are where a Ctrl-C lands while the libraries load."""

        def find_spec(self, name, path=None, target=None):
            if name == "oppy.engine.cli":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "oppy.engine.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Interrupted(), *sys.meta_path])
    assert launch.main() == 130
    assert capsys.readouterr().err.splitlines() == ["oppy-stream: interrupted while starting"]


@pytest.mark.parametrize(("text", "size"), [("640x480", (640, 480)), ("1024X768", (1024, 768)), (" 8x2 ", (8, 2))])
def test_one_size_parser_serves_every_command_line(text, size):
    from oppy.bench.cli import build_parser as bench_parser
    from oppy.engine.config import parse_size

    assert parse_size(text) == size
    for bad in ("64", "x", "-3x4", "1e3x4", "\u0664x4", "640x480x2"):
        with pytest.raises(ValueError, match="is not WIDTHxHEIGHT"):
            parse_size(bad)
    assert bench_parser().parse_args(["encode", "--size", text]).size == size
