import io
import os
import threading

import av
import cv2
import numpy as np
import pytest

from oppy.engine.errors import OppyError
from oppy.engine.outputs import check_output
from oppy.engine.sinks import (
    ImageFolderSink,
    RawVideoSink,
    VideoSink,
    open_sink,
    rgb_to_yuv420p,
    rgb_to_yuv420p_frame,
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


def test_failed_video_leaves_no_file(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError), VideoSink(path) as sink:
        sink.write(np.zeros((32, 32, 3), np.uint8))
        raise RuntimeError("stage failed")
    assert list(tmp_path.iterdir()) == []


def test_frames_of_another_size_are_refused(tmp_path):
    # fitting to one size happens before colourising (engine/resize.py); a sink that got another size is a bug
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
    """What `write(binary stream)` sends through a real pipe, read by a thread as it comes."""
    read_end, write_end = os.pipe()
    chunks = []
    reader = threading.Thread(target=lambda: chunks.append(os.fdopen(read_end, "rb").read()))
    reader.start()
    with os.fdopen(write_end, "wb") as stream:
        write(stream)
    reader.join()
    return chunks[0]


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
    monkeypatch.setattr("oppy.engine.outputs.temporary_name", lambda target: target.with_name(".fixed.partial"))
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


def test_yuv_conversion_matches_ffmpegs_scaler_on_smooth_colour():
    # On smooth colour the two may differ only by rounding; at hard colour edges they filter chroma differently
    # (a 2x2 mean here, the scaler interpolates).
    y, x = np.mgrid[0:96, 0:128] / 128.0
    rgb = np.clip(np.dstack([200 * x + 30, 120 + 60 * y, 220 - 150 * x * y]), 0, 255).astype(np.uint8)
    ours = rgb_to_yuv420p(rgb)
    scaler = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()
    assert ours.shape == scaler.shape == (96 * 3 // 2, 128)
    difference = np.abs(ours.astype(int) - scaler)
    assert difference[:96].max() <= 1 and difference[96:].max() <= 2 and difference.mean() < 0.5
    flat = np.full((8, 8, 3), (255, 255, 255), np.uint8)
    assert rgb_to_yuv420p(flat)[0, 0] == 235  # limited range: white is 235, as the scaler makes it


def test_each_chroma_sample_is_that_of_the_mean_of_its_2x2_pixels():
    # A one-pixel checkerboard of red, blue and black: taking any one pixel of a block would give pure red, pure
    # blue or grey; the mean gives each block's blend.
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[0::2, 0::2] = (255, 0, 0)
    rgb[1::2, 1::2] = (0, 0, 255)
    rgb[2:, 4:] = (40, 200, 90)  # and one flat block
    mean = rgb.reshape(2, 2, 3, 2, 3).mean(axis=(1, 3))
    u = 128 + mean @ np.array([-0.148223, -0.290993, 0.439216])  # BT.601, limited range (an independent reference)
    v = 128 + mean @ np.array([0.439216, -0.367788, -0.071427])
    y = 16 + rgb @ np.array([0.256788, 0.504129, 0.097906])
    yuv = rgb_to_yuv420p(rgb).astype(int)
    np.testing.assert_allclose(yuv[:4], y, atol=0.51)
    np.testing.assert_allclose(yuv[4:5].reshape(2, 3), u, atol=0.51)  # U: two rows of 3 in one row of 6
    np.testing.assert_allclose(yuv[5:6].reshape(2, 3), v, atol=0.51)
    scaler = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray().astype(int)
    assert np.abs(yuv[4:, :4] - scaler[4:, :4]).max() <= 2  # where the scaler's filter sees the same blocks


@pytest.mark.parametrize(("height", "width"), [(6, 10), (2, 8), (34, 18), (32, 20)])
def test_yuv_planes_lie_where_ffmpeg_reads_them_whatever_the_height(height, width):
    # With a height that is not a multiple of 4, the U and V planes start halfway along a row of the array. The
    # colour changes slowly from top left to bottom right, and U and V differ, so a misplaced row would show.
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.clip(np.dstack([200 - x - y, 90 + 0 * x, 40 + x + y]), 0, 255).astype(np.uint8)
    ours = rgb_to_yuv420p(rgb).astype(int)
    scaler = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray().astype(int)
    assert np.abs(ours - scaler).max() <= 2
    back = av.VideoFrame.from_ndarray(rgb_to_yuv420p(rgb), format="yuv420p").to_ndarray(format="rgb24").astype(int)
    assert np.abs(back - rgb).max() <= 4  # through FFmpeg's own reading of the planes


def test_yuv_conversion_wants_even_sided_rgb():
    for wrong in (np.zeros((3, 4, 3), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8)):
        with pytest.raises(ValueError, match="even sides"):
            rgb_to_yuv420p(wrong)


@pytest.mark.parametrize(("width", "height"), [(1000, 750), (66, 48), (64, 2)])
def test_a_frame_converted_in_place_holds_the_planes_of_the_array_whatever_its_row_padding(width, height):
    # PyAV pads rows to its alignment (1000 px: Y rows of 1008 bytes, U and V of 512): the kernel writes past none
    # of it into the picture, as PyAV's own reading of the frame shows
    rgb = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    frame = rgb_to_yuv420p_frame(rgb)
    assert (frame.width, frame.height, frame.format.name) == (width, height, "yuv420p")
    np.testing.assert_array_equal(frame.to_ndarray(), rgb_to_yuv420p(rgb))
