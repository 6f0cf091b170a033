import av
import numpy as np
import pytest

from oppy.engine.errors import OppyError
from oppy.engine.sources import ImageFolder, Skipped, SourceFrame, VideoFile, natural_key, open_source

from conftest import write_image


def test_natural_order():
    names = ["sol10.png", "sol9.png", "Sol100.png", "sol9b.png", "sol1.png"]
    assert sorted(names, key=natural_key) == ["sol1.png", "sol9.png", "sol9b.png", "sol10.png", "Sol100.png"]


def test_image_folder_reads_every_format_and_depth(tmp_path):
    grey = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
    write_image(tmp_path / "f1.png", grey)
    write_image(tmp_path / "f2.tif", grey.astype(np.uint16) * 257)
    write_image(tmp_path / "f3.bmp", np.dstack([grey, grey, grey]))
    write_image(tmp_path / "f4.png", np.dstack([grey, grey // 2, grey, np.full_like(grey, 255)]))
    write_image(tmp_path / "f5.jpg", grey)
    frames = list(ImageFolder(tmp_path))
    assert [f.name for f in frames] == ["f1.png", "f2.tif", "f3.bmp", "f4.png", "f5.jpg"]
    assert all(isinstance(f, SourceFrame) for f in frames)
    np.testing.assert_array_equal(frames[0].pixels, grey)
    assert frames[1].pixels.dtype == np.uint16 and frames[1].pixels.shape == (20, 30)
    np.testing.assert_array_equal(frames[2].pixels[..., 1], grey)
    np.testing.assert_array_equal(frames[3].pixels[..., 1], grey // 2)  # RGBA comes back in RGB order
    assert frames[4].pixels.shape == (20, 30)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]


def test_unreadable_files_become_skips(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "b.png").write_bytes(b"")
    (tmp_path / "c.jpg").write_text("not really a jpeg")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / ".hidden.png").write_bytes(b"")
    (tmp_path / "subfolder").mkdir()
    items = list(ImageFolder(tmp_path))
    assert items[0].name == "a.png"
    assert items[1:] == [Skipped("b.png", "empty file"), Skipped("c.jpg", "not a decodable image"),
                         Skipped("notes.txt", "not an image file (suffix '.txt')")]


def test_video_file_source(tmp_path):
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(7):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i + 30, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    source = open_source(path)
    assert isinstance(source, VideoFile) and len(source) == 7
    frames = list(source)
    assert [f.index for f in frames] == list(range(7))
    assert frames[0].pixels.shape == (48, 64, 3)
    levels = [int(f.pixels.mean()) for f in frames]
    assert levels == sorted(levels) and abs(levels[3] - 90) <= 3


def test_bad_inputs_are_user_errors(tmp_path):
    with pytest.raises(OppyError, match="does not exist"):
        open_source(tmp_path / "missing")
    (tmp_path / "x.mp4").write_text("garbage")
    with pytest.raises(OppyError, match="cannot open video"):
        open_source(tmp_path / "x.mp4")
