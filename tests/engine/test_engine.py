import av
import numpy as np
import pytest
from skimage import color

from oppy.engine import Engine, EngineConfig, ModelError, NothingToRender, OppyError

from conftest import affine_model, gradient_frame, write_image


def expected_rgb(gray: np.ndarray, a, b) -> np.ndarray:
    """The reference answer, computed by scikit-image from the exact chroma (negative XYZ clamped, as the
    engine documents for colours outside what a display shows)."""
    lightness = color.rgb2lab(np.repeat(gray[..., None], 3, axis=2))[..., 0]
    xyz = color.lab2xyz(np.dstack([lightness, a(lightness), b(lightness)]))
    return np.round(np.clip(color.xyz2rgb(np.clip(xyz, 0, None)), 0, 1) * 255).astype(int)


def test_constant_chroma_model_gives_that_chroma_everywhere(constant_model):
    gray = gradient_frame(150, 230)
    with Engine(constant_model, provider="cpu", batch_size=16) as engine:
        rgb = engine.colorize(gray)
    assert rgb.shape == (150, 230, 3) and rgb.dtype == np.uint8
    reference = expected_rgb(gray, lambda L: np.full_like(L, 20.0), lambda L: np.full_like(L, 40.0))
    assert np.abs(rgb.astype(int) - reference).max() <= 1
    lab = color.rgb2lab(rgb)
    assert abs(np.median(lab[..., 1]) - 20) < 1 and abs(np.median(lab[..., 2]) - 40) < 1


@pytest.mark.parametrize("overlap", [0, 16, 40])
def test_smooth_function_of_the_frame_comes_back_seamless(lightness_model, overlap):
    gray = gradient_frame(200, 333)
    with Engine(lightness_model, provider="cpu", overlap=overlap, batch_size=32) as engine:
        rgb = engine.colorize(gray)
    reference = expected_rgb(gray, lambda L: 0.5 * L, lambda L: -0.25 * L + 10)
    error = np.abs(rgb.astype(int) - reference).max(axis=2)
    assert error.max() <= 1
    # a tile grid would show as larger errors on the rows and columns where tiles meet
    stride = 64 - overlap
    borders = np.zeros(error.shape, bool)
    borders[::stride, :] = borders[:, ::stride] = True
    assert error[borders].mean() <= error[~borders].mean() + 0.05


def test_stream_keeps_order_and_count_across_batch_sizes(lightness_model):
    frames = [gradient_frame(70 + 13 * (i % 3), 90, seed=10 * i) for i in range(9)]
    with Engine(lightness_model, provider="cpu") as engine:
        single = [engine.colorize(f) for f in frames]
    for batch_size in (1, 7, 500):
        with Engine(lightness_model, provider="cpu", batch_size=batch_size, queue_size=1) as engine:
            streamed = list(engine.stream(iter(frames)))
        assert len(streamed) == len(frames)
        for ours, alone in zip(streamed, single, strict=True):
            np.testing.assert_array_equal(ours, alone)


def test_stream_accepts_16bit_and_rgb_frames(constant_model):
    gray = gradient_frame(64, 64)
    with Engine(constant_model, provider="cpu") as engine:
        eight, sixteen, rgb = engine.stream([gray, gray.astype(np.uint16) * 257, np.dstack([gray] * 3)])
    np.testing.assert_array_equal(eight, rgb)
    assert np.abs(eight.astype(int) - sixteen).max() <= 1


def test_stream_surfaces_a_bad_frame_as_a_user_error(constant_model):
    with Engine(constant_model, provider="cpu") as engine, pytest.raises(OppyError, match="frame 1"):
        list(engine.stream([np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.float32)]))


def test_render_video_keeps_size_count_and_natural_order(archive, lightness_model, tmp_path):
    out = tmp_path / "out.mp4"
    with Engine(lightness_model, provider="cpu", batch_size=5) as engine:
        report = engine.render(archive, out)
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    assert len(decoded) == 6 and decoded[0].shape == (96, 128)
    levels = [float(frame.mean()) for frame in decoded]
    assert levels == sorted(levels)  # sol0, sol5, sol10 ... not sol0, sol10, sol15, sol20, sol25, sol5
    assert report.frames_in == report.frames_out == 6 and report.skipped == []
    assert report.tiles == 6 * 2 * 3  # 96x128 frames: 2 x 3 tiles of 64 at stride 48
    assert report.provider == "CPUExecutionProvider"
    assert set(report.stage_busy_seconds) == {"decode", "to_l", "tile", "infer", "blend", "to_rgb", "encode"}


def test_render_reports_skips_and_writes_image_folders(archive, constant_model, tmp_path):
    (archive / "broken.png").write_bytes(b"\x89PNG broken")
    write_image(archive / "sol7_colour.jpg", np.full((96, 128, 3), (200, 100, 50), np.uint8))
    out = tmp_path / "frames"
    with Engine(constant_model, provider="cpu") as engine:
        report = engine.render(archive, out)
    assert report.frames_in == 8 and report.frames_out == 7
    assert report.skipped == [{"name": "broken.png", "reason": "not a decodable image"}]
    assert (out / "sol7_colour.png").exists() and len(list(out.iterdir())) == 7


def test_render_refuses_to_overwrite_and_to_render_nothing(archive, constant_model, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    with Engine(constant_model, provider="cpu") as engine, pytest.raises(OppyError, match="--overwrite"):
        engine.render(archive, out)
    assert out.read_bytes() == b"precious"
    empty = tmp_path / "empty"
    empty.mkdir()
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.png").write_bytes(b"")
    with Engine(constant_model, provider="cpu") as engine:
        with pytest.raises(NothingToRender, match="holds no files"):
            engine.render(empty, tmp_path / "a.mp4")
        with pytest.raises(NothingToRender, match=r"a.png: empty file"):
            engine.render(junk, tmp_path / "b.mp4")
    assert not (tmp_path / "b.mp4").exists()


def test_options_are_checked(constant_model):
    with pytest.raises(OppyError, match="batch size"):
        EngineConfig(batch_size=0)
    with pytest.raises(OppyError, match="overlap 64 must be smaller"):
        Engine(constant_model, overlap=64)
    with pytest.raises(ModelError, match="--model"):
        Engine(provider="cpu")


def test_overlap_defaults_to_the_models_recommendation(tmp_path):
    from oppy.engine.contract import ModelContract

    contract = ModelContract("L", "ab", 64, 0.01, 0.0, 128.0, overlap=24)
    with Engine(affine_model(tmp_path / "m.onnx", contract=contract), provider="cpu") as engine:
        assert engine.overlap == 24
