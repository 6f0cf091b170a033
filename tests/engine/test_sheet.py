import cv2
import numpy as np
import pytest

from oppy.engine import Engine, OppyError
from oppy.engine.cli import main
from oppy.engine.inputs import sources
from oppy.engine.kernels.lab import l_ab_to_rgb
from oppy.engine.overlays.sheet import THUMB_SIDE, ContactSheet

from ..conftest import gradient_frame, write_image


def offer_frames(sheet: ContactSheet, count: int, size=(8, 12)) -> list[int]:
    """Offer `count` small frames; returns the most pictures the sheet held at once."""
    most = 0
    for index in range(count):
        sheet.offer(index, f"f{index}", np.full(size, 50.0, np.float32), np.zeros((2, *size), np.float32))
        most = max(most, len(sheet._kept))
    return most


@pytest.mark.parametrize(("count", "frames"), [(100, 8), (1000, 8), (17, 8), (5, 3)])
def test_the_sample_spreads_over_the_whole_input_in_bounded_memory(count, frames):
    sheet = ContactSheet("sheet.png", frames)
    most = offer_frames(sheet, count)
    names = [name for name, _, _ in sheet.chosen()]
    indices = [int(name[1:]) for name in names]
    assert len(indices) == frames and indices == sorted(indices) and indices[0] == 0
    assert most < 2 * frames  # never more than twice the sheet's frames in memory
    gaps = np.diff(indices)
    assert indices[-1] >= count * 0.75 and gaps.max() <= 2 * max(1, gaps.min())  # spread, and evenly


def test_a_short_input_shows_every_frame():
    sheet = ContactSheet("sheet.png", 8)
    offer_frames(sheet, 3)
    assert [name for name, _, _ in sheet.chosen()] == ["f0", "f1", "f2"]
    assert ContactSheet("none.png").image() is None


def test_the_pictures_are_the_grey_input_and_the_colour_output():
    lightness = np.tile(np.linspace(10, 90, 512, dtype=np.float32), (256, 1))
    ab = np.stack([np.full_like(lightness, 30), np.full_like(lightness, -20)])
    sheet = ContactSheet("sheet.png", 1)
    sheet.offer(0, "frame", lightness, ab)
    (_, grey, colour), = sheet.chosen()
    assert grey.shape == colour.shape == (THUMB_SIDE // 2, THUMB_SIDE, 3)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    full = cv2.resize(l_ab_to_rgb(lightness, ab), (THUMB_SIDE, THUMB_SIDE // 2), interpolation=cv2.INTER_AREA)
    assert np.abs(colour.astype(int) - full).max() <= 3
    image = sheet.image()
    assert image[8 + 22:8 + 22 + THUMB_SIDE // 2, 8:8 + THUMB_SIDE].tolist() == grey.tolist()


def test_a_render_writes_the_sheet_from_its_own_frames_without_decoding_twice(tmp_path, constant_model,
                                                                             monkeypatch):
    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(12):
        write_image(folder / f"sol{i:02d}.png", gradient_frame(96, 128, seed=10 * i))
    reads = []
    read_image = sources.read_image
    monkeypatch.setattr(sources, "read_image", lambda path: reads.append(path) or read_image(path))
    with Engine(constant_model, provider="cpu") as engine:
        report = engine.render(folder, tmp_path / "out", sheet=tmp_path / "sheet.png", sheet_frames=4)
    assert len(reads) == 12  # each file decoded once: the sheet used the frames in hand
    assert report.sheet == str(tmp_path / "sheet.png")
    sheet = cv2.imread(report.sheet)[..., ::-1]
    assert sheet.shape[0] > 2 * THUMB_SIDE // 2 and sheet.shape[1] > 4 * THUMB_SIDE
    # the first pair: the grey input and the colour output of sol00, as rendered
    height = round(96 * THUMB_SIDE / 128)
    top, left = 8 + 22, 8
    grey = sheet[top:top + height, left:left + THUMB_SIDE].astype(int)
    colour = sheet[top:top + height, left + THUMB_SIDE + 8:left + 2 * THUMB_SIDE + 8].astype(int)
    source = cv2.resize(gradient_frame(96, 128), (THUMB_SIDE, height), interpolation=cv2.INTER_AREA)
    assert np.abs(grey[..., 0] - source).max() <= 2
    output = cv2.imread(str(tmp_path / "out" / "sol00.png"))[..., ::-1]
    output = cv2.resize(output, (THUMB_SIDE, height), interpolation=cv2.INTER_AREA)
    assert np.abs(colour - output).max() <= 3


@pytest.mark.parametrize(("flags", "says"), [(["--sheet", "{tmp}/sheet.jpg"], "ending in .png"),
                                             (["--sheet", "{tmp}/s.png", "--report", "{tmp}/s.png"],
                                              "a file of its own"),
                                             (["--sheet", "{tmp}/missing/s.png"], "does not exist"),
                                             (["--sheet", "{tmp}/s.png", "--sheet-frames", "0"], "1 to 64"),
                                             (["--sheet", "{tmp}/s.png", "--shards", "2"], "without --shards")])
def test_bad_sheet_options_are_one_line_errors(archive, constant_model, tmp_path, capsys, flags, says):
    flags = [flag.format(tmp=tmp_path) for flag in flags]
    assert main([str(archive), str(tmp_path / "o.mp4"), "--model", str(constant_model), "-q", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]
    assert not (tmp_path / "o.mp4").exists()


def test_sheet_must_be_a_png():
    with pytest.raises(OppyError, match=r"\.png"):
        ContactSheet("sheet.jpg")


def test_an_existing_sheet_is_kept_unless_overwrite(archive, constant_model, tmp_path, capsys):
    sheet = tmp_path / "keep.png"
    sheet.write_bytes(b"precious")
    args = [str(archive), str(tmp_path / "o.mp4"), "--model", str(constant_model), "-q", "--sheet", str(sheet)]
    assert main(args) == 2 and "already exists" in capsys.readouterr().err
    assert sheet.read_bytes() == b"precious"
    assert main([*args[:-3], *args[-2:], "--overwrite"]) == 0 and sheet.read_bytes()[:4] == b"\x89PNG"
    assert f"contact sheet {sheet}" in capsys.readouterr().err  # the summary line names it
