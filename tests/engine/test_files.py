"""Nothing the user did not ask to overwrite is overwritten: every frame its own file, every write its own temporary."""

import threading

import av
import numpy as np
import pytest

from oppy.engine import Engine, OppyError
from oppy.engine.outputs.files import PartialFile, temporary_name, write_file, writing
from oppy.engine.outputs.sinks import ImageFolderSink
from tests.conftest import gradient_frame, write_image


def test_frames_whose_names_share_a_stem_each_get_a_file_and_the_report_says_which(constant_model, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "a.jpg", "A.tif", "a-2.png", "b.png"):
        write_image(folder / name, gradient_frame(40, 50))
    out = tmp_path / "frames"
    with Engine(constant_model, provider="cpu") as engine:
        report = engine.render(folder, out)
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == report.frames_out == 5
    assert sorted(entry["frame"] for entry in report.frame_files) == ["A.tif", "a-2.png", "a.jpg", "a.png", "b.png"]
    assert sorted(entry["file"] for entry in report.frame_files) == files
    assert {entry["file"] for entry in report.frame_files if entry["frame"] == "b.png"} == {"b.png"}


def test_frames_of_a_video_or_of_raw_input_each_get_a_file(constant_model, tmp_path):
    video = tmp_path / "sol.001.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.dstack([gradient_frame(48, 64, seed=i)] * 3), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    (tmp_path / "frames.gray").write_bytes(b"".join(gradient_frame(48, 64, seed=i).tobytes() for i in range(3)))
    with Engine(constant_model, provider="cpu") as engine:
        from_video = engine.render(video, tmp_path / "from_video")
    with Engine(constant_model, provider="cpu", input_size=(64, 48)) as engine:
        from_raw = engine.render(tmp_path / "frames.gray", tmp_path / "from_raw")
    assert len(list((tmp_path / "from_video").iterdir())) == from_video.frames_out == 4
    assert len(list((tmp_path / "from_raw").iterdir())) == from_raw.frames_out == 3


def test_overwriting_a_folder_of_frames_leaves_only_the_new_render(constant_model, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "new.png", gradient_frame(40, 50))
    out = tmp_path / "frames"
    out.mkdir()
    (out / "old-render.png").write_bytes(b"an older render's frame")
    with Engine(constant_model, provider="cpu", overwrite=True) as engine:
        engine.render(folder, out)
    assert sorted(p.name for p in out.iterdir()) == ["new.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["constant.onnx", "frames", "in"]  # no temporaries left


def test_an_interrupted_folder_of_frames_is_kept_beside_the_target(tmp_path):
    sink = ImageFolderSink(tmp_path / "frames")
    sink.write(np.zeros((4, 4, 3), np.uint8), "one.png")
    assert sink.close("interrupted") == str(tmp_path / "frames.partial")
    assert [p.name for p in (tmp_path / "frames.partial").iterdir()] == ["one.png"]
    failed = ImageFolderSink(tmp_path / "other")
    failed.write(np.zeros((4, 4, 3), np.uint8), "one.png")
    assert failed.close("failed") is None and sorted(p.name for p in tmp_path.iterdir()) == ["frames.partial"]


def test_every_write_has_a_temporary_of_its_own(tmp_path):
    target = tmp_path / "out.mp4"
    names = {temporary_name(target) for _ in range(50)}
    assert len(names) == 50 and all(n.parent == tmp_path and n.name.startswith(".out.mp4.") for n in names)
    first, second = PartialFile(target), PartialFile(target)
    first.path.write_bytes(b"first")
    second.path.write_bytes(b"second")
    first.finish("complete")
    assert target.read_bytes() == b"first" and second.path.read_bytes() == b"second"


def test_two_renders_to_one_output_at_once_leave_one_whole_video(constant_model, tmp_path):
    archives = []
    for count in (6, 9):
        folder = tmp_path / f"in{count}"
        folder.mkdir()
        for i in range(count):
            write_image(folder / f"{i}.png", gradient_frame(96, 128, seed=i))
        archives.append(folder)
    out, errors = tmp_path / "out.mp4", []

    def render(folder):
        try:
            with Engine(constant_model, provider="cpu", overwrite=True) as engine:
                engine.render(folder, out)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=render, args=(folder,)) for folder in archives]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) in (6, 9)  # one render's video, whole
    assert not list(tmp_path.glob(".out.mp4.*"))


def test_a_file_is_written_whole_or_not_at_all(tmp_path):
    target = tmp_path / "report.json"
    write_file(target, "{}\n")
    assert target.read_text() == "{}\n"
    with pytest.raises(RuntimeError), writing(target) as path:
        path.write_text("half of a new report")
        raise RuntimeError("the process failed half way")
    assert target.read_text() == "{}\n" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    with pytest.raises(OppyError, match="is a folder"):
        write_file(tmp_path, "x", "the report")
    with pytest.raises(OppyError, match="writing the report failed"):
        write_file(tmp_path / "missing" / "r.json", "x", "the report")


def test_the_output_policy_refuses_before_any_work(archive, constant_model, tmp_path):
    from oppy.engine.outputs.policy import check_output

    video = tmp_path / "out.mp4"
    video.mkdir()  # a folder named like a video
    with pytest.raises(OppyError, match="is a folder: remove it"):
        check_output(video, overwrite=True)
    for inside in (archive, archive / "frames", archive / "sol0_frame.png"):
        with pytest.raises(OppyError, match="is the input or lies inside it"):
            check_output(inside, overwrite=True, source=archive, folder=inside.suffix == "")
    with pytest.raises(OppyError, match="is the input"):
        check_output(archive / "sol0_frame.png", overwrite=True, source=archive / "sol0_frame.png")
    for report, message in ((tmp_path / "o.mp4", "is the output"), (archive, "is the input"),
                            (tmp_path, "is a folder"), (tmp_path / "no" / "r.json", "does not exist")):
        with pytest.raises(OppyError, match=message):
            check_output(tmp_path / "o.mp4", overwrite=True, source=archive, report=report)


@pytest.mark.parametrize("make_argv, message", [
    (lambda a, t: [str(a), str(a), "--overwrite"], "is the input or lies inside it"),
    (lambda a, t: [str(a), str(a / "colour.mp4"), "--overwrite"], "is the input or lies inside it"),
    (lambda a, t: [str(a), str(t / "o.mp4"), "--report", str(t / "o.mp4")], "is the output"),
    (lambda a, t: [str(a), str(t / "o.mp4"), "--report", str(t / "missing" / "r.json")], "does not exist"),
    (lambda a, t: [str(a), str(t / "o.mp4"), "--report", str(t)], "is a folder"),
    (lambda a, t: [str(a), str(t / "dir.mp4"), "--overwrite"], "is a folder: remove it"),
])
def test_the_cli_refuses_a_clobbering_output_in_one_line_and_touches_nothing(archive, constant_model, tmp_path,
                                                                              capsys, make_argv, message):
    from oppy.engine.cli import main

    (tmp_path / "dir.mp4").mkdir()
    before = sorted(p.name for p in archive.iterdir())
    assert main([*make_argv(archive, tmp_path), "--model", str(constant_model), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert sorted(p.name for p in archive.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["archive", "constant.onnx", "dir.mp4"])


def test_a_full_disk_while_writing_frames_is_one_error_and_leaves_no_file(constant_model, tmp_path, monkeypatch):
    import errno

    import oppy.engine.outputs.files as outputs

    real_open = open

    def full_disk_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if "w" in mode and str(path).endswith(".png"):
            def write(data):
                handle.close()
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return type("FullDisk", (), {"write": staticmethod(write), "__enter__": lambda self: self,
                                         "__exit__": lambda self, *exc: handle.close()})()
        return handle

    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "a.png", gradient_frame(40, 50))
    monkeypatch.setattr(outputs, "open", full_disk_open, raising=False)
    with Engine(constant_model, provider="cpu") as engine, pytest.raises(OppyError, match="no space left") as caught:
        engine.render(folder, tmp_path / "frames")
    assert "frames" in str(caught.value) and "requested" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["constant.onnx", "in"]  # no truncated frame left


def test_a_folder_of_frames_never_replaces_a_folder_holding_the_input_or_the_model(constant_model, tmp_path,
                                                                                    monkeypatch):
    from oppy.engine.outputs.policy import check_output

    shots = tmp_path / "shots"
    shots.mkdir()
    write_image(shots / "a.png", gradient_frame(40, 50))
    for source in (shots / "a.png", shots):
        with pytest.raises(OppyError, match=r"holds the input|is the input"):
            check_output(tmp_path / "shots", overwrite=True, source=source, folder=True)
    with pytest.raises(OppyError, match="holds the model"):
        check_output(tmp_path, overwrite=True, source=None, folder=True, model=constant_model)
    with pytest.raises(OppyError, match="root of the file system"):
        check_output("/", overwrite=True, folder=True)
    # `.` is a folder like any other: the frames replace it, whole
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    with Engine(constant_model, provider="cpu") as engine:
        report = engine.render(shots, ".")
    assert report.written == str(out) and sorted(p.name for p in out.iterdir()) == ["a.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["constant.onnx", "out", "shots"]


def test_overwriting_a_file_or_a_link_with_a_folder_of_frames_leaves_nothing_behind(constant_model, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "a.png", gradient_frame(40, 50))
    (tmp_path / "frames").write_bytes(b"a file where the frames go")
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "linked").symlink_to(real)
    with Engine(constant_model, provider="cpu", overwrite=True) as engine:
        engine.render(folder, tmp_path / "frames")
        engine.render(folder, tmp_path / "linked")
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["a.png"]
    assert sorted(p.name for p in real.iterdir()) == ["a.png"] and (tmp_path / "linked").resolve() == real
    assert not list(tmp_path.glob(".*"))  # no temporary left


def test_two_renders_without_overwrite_never_replace_each_other(constant_model, tmp_path):
    out = tmp_path / "out.mp4"
    first = PartialFile(out, replace=False)
    first.path.write_bytes(b"first")
    out.write_bytes(b"another render's video")  # appeared while this one rendered
    with pytest.raises(OppyError, match="appeared while this render ran") as caught:
        first.finish("complete")
    assert "\n" not in str(caught.value) and str(first.path) in str(caught.value)
    assert out.read_bytes() == b"another render's video" and first.path.read_bytes() == b"first"
    second = PartialFile(tmp_path / "free.mp4", replace=False)
    second.path.write_bytes(b"second")
    assert second.finish("complete") == tmp_path / "free.mp4" and not second.path.exists()


def test_a_render_without_overwrite_keeps_an_output_that_appeared_meanwhile(constant_model, tmp_path, monkeypatch):
    import oppy.engine.outputs.sinks as sinks

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"{i}.png", gradient_frame(64, 64, seed=i))
    out = tmp_path / "out.mp4"
    real_close = sinks.VideoSink.close

    def close_after_another_render(self, outcome="complete"):
        out.write_bytes(b"the other render")
        return real_close(self, outcome)

    monkeypatch.setattr(sinks.VideoSink, "close", close_after_another_render)
    with Engine(constant_model, provider="cpu") as engine, pytest.raises(OppyError, match="appeared"):
        engine.render(folder, out)
    assert out.read_bytes() == b"the other render"
    kept = list(tmp_path.glob(".out.mp4.*.partial"))
    assert len(kept) == 1 and kept[0].stat().st_size > 0
    frames = tmp_path / "frames"
    real_folder_close = sinks.ImageFolderSink.close

    def folder_close_after_another(self, outcome="complete"):
        frames.mkdir()
        (frames / "theirs.png").write_bytes(b"the other render's frame")
        return real_folder_close(self, outcome)

    monkeypatch.setattr(sinks.ImageFolderSink, "close", folder_close_after_another)
    with Engine(constant_model, provider="cpu") as engine, pytest.raises(OppyError, match="appeared"):
        engine.render(folder, frames)
    assert [p.name for p in frames.iterdir()] == ["theirs.png"]
    assert len(list(tmp_path.glob(".frames.*.partial"))) == 1


@pytest.mark.parametrize("length", [200, 240, 250, 255])
def test_outputs_with_names_near_the_limit_render_and_leave_no_temporary(constant_model, tmp_path, length):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        write_image(folder / f"{i}.png", gradient_frame(64, 64, seed=i))
    name = "é" * ((length - 4) // 2) + "x" * ((length - 4) % 2) + ".mp4"  # two bytes a character
    assert len(name.encode()) == length
    for temporary in (temporary_name(tmp_path / name), tmp_path / name):
        assert len(temporary.name.encode()) <= 255
    report_path, sheet_path = tmp_path / ("r" * (length - 5) + ".json"), tmp_path / ("s" * (length - 4) + ".png")
    with Engine(constant_model, provider="cpu") as engine:
        report = engine.render(folder, tmp_path / name, sheet=sheet_path)
        report.write_json(report_path)
        assert report.frames_out == 2 and (tmp_path / name).is_file()
        assert report_path.is_file() and sheet_path.is_file()
        frames = tmp_path / ("f" * length)
        engine.render(folder, frames)
        assert sorted(p.name for p in frames.iterdir()) == ["0.png", "1.png"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert temporary_name(tmp_path / name) != temporary_name(tmp_path / name)  # still unique per write


@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (5, 0), (0, 7, 3)])
def test_a_frame_with_no_pixels_is_an_error_naming_its_size(constant_model, shape):
    from oppy.engine.errors import FrameError

    size = f"{shape[1]}x{shape[0]}"
    with Engine(constant_model, provider="cpu") as engine:
        with pytest.raises(FrameError, match=f"is {size} pixels"):
            engine.colorize(np.zeros(shape, np.uint8))
        with pytest.raises(FrameError, match=f"is {size} pixels"):
            list(engine.stream([np.zeros(shape, np.uint8)]))
        assert engine.colorize(np.zeros((1, 1), np.uint8)).shape == (1, 1, 3)


def test_a_name_whose_suffix_is_the_long_part_still_fits(tmp_path):
    from oppy.engine.outputs.files import fitting_name, interrupted_name

    target = tmp_path / ("out." + "x" * 250)
    for name in (interrupted_name(target).name, temporary_name(target).name,
                 fitting_name(tmp_path, ".", target.name, ".shards")):
        assert len(name.encode()) <= 255


def test_without_hard_links_a_move_checks_then_renames(tmp_path, monkeypatch):
    import errno as errnos

    import oppy.engine.outputs.files as outputs

    def no_links(src, dst):
        raise OSError(errnos.EPERM, "Operation not permitted")

    monkeypatch.setattr(outputs, "_renameat2_noreplace", lambda src, dst: False)
    monkeypatch.setattr(outputs.os, "link", no_links)
    source = tmp_path / "new"
    source.write_bytes(b"new")
    outputs.move_into_place(source, tmp_path / "out", replace=False)
    assert (tmp_path / "out").read_bytes() == b"new" and not source.exists()
    source.write_bytes(b"newer")
    with pytest.raises(FileExistsError):
        outputs.move_into_place(source, tmp_path / "out", replace=False)
    assert (tmp_path / "out").read_bytes() == b"new" and source.exists()


def test_frames_named_near_the_limit_or_with_a_nul_each_get_a_file(tmp_path):
    sink = ImageFolderSink(tmp_path / "frames")
    for name in ("a" * 300 + ".jpg", "a" * 300 + ".png", "b\0c.jpg"):
        sink.write(np.zeros((4, 4, 3), np.uint8), name)
    assert sink.close() == str(tmp_path / "frames")
    files = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert len(files) == 3 and all(len(f.encode()) <= 255 for f in files) and "b_c.png" in files
