import io
import os
import re
import threading

import av
import cv2
import numpy as np
import pytest

from oppy.engine.errors import FrameError, OppyError
from oppy.engine.frames import Skipped, display_name, natural_key
from oppy.engine.inputs.images import read_image
from oppy.engine.inputs.sources import (
    ImageFolder,
    RawFrames,
    SourceFrame,
    VideoFile,
    decode_threads,
    frame_pixels,
    open_source,
    read_entry,
)
from tests.conftest import gradient_frame, hostile_archive, png_header_only, write_image


def test_natural_order():
    names = ["sol10.png", "sol9.png", "Sol100.png", "sol9b.png", "sol1.png"]
    assert sorted(names, key=natural_key) == ["sol1.png", "sol9.png", "sol9b.png", "sol10.png", "Sol100.png"]


def test_natural_order_takes_any_name_and_never_depends_on_the_listing():
    odd = ["1²2.png", "²", "sol٣.png", "sol3.png", "a01.png", "a1.png", "A.png", "a.png", "", "12", "x12y3"]
    ordered = sorted(odd, key=natural_key)  # no ValueError on digits int() does not take
    assert sorted(reversed(odd), key=natural_key) == ordered
    assert ordered.index("a01.png") < ordered.index("a1.png") and ordered.index("A.png") < ordered.index("a.png")


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


def test_a_bigtiff_is_read_as_a_tiff(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    grey = np.random.default_rng(1).integers(0, 65536, (20, 30), dtype=np.uint16)
    for order in "<>":  # little-endian "II+" and big-endian "MM" BigTIFF
        path = tmp_path / f"big{order == '>'}.tif"
        tifffile.imwrite(path, grey.astype(f"{order}u2"), bigtiff=True)
        assert path.read_bytes()[:4] in (b"II+\x00", b"MM\x00+")
    frames = list(ImageFolder(tmp_path))
    assert len(frames) == 2 and all(isinstance(f, SourceFrame) for f in frames)
    for frame in frames:
        np.testing.assert_array_equal(frame.pixels, grey)


def test_a_tiff_of_several_images_gives_its_first_and_says_so(tmp_path, caplog):
    pages = [np.full((20, 30), 40 * (i + 1), np.uint8) for i in range(4)]
    assert cv2.imwritemulti(str(tmp_path / "stack.tif"), pages)
    cv2.imwrite(str(tmp_path / "single.tif"), pages[2])
    tifffile = pytest.importorskip("tifffile")
    with tifffile.TiffWriter(tmp_path / "big.tif", bigtiff=True, byteorder=">") as big:
        for page in pages:
            big.write(page, photometric="minisblack")
    with caplog.at_level("WARNING"):
        frames = {f.name: f for f in ImageFolder(tmp_path)}
    assert frames["stack.tif"].pixels.mean() == 40 and frames["single.tif"].pixels.mean() == 120
    assert frames["big.tif"].pixels.mean() == 40
    said = [r.getMessage() for r in caplog.records]
    assert said == ["big.tif holds 4 images: only the first is coloured (give each its own file to colour them "
                    "all)", "stack.tif holds 4 images: only the first is coloured (give each its own file to colour "
                    "them all)"]


def test_a_tiff_whose_directories_loop_or_leave_the_file_is_counted_without_hanging():
    from oppy.engine.inputs.images import tiff_pages

    header = b"II*\x00" + (8).to_bytes(4, "little")
    looping = header + (0).to_bytes(2, "little") + (8).to_bytes(4, "little") + bytes(8)  # next: itself
    assert tiff_pages(np.frombuffer(looping, np.uint8)) == 1
    leaving = header + (5000).to_bytes(2, "little") + bytes(8)  # 5000 entries: past the end
    assert tiff_pages(np.frombuffer(leaving, np.uint8)) == 1
    assert tiff_pages(np.frombuffer(b"\x89PNG\r\n\x1a\n" + bytes(20), np.uint8)) == 0


def test_a_video_frame_without_a_duration_is_shown_for_one_frame_of_the_rate():
    from fractions import Fraction
    from types import SimpleNamespace

    from oppy.engine.inputs.sources import _time_shown

    older_pyav_frame = SimpleNamespace(time_base=Fraction(1, 90000), pts=0)  # no `duration` attribute
    assert _time_shown(older_pyav_frame, Fraction(25)) == Fraction(1, 25)
    assert _time_shown(SimpleNamespace(time_base=Fraction(1, 90000), duration=1800), Fraction(25)) == Fraction(1, 50)


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
                         Skipped("notes.txt", "not an image file (suffix '.txt')"),
                         Skipped("subfolder", "a folder (subfolders are not read)")]


def test_hostile_folder_yields_every_readable_frame_and_names_every_skip(tmp_path):
    # Permissions do not stop root: the unreadable file is tested where they apply (here, or in test_cli).
    frames, skipped = hostile_archive(tmp_path / "archive", locked=os.geteuid() != 0)
    source = ImageFolder(tmp_path / "archive")
    items = list(source)
    assert len(items) == len(source) == len(frames) + len(skipped)  # every entry but the hidden one, once
    assert [item.name for item in items if isinstance(item, SourceFrame)] == frames
    reasons = {item.name: item.reason for item in items if isinstance(item, Skipped)}
    assert reasons.keys() == skipped.keys()
    for name, start in skipped.items():
        assert reasons[name].startswith(start), (name, reasons[name])
    by_name = {item.name: item for item in items}
    assert by_name["0004_png_inside.jpg"].pixels.shape == (96, 128)  # judged by content, not by suffix
    assert by_name["0012_huge.png"].pixels.shape == (2400, 3200)
    assert by_name["0011_dot.png"].pixels.shape == (1, 1)
    np.testing.assert_array_equal(by_name["0014_\\xff\\xfe.png"].pixels, by_name["0004_png_inside.jpg"].pixels)
    # a frame's index is its entry's place in the listing, skips counted (so a chunk of it counts on exactly)
    assert [item.index for item in items if isinstance(item, SourceFrame)] == \
        [place for place, item in enumerate(items) if isinstance(item, SourceFrame)]


def test_truncated_files_are_refused_by_their_container(tmp_path):
    grey = gradient_frame(64, 64)
    for suffix in (".jpg", ".png"):
        data = cv2.imencode(suffix, grey)[1].tobytes()
        (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) // 2])
        (tmp_path / f"whole{suffix}").write_bytes(data)
        with pytest.raises(FrameError, match=r"^truncated"):
            read_image(tmp_path / f"cut{suffix}")
        assert read_image(tmp_path / f"whole{suffix}").shape == (64, 64)
    (tmp_path / "bomb.png").write_bytes(png_header_only(60000, 60000))
    with pytest.raises(FrameError, match=r"^too large to decode"):
        read_image(tmp_path / "bomb.png")


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("b.png", b"", "empty file"),
    ("c.jpg", b"not really a jpeg", "not a decodable image"),
    ("notes.txt", b"hello", "not an image file (suffix '.txt')"),
])
def test_an_unreadable_entry_raises_its_reason_and_a_folder_skips_it_with_the_same(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(FrameError) as raised:
        read_entry(tmp_path / name)
    assert str(raised.value) == reason
    if name.endswith((".png", ".jpg")):
        with pytest.raises(FrameError) as raised:
            read_image(tmp_path / name)
        assert str(raised.value) == reason
    write_image(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    for threads in (1, 3):
        items = list(ImageFolder(tmp_path, threads=threads))
        assert [type(item) for item in items] == [SourceFrame, Skipped]
        assert items[1] == Skipped(name, reason)


def raw_bytes(count: int, width: int = 5, height: int = 3) -> bytes:
    return np.arange(count * width * height, dtype=np.uint8).tobytes()


def test_raw_frames_from_a_stream_name_a_short_last_frame():
    data = raw_bytes(2) + raw_bytes(1)[:7]
    items = list(RawFrames(io.BytesIO(data), 5, 3))
    assert [type(item) for item in items] == [SourceFrame, SourceFrame, Skipped]
    np.testing.assert_array_equal(items[1].pixels, np.frombuffer(data[15:30], np.uint8).reshape(3, 5))
    assert items[1].name == "stdin frame 1" and items[1].pixels.dtype == np.uint8
    assert items[2] == Skipped("stdin frame 2", "incomplete frame at the end of the input: 7 of 15 bytes (5x3); "
                                                "check --input-size")


def test_raw_frames_from_a_file(tmp_path):
    path = tmp_path / "frames.gray"
    path.write_bytes(raw_bytes(4))
    source = open_source(path, input_size=(5, 3))
    assert isinstance(source, RawFrames) and len(source) == 4
    assert [item.name for item in source] == [f"frames.gray frame {i}" for i in range(4)]
    with pytest.raises(OppyError, match="--input-size"):
        open_source("-")
    with pytest.raises(OppyError, match="not a file"):
        open_source(tmp_path, input_size=(5, 3))


def test_raw_frames_from_a_pipe_arrive_as_written_and_cancel_wakes_a_blocked_read():
    read_end, write_end = os.pipe()
    source = RawFrames(os.fdopen(read_end, "rb", buffering=0), 5, 3)
    got = []
    reader = threading.Thread(target=lambda: got.extend(source))
    reader.start()
    os.write(write_end, raw_bytes(2)[:20])  # one frame and a third: the reader waits for the rest
    while not got and reader.is_alive():
        reader.join(0.01)
    source.cancel()
    reader.join(10)
    os.close(write_end)
    assert not reader.is_alive()
    assert [item.name for item in got] == ["stdin frame 0"]


def test_pyav_frames_become_pixels():
    grey = gradient_frame(48, 64)
    frame = av.VideoFrame.from_ndarray(grey, format="gray")
    np.testing.assert_array_equal(frame_pixels(frame), grey)
    yuv = av.VideoFrame.from_ndarray(np.dstack([grey] * 3), format="rgb24").reformat(format="yuv420p")
    rgb = frame_pixels(yuv)
    assert rgb.shape == (48, 64, 3) and np.abs(rgb[..., 1].astype(int) - grey).max() <= 3


def test_names_that_are_not_utf8_can_be_shown():
    assert display_name(os.fsdecode(b"sol\xff.png")) == "sol\\xff.png"
    assert display_name("sol1.png") == "sol1.png"


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


def write_video(path, frames: int, options: dict | None = None, shift: int = 0) -> None:
    """A video of noisy 128x96 frames at 5 frames/s (noise: most of the file is frames, not header)."""
    rng = np.random.default_rng(1)
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        for _ in range(frames):
            rgb = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))


@pytest.mark.parametrize(("name", "frames", "options", "says"), [
    ("cut.mp4", 10, {"movflags": "faststart"}, r"of its 10 declared frames, at [\d.]+ s of the 2 s it declares"),
    ("cut.mov", 10, {"movflags": "faststart"}, r"of its 10 declared frames, at [\d.]+ s of the 2 s it declares"),
    ("cut.mkv", 3, {}, r"frames?, at [\d.]+ s of the 0.6 s it declares")])
def test_a_video_cut_short_ends_in_a_skip_that_says_so(tmp_path, name, frames, options, says):
    # FFmpeg ends a cut file without an error: the frames it lost were dropped without a word
    path = tmp_path / name
    write_video(path, frames, options)
    assert not any(isinstance(item, Skipped) for item in VideoFile(path))  # the whole video: no skip
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 6 // 10])
    items = list(VideoFile(path))
    decoded = [item for item in items if isinstance(item, SourceFrame)]
    assert 0 < len(decoded) < frames and items[:-1] == decoded
    assert items[-1].name == f"cut#{len(decoded):06d}"
    assert re.fullmatch(rf"the video ended after {len(decoded)} {says} \(truncated\?\)", items[-1].reason)


def test_an_mp4_its_edit_list_trims_is_not_taken_for_a_cut_one(tmp_path):
    # the first 3 of 10 frames are before the edit list's start: declared, never shown, nothing lost
    write_video(tmp_path / "whole.mp4", 10)
    with av.open(str(tmp_path / "whole.mp4")) as whole, av.open(str(tmp_path / "trimmed.mp4"), "w") as trimmed:
        source = whole.streams.video[0]
        stream = trimmed.add_stream_from_template(source)
        for packet in whole.demux(source):
            if packet.dts is not None:
                shift = 3 * round(1 / (5 * source.time_base))
                packet.pts, packet.dts, packet.stream = packet.pts - shift, packet.dts - shift, stream
                trimmed.mux(packet)
    with av.open(str(tmp_path / "trimmed.mp4")) as container:
        assert container.streams.video[0].frames == 10
    items = list(VideoFile(tmp_path / "trimmed.mp4"))
    assert len(items) == 7 and all(isinstance(item, SourceFrame) for item in items)


@pytest.mark.parametrize("input_size", [None, (8, 8)])
def test_an_input_path_the_system_cannot_look_at_is_a_user_error(tmp_path, input_size):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for path, says in [(tmp_path / ("a" * 256), "File name too long"),  # a name over 255 bytes
                       (tmp_path / "/".join(["d"] * 2100), "File name too long"),  # a path over 4096 bytes
                       (tmp_path / "loop", "Too many levels of symbolic links")]:
        with pytest.raises(OppyError, match=f"cannot open input .*{says}"):
            open_source(path, input_size)


def test_bad_inputs_are_user_errors(tmp_path):
    with pytest.raises(OppyError, match="does not exist"):
        open_source(tmp_path / "missing")
    (tmp_path / "x.mp4").write_text("garbage")
    with pytest.raises(OppyError, match="cannot open video"):
        open_source(tmp_path / "x.mp4")


def test_decoding_threads_keep_the_order_the_skips_and_the_indices(tmp_path):
    # Odd sizes make a frame that comes out of turn visible; the skips must stay where they were.
    hostile_archive(tmp_path / "archive", locked=False)
    for k in range(9):
        write_image(tmp_path / "archive" / f"zz{k}.png", gradient_frame(16 + k, 24 + 2 * k))
    one = list(ImageFolder(tmp_path / "archive"))
    many = list(ImageFolder(tmp_path / "archive", threads=4))
    assert [(type(a), a.name) for a in one] == [(type(b), b.name) for b in many]
    for a, b in zip(one, many, strict=True):
        if isinstance(a, SourceFrame):
            assert a.index == b.index
            np.testing.assert_array_equal(a.pixels, b.pixels)
        else:
            assert a.reason == b.reason


def test_a_folder_read_stopped_early_joins_its_decoding_threads(tmp_path):
    for k in range(40):
        write_image(tmp_path / f"f{k:02d}.png", gradient_frame(32, 32))
    frames = iter(ImageFolder(tmp_path, threads=3))
    assert [next(frames).name for _ in range(2)] == ["f00.png", "f01.png"]
    assert any(t.name.startswith("oppy-decode") for t in threading.enumerate())
    frames.close()
    assert not any(t.name.startswith("oppy-decode") for t in threading.enumerate())


def test_decode_threads_default_to_the_cores_up_to_eight(monkeypatch):
    assert decode_threads(3) == 3
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert decode_threads(0) == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert decode_threads(0) == 8
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert decode_threads(0) == 1


def test_a_file_is_judged_by_its_first_bytes_before_it_is_read_whole(tmp_path, monkeypatch):
    from oppy.engine.inputs import images

    with open(tmp_path / "huge.png", "wb") as sparse:  # 64 GiB of nothing, in no space at all
        sparse.truncate(64 * 2**30)
    with pytest.raises(FrameError, match=r"^not a decodable image$"):
        read_image(tmp_path / "huge.png")
    # a small PNG that declares a picture this machine could not colour is refused from its header
    (tmp_path / "bomb.png").write_bytes(png_header_only(30000, 30000))
    monkeypatch.setattr(images, "physical_memory", lambda: 8 * 2**30)
    with pytest.raises(FrameError, match=r"^too large to decode: a 30000x30000 picture needs more than .* 8 GiB"):
        read_image(tmp_path / "bomb.png")
    # an image format other than its suffix says is still read by what it is
    grey = np.random.default_rng(1).integers(0, 256, (24, 32), dtype=np.uint8)
    ok, webp = cv2.imencode(".webp", grey, [cv2.IMWRITE_WEBP_QUALITY, 101])
    (tmp_path / "webp.png").write_bytes(webp.tobytes())
    assert ok and read_image(tmp_path / "webp.png").shape[:2] == (24, 32)
