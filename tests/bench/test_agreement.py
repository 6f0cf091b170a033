import numpy as np

from oppy.bench import agreement
from oppy.bench.agreement import bench_agreement
from oppy.engine import Engine


def test_a_provider_that_computes_otherwise_shows_in_the_worst_frame(tiny_seed, synth_archive, monkeypatch):
    # Stand in for a provider that goes wrong from its second batch on: every frame after the first is off by 3.
    class Drifting(Engine):
        def stream(self, frames):
            for index, rgb in enumerate(super().stream(frames)):
                yield rgb if self.config.provider == "cpu" or index == 0 else np.clip(rgb.astype(int) + 3, 0, 255)

    monkeypatch.setattr(agreement, "Engine", Drifting)
    result = bench_agreement(synth_archive, tiny_seed, "auto", batch_size=4)
    assert result["frames"] == 3 and result["rgb_max"] == 3 and result["worst_frame"] == 1
    assert 0 < result["share_over_1"] <= 2 / 3
