import cv2
import numpy as np
import pytest

from oppy.bench.seed_compare import seed_render
from oppy.engine.contract import ModelContract
from tests.conftest import affine_model

CONTRACT = ModelContract("L", "ab", 64, l_scale=1 / 50, l_shift=-1.0, ab_scale=128.0)


class Constant:
    """A stand-in for a Keras network: predicts a* = 40, b* = 0 everywhere, and counts its calls."""

    def __init__(self):
        self.calls = []

    def predict(self, tiles, verbose=0):
        self.calls.append(tiles.shape)
        return np.concatenate([np.full((*tiles.shape[:3], 1), 40 / 128, np.float32),
                               np.zeros((*tiles.shape[:3], 1), np.float32)], axis=-1)


def test_the_seed_way_predicts_whole_tiles_writes_a_file_each_and_stitches_them(synth_archive, tmp_path):
    frames = sorted(synth_archive.iterdir())
    network = Constant()
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    written = seed_render(network, CONTRACT, frames, tmp_path / "seed.mp4", tiles)
    assert written == 3 * 4 and len(list(tiles.iterdir())) == 12  # 128x128: four 64x64 tiles, no overlap
    assert network.calls == [(4, 64, 64, 1)] * 3  # one predict per frame over its tiles
    tile = cv2.imread(str(tiles / "frame00000_tile0003.png"))
    assert tile.shape == (64, 64, 3) and (tile[..., 2].astype(int) - tile[..., 1]).mean() > 20  # reddish: a* > 0
    video = cv2.VideoCapture(str(tmp_path / "seed.mp4"))
    shapes = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        shapes.append(frame.shape)
    assert shapes == [(128, 128, 3)] * 3


def test_frames_that_are_not_a_multiple_of_the_tile_are_padded_and_cropped(tmp_path):
    from tests.conftest import gradient_frame, write_image

    path = write_image(tmp_path / "odd.png", gradient_frame(70, 100))
    (tmp_path / "tiles").mkdir()
    assert seed_render(Constant(), CONTRACT, [path], tmp_path / "odd.mp4", tmp_path / "tiles") == 2 * 2
    video = cv2.VideoCapture(str(tmp_path / "odd.mp4"))
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (100, 70)


def test_seed_and_oppy_stream_render_the_same_archive_with_the_same_weights(synth_archive, tmp_path):
    keras = pytest.importorskip("keras")
    pytest.importorskip("tf2onnx")
    from oppy.bench.seed_compare import bench_compare_seed

    inputs = keras.Input((64, 64, 1), name="L")
    outputs = keras.layers.Conv2D(2, 3, padding="same", activation="tanh", name="ab")(inputs)
    keras.Model(inputs, outputs, name="seed").save(tmp_path / "tiny.keras")
    # oppy-stream's own side: a model whose scene is 64 px colourises the 128x128 frames at half scale, one tile
    own = affine_model(tmp_path / "own.onnx", metadata={
        **ModelContract("L", "ab", 64, 0.01, 0.0, 128.0).to_metadata(), "oppy.scene_size": "64"})
    result = bench_compare_seed(synth_archive, tmp_path / "tiny.keras", batch_size=16, model=own)
    assert result["frames"] == 3 and result["weights"].endswith("tiny.keras")
    assert result["seed"]["tiles"] == 3 * 4 and result["oppy_same_weights"]["tiles"] == 3 * 9
    assert result["oppy"]["tiles"] == 3 * 1 and result["oppy"]["chroma_scales"] == {"128x128": 0.5}
    assert result["oppy"]["model"] == str(own) and result["oppy_same_weights"]["model"].endswith("tiny.keras")
    for name in ("oppy", "oppy_same_weights"):
        assert result[name]["ratio"] == pytest.approx(result["seed"]["seconds"] / result[name]["seconds"])
        assert result[name]["provider"] == "CPUExecutionProvider"
    assert (result["ratio"], result["ratio_same_weights"]) == (result["oppy"]["ratio"],
                                                               result["oppy_same_weights"]["ratio"])
