"""The original approach, re-implemented as it worked, against oppy-stream on the same archive: with oppy-stream's
defaults, and with the same weights.

The seed colourised a frame by cutting it into non-overlapping 64x64 tiles, running Keras' `model.predict` on
them, writing each tile's colour result to its own image file, reading the files back to stitch the frame, and
writing the frames with OpenCV's `VideoWriter` (mp4v). Needs the `train` extra (TensorFlow, tf2onnx).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from oppy.engine import Engine
from oppy.engine.api import default_model_path
from oppy.engine.contract import ModelContract
from oppy.engine.frames import natural_key
from oppy.engine.inputs.images import IMAGE_SUFFIXES
from oppy.engine.outputs.timing import DEFAULT_FPS

log = logging.getLogger(__name__)


def seed_render(network, contract: ModelContract, frames: list[Path], out: Path, tile_dir: Path,
                fps: float = 5.0) -> int:
    """Colourise `frames` the seed's way into `out` (mp4v); returns the number of tile files written."""
    tile = contract.tile_size
    writer = None
    written = 0
    for index, path in enumerate(frames):
        grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        height, width = grey.shape
        rows, cols = math.ceil(height / tile), math.ceil(width / tile)
        bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR).astype(np.float32) / 255
        lightness = cv2.cvtColor(bgr, cv2.COLOR_BGR2Lab)[..., 0]  # L* in 0..100
        padded = np.pad(lightness, ((0, rows * tile - height), (0, cols * tile - width)), mode="reflect")
        tiles = np.stack([padded[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile]
                          for r in range(rows) for c in range(cols)])[..., None]
        ab = network.predict(tiles * contract.l_scale + contract.l_shift, verbose=0) * contract.ab_scale
        names = []
        for k in range(len(tiles)):
            lab = np.concatenate([tiles[k], ab[k]], axis=-1).astype(np.float32)
            name = tile_dir / f"frame{index:05d}_tile{k:04d}.png"
            cv2.imwrite(str(name), (np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2BGR), 0, 1) * 255).round().astype(np.uint8))
            names.append(name)
        stitched = np.empty((rows * tile, cols * tile, 3), np.uint8)
        for k, name in enumerate(names):
            r, c = divmod(k, cols)
            stitched[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = cv2.imread(str(name))
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        writer.write(np.ascontiguousarray(stitched[:height, :width]))
        written += len(names)
    if writer is not None:
        writer.release()
    return written


def seed_network(seed_model: str | Path | None, workdir: Path) -> tuple[object, Path, str]:
    """(Keras network, a .keras file holding it, what it is): the given run or .keras file, or an untrained
    seed, which costs what a trained one costs."""
    if seed_model is not None:
        from oppy.export.network import load_network

        network, _ = load_network(seed_model)
        path = Path(seed_model)
        return network, path / "model.keras" if path.is_dir() else path, str(seed_model)
    from oppy.training.architectures import seed

    network = seed()
    path = workdir / "seed-untrained.keras"
    network.save(path)
    return network, path, "untrained seed (random weights: the same cost as trained ones)"


def _timed_render(engine: Engine, source: Path, out: Path) -> tuple[float, object]:
    start = time.perf_counter()
    report = engine.render(source, out)
    return time.perf_counter() - start, report


def bench_compare_seed(source: str | Path, seed_model: str | Path | None = None, provider: str = "cpu",
                       batch_size: int = 256, repeats: int = 1, model: str | Path | None = None,
                       **engine_options) -> dict:
    """Wall seconds of the seed's way (the seed network) against oppy-stream twice: with its defaults (`model`,
    default the packaged default model, at the default chroma scale) and with the seed's own weights (exported by
    `oppy.export`); each after a warm-up, median of `repeats` alternating runs; ratios seed / oppy-stream.

    `engine_options` go to the same-weights engine: `overlap=0` gives it the seed's tiles exactly, where its
    default (the model's recommended overlap, 16 px) runs about 1.7 times as many to hide the seams."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    from oppy.export.convert import export_model

    source = Path(source)
    frames = sorted((p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
                    key=lambda p: natural_key(p.name))
    if not frames:
        raise FileNotFoundError(f"no image files in {source}")
    own_model = Path(model) if model is not None else default_model_path()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        network, keras_file, weights = seed_network(seed_model, tmp)
        onnx_model = tmp / "seed.onnx"
        export_model(keras_file, onnx_model)
        with Engine(own_model, provider=provider, batch_size=batch_size, overwrite=True) as defaults, \
                Engine(onnx_model, provider=provider, batch_size=batch_size, overwrite=True,
                       **engine_options) as same_weights:
            contract = same_weights.contract
            tile = contract.tile_size
            first = cv2.imread(str(frames[0]), cv2.IMREAD_GRAYSCALE)
            network.predict(np.zeros((1, tile, tile, 1), np.float32), verbose=0)  # warm-up: traced, initialised
            for engine in (defaults, same_weights):
                engine.colorize(first)  # warm-up: kernels compiled, session initialised
            times: dict[str, list[float]] = {"seed": [], "defaults": [], "same_weights": []}
            reports: dict[str, object] = {}
            for i in range(repeats):  # alternating, so that a change in the machine's load hits every side alike
                tile_dir = tmp / f"tiles{i}"
                tile_dir.mkdir()
                start = time.perf_counter()
                tile_files = seed_render(network, contract, frames, tmp / "seed.mp4", tile_dir,
                                         same_weights.config.fps or DEFAULT_FPS)
                times["seed"].append(time.perf_counter() - start)
                for name, engine in (("defaults", defaults), ("same_weights", same_weights)):
                    seconds, reports[name] = _timed_render(engine, source, tmp / f"{name}.mp4")
                    times[name].append(seconds)
            sides = {name: (engine.provider, engine.overlap, engine.session.path)
                     for name, engine in (("defaults", defaults), ("same_weights", same_weights))}
    seconds = {name: float(np.median(t)) for name, t in times.items()}
    height, width = first.shape

    def side(name: str, how: str) -> dict:
        provider_used, overlap, path = sides[name]
        report = reports[name]
        return {"seconds": seconds[name], "frames_per_s": len(frames) / seconds[name], "tiles": report.tiles,
                "chroma_scales": report.chroma_scales, "provider": provider_used, "batch_size": batch_size,
                "overlap": overlap, "model": str(path) if name == "defaults" else weights,
                "ratio": seconds["seed"] / seconds[name], "how": how}

    return {
        "input": str(source), "frames": len(frames), "size": f"{width}x{height}", "weights": weights,
        "repeats": repeats,
        "seed": {"seconds": seconds["seed"], "frames_per_s": len(frames) / seconds["seed"], "tiles": tile_files,
                 "model": weights,
                 "how": "Keras model.predict on non-overlapping tiles, one PNG file per tile, re-read and stitched, "
                        "cv2.VideoWriter mp4v"},
        "oppy": side("defaults", "Engine.render with its defaults: the given model, chroma at the model's scale, "
                                 "blended overlapping tiles, ONNX Runtime, pipelined stages, libx264"),
        "oppy_same_weights": side("same_weights", "Engine.render on the seed's own weights (exported to ONNX), at "
                                                  "the options given"),
        "ratio": seconds["seed"] / seconds["defaults"],
        "ratio_same_weights": seconds["seed"] / seconds["same_weights"],
    }
