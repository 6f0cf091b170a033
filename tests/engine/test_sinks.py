import av
import cv2
import numpy as np
import pytest

from oppy.engine.errors import OppyError
from oppy.engine.sinks import ImageFolderSink, VideoSink, check_output, open_sink


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


def test_frames_of_another_size_are_scaled(tmp_path):
    path = tmp_path / "out.mkv"
    with VideoSink(path) as sink:
        sink.write(np.zeros((32, 48, 3), np.uint8))
        sink.write(np.zeros((64, 96, 3), np.uint8))
    frames, _ = decode(path)
    assert [f.shape for f in frames] == [(32, 48, 3)] * 2


def test_image_folder_sink(tmp_path):
    sink = ImageFolderSink(tmp_path / "frames")
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 0] = 200
    sink.write(rgb, "sol0001.jpg")
    sink.write(rgb)
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["000001.png", "sol0001.png"]
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "frames" / "sol0001.png"))[..., ::-1], rgb)


def test_output_checks(tmp_path):
    existing = tmp_path / "out.mp4"
    existing.write_bytes(b"x")
    with pytest.raises(OppyError, match="--overwrite"):
        check_output(existing, overwrite=False)
    check_output(existing, overwrite=True)
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", overwrite=False)  # an empty folder is fine
    with pytest.raises(OppyError, match="does not exist"):
        check_output(tmp_path / "no" / "out.mp4", overwrite=False)
    with pytest.raises(OppyError, match="video"):
        open_sink(tmp_path / "out.gif", 5, 20, "libx264", "fast")
    with pytest.raises(OppyError, match="codec"), VideoSink(tmp_path / "o.mp4", codec="no-such-codec") as sink:
        sink.write(np.zeros((8, 8, 3), np.uint8))
