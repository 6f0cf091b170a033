import itertools
from fractions import Fraction

import av
import numpy as np
import pytest

from oppy.engine import Engine
from oppy.engine.frames import FrameTiming
from oppy.engine.outputs.timing import DEFAULT_FPS, VideoClock

from ..conftest import gradient_frame

TB = Fraction(1, 90000)


def stamps(clock: VideoClock, timings: list) -> list[int]:
    return [clock.stamp(index, timing) for index, timing in enumerate(timings)]


def test_frames_without_timestamps_are_shown_at_the_default_rate_or_at_fps():
    clock = VideoClock(None, None)
    assert (clock.kind, clock.rate, clock.time_base) == ("default", Fraction(DEFAULT_FPS), 1 / Fraction(DEFAULT_FPS))
    assert stamps(clock, [None] * 3) == [0, 1, 2]
    clock = VideoClock(30000 / 1001, FrameTiming(3000, TB))  # --fps retimes even frames that have timestamps
    assert (clock.kind, clock.rate) == ("fps", Fraction(30000, 1001))
    assert stamps(clock, [FrameTiming(3000, TB), FrameTiming(9000, TB)]) == [0, 1]


def test_a_videos_own_timestamps_are_kept_shifted_to_start_at_zero_variable_rate_too():
    timings = [FrameTiming(pts, TB) for pts in (1800, 4800, 7800, 13800, 15000, 33000)]
    clock = VideoClock(None, timings[0], Fraction(30))
    assert (clock.kind, clock.time_base, clock.rate) == ("input", TB, Fraction(30))
    assert stamps(clock, timings) == [0, 3000, 6000, 12000, 13200, 31200]


def test_a_time_that_does_not_rise_continues_the_timeline_one_frame_later():
    # three clips joined (a concatenated MPEG-TS): each restarts at 0; every frame keeps its spacing in its clip,
    # and each clip starts one nominal frame (3000 ticks at 30 frames/s) after the last frame of the one before
    clip = [0, 3000, 6000]
    clock = VideoClock(None, FrameTiming(0, TB), Fraction(30))
    assert stamps(clock, [FrameTiming(p, TB) for p in clip * 3]) == [0, 3000, 6000, 9000, 12000, 15000, 18000,
                                                                       21000, 24000]
    assert clock.breaks == 2 and "continued past 2 times" in clock.describe()


def test_frames_without_a_time_or_in_another_time_base_keep_their_place():
    clock = VideoClock(None, FrameTiming(90000, TB), Fraction(30))
    assert stamps(clock, [FrameTiming(90000, TB), FrameTiming(None, TB), None]) == [0, 3000, 6000]  # a frame on
    clock = VideoClock(None, FrameTiming(90000, TB), Fraction(30))
    # 1.1 s counted in milliseconds is 0.1 s after the first frame's 1 s: 9000 ticks of 1/90000
    assert stamps(clock, [FrameTiming(90000, TB), FrameTiming(1100, Fraction(1, 1000))]) == [0, 9000]


def test_a_container_that_counts_milliseconds_never_gets_two_frames_at_one_time():
    clock = VideoClock(None, FrameTiming(0, TB), Fraction(2000))
    clock.at_least(Fraction(1, 1000))  # Matroska: 90 ticks of 1/90000 s
    got = stamps(clock, [FrameTiming(45 * i, TB) for i in range(6)])  # 2000 frames/s: half a millisecond apart
    assert all(later - earlier >= 90 for earlier, later in itertools.pairwise(got))


def write_clip(path, pts: list[int], time_base=Fraction(1, 30000), rate=Fraction(30), size=(64, 48)):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.codec_context.time_base = stream.time_base = time_base
        for index, value in enumerate(pts):
            grey = np.repeat(gradient_frame(size[1], size[0], seed=index)[..., None], 3, axis=2)
            frame = av.VideoFrame.from_ndarray(grey, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = value, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def shown_at(path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(frame.pts * frame.time_base) for frame in container.decode(video=0)]


def test_a_one_second_30fps_clip_stays_one_second_at_30fps(tmp_path, constant_model):
    clip = write_clip(tmp_path / "clip.mp4", [1001 * i for i in range(30)], Fraction(1, 30000), Fraction(30000, 1001))
    with Engine(constant_model, provider="cpu") as engine:
        report = engine.render(clip, tmp_path / "out.mp4")
    times = shown_at(tmp_path / "out.mp4")
    assert len(times) == 30
    np.testing.assert_allclose(times, [i * 1001 / 30000 for i in range(30)], atol=1e-6)
    assert report.timing == "input" and report.frame_rate == pytest.approx(30000 / 1001)
    assert "own timestamps" in report.timing_note
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.video[0].average_rate == Fraction(30000, 1001)


def test_a_variable_rate_clip_keeps_every_frames_time(tmp_path, constant_model):
    pts = [0, 1000, 2000, 5000, 6000, 12000, 12500]  # ticks of 1/30000 s: gaps, a burst
    clip = write_clip(tmp_path / "vfr.mkv", pts)
    with Engine(constant_model, provider="cpu") as engine:
        engine.render(clip, tmp_path / "out.mkv")
    np.testing.assert_allclose(shown_at(tmp_path / "out.mkv"), [p / 30000 for p in pts], atol=1e-3)  # MKV: ms


def test_a_fast_clip_into_matroska_keeps_every_frame_at_a_time_of_its_own(tmp_path, constant_model):
    clip = write_clip(tmp_path / "fast.mp4", [45 * i for i in range(8)], TB, Fraction(2000))
    with Engine(constant_model, provider="cpu") as engine:
        engine.render(clip, tmp_path / "out.mkv")
    times = shown_at(tmp_path / "out.mkv")
    assert len(times) == 8 and all(b - a >= 0.001 - 1e-9 for a, b in itertools.pairwise(times))


def test_fps_retimes_a_video_and_stills_get_the_default(tmp_path, constant_model, archive):
    clip = write_clip(tmp_path / "clip.mp4", [1000 * i for i in range(6)])
    with Engine(constant_model, provider="cpu", fps=12) as engine:
        report = engine.render(clip, tmp_path / "fast.mp4")
    np.testing.assert_allclose(shown_at(tmp_path / "fast.mp4"), [i / 12 for i in range(6)], atol=1e-6)
    assert (report.timing, report.frame_rate) == ("fps", 12)
    with Engine(constant_model, provider="cpu") as engine:
        report = engine.render(archive, tmp_path / "stills.mp4")
    np.testing.assert_allclose(shown_at(tmp_path / "stills.mp4"), [i / DEFAULT_FPS for i in range(6)], atol=1e-6)
    assert (report.timing, report.frame_rate) == ("default", DEFAULT_FPS)
    with Engine(constant_model, provider="cpu") as engine:
        report = engine.render(archive, tmp_path / "frames")
    assert report.timing is None  # PNGs have no timing


def raw_h264(path, rate: int, frames: int = 6):
    """An elementary H.264 stream (no container: its packets carry no timestamps) declaring `rate` frames/s."""
    with av.open(str(path), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 30, np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize("rate", [25, 30])
def test_a_stream_without_timestamps_keeps_the_rate_it_declares(tmp_path, constant_model, rate):
    clock = VideoClock(None, FrameTiming(None, TB), Fraction(rate))
    assert (clock.kind, clock.rate) == ("declared", Fraction(rate)) and stamps(clock, [None] * 3) == [0, 1, 2]
    source = raw_h264(tmp_path / "clip.h264", rate)
    with Engine(constant_model, provider="cpu") as engine:
        report = engine.render(source, tmp_path / "out.mp4")
    assert report.timing == "declared" and report.frame_rate == pytest.approx(rate)
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == rate and float(stream.duration * stream.time_base) == pytest.approx(6 / rate)
