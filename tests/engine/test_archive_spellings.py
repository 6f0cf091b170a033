"""The archive's own spellings: every PDS3 pointer form, inconsistent labels, cameras by instrument id and eye,
labels named NAME.IMG.LBL, archive options on a video; and nothing that blocks or outlives a second signal."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from oppy.engine import Engine
from oppy.engine.errors import FrameError, NothingToRender
from oppy.engine.inputs.facts import camera_wanted, eyes_named
from oppy.engine.inputs.pds import read_product
from oppy.engine.inputs.sources import list_entries

from ..conftest import gradient_frame, write_image
from .pds_files import twelve_bit_frame, write_pds3

pytest.importorskip("pdr")


@pytest.mark.parametrize("pointer", ["{record}", "{byte} <BYTES>", '("P.IMG", {record})', '("P.IMG", {byte} <BYTES>)'])
def test_every_pointer_form_of_pds3_reads_the_same_frame(tmp_path, pointer):
    reference, _ = read_product(write_pds3(tmp_path / "ref.IMG", twelve_bit_frame(), mask_bits=12))
    grey, _ = read_product(write_pds3(tmp_path / "P.IMG", twelve_bit_frame(), mask_bits=12, pointer=pointer))
    np.testing.assert_array_equal(grey, reference)


@pytest.mark.parametrize("pointer, says", [("0", "record 0: records count from 1"),
                                           ("-3", "record -3: records count from 1"),
                                           ("0 <BYTES>", "byte 0: bytes count from 1"),
                                           ("2", "points into the label itself"),
                                           ('"P.IMG"', "points into the label itself"),
                                           ("1000000000000000000000000000000", "shorter than its label declares"),
                                           ("1000000000000000000000000000000 <BYTES>", "shorter than its label")])
def test_a_pointer_into_the_label_or_past_the_file_is_a_skip_with_a_clean_reason(tmp_path, pointer, says):
    with pytest.raises(FrameError) as raised:
        read_product(write_pds3(tmp_path / "P.IMG", twelve_bit_frame(), pointer=pointer))
    reason = str(raised.value)
    assert says in reason, reason
    assert "Warning" not in reason and "unclosed" not in reason


@pytest.mark.parametrize("keywords, says", [({"bits": 7}, "SAMPLE_BITS is 7"), ({"bits": 12}, "SAMPLE_BITS is 12"),
                                            ({"sample_type": "MSB_BANANA"}, "unknown SAMPLE_TYPE 'MSB_BANANA'")])
def test_a_label_that_cannot_describe_its_samples_is_a_skip_not_a_garbage_frame(tmp_path, keywords, says):
    with pytest.raises(FrameError) as raised:
        read_product(write_pds3(tmp_path / "P.IMG", twelve_bit_frame(), **keywords))
    assert says in str(raised.value), raised.value


def test_a_label_named_like_its_data_plus_lbl_is_one_entry_with_it(tmp_path):
    write_pds3(tmp_path / "P.IMG.LBL", twelve_bit_frame(), detached="P.IMG")
    write_pds3(tmp_path / "q.img.lbl", twelve_bit_frame(seed=3), detached="q.img")
    write_pds3(tmp_path / "R.LBL", twelve_bit_frame(seed=5), detached="R.IMG")
    assert [p.name for p in list_entries(tmp_path)] == ["P.IMG", "q.img", "R.IMG"]
    for entry in list_entries(tmp_path):
        grey, _ = read_product(entry)  # a FrameError fails the test
        assert grey.shape == twelve_bit_frame().shape


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("pipe", ["x.lbl", "X.lbl", "x.LBL", "X.IMG.LBL", "x.img.lbl"])
def test_a_named_pipe_beside_a_product_in_any_case_is_a_skip_not_a_hang(tmp_path, pipe):
    write_pds3(tmp_path / "X.IMG", twelve_bit_frame())
    os.mkfifo(tmp_path / pipe)
    result = []

    def read() -> None:
        try:
            result.append(read_product(tmp_path / "X.IMG"))
        except FrameError as exc:
            result.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(20)
    assert result and isinstance(result[0], FrameError) and "not a regular file" in str(result[0]), result


@pytest.mark.parametrize("asked, cameras, eyes", [("FRONT_HAZCAM_RIGHT", {"front_hazcam"}, ["front_hazcam_right"]),
                                                  ("navcam_left", {"navcam"}, ["navcam_left"]),
                                                  ("Pancam_Right,REAR_HAZCAM_LEFT", {"pancam", "rear_hazcam"}, 2),
                                                  ("MI", {"microscopic_imager"}, []),
                                                  ("hazcam", {"front_hazcam", "rear_hazcam"}, [])])
def test_cameras_by_a_labels_instrument_id_and_by_eye(asked, cameras, eyes):
    assert camera_wanted(asked) == cameras
    assert (len(eyes_named(asked)) == eyes) if isinstance(eyes, int) else eyes_named(asked) == eyes


def test_a_camera_asked_by_instrument_id_selects_it_and_says_both_eyes_are_kept(tmp_path, constant_model, caplog):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("1F130000100EFF0300P1500L0M1.JPG", "1N130000200EFF0300P1500L0M1.JPG"):
        write_image(folder / name, gradient_frame(48, 64))
    with caplog.at_level(logging.INFO), Engine(constant_model, provider="cpu", camera="FRONT_HAZCAM_RIGHT") as engine:
        report = engine.render(folder, tmp_path / "out")
    assert report.frames_out == 1 and len(report.deselected) == 1
    assert any("both eyes of front_hazcam are kept" in r.message for r in caplog.records)


def test_keeping_nothing_names_the_cameras_there_and_no_none(tmp_path, constant_model):
    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "1N130000200EFF0300P1500L0M1.JPG", gradient_frame(48, 64))
    write_image(folder / "untitled.png", gradient_frame(48, 64))
    with Engine(constant_model, provider="cpu", camera="pancam") as engine, \
            pytest.raises(NothingToRender) as caught:
        engine.render(folder, tmp_path / "out.mp4")
    assert "navcam" in str(caught.value) and "None" not in str(caught.value) and "unknown" in str(caught.value)


def test_archive_options_on_a_video_are_one_warning(tmp_path, constant_model, caplog):
    with Engine(constant_model, provider="cpu") as engine:
        video = tmp_path / "in.mp4"
        folder = tmp_path / "frames"
        folder.mkdir()
        for i in range(3):
            write_image(folder / f"{i}.png", gradient_frame(48, 64, seed=i))
        engine.render(folder, video)
    with caplog.at_level(logging.WARNING), Engine(constant_model, provider="cpu", camera="navcam", order="time",
                                                  stretch="archive") as engine:
        report = engine.render(video, tmp_path / "out.mp4")
    assert report.frames_out == 3
    said = [r.message for r in caplog.records if "apply to a folder" in r.message]
    assert said == [f"--camera, --order, --stretch apply to a folder of frames or products; {video} is a video, so "
                    "they are not applied"]


SECOND_SIGNAL = """
import os, signal, threading, time
from oppy.engine import cli
stop, received = threading.Event(), []
threading.Thread(target=threading.Event().wait).start()  # a thread blocked for ever, not a daemon
with cli._stop_on_signals(stop, received):
    print("ready", flush=True)
    try:
        while True:
            time.sleep(0.05)
    except KeyboardInterrupt:
        print("aborted", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_second_signal_ends_the_process_even_with_a_thread_blocked_for_ever():
    process = subprocess.Popen([sys.executable, "-c", SECOND_SIGNAL], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert process.poll() is None  # the first asks for a clean finish
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=15)
    finally:
        process.kill()
    assert code == 128 + signal.SIGTERM


def test_msl_camera_codes_are_not_read_as_an_eye():
    assert camera_wanted("ml") == camera_wanted("MR") == {"mastcam"} and camera_wanted("cr") == {"chemcam"}


def test_a_palette_nested_past_pythons_recursion_is_refused_in_one_line():
    from oppy.engine.errors import ModelError
    from oppy.engine.palette import Palette

    with pytest.raises(ModelError, match="malformed palette"):
        Palette.from_metadata("[" * 60_000)
