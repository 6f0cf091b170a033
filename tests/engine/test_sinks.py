import contextlib
import io
import os
import subprocess
import sys
import tempfile

import av
import cv2
import numpy as np
import pytest
from av.video.reformatter import Colorspace

from oppy.engine.errors import OppyError
from oppy.engine.outputs.policy import check_output
from oppy.engine.outputs.sinks import (
    ImageFolderSink,
    RawVideoSink,
    VideoSink,
    open_sink,
)


def decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return frames, (stream.codec_context.name, stream.guessed_rate)


@pytest.mark.parametrize(("width", "height"), [(64, 48), (65, 47)])
def test_video_sink_writes_every_frame(tmp_path, width, height):
    path = tmp_path / "out.mp4"
    colour = np.zeros((height, width, 3), np.uint8)
    colour[...] = (180, 90, 40)
    with VideoSink(path, fps=5, crf=18) as sink:
        for _ in range(9):
            sink.write(colour)
        assert not path.exists()  # written under a temporary name until complete
    frames, (codec, rate) = decode(path)
    assert len(frames) == 9
    assert frames[0].shape == (height + height % 2, width + width % 2, 3)
    assert np.abs(frames[0][:height, :width].astype(int) - colour).mean() < 4
    assert codec == "h264" and rate == 5
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("threads", [1, 3])
def test_the_encoder_runs_the_threads_asked_for(tmp_path, threads):
    colour = np.full((48, 64, 3), (180, 90, 40), np.uint8)
    with VideoSink(tmp_path / "out.mp4", fps=5, threads=threads) as sink:
        sink.write(colour)
        assert sink._stream.codec_context.thread_count == threads  # 0 leaves the choice to x264
        for _ in range(5):
            sink.write(colour)
    assert len(decode(tmp_path / "out.mp4")[0]) == 6


def test_failed_video_leaves_no_file(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError), VideoSink(path) as sink:
        sink.write(np.zeros((32, 32, 3), np.uint8))
        raise RuntimeError("stage failed")
    assert list(tmp_path.iterdir()) == []


def test_frames_of_another_size_are_refused(tmp_path):
    # fitting to one size happens before colourising (engine/kernels/resize.py); a sink that got another size is a bug
    with VideoSink(tmp_path / "out.mkv") as sink:
        sink.write(np.zeros((32, 48, 3), np.uint8))
        with pytest.raises(ValueError, match="frame is 96x64, the output 48x32"):
            sink.write(np.zeros((64, 96, 3), np.uint8))
    frames, _ = decode(tmp_path / "out.mkv")
    assert len(frames) == 1


@pytest.mark.parametrize(("width", "height"), [(64, 48), (65, 47)])
def test_prepared_frames_make_the_same_video_as_rgb_frames(tmp_path, width, height):
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(4)]
    with VideoSink(tmp_path / "rgb.mp4") as sink:
        for rgb in frames:
            sink.write(rgb)
    with VideoSink(tmp_path / "prepared.mp4") as sink:
        prepared = [sink.prepare(rgb) for rgb in frames]  # before the video is opened, as the engine does
        for frame in prepared:
            sink.write(frame)
    assert (prepared[0].width, prepared[0].height) == (width, height)
    from_rgb, _ = decode(tmp_path / "rgb.mp4")
    from_prepared, _ = decode(tmp_path / "prepared.mp4")
    assert len(from_prepared) == 4
    for a, b in zip(from_rgb, from_prepared, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_prepared_frame_of_another_size_is_refused(tmp_path):
    with VideoSink(tmp_path / "out.mp4") as sink:
        sink.write(sink.prepare(np.zeros((32, 48, 3), np.uint8)))
        with pytest.raises(ValueError, match="frame is 47x31, the output 48x32"):
            sink.write(sink.prepare(np.zeros((31, 47, 3), np.uint8)))


def grey_frames(count: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    return [np.full((height, width, 3), (10 + 20 * i) % 256, np.uint8) for i in range(count)]


@pytest.mark.parametrize("how", ["close", "keyboard interrupt"])
def test_interrupted_video_is_kept_playable_beside_the_target(tmp_path, how):
    path = tmp_path / "out.mp4"
    sink = VideoSink(path)
    for frame in grey_frames(7):
        sink.write(frame)
    if how == "close":
        assert sink.close("interrupted") == str(tmp_path / "out.partial.mp4")
    else:
        with pytest.raises(KeyboardInterrupt), sink:
            raise KeyboardInterrupt
    frames, _ = decode(tmp_path / "out.partial.mp4")
    assert len(frames) == 7 and abs(int(frames[6].mean()) - 130) <= 3  # every frame encoded, the last too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.partial.mp4"]


def read_pipe_while(write: callable) -> bytes:
    """What `write(binary stream)` sends through a real pipe, read by another process as it comes (a thread of
    this one could not drain the pipe while an FFmpeg write holds the GIL)."""
    with tempfile.TemporaryFile() as received:
        reader = subprocess.Popen([sys.executable, "-c", "import shutil, sys; "
                                   "shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer)"],
                                  stdin=subprocess.PIPE, stdout=received)
        try:
            write(reader.stdin)
        finally:
            reader.stdin.close()
            reader.wait(timeout=60)
        received.seek(0)
        return received.read()


@pytest.mark.parametrize(("container", "name"), [(None, "mov,mp4,m4a,3gp,3g2,mj2"), ("matroska", "matroska,webm")])
def test_video_streams_through_a_pipe(container, name):
    def write(stream):
        with VideoSink(stream, fps=5, container=container) as sink:
            for frame in grey_frames(6):
                sink.write(frame)

    data = read_pipe_while(write)
    with av.open(io.BytesIO(data)) as decoded:
        assert decoded.format.name == name
        assert sum(1 for _ in decoded.decode(video=0)) == 6


def test_raw_sink_writes_bare_rgb24_frames(tmp_path):
    frames = [np.random.default_rng(i).integers(0, 256, (3, 5, 3), dtype=np.uint8) for i in range(3)]
    data = read_pipe_while(lambda stream: [RawVideoSink(stream).write(f) for f in frames[:1]])
    assert data == frames[0].tobytes()
    path = tmp_path / "frames.rgb"
    with RawVideoSink(path) as sink:
        for frame in frames:
            sink.write(frame)
        assert not path.exists()
        with pytest.raises(ValueError, match="fit frames first"):
            sink.write(np.zeros((4, 5, 3), np.uint8))
    assert path.read_bytes() == b"".join(f.tobytes() for f in frames)
    sink = RawVideoSink(tmp_path / "cut.rgb")
    sink.write(frames[0])
    assert sink.close("interrupted") == str(tmp_path / "cut.partial.rgb")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to fill a disk")
def test_a_full_disk_is_a_clear_error_and_leaves_no_file(tmp_path, monkeypatch):
    with open("/dev/full", "wb", buffering=0) as full, pytest.raises(OppyError, match="no space left on the device"):
        RawVideoSink(full).write(np.zeros((8, 8, 3), np.uint8))
    path = tmp_path / "out.mp4"
    monkeypatch.setattr("oppy.engine.outputs.files.temporary_name", lambda target: target.with_name(".fixed.partial"))
    os.symlink("/dev/full", tmp_path / ".fixed.partial")  # the temporary file lands on a full device
    with pytest.raises(OppyError, match=r"writing .*out.mp4 failed after \d+ frames: no space left"), \
            VideoSink(path) as sink:
        for frame in grey_frames(40, 256, 256):
            sink.write(frame)
    assert list(tmp_path.iterdir()) == []


def test_a_closed_pipe_is_a_clear_error():
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "wb", buffering=0) as stream, pytest.raises(OppyError, match="the reader closed"):
        RawVideoSink(stream).write(np.zeros((8, 8, 3), np.uint8))


@pytest.mark.parametrize("container", [None, "mov", "matroska"])
def test_a_reader_that_leaves_before_the_last_byte_is_a_clear_error(container):
    # The reader takes the first bytes and goes. A fragmented MP4 of frames alike is one fragment, written when the
    # video is finished: FFmpeg's own pipe output dropped the error of that last write, and the render succeeded.
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    received = 0
    with os.fdopen(write_end, "wb") as stream:
        sink = VideoSink(stream, container=container, threads=1)
        for level in range(60):
            sink.write(np.full((48, 64, 3), 100 + level % 3, np.uint8))
            with contextlib.suppress(BlockingIOError):
                received += len(os.read(read_end, 1 << 20))
        assert received > 0  # the stream has begun
        os.close(read_end)
        with pytest.raises(OppyError, match="writing stdout failed after 60 frames: the reader closed the pipe"):
            sink.close()


def test_image_folder_sink(tmp_path):
    sink = ImageFolderSink(tmp_path / "frames")
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 0] = 200
    sink.write(rgb, "sol0001.jpg")
    sink.write(rgb)
    assert not (tmp_path / "frames").exists()  # until the folder is complete
    assert sink.close() == str(tmp_path / "frames")
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["000001.png", "sol0001.png"]
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "frames" / "sol0001.png"))[..., ::-1], rgb)


def test_output_checks(tmp_path):
    existing = tmp_path / "out.mp4"
    existing.write_bytes(b"x")
    with pytest.raises(OppyError, match="--overwrite"):
        check_output(existing, overwrite=False)
    check_output(existing, overwrite=True)
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", overwrite=False, folder=True)  # an empty folder is fine for frames
    with pytest.raises(OppyError, match="does not exist"):
        check_output(tmp_path / "no" / "out.mp4", overwrite=False)
    with pytest.raises(OppyError, match="is a file, not a folder"):
        check_output(existing / "out.mp4", overwrite=False)
    with pytest.raises(OppyError, match="video"):
        open_sink(tmp_path / "out.gif", 5, 20, "libx264", "fast")
    assert isinstance(open_sink(tmp_path / "out.rgb", 5, 20, "libx264", "fast", "rawvideo"), RawVideoSink)
    assert open_sink(tmp_path / "out.mp4", 5, 20, "libx264", "fast", "mkv").format == "matroska"
    assert open_sink("-", 5, 20, "libx264", "fast").format == "mp4"
    assert isinstance(open_sink(tmp_path / "frames", 5, 20, "libx264", "fast"), ImageFolderSink)
    with pytest.raises(OppyError, match="codec"), VideoSink(tmp_path / "o.mp4", codec="no-such-codec") as sink:
        sink.write(np.zeros((8, 8, 3), np.uint8))


# -- colour as a player shows it --------------------------------------------------------------------------------
#: AVColorSpace tag -> the matrix FFmpeg's scaler converts with, as a player that honours the tags does
_PLAYER_MATRIX = {1: Colorspace.ITU709, 5: Colorspace.ITU601, 6: Colorspace.ITU601}


def colour_card(height: int, width: int) -> np.ndarray:
    """Colour patches of 16x16 (2x2 blocks of one colour each, so 4:2:0 loses nothing inside a patch), among them
    Mars ochre and saturated primaries."""
    colours = np.array([(180, 110, 70), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255),
                        (255, 0, 255), (20, 20, 20), (235, 235, 235), (120, 60, 30), (90, 140, 200), (200, 160, 120)],
                       np.uint8)
    rows, columns = np.mgrid[0:height, 0:width] // 16
    return colours[(rows * 7 + columns * 3) % len(colours)]


def as_a_player_shows_it(path_or_bytes) -> tuple[list[np.ndarray], dict]:
    """Every frame decoded and converted to RGB by the matrix and range its stream is tagged with; and the tags."""
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    with av.open(source) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        tags = {"colorspace": context.colorspace, "color_range": context.color_range,
                "color_primaries": context.color_primaries, "color_trc": context.color_trc}
        frames = [frame.reformat(format="rgb24", src_colorspace=_PLAYER_MATRIX[frame.colorspace],
                                 src_color_range=frame.color_range).to_ndarray()
                  for frame in container.decode(stream)]
    return frames, tags


def inside_patches(height: int, width: int) -> np.ndarray:
    """Pixels at least 2 from a patch's edge: where a decoder's chroma interpolation sees one colour only."""
    rows, columns = np.mgrid[0:height, 0:width] % 16
    return (rows >= 2) & (rows < 14) & (columns >= 2) & (columns < 14)


@pytest.mark.parametrize(("width", "height", "matrix"), [(640, 480, 6), (1280, 720, 1), (1024, 1024, 1)])
@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_a_player_that_honours_the_tags_shows_the_engines_colours(tmp_path, width, height, matrix, suffix):
    card = colour_card(height, width)
    with VideoSink(tmp_path / f"card{suffix}", crf=0) as sink:  # crf 0: lossless, only the conversion counts
        for _ in range(2):
            sink.write(card)
    frames, tags = as_a_player_shows_it(tmp_path / f"card{suffix}")
    assert tags == {"colorspace": matrix, "color_range": 1, "color_primaries": 1, "color_trc": 1}
    inside = inside_patches(height, width)
    for frame in frames:
        assert np.abs(frame.astype(int) - card)[inside].max() <= 2


@pytest.mark.parametrize(("width", "height", "matrix"), [(320, 240, 6), (1280, 720, 1)])
def test_a_streamed_fragmented_mp4_carries_the_tags_too(width, height, matrix):
    card = colour_card(height, width)

    def write(stream):
        with VideoSink(stream, crf=0) as sink:
            sink.write(card)

    frames, tags = as_a_player_shows_it(read_pipe_while(write))
    assert tags["colorspace"] == matrix and tags["color_range"] == 1
    assert np.abs(frames[0].astype(int) - card)[inside_patches(height, width)].max() <= 2


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_yuv444p_keeps_colour_at_full_resolution(tmp_path, codec):
    # one-pixel colour stripes: 4:2:0 averages each pair into one colour, 4:4:4 keeps both
    card = np.zeros((64, 64, 3), np.uint8)
    card[:, 0::2] = (200, 60, 40)
    card[:, 1::2] = (40, 90, 200)
    for pix_fmt in ("yuv444p", "yuv420p"):
        with VideoSink(tmp_path / f"{pix_fmt}.mkv", crf=0, codec=codec, pix_fmt=pix_fmt) as sink:
            sink.write(card)
    with av.open(str(tmp_path / "yuv444p.mkv")) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv444p"
        assert container.streams.video[0].codec_context.name == ("h264" if codec == "libx264" else "hevc")
    full, _ = as_a_player_shows_it(tmp_path / "yuv444p.mkv")
    half, _ = as_a_player_shows_it(tmp_path / "yuv420p.mkv")
    assert np.abs(full[0].astype(int) - card).max() <= 2
    assert np.abs(half[0].astype(int) - card).max() > 40
