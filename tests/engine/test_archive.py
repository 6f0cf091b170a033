import json

import cv2
import numpy as np
import pytest

from oppy.engine import Engine, EngineConfig, OppyError
from oppy.engine.cli import main
from oppy.engine.config import check_caption
from oppy.engine.errors import NothingToRender
from oppy.engine.inputs.archive import list_archive, measure_levels, open_archive
from oppy.engine.inputs.facts import ProductInfo
from oppy.engine.inputs.stretch import Levels
from oppy.engine.overlays.captions import burn_caption, caption_box, caption_text

from ..conftest import gradient_frame, write_image
from .pds_files import twelve_bit_frame, write_pds3

# Opportunity frames by camera letter and spacecraft clock, named so that name order and time order differ
FRAMES = [("N", 130000300), ("F", 130000100), ("P", 130000400), ("F", 130000200), ("N", 130000000)]


def mer_name(camera: str, clock: int) -> str:
    return f"1{camera}{clock}EFF0300P1500L0M1.JPG"


@pytest.fixture
def rover_archive(tmp_path):
    folder = tmp_path / "rover"
    folder.mkdir()
    for seed, (camera, clock) in enumerate(FRAMES):
        write_image(folder / mer_name(camera, clock), gradient_frame(48, 64, seed=20 * seed))
    write_image(folder / "aaa_untimed.png", gradient_frame(48, 64))
    return folder


def names(listing) -> list[str]:
    return [path.name for path in listing.files]


def test_time_order_follows_the_clock_and_untimed_frames_come_last(rover_archive):
    listing = list_archive(rover_archive, "time")
    assert names(listing) == [mer_name(c, t) for c, t in sorted(FRAMES, key=lambda f: f[1])] + ["aaa_untimed.png"]
    assert listing.untimed == 1
    assert names(list_archive(rover_archive))[0] == "1F130000100EFF0300P1500L0M1.JPG"  # name order


def test_a_camera_keeps_its_frames_and_lists_the_others_as_deselected(rover_archive):
    listing = list_archive(rover_archive, "time", "hazcam")
    assert names(listing) == [mer_name("F", 130000100), mer_name("F", 130000200)]
    assert {entry["camera"] for entry in listing.deselected} == {"navcam", "pancam", None}
    assert len(listing.deselected) == 4


def test_a_detached_label_and_its_data_are_one_entry(tmp_path):
    write_pds3(tmp_path / "one.LBL", twelve_bit_frame(), detached="ONE.IMG", mask_bits=12)
    write_pds3(tmp_path / "lone.LBL", twelve_bit_frame(), detached="gone.IMG")
    (tmp_path / "gone.IMG").unlink()
    assert names(list_archive(tmp_path)) == ["lone.LBL", "ONE.IMG"]


def test_pds_products_are_ordered_by_their_labels(tmp_path):
    pytest.importorskip("pdr")
    for name, clock in (("a.IMG", 300), ("b.IMG", 100), ("c.IMG", 200)):
        write_pds3(tmp_path / name, twelve_bit_frame(), {"SPACECRAFT_CLOCK_START_COUNT": f'"{clock}.0"'})
    assert names(list_archive(tmp_path, "time")) == ["b.IMG", "c.IMG", "a.IMG"]


def test_the_archive_stretch_is_one_mapping_for_every_frame(tmp_path):
    for i in range(5):
        write_image(tmp_path / f"f{i}.png", (gradient_frame(48, 64, seed=10 * i) // 2 + 40).astype(np.uint8))
    levels = measure_levels(list_archive(tmp_path).files)
    assert 0 < levels.low < levels.high < 1
    source, _ = open_archive(tmp_path, stretch="archive")
    frames = [frame.pixels for frame in source]
    raw = [cv2.imread(str(tmp_path / f"f{i}.png"), cv2.IMREAD_GRAYSCALE) for i in range(5)]
    for pixels, original in zip(frames, raw, strict=True):  # the same line from original to stretched, each frame
        np.testing.assert_array_equal(pixels, Levels(levels.low, levels.high).apply(original))
    everything = np.concatenate([f.ravel() for f in frames])
    assert np.mean(everything == 0) < 0.02 and np.mean(everything == 65535) < 0.02  # 0.5 and 99.5 percentiles
    assert Levels.measure([np.full((4, 4), 7, np.uint8)]) is None  # nothing to stretch


def test_captions_name_fields_only_and_skip_frames_without_them():
    info = ProductInfo(sol=12, camera="navcam", sclk=130000000.0)
    assert caption_text("sol {sol} · {camera}", "f.jpg", 3, info) == "sol 12 · navcam"
    assert caption_text("{sclk} #{index} {name}", "f.jpg", 3, info) == "130000000 #3 f.jpg"
    assert caption_text("sol {sol}", "f.jpg", 0, ProductInfo(camera="navcam")) is None
    for bad in ("{sol.__class__}", "{0}", "{sol!r}", "{sol:>999999999}", "{sol", "{secret}", "x" * 500):
        with pytest.raises(ValueError):
            check_caption(bad)
    with pytest.raises(OppyError, match="caption field"):
        EngineConfig(caption="{__import__}")


def test_a_caption_lies_in_the_bottom_left_and_the_rest_of_the_frame_is_unchanged():
    frame = np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    before = frame.copy()
    burn_caption(frame, "sol 12 - navcam")
    left, top, width, height = caption_box(400, 300, "sol 12 - navcam")
    assert left < 20 and top + height > 280 and height >= 10 and 50 < width < 300
    inside = np.zeros((300, 400), bool)
    inside[top:top + height, left:left + width] = True
    assert np.array_equal(frame[~inside], before[~inside])
    box = frame[inside]
    assert (box.max(axis=1) == 0).mean() > 0.5 and box.max() > 200  # a black band with white letters


def test_a_render_orders_selects_captions_and_reports_what_each_frame_says(rover_archive, constant_model, tmp_path):
    with Engine(constant_model, provider="cpu", order="time", camera="F,N", caption="{camera} {sclk}") as engine:
        report = engine.render(rover_archive, tmp_path / "out")
    wanted = [mer_name(c, t) for c, t in sorted(FRAMES, key=lambda f: f[1]) if c in "FN"]
    assert [entry["frame"] for entry in report.frame_files] == wanted
    assert report.order == "time" and len(report.deselected) == 2 and report.frames_in == 4
    assert report.frames_info[0] == {"frame": wanted[0], "product_id": wanted[0][:-4], "rover": "opportunity",
                                     "camera": "navcam", "sclk": 130000000.0}
    with Engine(constant_model, provider="cpu") as plain:
        plain.render(rover_archive, tmp_path / "plain")
    captioned = cv2.imread(str(tmp_path / "out" / wanted[0].replace(".JPG", ".png")))
    uncaptioned = cv2.imread(str(tmp_path / "plain" / wanted[0].replace(".JPG", ".png")))
    left, top, width, height = caption_box(64, 48, "navcam 130000000")
    changed = np.any(captioned != uncaptioned, axis=2)
    assert changed[top:top + height, left:left + width].any() and not changed[:top].any()


def test_a_camera_that_keeps_nothing_says_what_there_is(rover_archive, constant_model, tmp_path):
    with Engine(constant_model, provider="cpu", camera="mastcam") as engine, \
            pytest.raises(NothingToRender, match=r"keeps none of the 6 entries.*navcam"):
        engine.render(rover_archive, tmp_path / "o.mp4")


def test_the_cli_takes_order_camera_stretch_and_caption(rover_archive, constant_model, tmp_path, capsys):
    report = tmp_path / "r.json"
    assert main([str(rover_archive), str(tmp_path / "o.mp4"), "--model", str(constant_model), "-q", "--order", "time",
                 "--camera", "navcam", "--stretch", "archive", "--caption", "sol {sol}", "--report",
                 str(report)]) == 0
    saved = json.loads(report.read_text())
    assert saved["frames_out"] == 2 and saved["stretch"]["low"] < saved["stretch"]["high"]
    assert main([str(rover_archive), str(tmp_path / "p.mp4"), "--model", str(constant_model), "-q", "--camera",
                 "zoom"]) == 2
    assert "unknown camera 'zoom'" in capsys.readouterr().err
