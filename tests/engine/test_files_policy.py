"""The output-path policy (`outputs.policy`, `outputs.files`) on paths the system will not look at, on reports
and sheets that would replace a file, on folders that hold more than frames, and on interrupted outputs whose name
is taken."""

import os

import numpy as np
import pytest

from oppy.engine import OppyError
from oppy.engine.outputs.files import PartialFile, keep_interrupted, write_file
from oppy.engine.outputs.policy import check_output, check_report
from oppy.engine.outputs.sinks import ImageFolderSink


def unlookable_paths(tmp_path):
    """(problem, path) of paths whose stat fails: ENAMETOOLONG (a name over 255 bytes; a path over 4096) and ELOOP
    (a link to itself)."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    return [("the name is too long", tmp_path / ("z" * 256)), ("the name is too long", tmp_path / ("a/" * 2100 + "x")),
            ("a loop of symbolic links", tmp_path / "loop")]


@pytest.mark.parametrize("suffix", [".mp4", ""])
def test_an_output_the_system_will_not_look_at_is_refused_naming_the_problem(tmp_path, suffix):
    for problem, path in unlookable_paths(tmp_path):
        output = path.with_name(path.name + suffix) if path.name != "loop" else path
        with pytest.raises(OppyError, match=problem) as caught:
            check_output(output, overwrite=True, folder=not suffix)
        assert str(output)[:40] in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("flag", ["--report", "--sheet"])
def test_a_report_or_sheet_the_system_will_not_look_at_is_refused_naming_the_problem(tmp_path, flag):
    for problem, path in unlookable_paths(tmp_path):
        extra = {"report" if flag == "--report" else "sheet": path}
        with pytest.raises(OppyError, match=f"{flag} .*{problem}"):
            check_output(tmp_path / "o.mp4", overwrite=True, **extra)
        with pytest.raises(OppyError, match=problem):
            write_file(path, "{}", "the report")  # the Python API's own write, past the policy
    assert not (tmp_path / "o.mp4").exists()


def test_a_stat_refused_for_permission_is_one_error(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    real_stat = Path.stat

    def no_entry(self, *args, **kwargs):
        if self.name == "o.mp4":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", no_entry)
    with pytest.raises(OppyError, match="Permission denied"):
        check_output(tmp_path / "o.mp4", overwrite=True)


def test_an_existing_report_or_sheet_is_replaced_only_with_overwrite(tmp_path):
    for flag in ("--report", "--sheet"):
        mine = tmp_path / f"mine{flag}.json"
        mine.write_text("the user's own file")
        with pytest.raises(OppyError, match=f"{flag} .* already exists: pass --overwrite"):
            check_report(mine, tmp_path / "o.mp4", flag=flag)
        check_report(mine, tmp_path / "o.mp4", flag=flag, overwrite=True)
        assert mine.read_text() == "the user's own file"


def test_the_report_of_an_unfinished_render_of_this_output_is_replaced_by_its_rerun(tmp_path):
    import json

    output, report = tmp_path / "o.mp4", tmp_path / "r.json"
    for unfinished in ({"interrupted": True}, {"interrupted": False, "failed": [{"chunk": "chunk-00001"}]}):
        report.write_text(json.dumps({"output": str(output), "frames_in": 3, **unfinished}))
        check_report(report, output)  # the rerun resumes the render: its report takes the old one's place
    for kept in ({"output": str(output), "interrupted": False, "failed": []},  # a finished render's
                 {"output": str(tmp_path / "other.mp4"), "interrupted": True},  # another output's
                 ["not", "a", "report"]):
        report.write_text(json.dumps(kept))
        with pytest.raises(OppyError, match="already exists: pass --overwrite"):
            check_report(report, output)
    report.write_bytes(b"\xff\xfe not JSON")
    with pytest.raises(OppyError, match="already exists"):
        check_report(report, output)
    with pytest.raises(OppyError, match="already exists"):
        check_report(report, output, flag="--sheet")


def test_a_path_with_a_nul_byte_is_one_error(tmp_path):
    for extra in ({}, {"report": tmp_path / "r\x00.json"}):
        output = tmp_path / "o.mp4" if extra else tmp_path / "o\x00.mp4"
        with pytest.raises(OppyError, match="NUL"):
            check_output(output, overwrite=False, **extra)


def test_a_report_or_sheet_is_never_the_model_even_with_overwrite(constant_model, tmp_path):
    link = tmp_path / "link.onnx"
    link.symlink_to(constant_model)
    for path in (constant_model, link):
        with pytest.raises(OppyError, match=r"--report .* is the model"):
            check_output(tmp_path / "o.mp4", overwrite=True, report=path, model=constant_model)
        with pytest.raises(OppyError, match=r"--sheet .* is the model"):
            check_output(tmp_path / "o.mp4", overwrite=True, sheet=path, model=constant_model)
    with pytest.raises(OppyError, match=r"output .* is the model"):
        check_output(constant_model, overwrite=True, model=constant_model)


def test_a_report_to_stdout_needs_stdout_free_of_the_video(tmp_path):
    check_report("-", tmp_path / "o.mp4")
    with pytest.raises(OppyError, match="stdout, which the video goes to"):
        check_report("-", "-")
    with pytest.raises(OppyError, match="file named '-'"):
        check_report("-", tmp_path / "o.mp4", flag="--sheet")


def make_folder(path, names):
    path.mkdir()
    for name in names:
        if name.endswith("/"):
            (path / name).mkdir()
        else:
            (path / name).write_bytes(b"x")
    return path


@pytest.mark.parametrize("overwrite", [True, False])
def test_a_folder_holding_more_than_frames_is_never_replaced(tmp_path, overwrite):
    cases = {"thesis.txt": ["a.png", "thesis.txt"], "sub": ["sub/"], "holiday.jpg": ["holiday.jpg"]}
    for foreign, names in cases.items():
        folder = make_folder(tmp_path / f"precious-{len(names)}-{foreign}", names)
        with pytest.raises(OppyError, match=f"holds '{foreign}'.*choose an empty or new folder"):
            check_output(folder, overwrite=overwrite, folder=True)
    link = tmp_path / "link.png"
    link.symlink_to(tmp_path / "elsewhere")
    frames = make_folder(tmp_path / "frames", ["a.png", "b-2.png"])
    check_output(frames, overwrite=True, folder=True)  # an earlier render's frames: replaced
    os.rename(link, frames / "link.png")
    with pytest.raises(OppyError, match=r"holds 'link.png'"):  # a render writes files, never links
        check_output(frames, overwrite=True, folder=True)


def test_the_current_folder_with_the_users_files_is_refused(tmp_path, monkeypatch):
    make_folder(tmp_path / "home", ["thesis.txt"])
    monkeypatch.chdir(tmp_path / "home")
    with pytest.raises(OppyError, match=r"holds 'thesis.txt'"):
        check_output(".", overwrite=True, folder=True)


def test_an_interrupted_file_takes_a_free_name_beside_what_is_there(tmp_path):
    (tmp_path / "out.partial.mp4").mkdir()
    (tmp_path / "out.partial.mp4" / "notes.txt").write_text("notes")
    (tmp_path / "out.partial-2.mp4").write_text("the user's file")
    for replace in (False, True):
        partial = PartialFile(tmp_path / "out.mp4", replace=replace)
        partial.path.write_bytes(b"frames")
        kept = partial.finish("interrupted")
        assert kept.read_bytes() == b"frames" and not partial.path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.partial-2.mp4", "out.partial-3.mp4",
                                                          "out.partial-4.mp4", "out.partial.mp4"]
    assert (tmp_path / "out.partial.mp4" / "notes.txt").read_text() == "notes"
    assert (tmp_path / "out.partial-2.mp4").read_text() == "the user's file"


def test_an_interrupted_folder_takes_a_free_name_and_gives_up_in_one_line(tmp_path):
    make_folder(tmp_path / "frames.partial", ["notes.txt"])
    work = make_folder(tmp_path / ".frames.work", ["a.png"])
    assert keep_interrupted(work, tmp_path / "frames") == tmp_path / "frames.partial-2"
    assert [p.name for p in (tmp_path / "frames.partial").iterdir()] == ["notes.txt"]
    work = make_folder(tmp_path / ".frames.work", ["b.png"])
    with pytest.raises(OppyError, match=r"'frames.partial' and the next 1 names are taken; it is at"):
        keep_interrupted(work, tmp_path / "frames", tries=2)
    assert [p.name for p in work.iterdir()] == ["b.png"]


def test_an_interrupted_folder_of_frames_never_removes_the_users_folder(tmp_path):
    make_folder(tmp_path / "frames.partial", ["notes.txt"])
    sink = ImageFolderSink(tmp_path / "frames", replace=True)
    sink.write(np.zeros((4, 4, 3), np.uint8), "one.png")
    assert sink.close("interrupted") == str(tmp_path / "frames.partial-2")
    assert [p.name for p in (tmp_path / "frames.partial").iterdir()] == ["notes.txt"]
