"""The CLI's own streams and files: one line and exit 2 for a path the system will not take, a report that replaces
nothing it may not (stdout with `--report -`), and a render that does not depend on a usable stderr."""

import json
import os
import shutil
import signal
import subprocess

import av
import pytest

from oppy.engine.cli import main
from tests.engine.test_cli import CLI, feed_until_encoded

LONG_NAME = "z" * 256
needs_a_shell_and_dev_full = pytest.mark.skipif(shutil.which("bash") is None or not os.path.exists("/dev/full"),
                                                reason="closes stderr with bash and fills it with /dev/full")


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("oppy-stream: error: ") and "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize("make_flags", [lambda t: [str(t / f"{LONG_NAME}.mp4")],
                                        lambda t: [str(t / LONG_NAME)],
                                        lambda t: [str(t / "o.mp4"), "--report", str(t / f"{LONG_NAME}.json")],
                                        lambda t: [str(t / "o.mp4"), "--sheet", str(t / f"{LONG_NAME}.png")],
                                        lambda t: [str(t / ("a/" * 2100)) + "o.mp4"]])
def test_a_name_or_path_too_long_is_one_line_and_exit_2(archive, constant_model, tmp_path, capsys, make_flags):
    assert main([str(archive), *make_flags(tmp_path), "--model", str(constant_model), "-q"]) == 2
    assert "the name is too long" in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive", "constant.onnx"]


def test_a_report_never_replaces_a_file_unasked_nor_the_model(archive, constant_model, tmp_path, capsys):
    model_bytes = constant_model.read_bytes()
    mine = tmp_path / "mine.json"
    mine.write_text("the user's notes")
    for flags, says in ((["--report", str(mine)], "already exists: pass --overwrite"),
                        (["--report", str(constant_model), "--overwrite"], "is the model"),
                        (["--sheet", str(constant_model), "--overwrite"], "is the model")):
        assert main([str(archive), str(tmp_path / "o.mp4"), "--model", str(constant_model), "-q", *flags]) == 2
        assert says in one_error_line(capsys)
    assert mine.read_text() == "the user's notes" and constant_model.read_bytes() == model_bytes
    assert main([str(archive), str(tmp_path / "o.mp4"), "--model", str(constant_model), "-q", "--report", str(mine),
                 "--overwrite"]) == 0
    assert json.loads(mine.read_text())["frames_out"] == 6


def test_a_report_to_dash_goes_to_stdout_unless_the_video_does(archive, constant_model, tmp_path, capsys,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([str(archive), "o.mp4", "--model", str(constant_model), "-q", "--report", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames_out"] == 6 and report["written"] == "o.mp4"
    assert not (tmp_path / "-").exists()
    assert main([str(archive), "-", "--model", str(constant_model), "-q", "--report", "-"]) == 2
    assert "--report - writes the report to stdout, which the video goes to" in one_error_line(capsys)


def run_with_stderr(argv: list[str], stderr: str, **kwargs) -> subprocess.CompletedProcess:
    """The CLI with its stderr closed (`2>&-`) or sent to a shell redirection such as `/dev/full`."""
    redirect = "2>&-" if stderr == "closed" else f"2>{stderr}"
    return subprocess.run(["bash", "-c", f'"$@" {redirect}', "_", *CLI, *argv], capture_output=True, timeout=300,
                          **kwargs)


@needs_a_shell_and_dev_full
@pytest.mark.parametrize("stderr", ["closed", "/dev/full"])
def test_a_render_needs_no_usable_stderr(archive, constant_model, tmp_path, stderr):
    out = tmp_path / "o.mp4"
    done = run_with_stderr([str(archive), str(out), "--model", str(constant_model), "--provider", "cpu"], stderr)
    assert done.returncode == 0 and done.stdout == b""
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 6


@needs_a_shell_and_dev_full
def test_a_refusal_without_usable_stderr_still_exits_2_and_writes_nothing_to_stdout(constant_model, tmp_path):
    done = run_with_stderr([str(tmp_path / "missing"), str(tmp_path / "o.mp4"), "--model", str(constant_model)],
                           "closed")  # print(file=None) would write the error to stdout
    assert done.returncode == 2 and done.stdout == b""


@needs_a_shell_and_dev_full
def test_a_signal_with_a_full_stderr_still_keeps_the_video(constant_model, tmp_path):
    out = tmp_path / "out.mp4"
    with open("/dev/full", "w") as full:
        process = subprocess.Popen([*CLI, "-", str(out), "--input-size", "64x48", "--model", str(constant_model),
                                    "--provider", "cpu"], stdin=subprocess.PIPE, stderr=full)
        try:
            feed_until_encoded(process, tmp_path / ".out.mp4.*.partial")
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 130
        finally:
            process.kill()
            process.stdin.close()
    with av.open(str(tmp_path / "out.partial.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) >= 1

