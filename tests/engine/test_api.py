import gc
import os
import re
import threading
import weakref
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import color

from oppy.engine import Engine, EngineConfig, NothingToRender, OppyError
from oppy.engine.kernels.lab import gray_to_l, l_ab_to_rgb
from tests.conftest import affine_model, gradient_frame, hostile_archive, write_image


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
def test_a_model_that_sees_tile_borders_comes_back_seamless_where_tiles_overlap(tmp_path, overlap):
    """A blur that zero-pads at each tile's border answers wrongly within 2 px of it, as a network does: blended
    tiles hide that (a border pixel is some other tile's interior); stitched tiles (overlap 0) show it."""
    import cv2

    from oppy.engine.kernels.tiles import plan_tiles
    from tests.bench.conftest import blur_model

    rng = np.random.default_rng(0)
    gray = cv2.GaussianBlur(rng.integers(0, 256, (200, 333)).astype(np.uint8), (0, 0), 3)
    with Engine(blur_model(tmp_path / "blur.onnx"), provider="cpu", overlap=overlap, chroma_scale=1) as engine:
        rgb = engine.colorize(gray)
    lightness = gray_to_l(gray)
    chroma = 60 * (cv2.blur(lightness / 100, (5, 5), borderType=cv2.BORDER_REFLECT_101) - 0.5)  # no tiles at all
    expected = l_ab_to_rgb(lightness, np.stack([chroma, chroma]).astype(np.float32))
    error = np.abs(rgb.astype(int) - expected).max(axis=2).astype(float)
    plan = plan_tiles(200, 333, 64, overlap)
    near = np.zeros(error.shape, bool)  # within 2 px of where a tile starts or ends
    for r in range(plan.rows):
        for edge in (r * plan.stride - plan.pad_top, r * plan.stride - plan.pad_top + 64):
            near[max(0, edge - 2):max(0, edge + 2), :] = True
    for c in range(plan.cols):
        for edge in (c * plan.stride - plan.pad_left, c * plan.stride - plan.pad_left + 64):
            near[:, max(0, edge - 2):max(0, edge + 2)] = True
    inner = np.zeros(error.shape, bool)
    inner[3:-3, 3:-3] = True  # the frame's own border is reflected for the tiles, not for the reference
    at_borders, elsewhere = error[near & inner].mean(), error[~near & inner].mean()
    if overlap:
        assert at_borders <= elsewhere + 1  # under one code: 0.19 at overlap 16, 0.04 at 40
    else:
        assert at_borders > elsewhere + 10  # about 29 codes


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
        list(engine.stream([np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.int32)]))


def test_float_grey_is_taken_as_float_rgb_is(constant_model):
    grey = np.random.default_rng(3).random((40, 50))
    with Engine(constant_model, provider="cpu") as engine:
        for dtype in (np.float32, np.float64):
            np.testing.assert_array_equal(engine.colorize(grey.astype(dtype)),
                                          engine.colorize(np.dstack([grey] * 3).astype(dtype)))
        eight = np.round(grey * 255).astype(np.uint8)
        assert np.abs(engine.colorize(eight / 255.0).astype(int) - engine.colorize(eight)).max() <= 1
        clipped = engine.colorize(np.where(grey > 0.5, 1.7, -0.3))  # outside [0, 1]: clipped, as RGB is
        np.testing.assert_array_equal(clipped, engine.colorize(np.where(grey > 0.5, 1.0, 0.0)))


def test_a_report_written_to_dash_goes_to_stdout(archive, constant_model, tmp_path, capsys, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    with Engine(constant_model, provider="cpu") as engine:
        report = engine.render(archive, tmp_path / "out.mp4")
    report.write_json("-")
    assert json.loads(capsys.readouterr().out)["frames_out"] == report.frames_out
    assert not (tmp_path / "-").exists()


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
    assert set(report.stage_busy_seconds) == {"decode", "to_l", "shrink", "tile", "infer", "blend", "temporal", "grow",
                                             "to_rgb", "prepare", "encode"}


def test_render_reports_skips_and_writes_image_folders(archive, constant_model, tmp_path):
    (archive / "broken.png").write_bytes(b"\x89PNG broken")
    write_image(archive / "sol7_colour.jpg", np.full((96, 128, 3), (200, 100, 50), np.uint8))
    out = tmp_path / "frames"
    with Engine(constant_model, provider="cpu") as engine:
        report = engine.render(archive, out)
    assert report.frames_in == 8 and report.frames_out == 7
    assert report.skipped == [{"name": "broken.png", "reason": "not a decodable image"}]
    assert (out / "sol7_colour.png").exists() and len(list(out.iterdir())) == 7
    assert "prepare" not in report.stage_busy_seconds  # PNGs need no work ahead of the writer: no such stage


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


def test_overlap_defaults_to_the_models_recommendation(tmp_path):
    from oppy.engine.contract import ModelContract

    contract = ModelContract("L", "ab", 64, 0.01, 0.0, 128.0, overlap=24)
    with Engine(affine_model(tmp_path / "m.onnx", contract=contract), provider="cpu") as engine:
        assert engine.overlap == 24


@pytest.mark.parametrize("resize", ["letterbox", "scale"])
def test_hostile_archive_renders_every_readable_frame_at_the_first_frames_size(constant_model, tmp_path, resize):
    frames, skipped = hostile_archive(tmp_path / "archive", locked=os.geteuid() != 0)
    seen = []
    with Engine(constant_model, provider="cpu", resize=resize) as engine:
        report = engine.render(tmp_path / "archive", tmp_path / "out.mp4",
                               progress=lambda done, total, skip: seen.append((done, total)))
    assert report.frames_in == report.frames_out + len(report.skipped) == len(frames) + len(skipped)
    assert report.frames_out == len(frames) and report.frames_resized == 4  # odd, tall, dot, huge
    assert [skip["name"] for skip in report.skipped] == sorted(skipped)
    assert all(skip["reason"].startswith(skipped[skip["name"]]) for skip in report.skipped)
    assert seen[-1] == (report.frames_in, report.frames_in) and not report.interrupted
    assert report.written == str(tmp_path / "out.mp4")
    with av.open(report.written) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == len(frames) and {f.shape for f in decoded} == {(96, 128, 3)}
    tall = decoded[frames.index("0010_tall.png")]  # 40x100: 38x96 wide in the video, 45 px from the left
    if resize == "letterbox":
        assert tall[:, :40].mean() < 2 and tall[:, 88:].mean() < 2 and tall[:, 50:80].mean() > 60
    else:
        assert tall[:, :40].mean() > 60 and tall[:, 88:].mean() > 60


def test_stream_gives_back_pyav_frames_with_their_timing(constant_model):
    grey = gradient_frame(48, 64)
    given = [av.VideoFrame.from_ndarray(grey, format="gray"),
             av.VideoFrame.from_ndarray(np.dstack([grey] * 3), format="rgb24").reformat(format="yuv420p")]
    for pts, frame in enumerate(given):
        frame.pts, frame.time_base = 100 * pts, Fraction(1, 90000)
    with Engine(constant_model, provider="cpu") as engine:
        out = list(engine.stream([*given, grey]))
        reference = engine.colorize(grey)
    assert [type(f) for f in out] == [av.VideoFrame, av.VideoFrame, np.ndarray]
    assert [(f.pts, f.time_base, f.format.name) for f in out[:2]] == [(0, Fraction(1, 90000), "rgb24"),
                                                                      (100, Fraction(1, 90000), "rgb24")]
    np.testing.assert_array_equal(out[0].to_ndarray(), reference)
    assert np.abs(out[1].to_ndarray().astype(int) - reference).max() <= 3  # through yuv420p and back
    np.testing.assert_array_equal(out[2], reference)


def test_the_readme_pyav_loop(constant_model, tmp_path):
    with av.open(str(tmp_path / "grey.mp4"), "w") as grey_video:
        stream = grey_video.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(8):
            frame = av.VideoFrame.from_ndarray(gradient_frame(48, 64, seed=8 * i), format="gray")
            grey_video.mux(stream.encode(frame.reformat(format="yuv420p")))
        grey_video.mux(stream.encode(None))
    # -- as in docs/api.md, "Embedding in a PyAV loop" --
    with av.open(str(tmp_path / "grey.mp4")) as src, av.open(str(tmp_path / "colour.mp4"), "w") as dst, \
            Engine(model=constant_model, provider="cpu") as engine:
        video_in = src.streams.video[0]
        video_out = dst.add_stream("libx264", rate=video_in.average_rate)
        video_out.width, video_out.height, video_out.pix_fmt = video_in.width, video_in.height, "yuv420p"
        for frame in engine.stream(src.decode(video_in)):      # VideoFrames in, rgb24 VideoFrames out, pts kept
            dst.mux(video_out.encode(frame))
        dst.mux(video_out.encode(None))
    # -- end of the example --
    with av.open(str(tmp_path / "colour.mp4")) as colour:
        decoded = [f.to_ndarray(format="rgb24").astype(int) for f in colour.decode(video=0)]
    assert len(decoded) == 8
    assert all(f[..., 0].mean() - f[..., 2].mean() > 10 for f in decoded)  # a* = 20, b* = 40: warm, not grey


def test_one_engine_serves_several_threads(lightness_model):
    jobs = [[gradient_frame(50 + 17 * t + 5 * i, 70 + 9 * i, seed=40 * t + i) for i in range(6)] for t in range(3)]
    with Engine(lightness_model, provider="cpu") as engine:
        references = [[engine.colorize(frame) for frame in job] for job in jobs]
    results: dict[int, list] = {}
    with Engine(lightness_model, provider="cpu", batch_size=7, queue_size=1) as engine:
        threads = [threading.Thread(target=lambda t=t: results.__setitem__(t, list(engine.stream(jobs[t]))))
                   for t in range(3)]
        for thread in threads:
            thread.start()
        alone = [engine.colorize(frame) for frame in jobs[0]]  # and one more caller, in this thread
        for thread in threads:
            thread.join()
    for t in range(3):
        assert len(results[t]) == 6
        for ours, reference in zip(results[t], references[t], strict=True):
            np.testing.assert_array_equal(ours, reference)
    for ours, reference in zip(alone, references[0], strict=True):
        np.testing.assert_array_equal(ours, reference)


def test_a_source_that_waits_for_its_output_gets_each_frame_back_from_a_partly_filled_batch(lightness_model):
    # Like an interactive pipe: the next frame comes only once the last one is out. Its 2 tiles never fill a batch
    # of 64, so the tile stage must send the batch on once its inbox runs dry, or the two sides wait on each other.
    received = threading.Event()
    frames = [gradient_frame(64, 100, seed=k) for k in range(3)]

    def interactive():
        for frame in frames:
            received.clear()
            yield frame
            assert received.wait(timeout=20), "the frame was held back"

    with Engine(lightness_model, provider="cpu", batch_size=64, temporal=0) as engine:  # each frame as colorize's
        references = [engine.colorize(frame) for frame in frames]
        for ours, reference in zip(engine.stream(interactive()), references, strict=True):
            np.testing.assert_array_equal(ours, reference)
            received.set()


def test_closing_releases_the_session(constant_model):
    with Engine(constant_model, provider="cpu") as engine:
        session = weakref.ref(engine.session._session)
        engine.colorize(gradient_frame(8, 8))
    gc.collect()
    assert engine.closed and session() is None
    engine.close()  # twice is harmless
    with pytest.raises(ValueError, match="closed"):
        engine.colorize(gradient_frame(8, 8))
    with pytest.raises(ValueError, match="closed"):
        next(engine.stream([gradient_frame(8, 8)]))


def test_a_stop_event_keeps_a_playable_video_of_every_frame_encoded(constant_model, tmp_path):
    (tmp_path / "frames.gray").write_bytes(b"".join(gradient_frame(48, 64, seed=i).tobytes() for i in range(60)))
    stop = threading.Event()

    def progress(done, total, skipped):
        if done == 20:
            stop.set()

    with Engine(constant_model, provider="cpu", input_size=(64, 48)) as engine:
        report = engine.render(tmp_path / "frames.gray", tmp_path / "out.mp4", progress=progress, stop=stop)
    assert report.interrupted and report.frames_in == report.frames_out == 20
    assert report.written == str(tmp_path / "out.partial.mp4") and not (tmp_path / "out.mp4").exists()
    with av.open(report.written) as container:
        assert sum(1 for _ in container.decode(video=0)) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["constant.onnx", "frames.gray", "out.partial.mp4"]


def test_an_error_in_any_stage_stops_every_thread_and_surfaces_unchanged(constant_model, tmp_path):
    def frames():
        yield from (gradient_frame(32, 32, seed=i) for i in range(3))
        raise RuntimeError("camera unplugged")

    before = threading.active_count()
    with Engine(constant_model, provider="cpu") as engine:
        with pytest.raises(RuntimeError, match="camera unplugged"):
            list(engine.stream(frames()))
        assert threading.active_count() == before
        if os.path.exists("/dev/full"):  # the last stage (the encoder) fails: a full disk
            (tmp_path / "in").mkdir()
            for i in range(30):
                write_image(tmp_path / "in" / f"{i}.png", gradient_frame(256, 256, seed=i))
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr("oppy.engine.outputs.files.temporary_name",
                              lambda target: target.with_name(".fixed.partial"))
                os.symlink("/dev/full", tmp_path / ".fixed.partial")
                with pytest.raises(OppyError, match="no space left on the device"):
                    engine.render(tmp_path / "in", tmp_path / "out.mp4")
            assert threading.active_count() == before
            assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".*partial"))


@pytest.fixture(scope="module")
def pixelwise_model(tmp_path_factory):
    """a* = 0.5 L*, b* = -0.25 L* + 10: the right answer does not depend on tiles, batches or overlap."""
    return affine_model(tmp_path_factory.mktemp("model") / "m.onnx", gain=(0.5 * 100 / 128, -0.25 * 100 / 128),
                        offset=(0.0, 10 / 128))


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.tuples(st.integers(1, 150), st.integers(1, 150)), min_size=1, max_size=4),
       overlap=st.integers(0, 63), batch_size=st.integers(1, 300), seed=st.integers(0, 50))
def test_any_sizes_overlaps_and_batches_give_the_pixelwise_answer(pixelwise_model, sizes, overlap, batch_size, seed):
    frames = [gradient_frame(height, width, seed=seed + i) for i, (height, width) in enumerate(sizes)]
    with Engine(pixelwise_model, provider="cpu", overlap=overlap, batch_size=batch_size, queue_size=1) as engine:
        out = list(engine.stream(frames))
    assert len(out) == len(frames)
    for gray, rgb in zip(frames, out, strict=True):
        lightness = gray_to_l(gray)
        expected = l_ab_to_rgb(lightness, np.stack([0.5 * lightness, -0.25 * lightness + 10]))
        assert rgb.shape == (*gray.shape, 3) and rgb.dtype == np.uint8
        assert np.abs(rgb.astype(int) - expected).max() <= 1


def test_a_stream_burns_the_configured_caption_into_each_frame_and_nothing_else(constant_model):
    from oppy.engine.overlays.captions import burn_caption, caption_box

    frames = [gradient_frame(120, 200, seed) for seed in range(3)]
    with Engine(constant_model, provider="cpu", batch_size=16) as engine:
        plain = list(engine.stream(frames))
    with Engine(constant_model, provider="cpu", batch_size=16, caption="frame {index}") as engine:
        captioned = list(engine.stream(frames))
    for index, (bare, burned) in enumerate(zip(plain, captioned, strict=True)):
        left, top, width, height = caption_box(200, 120, f"frame {index}")
        outside = np.ones((120, 200), bool)
        outside[max(0, top) : top + height, left : left + width] = False
        assert not np.array_equal(bare, burned) and np.array_equal(bare[outside], burned[outside])
        expected = bare.copy()
        burn_caption(expected, f"frame {index}")
        np.testing.assert_array_equal(burned, expected)


def test_the_readme_python_snippet_runs_as_written(tmp_path, monkeypatch):
    import re

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "input_dir").mkdir()
    for i in range(2):
        write_image(tmp_path / "input_dir" / f"{i}.png", gradient_frame(48, 64, seed=i))
    monkeypatch.chdir(tmp_path)
    names = {"gray": gradient_frame(48, 64), "gray_frames": [gradient_frame(48, 64, seed=i) for i in range(3)]}
    exec(compile(snippet, "README.md", "exec"), names)
    assert names["rgb"].shape == (48, 64, 3) and names["report"].frames_out == 2 and (tmp_path / "out.mp4").is_file()


@pytest.mark.parametrize("option, value, words", [
    ("caption", 5, "caption must be text, not 5"), ("camera", 5, "camera must be text"),
    ("fps", "5", "fps must be a number, not '5'"), ("batch_size", 2.5, "batch size must be a whole number"),
    ("temporal", True, "temporal strength must be a number in [0, 1]"),
    ("threads", "2", "threads must be a whole number"),
    ("chroma_scale", [1], "chroma scale must be text or a number"), ("input_size", "3x4", "input size must be"),
])
def test_an_option_of_the_wrong_kind_is_refused_in_words(option, value, words):
    with pytest.raises(OppyError, match=re.escape(words)):
        EngineConfig(**{option: value})


def test_numpy_numbers_are_numbers():
    config = EngineConfig(batch_size=np.int64(8), fps=np.float32(5), chroma_scale=np.float64(0.5))
    assert (config.batch_size, config.fps, config.chroma_scale) == (8, 5, 0.5)
