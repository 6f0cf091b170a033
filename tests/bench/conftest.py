"""Tiny models and archives for the benchmark tests: a narrow seed stand-in and a blur that sees tile borders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper, numpy_helper

from oppy.bench.models import build_seed_standin
from oppy.bench.synth import write_archive
from tests.conftest import contract_model


def blur_model(path: Path, size: int = 5) -> Path:
    """a* = b* = 60 x (box blur of L/100 - 0.5), the blur zero-padded: within `size` // 2 px of a tile's border
    it sees the padding, so a tile's prediction there depends on where the tile lies, as a network's does."""
    kernel = np.full((2, 1, size, size), 60 / 128 / size**2, np.float32)
    pad = size // 2
    nodes = [helper.make_node("Transpose", ["L"], ["x"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[size, size], pads=[pad] * 4),
             helper.make_node("Transpose", ["y"], ["ab"], perm=[0, 2, 3, 1])]
    return contract_model(path, "blur", nodes, [numpy_helper.from_array(kernel, "w"),
                                                 numpy_helper.from_array(np.full(2, -30 / 128, np.float32), "b")])


@pytest.fixture(scope="session")
def tiny_seed(tmp_path_factory) -> Path:
    """The seed architecture at 1/32 of its width: every layer kind, a few MFLOP per tile."""
    return build_seed_standin(tmp_path_factory.mktemp("models") / "seed-x0.03125.onnx", width=1 / 32)


@pytest.fixture(scope="session")
def blur(tmp_path_factory) -> Path:
    return blur_model(tmp_path_factory.mktemp("models") / "blur.onnx")


@pytest.fixture(scope="session")
def synth_archive(tmp_path_factory) -> Path:
    """Three 128x128 frames of the procedural Mars archive (a slow pan)."""
    folder = tmp_path_factory.mktemp("synth") / "archive"
    write_archive(folder, 3, 128, 128)
    return folder
