"""A local Ray of two CPUs for the cluster tests, started once for the folder, and a small archive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import affine_model, gradient_frame, write_image

FRAMES = 36


@pytest.fixture(scope="package")
def local_ray():
    ray = pytest.importorskip("ray", reason="the cluster extra is not installed: pip install -e '.[cluster]'")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception:  # Ray's raylet gives up on agents that start slowly on a busy machine (ray-project/ray#65983)
        ray.shutdown()  # the second time, their imports come from the page cache
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def colour_model(tmp_path) -> Path:
    """a* and b* follow L, so frames of different brightness come out in different colours."""
    return affine_model(tmp_path / "colour.onnx", gain=(0.6, -0.4), offset=(0.0, 0.1))


@pytest.fixture
def shard_archive(tmp_path) -> Path:
    """36 entries of 48x64, each frame a little brighter than the last; entry 5 is unreadable and entry 24 (the
    first of the last of three chunks) is larger, so the merged report has a skip and a letterboxed frame."""
    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(FRAMES):
        path = folder / f"sol{i}.png"
        if i == 5:
            path.write_bytes(b"not a picture")
        else:
            write_image(path, gradient_frame(96, 96, seed=i * 2) if i == 24 else gradient_frame(48, 64, seed=i * 2))
    return folder


def decode(path: Path) -> tuple[list[np.ndarray], list[float]]:
    """Every frame of a video as HxWx3 RGB, and its presentation time in seconds."""
    import av

    with av.open(str(path)) as container:
        frames = [(f.to_ndarray(format="rgb24"), float(f.pts * f.time_base)) for f in container.decode(video=0)]
    return [f for f, _ in frames], [t for _, t in frames]
