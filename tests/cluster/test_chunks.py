"""The chunks of a sharded render and the join of their segments (no Ray needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import av
import pytest

from oppy.engine import Engine, OppyError
from oppy.engine.cluster.chunks import WorkFolder, input_record, join_video, plan_chunks
from oppy.engine.render import ChunkRange, render
from tests.conftest import gradient_frame, write_image

from .conftest import decode


def test_plan_chunks_are_contiguous_and_a_changed_record_changes_only_its_chunk():
    records = [[f"f{i}.png", 100 + i, 7] for i in range(10)]
    chunks = plan_chunks(records, 4)
    assert [(c.first, c.stop) for c in chunks] == [(0, 4), (4, 8), (8, 10)]
    records[5][2] = 8
    changed = plan_chunks(records, 4)
    assert [a.inputs == b.inputs for a, b in zip(chunks, changed, strict=True)] == [True, False, True]


def test_join_keeps_every_frame_and_continuous_timestamps_across_segments_of_any_length(shard_archive, colour_model,
                                                                                        tmp_path):
    files = sorted(p.name for p in shard_archive.iterdir() if p.name != "sol5.png")[:12]
    segments = []
    with Engine(colour_model, provider="cpu", batch_size=8) as engine:
        for k, (a, b) in enumerate([(0, 5), (5, 6), (6, 12)]):  # a one-frame segment has no B-frame delay
            segments.append(tmp_path / f"seg{k}.mp4")
            render(engine, shard_archive, segments[-1], chunk=ChunkRange(tuple(files[a:b]), canvas=(64, 48)))
    join_video(segments, tmp_path / "joined.mp4", "mp4")
    frames, times = decode(tmp_path / "joined.mp4")
    assert len(frames) == 12
    assert times == pytest.approx([i / 5 for i in range(12)])
    with av.open(str(tmp_path / "joined.mp4")) as container:
        dts = [p.dts for p in container.demux(video=0) if p.dts is not None]
    assert dts == sorted(set(dts))




def test_engine_renders_a_given_chunk_of_a_folder_at_a_given_size(shard_archive, colour_model, tmp_path):
    with Engine(colour_model, provider="cpu", batch_size=8) as engine:
        report = render(engine, shard_archive, tmp_path / "chunk.mp4",
                        chunk=ChunkRange(("sol24.png", "sol19.png", "sol5.png"), canvas=(64, 48)))
    assert (report.frames_in, report.frames_out, report.frames_resized) == (3, 2, 1)  # sol24 is 96x96
    assert report.skipped == [{"name": "sol5.png", "reason": "not a decodable image"}]
    frames, _ = decode(tmp_path / "chunk.mp4")
    assert [f.shape for f in frames] == [(48, 64, 3)] * 2


def test_segments_with_other_codec_parameters_are_refused(shard_archive, colour_model, tmp_path):
    segments = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    with Engine(colour_model, provider="cpu", batch_size=8) as engine:
        render(engine, shard_archive, segments[0], chunk=ChunkRange(("sol1.png",)))
        render(engine, shard_archive, segments[1], chunk=ChunkRange(("sol2.png",), canvas=(32, 24)))
    with pytest.raises(OppyError, match="different codec parameters"):
        join_video(segments, tmp_path / "joined.mp4", "mp4")
    assert not (tmp_path / "joined.mp4").exists() and not list(tmp_path.glob(".joined.mp4.*.partial"))


def test_the_work_folder_keeps_done_chunks_whose_inputs_are_unchanged(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    paths = [write_image(inputs / f"{i}.png", gradient_frame(8, 8, seed=i)) for i in range(6)]
    records = [input_record(p) for p in paths]
    assert records[0][:2] == ["0.png", paths[0].stat().st_size]
    assert input_record(inputs / "gone.png")[1] == -1
    work = WorkFolder(tmp_path / "out.mp4", ".mp4")
    work.path.mkdir()
    chunks = plan_chunks(records, 2)
    assert work.resume(chunks, None, records) == {}
    for chunk in chunks:  # as the driver leaves them once every chunk is done
        work.segment(chunk).write_bytes(b"segment")
        work.write(work.result(chunk).name, {"report": {"frames_out": 2}})
        chunk.state = "done"
    work.plan = {"settings": {}, "chunk_frames": 2, "shards": 3}
    work.save(chunks)

    write_image(paths[3], gradient_frame(8, 8, seed=40))
    os.utime(paths[3], ns=(1, 1))
    work.segment(chunks[2]).unlink()
    again = plan_chunks([input_record(p) for p in paths], 2)
    results = work.resume(again, work.load(), [input_record(p) for p in paths])
    assert sorted(results) == ["chunk-00000"]
    assert [c.state for c in again] == ["done", "pending", "pending"]
    assert not work.segment(again[1]).exists() and not work.result(again[1]).exists()
    assert json.loads((work.path / "inputs.json").read_text())[3][2] == 1


def test_the_engine_and_its_cli_never_import_ray():
    code = ("import sys, oppy.engine, oppy.engine.cli, oppy.engine.cluster.chunks; "
            "sys.exit('ray' in sys.modules or any(m.startswith('ray.') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_chunk_rendered_again_leaves_none_of_its_interrupted_copies(tmp_path):
    work = WorkFolder(tmp_path / "out.mp4", ".mp4")
    work.path.mkdir()
    chunk = plan_chunks([["a.png", 1, 2], ["b.png", 1, 2]], 2)[0]
    segment = work.segment(chunk)
    left = [segment, segment.with_name(f"{chunk.name}.partial.mp4"), segment.with_name(f"{chunk.name}.partial-2.mp4")]
    for path in left:
        path.write_bytes(b"an earlier attempt")
    (segment.with_name(f"{chunk.name}.partial-3.mp4")).mkdir()
    work.resume([chunk], None, [["a.png", 1, 2], ["b.png", 1, 2]])
    assert sorted(p.name for p in work.path.iterdir()) == ["inputs.json"]
