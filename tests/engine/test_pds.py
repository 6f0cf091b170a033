import os

import numpy as np
import pytest

from oppy.engine.errors import FrameError
from oppy.engine.frames import Skipped
from oppy.engine.inputs import pds
from oppy.engine.inputs.pds import read_product, to_grey
from oppy.engine.inputs.sources import ImageFolder

from .pds_files import twelve_bit_frame, write_pds3

pytest.importorskip("pdr")

OPPORTUNITY = {"PRODUCT_ID": '"1F128287145EFF0200P1214L0M1"', "INSTRUMENT_ID": '"FRONT_HAZCAM_LEFT"',
               "PLANET_DAY_NUMBER": "2", "START_TIME": "2004-01-26T12:34:56.000",
               "SPACECRAFT_CLOCK_START_COUNT": '"128287145.000"'}


def test_an_attached_label_product_is_a_frame_at_its_bit_depth_with_what_its_label_says(tmp_path):
    data = twelve_bit_frame()
    grey, info = read_product(write_pds3(tmp_path / "a.IMG", data, OPPORTUNITY, mask_bits=12))
    assert grey.dtype == np.uint16 and grey.shape == data.shape
    np.testing.assert_array_equal(grey, np.round(data * (65535 / 4095)).astype(np.uint16))  # 4095 is white
    assert (info.sol, info.camera, info.instrument, info.rover) == (2, "front_hazcam", "FRONT_HAZCAM_LEFT",
                                                                    "opportunity")
    assert info.start_time == "2004-01-26T12:34:56.000" and info.sclk == 128287145.0


def test_a_detached_label_is_read_with_its_data_whichever_is_named(tmp_path):
    data = twelve_bit_frame(seed=3)
    write_pds3(tmp_path / "b.LBL", data, OPPORTUNITY, detached="B.IMG", bits=16, mask_bits=12)
    for name in ("b.LBL", "B.IMG"):
        grey, info = read_product(tmp_path / name)
        np.testing.assert_array_equal(grey, np.round(data * (65535 / 4095)).astype(np.uint16))
        assert info.camera == "front_hazcam"


def test_sample_bits_without_a_mask_and_8_bit_and_float_products(tmp_path):
    data = twelve_bit_frame()
    grey, _ = read_product(write_pds3(tmp_path / "a.IMG", data))  # SAMPLE_BITS 16 and no mask: as it is
    np.testing.assert_array_equal(grey, data)
    grey, _ = read_product(write_pds3(tmp_path / "b.IMG", (data // 16).astype(np.uint8)))
    assert grey.dtype == np.uint8 and np.array_equal(grey, data // 16)
    grey, _ = read_product(write_pds3(tmp_path / "c.IMG", data.astype(np.float32) / 4095))
    assert grey.dtype == np.uint16 and grey.min() == 0 and grey.max() == 65535  # its own 0.1..99.9 percentiles
    grey, _ = read_product(write_pds3(tmp_path / "d.IMG", (data.astype(np.int16) - 1000)))  # signed: below 0 is 0
    assert grey.min() == 0


def test_a_multi_band_product_is_reduced_to_its_first_band(tmp_path):
    bands = np.stack([twelve_bit_frame(seed=s) for s in (0, 50, 90)])
    grey, info = read_product(write_pds3(tmp_path / "rgb.IMG", bands, mask_bits=12))
    np.testing.assert_array_equal(grey, np.round(bands[0] * (65535 / 4095)).astype(np.uint16))
    assert info.bands == 3


@pytest.mark.parametrize(("make", "says"), [
    (lambda p: write_pds3(p, twelve_bit_frame(), cut=700), "shorter than its label declares"),
    (lambda p: write_pds3(p, twelve_bit_frame(), lines=4800), "shorter than its label declares"),
    (lambda p: write_pds3(p, twelve_bit_frame(), lines=10 ** 8), "impossible image size"),
    (lambda p: write_pds3(p, twelve_bit_frame(), image=False), "without an IMAGE object"),
    (lambda p: p.write_bytes(b"PDS_VERSION_ID = PDS3\r\n^IMAGE = 9\r\nOBJECT = IMAGE\r\n"), ""),
    (lambda p: p.write_bytes(b"\x00\xff" * 1000), ""),
    (lambda p: p.write_bytes(b""), ""),
])
def test_every_bad_product_is_a_skip_with_a_reason_never_a_crash(tmp_path, make, says):
    make(tmp_path / "bad.IMG")
    with pytest.raises(FrameError) as raised:
        read_product(tmp_path / "bad.IMG")
    reason = str(raised.value)
    assert says in reason
    (tmp_path / "good.png").write_bytes(b"")  # beside a frame, in a folder: a skip in order
    items = list(ImageFolder(tmp_path))
    assert isinstance(items[0], Skipped) and items[0].name == "bad.IMG" and items[0].reason == reason


def test_without_the_extra_a_product_is_a_skip_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr(pds, "_pdr", lambda: None)
    write_pds3(tmp_path / "a.IMG", twelve_bit_frame())
    (item,) = list(ImageFolder(tmp_path))
    assert isinstance(item, Skipped) and "pip install 'oppy-stream[pds]'" in item.reason


def test_to_grey_refuses_what_is_not_a_picture():
    with pytest.raises(FrameError, match="not a picture"):
        to_grey(np.zeros((2, 3, 4, 5), np.uint16), {})
    with pytest.raises(FrameError, match="no finite samples"):
        to_grey(np.full((4, 4), np.nan, np.float32), {})
    with pytest.raises(FrameError, match="unsupported sample type"):
        to_grey(np.zeros((4, 4), np.complex64), {})


def hostile(tmp_path, name="bad.IMG", **changes):
    keywords = {**OPPORTUNITY, **changes.pop("keywords", {})}
    return write_pds3(tmp_path / name, twelve_bit_frame(), keywords, **changes)


@pytest.mark.parametrize(("sol", "expected"), [("\u00b2", None), ("9" * 5000, None), ("12.5", None), ("-3", -3)])
def test_a_sol_that_is_not_a_plain_number_is_unknown_not_a_crash(tmp_path, sol, expected):
    grey, info = read_product(hostile(tmp_path, keywords={"PLANET_DAY_NUMBER": sol}))
    assert info.sol == expected and grey.shape == (48, 64)


@pytest.mark.parametrize("pointer", ['"../../../../etc/passwd"', '"/etc/passwd"', '"/dev/zero"', '"sub/x.img"'])
def test_a_label_pointing_outside_its_folder_is_a_skip(tmp_path, pointer):
    label = write_pds3(tmp_path / "a.LBL", twelve_bit_frame(), detached="A.IMG")
    label.write_bytes(label.read_bytes().replace(b'"A.IMG"', pointer.encode()))
    with pytest.raises(FrameError) as raised:
        read_product(label)
    reason = str(raised.value)
    assert "outside" in reason or "not a regular file" in reason, reason


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_label_or_data_that_is_a_named_pipe_is_a_skip_not_a_hang(tmp_path):
    write_pds3(tmp_path / "a.LBL", twelve_bit_frame(), detached="A.IMG")
    (tmp_path / "A.IMG").unlink()
    os.mkfifo(tmp_path / "A.IMG")
    with pytest.raises(FrameError, match="not a regular file"):
        read_product(tmp_path / "a.LBL")
    write_pds3(tmp_path / "b.IMG", twelve_bit_frame())
    os.mkfifo(tmp_path / "b.LBL")  # pdr would read a detached label beside the product
    with pytest.raises(FrameError, match="not a regular file"):
        read_product(tmp_path / "b.IMG")


def test_the_size_is_the_image_objects_own_and_bounded(tmp_path):
    # a root-level LINES = 1 must not hide the IMAGE object's size from the cap
    path = write_pds3(tmp_path / "a.IMG", twelve_bit_frame(), {"LINES": "1"},
                      image_keywords={"LINES": "40000", "LINE_SAMPLES": "40000"})
    with pytest.raises(FrameError, match="impossible image size"):
        read_product(path)
    bands = write_pds3(tmp_path / "b.IMG", twelve_bit_frame(), image_keywords={"BANDS": "5000"})
    with pytest.raises(FrameError, match="impossible image size"):
        read_product(bands)


def test_a_mask_wider_than_its_samples_is_not_believed_and_negative_samples_are_black(tmp_path):
    data = twelve_bit_frame()
    grey, _ = read_product(write_pds3(tmp_path / "a.IMG", data, image_keywords={"SAMPLE_BIT_MASK": f"2#{'1' * 2000}#"}))
    np.testing.assert_array_equal(grey, data)  # 16 bits, as the samples hold
    signed = np.array([[-1, -128, 0, 127]], np.int8).repeat(4, axis=0)
    grey, _ = read_product(write_pds3(tmp_path / "s.IMG", signed))
    assert grey[0].tolist() == [0, 0, 0, 65535]


def test_an_instrument_the_table_does_not_know_leaves_the_names_camera(tmp_path):
    _, info = read_product(write_pds3(tmp_path / "1N130000000EFF0300P1500R0M1.IMG", twelve_bit_frame(),
                                      {"INSTRUMENT_ID": '"SOMETHING_NEW"'}))
    assert (info.instrument, info.camera) == ("SOMETHING_NEW", "navcam")
