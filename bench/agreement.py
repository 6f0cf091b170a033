"""Whether a provider computes what the CPU provider computes: the engine's frames, streamed, on both.

Streaming many frames runs many batches, each straddling frames, so that a provider which reused a stale input or
output would show it (a check that one frame through `colorize` cannot make).
"""

from __future__ import annotations

import numpy as np

from oppy.engine import Engine, OppyError

from .stages import decode


def bench_agreement(source: str, model: str, provider: str = "cuda", batch_size: int = 256, limit: int | None = None,
                    **engine_options) -> dict:
    """Every frame of `source` (the first `limit`) through the engine on `provider` and on the CPU provider: the
    largest and mean RGB difference, the share of values more than one code apart, and the worst frame."""
    frames = decode(source)[:limit]
    if not frames:
        raise OppyError(f"no readable frame in {str(source)!r}")
    outputs, used = {}, {}
    for name in (provider, "cpu"):
        with Engine(model, provider=name, batch_size=batch_size, **engine_options) as engine:
            outputs[name] = list(engine.stream(frames))
            used[name] = engine.provider
    per_frame = [np.abs(ours.astype(np.int16) - cpu.astype(np.int16))
                 for ours, cpu in zip(outputs[provider], outputs["cpu"], strict=True)]
    worst = max(range(len(per_frame)), key=lambda k: per_frame[k].max())
    values = sum(d.size for d in per_frame)
    return {
        "input": str(source), "frames": len(frames), "batch_size": batch_size, "provider": used[provider],
        "reference": used["cpu"], "rgb_max": int(per_frame[worst].max()),
        "rgb_mean": float(sum(d.sum(dtype=np.int64) for d in per_frame) / values),
        "share_over_1": float(sum(int((d > 1).sum()) for d in per_frame) / values), "worst_frame": worst,
    }
