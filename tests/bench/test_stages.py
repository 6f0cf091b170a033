import numpy as np
import pytest

from oppy.bench.stages import bench_pipeline, decode, wall
from oppy.engine import Engine, OppyError
from oppy.engine.contract import ModelContract
from oppy.engine.journey import Work
from oppy.engine.kernels.tiles import cut_tiles
from tests.conftest import gradient_frame, write_image


def test_tile_and_infer_pack_frames_into_full_batches_and_give_each_frame_its_own_results(tiny_seed, synth_archive):
    frames = decode(synth_archive)
    with Engine(tiny_seed, provider="cpu", batch_size=4) as engine:  # 9 tiles a frame: batches straddle frames
        contract, stages = engine.contract, engine.stages()
        works = [Work(i, str(i), frame) for i, frame in enumerate(frames)]
        for work in works:
            stages.to_l(work)
            stages.shrink(work)
        batches = stages.tile_all(works)
        assert len(batches) == 7 and [b.filled for b in batches] == [4] * 6 + [3]
        finished = [work for batch in batches for work in stages.infer(batch)]
        assert finished == works
        for work in works:
            alone = engine.session.predict(cut_tiles(work.small, work.plan, contract.l_scale, contract.l_shift))
            np.testing.assert_allclose(np.concatenate([part.output for part in work.slices]), alone, atol=1e-6)


def test_each_stage_alone_and_the_whole_render_on_the_same_frames(tiny_seed, synth_archive):
    result = bench_pipeline(synth_archive, tiny_seed, "cpu", batch_size=8, repeats=1, warmup=1)
    stages = ["decode", "to_l", "shrink", "tile", "infer", "blend", "temporal", "grow", "to_rgb", "prepare", "encode"]
    assert [row["stage"] for row in result["stages"]] == stages
    assert (result["frames"], result["size"], result["tiles_per_frame"]) == (3, "128x128", 9)
    slowest = min(result["stages"], key=lambda r: r["frames_per_s"])
    assert result["slowest_stage"] == slowest["stage"] and result["wall"]
    assert result["provider"] == "CPUExecutionProvider" and result["overlap"] == 16
    assert set(result["e2e_stage_busy_seconds"]) == set(stages)


def test_the_reference_scale_renders_in_the_same_rounds(tmp_path):
    from oppy.bench.synth import write_archive
    from tests.conftest import affine_model

    write_archive(tmp_path / "frames", 2, 256, 256)
    contract = ModelContract("L", "ab", 64, 0.01, 0.0, 128.0, scene_size=64)
    model = affine_model(tmp_path / "scene.onnx", offset=(0.1, 0.2), contract=contract)
    result = bench_pipeline(tmp_path / "frames", model, batch_size=8, repeats=1, warmup=0, against_scale=1)
    assert (result["chroma_scale"], result["tiles_per_frame"]) == (0.25, 1)  # 64x64: one tile
    assert result["reference"]["chroma_scales"] == {"256x256": 1.0}
    assert result["reference"]["tiles_per_frame"] == 25 and result["tiles_ratio_reference_over_this"] == 25
    assert result["e2e_speedup_vs_reference"] == pytest.approx(  # one round: its own ratio is the median's
        result["e2e_frames_per_s"] / result["reference"]["e2e_frames_per_s"])
    assert "reference" not in bench_pipeline(tmp_path / "frames", model, batch_size=8, repeats=1, warmup=0)
    threads = bench_pipeline(tmp_path / "frames", model, batch_size=8, repeats=1, warmup=0, encoder_threads=1,
                             against_encoder_threads=2)
    assert threads["encoder_threads"] == 1 and threads["reference"]["encoder_threads"] == 2
    assert threads["tiles_ratio_reference_over_this"] == 1



def test_the_two_renders_of_a_round_take_turns_going_first(tmp_path, monkeypatch):
    from oppy.bench.synth import write_archive
    from tests.conftest import affine_model

    write_archive(tmp_path / "frames", 2, 64, 64)
    model = affine_model(tmp_path / "m.onnx", offset=(0.1, 0.2))
    order, render = [], Engine.render

    def recorded(self, source, out, *args, **kwargs):
        order.append(self.config.temporal)
        return render(self, source, out, *args, **kwargs)

    monkeypatch.setattr(Engine, "render", recorded)
    result = bench_pipeline(tmp_path / "frames", model, batch_size=8, repeats=3, warmup=0, temporal=1,
                            against_temporal=0)
    assert order == [1, 0, 0, 1, 1, 0]
    assert result["reference"]["temporal"] == 0 and result["temporal"] == 1

def test_frames_of_several_sizes_are_refused(tiny_seed, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_image(folder / "1.png", gradient_frame(64, 64))
    write_image(folder / "2.png", gradient_frame(64, 96))
    with pytest.raises(OppyError, match="differ in size"):
        bench_pipeline(folder, tiny_seed, repeats=1)


def test_the_wall_is_the_slowest_stage_when_the_pipeline_reaches_it_else_contention():
    assert wall("encode", 0.93, 2.5).startswith("encode (the slowest stage; the pipeline reaches 93%")
    text = wall("infer", 0.4, 1.1)
    assert text.startswith("contention") and "infer" in text and "1.1x" in text
