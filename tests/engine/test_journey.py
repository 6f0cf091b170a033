"""The engine's stages at chroma scales below 1: what the tiles are cut from, what comes back, what is reported."""

import cv2
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from oppy.engine import Engine
from oppy.engine.api import default_model_path
from oppy.engine.contract import ModelContract
from oppy.engine.kernels.chroma_scale import scaled_size
from oppy.engine.kernels.lab import gray_to_l, l_ab_to_rgb, to_lightness
from oppy.engine.kernels.tiles import predict_chroma
from tests.conftest import affine_model, contract_model, gradient_frame, write_image

PIXELWISE = {"gain": (0.5 * 100 / 128, -0.25 * 100 / 128), "offset": (0.0, 10 / 128)}


def pixelwise_answer(gray: np.ndarray) -> np.ndarray:
    lightness = gray_to_l(gray)
    return l_ab_to_rgb(lightness, np.stack([0.5 * lightness, -0.25 * lightness + 10]))


@pytest.fixture(scope="module")
def scene_model(tmp_path_factory):
    """a* = 0.5 L*, b* = -0.25 L* + 10, from a model that learned on scenes 64 px across."""
    contract = ModelContract("L", "ab", 64, l_scale=0.01, l_shift=0.0, ab_scale=128.0, scene_size=64)
    return affine_model(tmp_path_factory.mktemp("model") / "scene64.onnx", contract=contract, **PIXELWISE)


def textured_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(gradient_frame(height, width, seed) + rng.normal(0, 25, (height, width)), 0, 255).astype(np.uint8)


def test_scale_one_is_the_plain_tiling_path_bit_for_bit():
    frames = [textured_frame(300, 200, seed=i) for i in range(2)] + [textured_frame(37, 1001, seed=5)]
    with Engine(provider="cpu", chroma_scale=1, batch_size=64) as engine:
        contract, predict = engine.contract, engine.session.predict
        expected = []
        for frame in frames:
            lightness = to_lightness(frame)
            ab = np.ascontiguousarray(predict_chroma(lightness, predict, contract, engine.overlap), np.float32)
            contract.palette.guard(lightness, ab)  # the packaged model's palette guard, on by default
            expected.append(l_ab_to_rgb(lightness, ab))
        single = [engine.colorize(f) for f in frames]
        streamed = list(engine.stream(frames))
    for one, other, reference in zip(single, streamed, expected, strict=True):
        np.testing.assert_array_equal(one, reference)
        np.testing.assert_array_equal(other, reference)


def test_the_packaged_model_colourises_a_large_frame_at_its_scene_size():
    with Engine(provider="cpu") as engine:
        assert engine.contract.scene_size == 256
        rgb = engine.colorize(textured_frame(1024, 1024))
        assert rgb.shape == (1024, 1024, 3) and engine.tiles_inferred == 25  # 256x256: 5 x 5 tiles at stride 48
    assert default_model_path().is_file()


def test_auto_cuts_the_tiles_from_the_copy_at_the_models_scene_and_reports_it(scene_model, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"{i}.png", gradient_frame(256, 256, seed=i))
    events = []
    with Engine(scene_model, provider="cpu", batch_size=8) as engine:
        report = engine.render(folder, tmp_path / "out.mp4", progress=lambda done, total, event: events.append(event))
    assert report.chroma_scales == {"256x256": 0.25} and report.tiles == 3  # 64x64: one tile a frame
    assert [(e.name, e.chroma_scale, e.tiles) for e in events] == [(f"{i}.png", 0.25, 1) for i in range(3)]
    assert events[0].cut == "first"
    assert set(report.stage_busy_seconds) >= {"shrink", "grow"}


@pytest.mark.parametrize("size, scale", [((256, 256), 0.25), ((100, 70), 0.1), ((1, 1), 0.5), ((7, 300), 0.3),
                                         ((200, 3000), "auto"), ((37, 1001), "auto"), ((1001, 37), 0.3)])
def test_frames_of_every_size_come_back_whole_and_near_the_pixelwise_answer(scene_model, size, scale):
    # the chroma is a linear function of L, which the guided upsampler reproduces where L is smooth (up to the
    # regulariser's pull towards flat chroma where L varies little within a window of the copy)
    gray = gradient_frame(*size)
    with Engine(scene_model, provider="cpu", chroma_scale=scale, batch_size=16) as engine:
        rgb = engine.colorize(gray)
        streamed = next(engine.stream([gray]))
    assert rgb.shape == (*size, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, streamed)
    assert np.abs(rgb.astype(int) - pixelwise_answer(gray)).max() <= 6


def test_a_frame_smaller_than_a_tile_at_the_chosen_scale_is_one_reflected_tile(scene_model):
    with Engine(scene_model, provider="cpu", chroma_scale=0.25, batch_size=4) as engine:
        engine.colorize(gradient_frame(120, 90))  # a copy of 30x22
        assert engine.tiles_inferred == 1
        # a copy of one pixel has one colour: the chroma of the frame's mean lightness, everywhere
        rgb = engine.colorize(gradient_frame(2, 2))
    lightness = gray_to_l(gradient_frame(2, 2))
    mean = float(lightness.mean())
    expected = l_ab_to_rgb(lightness, np.stack([np.full_like(lightness, 0.5 * mean),
                                                np.full_like(lightness, -0.25 * mean + 10)]))
    assert np.abs(rgb.astype(int) - expected).max() <= 1


@settings(max_examples=25, deadline=None, derandomize=True)
@given(height=st.integers(1, 160), width=st.integers(1, 160), scale=st.floats(0.02, 1.0), seed=st.integers(0, 50))
def test_any_size_and_scale_give_nearly_the_pixelwise_answer(scene_model, height, width, scale, seed):
    # a copy of one or two pixels across holds no slope of chroma against L to grow back with (see below)
    assume(min(scaled_size(height, width, scale)) >= 3)
    gray = gradient_frame(height, width, seed=seed)
    with Engine(scene_model, provider="cpu", chroma_scale=scale, batch_size=8) as engine:
        rgb = engine.colorize(gray)
    assert rgb.shape == (height, width, 3)
    assert np.abs(rgb.astype(int) - pixelwise_answer(gray)).max() <= 6


def test_letterboxed_frames_keep_their_bars_black_at_any_scale(scene_model, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    write_image(folder / "1.png", gradient_frame(256, 256))
    write_image(folder / "2.png", textured_frame(128, 256, seed=3))  # wide: bars above and below
    write_image(folder / "3.png", textured_frame(256, 64, seed=4))  # tall: bars left and right
    with Engine(scene_model, provider="cpu", format="rawvideo") as engine:
        report = engine.render(folder, tmp_path / "out.rgb")
    frames = np.frombuffer((tmp_path / "out.rgb").read_bytes(), np.uint8).reshape(3, 256, 256, 3)
    assert report.frames_resized == 2
    assert not frames[1, :64].any() and not frames[1, 192:].any() and frames[1, 64:192].all(axis=2).mean() > 0.5
    assert not frames[2, :, :96].any() and not frames[2, :, 160:].any()


def test_a_border_sensitive_model_shows_no_tile_grid_at_a_quarter_scale(tmp_path):
    from oppy.bench.quality import SeamMeter
    from oppy.engine.kernels.lab import rgb_to_lab
    from oppy.engine.session import ModelSession
    from oppy.training.evaluate import model_method
    from tests.bench.conftest import blur_model
    from tests.training.conftest import lawful_photo

    session = ModelSession(blur_model(tmp_path / "blur.onnx"), "cpu", 64)
    contract = session.contract

    def quarter(height, width):
        return 0.25

    blended = SeamMeter(model_method(session.predict, contract, 16, 0.25), 64, 16, quarter)
    stitched = SeamMeter(model_method(session.predict, contract, 0, 0.25), 64, 0, quarter)
    for seed in range(3):
        photo = lawful_photo(192, 192, seed)
        enlarged = cv2.resize(photo, (768, 768), interpolation=cv2.INTER_CUBIC)  # a camera of 4x the resolution
        lightness = np.ascontiguousarray(rgb_to_lab(enlarged)[..., 0])
        for meter in (blended, stitched):
            meter(lightness)
    assert stitched.blockiness > 2  # the meter sees the copy's grid, 4x coarser in the frame
    assert blended.blockiness < 1.5 and stitched.blockiness > 1.8 * blended.blockiness


def log_model(path):
    """a* = b* = ln(L*/100): finite for every lit pixel, minus infinity where a tile is black."""
    from onnx import helper

    return contract_model(
        path, "log", [helper.make_node("Log", ["L"], ["log"]),
                      helper.make_node("Concat", ["log", "log"], ["ab"], axis=3)],
        contract=ModelContract("L", "ab", 64, 0.01, 0.0, 1.0))


@pytest.mark.parametrize("kind", ["nan", "huge", "infinite"])
def test_a_model_whose_answer_is_not_a_colour_skips_the_frame_with_the_reason(tmp_path, kind):
    from oppy.engine.errors import FrameError, NothingToRender

    model = {"nan": lambda: affine_model(tmp_path / "m.onnx", gain=(float("nan"), 0.0)),
             "huge": lambda: affine_model(tmp_path / "m.onnx", offset=(1e30, 0.0)),
             "infinite": lambda: log_model(tmp_path / "m.onnx")}[kind]()
    folder = tmp_path / "frames"
    folder.mkdir()
    write_image(folder / "1.png", np.zeros((64, 64), np.uint8))  # black: the log model's -inf
    write_image(folder / "2.png", gradient_frame(64, 64))
    with Engine(model, provider="cpu", chroma_scale=1) as engine:
        with pytest.raises(FrameError, match="not a colour"):
            engine.colorize(np.zeros((64, 64), np.uint8))
        with pytest.raises(FrameError, match="frame 0: the model's answer"):
            list(engine.stream([np.zeros((64, 64), np.uint8)]))
        if kind == "infinite":  # the other frame is rendered, and a lit frame colourised
            report = engine.render(folder, tmp_path / "out.mp4")
            assert report.frames_out == 1 and [s["name"] for s in report.skipped] == ["1.png"]
            assert "NaN or infinity" in report.skipped[0]["reason"]
            assert engine.colorize(gradient_frame(64, 64)).shape == (64, 64, 3)
        else:
            with pytest.raises(NothingToRender, match="not a colour"):
                engine.render(folder, tmp_path / "out.mp4")


def test_a_float_frame_with_nan_is_refused_with_the_reason(scene_model):
    from oppy.engine.errors import FrameError

    frame = np.full((80, 80, 3), 0.5, np.float32)
    frame[3, 4, 1] = np.nan
    with Engine(scene_model, provider="cpu") as engine:
        with pytest.raises(FrameError, match="NaN or infinite"):
            engine.colorize(frame)
        with pytest.raises(FrameError, match="NaN or infinite"):
            list(engine.stream([np.full((80, 80, 3), np.inf, np.float32)]))
        assert engine.colorize(np.full((80, 80, 3), 0.5, np.float32)).shape == (80, 80, 3)


def test_the_threads_and_the_calling_thread_run_the_same_stages_in_the_same_order(scene_model, tmp_path):
    from oppy.engine.journey import Work, in_threads, in_turn, steps
    from oppy.engine.overlays.sheet import ContactSheet

    core = ["to_l", "shrink", "tile", "infer", "blend", "temporal", "grow", "to_rgb"]
    with Engine(scene_model, provider="cpu", batch_size=4) as engine:
        assert [step.name for step in steps(engine.stages())] == core
        assert [step.name for step in steps(engine.stages(temporal=False))] == [n for n in core if n != "temporal"]
        plain = in_threads(engine.stages(), [], engine.config.queue_size)
        assert [name for name, _ in plain.stages] == core
        dressed = in_threads(engine.stages(), [], 2, sheet=ContactSheet(tmp_path / "s.png", 2), caption="{name}",
                           prepare=lambda rgb: rgb)
        assert [name for name, _ in dressed.stages] == [*core[:7], "sheet", "to_rgb", "caption", "prepare"]
        seen = []

        def timed(name, call):
            seen.append(name)
            return call()

        work = Work(0, "grey", gradient_frame(140, 90))
        in_turn(engine.stages(), [work], timed, caption="{index}")
        assert seen == [*core, "caption"]
        assert work.chroma_scale < 1
    with Engine(scene_model, provider="cpu", batch_size=4, caption="{index}") as captioned:
        np.testing.assert_array_equal(work.rgb, captioned.colorize(gradient_frame(140, 90)))  # the caption burned
