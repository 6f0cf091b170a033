"""Shared test fixtures: tiny ONNX models that honour the model contract, and small frame archives."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from oppy.engine.contract import ModelContract

TILE = 64


def affine_model(path: Path, gain=(0.0, 0.0), offset=(0.0, 0.0), contract: ModelContract | None = None,
                 metadata: dict[str, str] | None = None, batch="N") -> Path:
    """An ONNX model whose output channel c is `input * gain[c] + offset[c]` at every pixel.

    With gain 0 it predicts a constant chroma; with a gain it returns a known function of its input L.
    """
    contract = contract or ModelContract("L", "ab", TILE, l_scale=0.01, l_shift=0.0, ab_scale=128.0)
    tile = contract.tile_size
    graph = helper.make_graph(
        [helper.make_node("Mul", [contract.input_name, "gain"], ["scaled"]),
         helper.make_node("Add", ["scaled", "offset"], [contract.output_name])],
        "affine",
        [helper.make_tensor_value_info(contract.input_name, TensorProto.FLOAT, [batch, tile, tile, 1])],
        [helper.make_tensor_value_info(contract.output_name, TensorProto.FLOAT, [batch, tile, tile, 2])],
        [helper.make_tensor("gain", TensorProto.FLOAT, [2], list(gain)),
         helper.make_tensor("offset", TensorProto.FLOAT, [2], list(offset))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = contract.to_metadata() if metadata is None else metadata
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)
    return path


@pytest.fixture
def constant_model(tmp_path) -> Path:
    """Predicts a* = 20, b* = 40 (raw outputs 20/128, 40/128) everywhere."""
    return affine_model(tmp_path / "constant.onnx", offset=(20 / 128, 40 / 128))


@pytest.fixture
def lightness_model(tmp_path) -> Path:
    """Predicts a* = 0.5 L*, b* = -0.25 L* + 10: a smooth function of the frame, not of the tile."""
    # input is L/100, output is scaled by 128: a* = 128 * g * L/100
    return affine_model(tmp_path / "lightness.onnx", gain=(0.5 * 100 / 128, -0.25 * 100 / 128),
                        offset=(0.0, 10 / 128))


def gradient_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth grey frame (uint8) with a little per-seed variation, so frames can be told apart."""
    y, x = np.mgrid[0:height, 0:width]
    value = 40 + 150 * (0.6 * x / max(width - 1, 1) + 0.4 * y / max(height - 1, 1)) + seed
    return np.clip(value, 0, 255).astype(np.uint8)


def write_image(path: Path, pixels: np.ndarray) -> Path:
    """Write grey or RGB(A) pixels with OpenCV (RGB order in, BGR on disk)."""
    if pixels.ndim == 3:
        pixels = pixels[..., [2, 1, 0, 3][: pixels.shape[2]]]
    ok, data = cv2.imencode(path.suffix, pixels)
    assert ok
    data.tofile(path)
    return path


@pytest.fixture
def archive(tmp_path) -> Path:
    """Six 96x128 grey frames, named so that natural and plain sorting differ; frame i has brightness 30i+."""
    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(6):
        write_image(folder / f"sol{i * 5}_frame.png", np.full((96, 128), 30 + 30 * i, np.uint8))
    return folder
