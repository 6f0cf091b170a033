"""The temporal smoothing: colour carried along a pan, a finite window (no drift, chunks equal the whole), cuts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from oppy.engine import Engine, EngineConfig, OppyError
from oppy.engine.cli import main
from oppy.engine.config import check_strength
from oppy.engine.temporal import DECAY, HISTORY, LEAD_IN, FrameKey, TemporalSmoother
from tests.conftest import affine_model, gradient_frame, write_image


def texture(seed: int, height: int = 96, width: int = 160) -> np.ndarray:
    """A smooth random L* field in about [20, 80]."""
    noise = np.random.default_rng(seed).random((height, width)).astype(np.float32)
    field = cv2.GaussianBlur(noise, (0, 0), 3)
    return (20 + 60 * (field - field.min()) / (field.max() - field.min())).astype(np.float32)


def pan(seed: int = 0, frames: int = 12, side: int = 64, step: int = 2, height: int | None = None,
        step_down: int = 0) -> tuple[list, list]:
    """A pan over a texture, `step` pixels across and `step_down` down a frame, of frames `side` wide and `height`
    (default `side`) high: each frame's L* and its true a*, b* (a known function of the scene)."""
    height = height or side
    scene = texture(seed, height + frames * step_down + 32, side + frames * step + 32)
    chroma = np.stack([(scene - 50) * 0.4, (scene - 30) * 0.3])
    window = [(slice(16 + i * step_down, 16 + i * step_down + height), slice(i * step, i * step + side))
              for i in range(frames)]
    return ([np.ascontiguousarray(scene[w]) for w in window],
            [np.ascontiguousarray(chroma[(slice(None), *w)]) for w in window])


def run(smoother: TemporalSmoother, lightness, answers, keys=None) -> tuple[list, list]:
    outputs, cuts = [], []
    for i, (lum, ab) in enumerate(zip(lightness, answers, strict=True)):
        ab = ab.copy()
        cuts.append(smoother.smooth(lum, ab, keys[i] if keys else FrameKey(lum.shape)))
        outputs.append(ab)
    return outputs, cuts


def noisy(truth: list, sigma: float = 4.0, seed: int = 1, cast: float = 2.0, grain: float = 2.0) -> list:
    """Each frame's answer off the truth by noise of its own, in patches of about `grain` pixels (a model's chroma
    is smooth at the copy's scale: it changes from frame to frame in patches, not pixel by pixel), and by a cast of
    its own (an offset of the whole frame)."""
    rng = np.random.default_rng(seed)
    answers = []
    for ab in truth:
        noise = np.stack([cv2.GaussianBlur(plane, (0, 0), grain) for plane in rng.normal(0, 1, ab.shape)])
        noise *= sigma / noise.std()
        answers.append((ab + noise + rng.normal(0, cast, (2, 1, 1))).astype(np.float32))
    return answers


def settled_error(frames: list, truth: list) -> float:
    """Mean |a*b* - truth| over the frames after the window has filled."""
    return float(np.mean([np.abs(f - t).mean() for f, t in zip(frames[HISTORY:], truth[HISTORY:], strict=True)]))


def jitter(frames: list) -> float:
    means = np.array([frame.reshape(2, -1).mean(axis=1) for frame in frames])
    return float(np.sqrt(np.mean(np.square(means[2:] - 2 * means[1:-1] + means[:-2]))))


@pytest.mark.parametrize("side", [64, 320])  # 320: the flow measured on a smaller copy and brought back
def test_a_pan_comes_closer_to_the_truth_and_changes_less_from_frame_to_frame(side):
    lightness, truth = pan(side=side, step=2 if side == 64 else 6)
    answers = noisy(truth)
    outputs, cuts = run(TemporalSmoother(1.0), lightness, answers)
    assert cuts[0] == "first" and cuts[1:] == [None] * (len(cuts) - 1)
    settled = slice(HISTORY, None)
    error_alone, error_smoothed = settled_error(answers, truth), settled_error(outputs, truth)
    assert error_smoothed < 0.7 * error_alone
    half, _ = run(TemporalSmoother(0.5), lightness, answers)
    error_half = settled_error(half, truth)
    assert error_smoothed < error_half < error_alone
    # the overall cast holds still: the frames' mean a*, b* wobble less than the answers'
    assert jitter(outputs[settled]) < 0.4 * jitter(answers[settled])


@pytest.mark.parametrize(("side", "window"), [(256, 128), (67, 33), (63, 63), (20, 20)])
def test_the_window_is_kept_at_half_the_copys_size_unless_the_copy_is_small(side, window):
    lightness, truth = pan(side=side, frames=3, step=2)
    smoother = TemporalSmoother(1.0)
    run(smoother, lightness, noisy(truth))
    assert smoother._window.shape[:2] == (window, window)


def test_the_window_is_finite_so_a_new_answer_is_taken_in_full_and_a_chunk_equals_the_whole():
    still = [texture(3)[:64, :64]] * (HISTORY + 4)
    first, second = np.full((2, 64, 64), 10.0, np.float32), np.full((2, 64, 64), -6.0, np.float32)
    answers = [first] * 3 + [second] * (HISTORY + 1)
    outputs, _ = run(TemporalSmoother(1.0), still, answers)
    assert -6.0 < outputs[3].mean() < 10.0  # the change is smoothed ...
    np.testing.assert_allclose(outputs[3 + HISTORY], second, atol=1e-4)  # ... and gone from the window after it

    lightness, truth = pan(frames=14)
    answers = noisy(truth)
    whole, _ = run(TemporalSmoother(1.0), lightness, answers)
    start = 9
    chunk, _ = run(TemporalSmoother(1.0), lightness[start - LEAD_IN:], answers[start - LEAD_IN:])
    for ours, theirs in zip(chunk[LEAD_IN:], whole[start:], strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_cuts_start_afresh_with_the_frame_alone():
    lightness, truth = pan(frames=4)
    other_l, other_ab = pan(seed=7, frames=2)
    answers = noisy(truth) + noisy(other_ab, seed=5)
    outputs, cuts = run(TemporalSmoother(1.0), lightness + other_l, answers)
    assert cuts == ["first", None, None, None, "scene", None]
    np.testing.assert_array_equal(outputs[4], answers[4])
    # the same pixels turned upside down: the same histogram, but no flow holds
    turned = [np.ascontiguousarray(np.rot90(lightness[3], 2))] * 2
    outputs, cuts = run(TemporalSmoother(1.0), lightness + turned, answers)
    assert cuts == ["first", None, None, None, "motion", None]
    np.testing.assert_array_equal(outputs[4], answers[4])

    def cut_by(keys: list[FrameKey], frames=None) -> list:
        frames = frames or [lightness[0]] * len(keys)
        return run(TemporalSmoother(1.0), frames, [truth[0]] * len(keys), keys)[1]

    shape = lightness[0].shape
    assert cut_by([FrameKey(shape, "navcam"), FrameKey(shape, "navcam"), FrameKey(shape, "pancam"),
                   FrameKey(shape, None)]) == ["first", None, "camera", None]
    times = [0.0, 5.0, 10.0, 14.0, 200.0, 210.0, 205.0, 210.0, 2000.0]
    assert cut_by([FrameKey(shape, time=t) for t in times]) == [
        "first", None, None, None, "time", None, "time", None, "time"]
    assert cut_by([FrameKey(shape, time=t) for t in (0.0, 1.0, 2.0, 400.0)]) == ["first", None, None, "time"]
    smaller = [lightness[0], lightness[0][:32, :32]]
    assert run(TemporalSmoother(1.0), smaller, [truth[0], truth[0][:, :32, :32]])[1] == ["first", "size"]
    smoother = TemporalSmoother(1.0)
    run(smoother, lightness[:2], truth[:2])
    smoother.cut("skip")
    assert run(smoother, lightness[2:], truth[2:])[1] == ["skip", None]
    # a jump in brightness with the same layout is a new exposure, not the same colours
    assert run(TemporalSmoother(1.0), [lightness[0], lightness[0] * 0.4], truth[:2])[1] == ["first", "scene"]


def test_frames_too_small_for_a_flow_and_single_frames_pass():
    tiny = [np.full((1, 1), 50.0, np.float32), np.full((1, 1), 51.0, np.float32), np.full((1, 1), 52.0, np.float32)]
    outputs, cuts = run(TemporalSmoother(1.0), tiny, [np.full((2, 1, 1), v, np.float32) for v in (4.0, 8.0, 6.0)])
    assert cuts == ["first", None, None] and 4.0 < float(outputs[1].mean()) < 8.0
    assert run(TemporalSmoother(1.0), tiny[:1], [np.zeros((2, 1, 1), np.float32)])[1] == ["first"]


@pytest.mark.parametrize("side", [2, 7, 8, 16, 31, 32, 33])  # around MIN_FLOW_SIDE, where DIS once wrote astray
def test_copies_around_the_smallest_flow_size_carry_colour_without_harm(side):
    lightness, truth = pan(side=side, frames=6, step=1)
    for _ in range(3):
        outputs, cuts = run(TemporalSmoother(1.0), lightness, noisy(truth))
        assert cuts[0] == "first" and all(np.isfinite(out).all() for out in outputs)


def test_a_forked_process_smooths_with_a_worker_thread_of_its_own():
    multiprocessing = pytest.importorskip("multiprocessing")
    lightness, truth = pan(frames=3)
    run(TemporalSmoother(1.0), lightness, truth)  # the parent's worker thread exists before the fork
    child = multiprocessing.get_context("fork").Process(target=run, args=(TemporalSmoother(1.0), lightness, truth))
    child.start()
    child.join(timeout=60)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive and child.exitcode == 0


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), "strong", True, None])
def test_a_strength_outside_zero_to_one_is_refused_naming_the_range(value):
    with pytest.raises(ValueError, match=r"temporal strength must be a number in \[0, 1\]"):
        check_strength(value)
    if not isinstance(value, str):
        with pytest.raises(OppyError, match=r"in \[0, 1\]"):
            EngineConfig(temporal=value)


@pytest.mark.parametrize("value", ["2", "nan", "x"])
def test_the_command_line_refuses_a_bad_strength_in_one_line(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path), str(tmp_path / "out.mp4"), "--temporal", value])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--temporal" in error and "[0, 1]" in error


@pytest.fixture
def colour_model(tmp_path):
    return affine_model(tmp_path / "colour.onnx", gain=(0.6, -0.4), offset=(0.0, 0.1))


def test_colorize_is_one_frame_alone_whatever_the_strength(colour_model):
    frame = (texture(2) * 2.55).astype(np.uint8)
    with Engine(colour_model, provider="cpu", temporal=1.0) as smoothed, \
            Engine(colour_model, provider="cpu", temporal=0.0) as alone:
        for _ in range(3):
            np.testing.assert_array_equal(smoothed.colorize(frame), alone.colorize(frame))


def test_a_render_reports_its_cuts_a_skip_among_them_and_survives_odd_frames(colour_model, tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    lightness, _ = pan(frames=6)
    for i, lum in enumerate(lightness):
        write_image(folder / f"f{i}.png", (lum * 2.55).astype(np.uint8))
    (folder / "f3.png").write_bytes(b"not a picture")
    write_image(folder / "f6.png", gradient_frame(1, 1))
    write_image(folder / "f7.png", gradient_frame(1, 1, seed=3))
    with Engine(colour_model, provider="cpu", batch_size=8, temporal=0.8) as engine:
        report = engine.render(folder, tmp_path / "frames-out")  # PNGs: every frame keeps its size
    assert report.temporal == 0.8 and report.frames_out == 7 and len(report.skipped) == 1
    assert report.cuts == [{"frame": "f4.png", "why": "skip"}, {"frame": "f6.png", "why": "size"}]
    assert main([str(folder), str(tmp_path / "again"), "--model", str(colour_model), "--temporal", "0.5"]) == 0
    assert "temporal smoothing 0.5 (2 cuts)" in capsys.readouterr().err
    with Engine(colour_model, provider="cpu", batch_size=8) as engine:
        assert [frame.shape for frame in engine.stream([gradient_frame(1, 1)])] == [(1, 1, 3)]


@pytest.mark.parametrize(("height", "width", "step", "step_down"), [(200, 64, 1, 3), (64, 200, 3, 1), (130, 300, 4, 2)])
def test_a_pan_across_and_down_a_copy_that_is_not_square_carries_colour(height, width, step, step_down):
    lightness, truth = pan(seed=11, side=width, step=step, height=height, step_down=step_down)
    answers = noisy(truth)
    outputs, cuts = run(TemporalSmoother(1.0), lightness, answers)
    assert cuts == ["first"] + [None] * 11
    error_alone, error_smoothed = settled_error(answers, truth), settled_error(outputs, truth)
    assert error_smoothed < 0.7 * error_alone


@pytest.mark.parametrize("side", [65, 127, 256])
def test_the_frames_mean_is_the_windows_cast_once_the_change_is_brought_back(side):
    lightness, truth = pan(side=side, frames=4, step=2)
    answers = noisy(truth)
    outputs, _ = run(TemporalSmoother(1.0), lightness, answers)
    means = [answer.reshape(2, -1).mean(axis=1, dtype=np.float64) for answer in answers]
    weights = DECAY ** np.arange(3)
    cast = (means[3] + sum(w * m for w, m in zip(weights, means[2::-1], strict=True))) / (1 + weights.sum())
    np.testing.assert_allclose(outputs[3].reshape(2, -1).mean(axis=1), cast, atol=2e-3)
