"""Sharded rendering on a local Ray: the same video as one process, retries, resuming, the merged report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the cluster extra is not installed: pip install -e '.[cluster]'")

from oppy.engine import Engine, EngineConfig, OppyError  # noqa: E402
from oppy.engine.cli import main  # noqa: E402
from oppy.engine.cluster.driver import _worker_options, render_chunk, render_sharded  # noqa: E402
from tests.conftest import gradient_frame, write_image  # noqa: E402

from .conftest import FRAMES, decode  # noqa: E402

pytestmark = pytest.mark.usefixtures("local_ray")


def flaky(markers: Path, chunk: str, how: str):
    """A chunk task that fails in `chunk`: on its first attempt only (`raise`, or `exit`: the worker process dies),
    on every attempt (`always`), hangs on its first attempt (`hang`) or waits for a file `go` in `markers` (`wait`,
    at most 30 s). Attempts are counted in `markers`."""

    def task(job, progress=None):
        if job.name == chunk:
            attempt = len(list(markers.glob(f"{chunk}.*")))
            (markers / f"{chunk}.{attempt}").touch()
            if how == "always" or (how == "raise" and attempt == 0):
                raise RuntimeError(f"injected failure in {chunk}, attempt {attempt}")
            if how == "exit" and attempt == 0:
                os._exit(1)
            if how == "hang" and attempt == 0:
                time.sleep(120)
                (markers / f"{chunk}.finished").touch()  # never, unless the render waited for the hang
            waited = time.perf_counter()
            while how == "wait" and not (markers / "go").exists() and time.perf_counter() - waited < 30:
                time.sleep(0.05)
        return render_chunk(job, progress)

    return task


def config(model: Path, **options) -> EngineConfig:
    return EngineConfig(model=model, provider="cpu", batch_size=8, **options)


def single(archive: Path, model: Path, out: Path, **options):
    with Engine(config=config(model, **options)) as engine:
        return engine.render(archive, out)


def test_sharded_render_is_the_single_process_render(shard_archive, colour_model, tmp_path):
    one = single(shard_archive, colour_model, tmp_path / "single.mp4")
    single(shard_archive, colour_model, tmp_path / "single.rgb", format="rawvideo")
    markers, told = tmp_path / "markers", []
    markers.mkdir()

    def progress(done, total, skipped):
        told.append((done, total))
        if done == 24:  # the first two chunks, as the workers told the progress actor: let the last one start
            (markers / "go").touch()

    raw = render_sharded(shard_archive, tmp_path / "sharded.rgb", config(colour_model, format="rawvideo"), shards=3,
                         progress=progress, chunk_task=flaky(markers, "chunk-00002", "wait"))
    # the colourised frames before encoding: byte for byte, the temporal smoothing's too (each chunk colours the
    # frames before it first: without them its first frames would be coloured alone, as with --temporal 0)
    assert (tmp_path / "sharded.rgb").read_bytes() == (tmp_path / "single.rgb").read_bytes()
    single(shard_archive, colour_model, tmp_path / "alone.rgb", format="rawvideo", temporal=0)
    assert (tmp_path / "alone.rgb").read_bytes() != (tmp_path / "single.rgb").read_bytes()
    assert raw.chunks_rendered == 3 and not raw.failed and not raw.interrupted
    # the workers fed the bar while the last chunk waited: 24 of 36 inputs were done before the end
    assert told[-1] == (FRAMES, FRAMES) and (24, FRAMES) in told and told.index((24, FRAMES)) < len(told) - 1
    assert [done for done, _ in told] == sorted(done for done, _ in told)

    report = render_sharded(shard_archive, tmp_path / "sharded.mp4", config(colour_model), shards=3, keep=True)
    assert (report.frames_in, report.frames_out, report.skipped, report.frames_resized) == (
        one.frames_in, one.frames_out, one.skipped, one.frames_resized) == (FRAMES, FRAMES - 1, one.skipped, 1)
    assert report.frames_in == report.frames_out + len(report.skipped)
    assert report.written == str(tmp_path / "sharded.mp4")
    segments = sorted(Path(report.work_folder).glob("chunk-*.mp4"))
    assert len(segments) == 3
    extradata = set()
    for segment in segments:
        with av.open(str(segment)) as container:
            extradata.add(bytes(container.streams.video[0].codec_context.extradata))
            assert next(container.demux(video=0)).is_keyframe
    assert len(extradata) == 1
    # the encoded videos: same count, order and timestamps, pixels within x264's rate control restarting per segment
    ours, times = decode(tmp_path / "sharded.mp4")
    theirs, their_times = decode(tmp_path / "single.mp4")
    assert len(ours) == len(theirs) == FRAMES - 1
    assert times == their_times == pytest.approx([i / 5 for i in range(FRAMES - 1)])
    distance = np.array([[np.abs(a.astype(int) - b).mean() for b in theirs] for a in ours])
    assert (distance.argmin(axis=1) == np.arange(len(ours))).all()
    assert distance.diagonal().max() < 1.5


@pytest.mark.parametrize("how", ["raise", "exit"])
def test_a_chunk_that_raises_or_loses_its_worker_is_retried(shard_archive, colour_model, tmp_path, how):
    single(shard_archive, colour_model, tmp_path / "single.rgb", format="rawvideo")
    markers = tmp_path / "markers"
    markers.mkdir()
    report = render_sharded(shard_archive, tmp_path / "out.rgb", config(colour_model, format="rawvideo"), shards=3,
                            retries=1, chunk_task=flaky(markers, "chunk-00001", how))
    assert len(list(markers.iterdir())) == 2
    assert not report.failed and report.chunks_rendered == 3
    assert (tmp_path / "out.rgb").read_bytes() == (tmp_path / "single.rgb").read_bytes()


def test_a_chunk_that_keeps_failing_is_named_and_a_rerun_renders_only_it(shard_archive, colour_model, tmp_path):
    markers, out = tmp_path / "markers", tmp_path / "out.mp4"
    markers.mkdir()
    report = render_sharded(shard_archive, out, config(colour_model), shards=3, retries=1,
                            chunk_task=flaky(markers, "chunk-00001", "always"))
    assert len(list(markers.iterdir())) == 2
    assert [f["chunk"] for f in report.failed] == ["chunk-00001"]
    assert "RuntimeError: injected failure in chunk-00001, attempt 1" in report.failed[0]["error"]
    assert report.failed[0]["first_file"] == "sol12.png"
    assert not out.exists() and report.written is None
    manifest = json.loads((Path(report.work_folder) / "manifest.json").read_text())
    assert [c["state"] for c in manifest["chunks"]] == ["done", "failed", "done"]

    again = render_sharded(shard_archive, out, config(colour_model), shards=3)
    assert (again.chunks_rendered, again.chunks_reused) == (1, 2)
    assert again.frames_in == FRAMES and again.frames_out == FRAMES - 1 and len(again.skipped) == 1
    assert len(decode(out)[0]) == FRAMES - 1
    assert not Path(report.work_folder).exists()


def test_an_interrupted_render_resumes_with_only_the_missing_chunks(shard_archive, colour_model, tmp_path):
    single(shard_archive, colour_model, tmp_path / "single.rgb", format="rawvideo")
    markers, out = tmp_path / "markers", tmp_path / "out.rgb"
    markers.mkdir()
    stop = threading.Event()
    manifest = tmp_path / ".out.rgb.shards" / "manifest.json"

    def interrupt_after_two_chunks():  # what SIGINT does in the CLI: set the stop event
        while not stop.is_set():
            try:
                states = [c["state"] for c in json.loads(manifest.read_text())["chunks"]]
            except (OSError, ValueError):
                states = []
            if states.count("done") == 2:
                stop.set()
            time.sleep(0.05)

    watcher = threading.Thread(target=interrupt_after_two_chunks)
    watcher.start()
    try:
        report = render_sharded(shard_archive, out, config(colour_model, format="rawvideo"), shards=3, stop=stop,
                                chunk_task=flaky(markers, "chunk-00002", "hang"))
    finally:
        stop.set()
        watcher.join()
    assert not (markers / "chunk-00002.finished").exists()  # the hanging chunk was cancelled, not waited for
    assert report.interrupted and not report.failed and not out.exists()
    assert [c["state"] for c in report.chunks] == ["done", "done", "pending"]

    again = render_sharded(shard_archive, out, config(colour_model, format="rawvideo"), shards=3)
    assert (again.chunks_rendered, again.chunks_reused) == (1, 2)
    assert [c["rendered_now"] for c in again.chunks] == [False, False, True]
    assert out.read_bytes() == (tmp_path / "single.rgb").read_bytes()


def test_a_changed_input_renders_its_chunk_again_and_other_settings_start_over(shard_archive, colour_model, tmp_path):
    out = tmp_path / "out.rgb"
    render_sharded(shard_archive, out, config(colour_model, format="rawvideo"), shards=3, keep=True)
    write_image(shard_archive / "sol30.png", gradient_frame(48, 64, seed=99))  # in the last chunk
    os.utime(shard_archive / "sol30.png", ns=(1, 1))
    again = render_sharded(shard_archive, out, config(colour_model, format="rawvideo", overwrite=True), shards=3,
                           keep=True)
    assert (again.chunks_rendered, again.chunks_reused) == (1, 2)
    assert [c["rendered_now"] for c in again.chunks] == [False, False, True]
    single(shard_archive, colour_model, tmp_path / "single.rgb", format="rawvideo")
    assert out.read_bytes() == (tmp_path / "single.rgb").read_bytes()

    other = render_sharded(shard_archive, out, config(colour_model, format="rawvideo", overwrite=True, overlap=8),
                           shards=3)
    assert (other.chunks_rendered, other.chunks_reused) == (3, 0)


def test_cli_shards_merges_the_report_across_chunks_and_workers(colour_model, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths, as a user types them: the workers run elsewhere
    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(12):  # the second of four chunks holds no readable frame
        if 3 <= i < 6:
            (folder / f"{i:02d}.png").write_bytes(b"")
        else:
            write_image(folder / f"{i:02d}.png", gradient_frame(48, 64, seed=3 * i))
    out, report_path = tmp_path / "out.mp4", tmp_path / "report.json"
    code = main(["archive", "out.mp4", "--model", colour_model.name, "--provider", "cpu", "--shards", "4",
                 "--report", "report.json", "-q"])
    assert code == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    assert report["frames_in"] == 12 and report["frames_out"] == 9
    assert [s["name"] for s in report["skipped"]] == ["03.png", "04.png", "05.png"]
    assert report["frames_in"] == report["frames_out"] + len(report["skipped"])
    assert [c["frames_out"] for c in report["chunks"]] == [3, 0, 3, 3]
    workers = report["workers"].values()
    assert sum(w["frames"] for w in workers) == 9
    assert all(w["node"] and w["node_id"] and w["busy_seconds"] > 0 and w["gpus"] == [] for w in workers)
    assert len(decode(out)[0]) == 9
    assert not (tmp_path / ".out.mp4.shards").exists()


def test_cli_names_a_failed_chunk_and_exits_1(shard_archive, colour_model, tmp_path, capsys, monkeypatch):
    from oppy.engine.cluster import driver as cluster

    markers = tmp_path / "markers"
    markers.mkdir()
    sharded = cluster.render_sharded
    monkeypatch.setattr(cluster, "render_sharded", lambda *a, **k: sharded(
        *a, **k, chunk_task=flaky(markers, "chunk-00000", "always")))
    code = main([str(shard_archive), str(tmp_path / "out.mp4"), "--model", str(colour_model), "--provider", "cpu",
                 "--shards", "2", "--retries", "0", "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert "error: chunk-00000 (frames 0..17, from sol0.png) failed after 0 retries: RuntimeError: injected" in err
    assert "run the same command again" in err


@pytest.mark.parametrize(("source", "output", "why"), [
    ("video", "out.mp4", "renders a folder of images"),
    ("archive", "frames", "writes a video file"),
])
def test_cli_shards_refuses_what_it_cannot_split(shard_archive, colour_model, tmp_path, capsys, source, output, why):
    src = shard_archive
    if source == "video":
        src = tmp_path / "in.mp4"
        single(shard_archive, colour_model, src)
    code = main([str(src), str(tmp_path / output), "--model", str(colour_model), "--shards", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and why in err[0]


@pytest.mark.parametrize(("flags", "why"), [(["--shards", "0"], "--shards must be at least 1"),
                                           (["--shards", "2", "--retries", "-1"], "--retries must be 0 or more")])
def test_bad_cluster_options_are_one_line_errors(shard_archive, colour_model, tmp_path, capsys, flags, why):
    code = main([str(shard_archive), str(tmp_path / "out.mp4"), "--model", str(colour_model), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and why in err[0]
    with pytest.raises(OppyError, match="at least 1"):
        render_sharded(shard_archive, tmp_path / "out.mp4", config(colour_model), shards=0)


def test_cpu_workers_keep_their_threads_to_their_share_of_the_cores():
    options, config, _ = _worker_options(2, EngineConfig(provider="cpu"), retries=1)  # 2 chunks on 2 CPUs
    assert options["num_cpus"] == 1 and config.threads == 1 and config.decode_threads == 1
    assert options["runtime_env"]["env_vars"]["NUMBA_NUM_THREADS"] == "1"
    _, asked, _ = _worker_options(2, EngineConfig(provider="cpu", decode_threads=3, threads=2), retries=1)
    assert asked.decode_threads == 3 and asked.threads == 2


def test_sharded_chunks_follow_the_time_order_camera_and_stretch_of_one_process(colour_model, tmp_path):
    # product-id names whose clock runs against their name order, two cameras: the chunks must take the frames in
    # time order with the other camera left out, and one stretch for all, as a single process does
    folder = tmp_path / "rover"
    folder.mkdir()
    for i in range(12):
        camera = "N" if i % 3 else "P"
        write_image(folder / f"1{camera}{130000900 - 10 * i}EFF0300P1500L0M1.JPG",
                    (gradient_frame(48, 64, seed=6 * i) // 2 + 30).astype(np.uint8))
    options = {"format": "rawvideo", "order": "time", "camera": "navcam", "stretch": "archive",
               "caption": "{index} {sclk}"}  # the index counts on across chunks
    one = single(folder, colour_model, tmp_path / "single.rgb", **options)
    sharded = render_sharded(folder, tmp_path / "sharded.rgb", config(colour_model, **options), shards=3)
    assert (tmp_path / "sharded.rgb").read_bytes() == (tmp_path / "single.rgb").read_bytes()
    assert sharded.frames_out == one.frames_out == 8 and len(sharded.deselected) == len(one.deselected) == 4
    assert sharded.stretch == one.stretch and sharded.stretch is not None
    assert [f["sclk"] for f in sharded.frames_info] == sorted(f["sclk"] for f in sharded.frames_info)


def test_the_segments_settings_follow_every_option_that_changes_the_frames_and_no_other(tmp_path):
    from dataclasses import replace

    from oppy.engine.cluster.driver import _settings

    model = tmp_path / "model.onnx"
    model.write_bytes(b"weights")
    base = EngineConfig()
    settings = _settings(tmp_path, model, base, (64, 48))
    faster = replace(base, batch_size=7, threads=1, decode_threads=2, queue_size=2, overwrite=True)
    assert _settings(tmp_path, model, faster, (64, 48)) == settings
    for change in ({"crf": 30}, {"caption": "{name}"}, {"order": "time"}, {"fps": 12.0}, {"pix_fmt": "yuv444p"},
                   {"chroma_scale": 0.5}, {"camera": "navcam"}, {"stretch": "archive"}, {"resize": "scale"},
                   {"codec": "libx265"}, {"overlap": 8}, {"provider": "cpu"}, {"format": "mkv"}, {"preset": "fast"}):
        assert _settings(tmp_path, model, replace(base, **change), (64, 48)) != settings, change
    assert _settings(tmp_path, model, base, (64, 64)) != settings


def test_an_address_where_no_cluster_answers_is_refused_in_one_line_at_once(shard_archive, tmp_path):
    import socket

    from oppy.engine.cluster.driver import check_reachable

    with socket.socket() as closed:  # a port that was free a moment ago: nothing listens there
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        check_reachable(f"127.0.0.1:{listening.getsockname()[1]}")  # something answers: Ray's turn
    check_reachable("auto")
    start = time.monotonic()
    for address, why in ((f"127.0.0.1:{port}", "cannot reach the Ray cluster .*refused"),
                         (f"ray://127.0.0.1:{port}", "cannot reach"), ("nonsense.invalid:999", "cannot reach"),
                         ("a" * 64 + ".invalid:999", "cannot reach"),  # a label too long to encode
                         ("127.0.0.1:99999", "not an address"), ("nohost", "not an address")):
        with pytest.raises(OppyError, match=why):
            check_reachable(address, timeout=2)
    # the command line, in a process of its own (Ray is not started in it yet)
    run = subprocess.run([sys.executable, "-m", "oppy.engine.cli", str(shard_archive), str(tmp_path / "out.mp4"),
                          "--cluster", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "cannot reach the Ray cluster" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "out.mp4").exists()
    assert time.monotonic() - start < 60  # Ray on its own kept retrying for minutes
