"""Shared test fixtures: tiny ONNX models that honour the model contract, and small frame archives."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from oppy.engine.contract import ModelContract

TILE = 64
#: the folders whose every test carries a marker (pyproject.toml's `markers`)
FOLDER_MARKERS = {"training": "train", "export": "train", "cluster": "cluster"}


def pytest_collection_modifyitems(config, items):
    tests = Path(__file__).parent
    for item in items:
        try:
            folder = Path(str(item.fspath)).relative_to(tests).parts[0]
        except ValueError:
            continue
        if folder in FOLDER_MARKERS:
            item.add_marker(FOLDER_MARKERS[folder])


def contract_model(path: Path, name: str, nodes: list, initializers: list = (),
                   contract: ModelContract | None = None, metadata: dict[str, str] | None = None,
                   batch="N") -> Path:
    """An ONNX model of `nodes` from the contract's input (`[batch, T, T, 1]`) to its output (`[batch, T, T, 2]`),
    its metadata the contract's (default: tile 64, L* x 0.01, ab x 128) or `metadata` as given."""
    contract = contract or ModelContract("L", "ab", TILE, l_scale=0.01, l_shift=0.0, ab_scale=128.0)
    tile = contract.tile_size
    inputs = [contract.input_name] + ([contract.context_input] if contract.context_input is not None else [])
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, tile, tile, 1]) for name in inputs],
        [helper.make_tensor_value_info(contract.output_name, TensorProto.FLOAT, [batch, tile, tile, 2])],
        list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = contract.to_metadata() if metadata is None else metadata
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)
    return path


def affine_model(path: Path, gain=(0.0, 0.0), offset=(0.0, 0.0), contract: ModelContract | None = None,
                 metadata: dict[str, str] | None = None, batch="N") -> Path:
    """An ONNX model whose output channel c is `input * gain[c] + offset[c]` at every pixel.

    With gain 0 it predicts a constant chroma; with a gain it returns a known function of its input L.
    """
    contract = contract or ModelContract("L", "ab", TILE, l_scale=0.01, l_shift=0.0, ab_scale=128.0)
    return contract_model(
        path, "affine",
        [helper.make_node("Mul", [contract.input_name, "gain"], ["scaled"]),
         helper.make_node("Add", ["scaled", "offset"], [contract.output_name])],
        [helper.make_tensor("gain", TensorProto.FLOAT, [2], list(gain)),
         helper.make_tensor("offset", TensorProto.FLOAT, [2], list(offset))],
        contract, metadata, batch)


def context_model(path: Path, tile_gain=(0.0, 0.0), context_gain=(1.0, -1.0), factor: int = 4) -> Path:
    """An ONNX model with a context input: output channel c is `L * tile_gain[c] + context * context_gain[c]`."""
    contract = ModelContract("L", "ab", TILE, l_scale=0.01, l_shift=0.0, ab_scale=128.0, context_input="context",
                             context_factor=factor)
    return contract_model(
        path, "context",
        [helper.make_node("Mul", ["L", "tile_gain"], ["from_tile"]),
         helper.make_node("Mul", ["context", "context_gain"], ["from_context"]),
         helper.make_node("Add", ["from_tile", "from_context"], ["ab"])],
        [helper.make_tensor("tile_gain", TensorProto.FLOAT, [2], list(tile_gain)),
         helper.make_tensor("context_gain", TensorProto.FLOAT, [2], list(context_gain))],
        contract)


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


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` grey pixels, with almost no data behind it (a 'bomb')."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + data + chunk(b"IEND", b"")


NON_UTF8_NAME = b"0014_\xff\xfe.png"


def hostile_archive(folder: Path, locked: bool) -> tuple[list[str], dict[str, str]]:
    """A 128x96 archive mixing good frames with every kind of trouble; `locked` adds a file nobody may read.

    Returns the names of the readable frames in order, and each skipped name with the start of its reason.
    """
    folder.mkdir()
    gray = gradient_frame(96, 128)
    write_image(folder / "0001_first.png", gray)
    (folder / "0002_empty.png").write_bytes(b"")
    jpeg = cv2.imencode(".jpg", gradient_frame(96, 128, seed=5))[1]
    (folder / "0003_truncated.jpg").write_bytes(jpeg.tobytes()[: len(jpeg) * 3 // 5])
    png = cv2.imencode(".png", gradient_frame(96, 128, seed=10))[1]
    (folder / "0004_png_inside.jpg").write_bytes(png.tobytes())
    (folder / "0005_text.jpg").write_text("this is not a picture\n")
    write_image(folder / "0006_deep.tif", gray.astype(np.uint16) * 257)
    write_image(folder / "0007_rgba.png", np.dstack([gray, gray, gray, np.full_like(gray, 128)]))
    write_image(folder / "0008_colour.jpg", np.dstack([gray, gray // 2, 255 - gray]))
    write_image(folder / "0009_odd.png", gradient_frame(51, 77, seed=20))
    write_image(folder / "0010_tall.png", gradient_frame(100, 40, seed=30))
    write_image(folder / "0011_dot.png", np.full((1, 1), 200, np.uint8))
    write_image(folder / "0012_huge.png", gradient_frame(2400, 3200, seed=40))
    (folder / "0013_bomb.png").write_bytes(png_header_only(60000, 60000))
    with open(os.fsencode(folder) + b"/" + NON_UTF8_NAME, "wb") as file:
        file.write(png.tobytes())
    os.symlink("0015_loop.png", folder / "0015_loop.png")
    if locked:
        write_image(folder / "0016_locked.png", gray).chmod(0)
    os.mkfifo(folder / "0017_fifo.png")
    (folder / "0018_folder").mkdir()
    write_image(folder / "0019_last.png", gradient_frame(96, 128, seed=50))
    (folder / ".hidden.png").write_bytes(b"ignored, as every hidden file is")
    frames = ["0001_first.png", "0004_png_inside.jpg", "0006_deep.tif", "0007_rgba.png", "0008_colour.jpg",
              "0009_odd.png", "0010_tall.png", "0011_dot.png", "0012_huge.png", "0014_\\xff\\xfe.png",
              "0019_last.png"]
    skipped = {
        "0002_empty.png": "empty file",
        "0003_truncated.jpg": "truncated JPEG",
        "0005_text.jpg": "not a decodable image",
        "0013_bomb.png": "too large to decode",
        "0015_loop.png": "cannot read: Too many levels of symbolic links",
        **({"0016_locked.png": "cannot read: Permission denied"} if locked else {}),
        "0017_fifo.png": "not a regular file (a named pipe)",
        "0018_folder": "a folder (subfolders are not read)",
    }
    return frames, skipped
