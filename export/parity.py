"""Parity of an exported model with its Keras original: the same tiles through TensorFlow and ONNX Runtime.

Tiles come in sets: uniform random L (with an all-black and an all-white tile), textured procedural frames, and
optionally real images, the last two cut exactly as the engine cuts them. ONNX Runtime runs through the engine's
own `ModelSession`, so the check also proves the engine accepts the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from oppy.engine.contract import ModelContract
from oppy.engine.errors import FrameError, OppyError
from oppy.engine.inputs.images import read_image
from oppy.engine.kernels.lab import to_lightness
from oppy.engine.kernels.tiles import cut_tiles, plan_tiles
from oppy.engine.session import ModelSession

from .network import keras_predict

#: max |Δab| allowed between TensorFlow and the float32 ONNX model, in raw model output (ab / ab_scale)
FP32_TOLERANCE = 1e-4
#: the float16 copy: 1e-2 raw is 1.28 in a* or b* at ab_scale 128, below a just-noticeable difference (about 2.3 ΔE)
FP16_TOLERANCE = 1e-2


@dataclass(frozen=True)
class Parity:
    """Max |Δab| of one model against its original on each tile set, and whether all are within tolerance."""

    tolerance: float
    provider: str
    max_abs: dict[str, float]
    tiles: dict[str, int]

    @property
    def worst(self) -> float:
        return max(self.max_abs.values())

    @property
    def ok(self) -> bool:
        return self.worst <= self.tolerance

    def as_dict(self) -> dict:
        return {"max_abs_ab": self.max_abs, "tiles": self.tiles, "tolerance": self.tolerance,
                "provider": self.provider, "ok": self.ok}


def textured_frame(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An HxW uint8 grey frame with roughly the statistics of rover photos (a 64 px tile's L* varies by about
    10 around a mean anywhere from 15 to 85; the real grey frames in shared/data give 9): a sky over a horizon,
    ground of blurred noise at four scales, a few hard-edged rocks, and sensor noise."""
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    ground = np.full((height, width), rng.uniform(0.25, 0.6), np.float32)
    for sigma, weight in ((width / 8, 0.1), (width / 32, 0.06), (2.0, 0.04), (0.7, 0.02)):
        noise = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), sigma)
        ground += weight * noise / noise.std()
    for _ in range(6):
        centre = (int(rng.integers(0, width)), int(rng.integers(height // 3, height)))
        cv2.circle(ground, centre, int(rng.integers(2, max(3, width // 10))), float(rng.uniform(0.05, 0.9)), -1)
    horizon = rng.uniform(0.1, 0.3)  # as a fraction of the height, like `rows`
    frame = np.where(rows < horizon, rng.uniform(0.6, 0.9) - 0.2 * rows, ground)
    frame += rng.normal(0, 0.01, frame.shape)
    return (np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)


def _frame_tiles(frames: Iterable[np.ndarray], contract: ModelContract, count: int) -> np.ndarray:
    """Up to `count` tiles spread evenly over the tiles of `frames` (grey or colour pixels), cut and scaled
    as the engine cuts them, at the contract's overlap."""
    tiles = []
    for pixels in frames:
        lightness = to_lightness(pixels)
        plan = plan_tiles(*lightness.shape, contract.tile_size, contract.overlap)
        tiles.append(cut_tiles(lightness, plan, contract.l_scale, contract.l_shift))
    every = np.concatenate(tiles)
    return every[np.unique(np.linspace(0, len(every) - 1, count).round().astype(int))]


def _readable_images(paths: list[Path]) -> Iterator[np.ndarray]:
    """The pixels of each path that is a readable image; the others are passed over."""
    for path in paths:
        try:
            yield read_image(path)
        except FrameError:
            continue


def parity_tiles(contract: ModelContract, images: Path | None = None, count: int = 32,
                 seed: int = 0) -> dict[str, np.ndarray]:
    """Tile sets [n, T, T, 1] float32, scaled per `contract`: "random", "textured" and, given a folder of
    images, "images" (unreadable entries are passed over)."""
    rng = np.random.default_rng(seed)
    tile = contract.tile_size
    random = rng.uniform(0.0, 100.0, (count, tile, tile, 1)).astype(np.float32)
    random[0], random[1] = 0.0, 100.0
    sets = {"random": random * contract.l_scale + contract.l_shift,
            "textured": _frame_tiles((textured_frame(rng, 3 * tile, 4 * tile) for _ in range(4)), contract,
                                     count)}
    if images is not None:
        folder = Path(images)
        frames = list(_readable_images(sorted(folder.iterdir()) if folder.is_dir() else []))
        if not frames:
            raise OppyError(f"no readable image in {str(folder)!r} for the parity check: give a folder of "
                            "greyscale or colour photos")
        sets["images"] = _frame_tiles(frames, contract, count)
    return sets


def context_for(tiles: np.ndarray, contract: ModelContract) -> np.ndarray | None:
    """What a context input is given in the parity check: each tile's neighbour in the set (the check compares two
    runtimes on the same inputs, whatever they show); None for a model without a context input."""
    return np.roll(tiles, 1, axis=0) if contract.context_input is not None else None


def check_parity(network, model: Path, tile_sets: dict[str, np.ndarray], tolerance: float,
                 provider: str = "cpu", batch_size: int = 64) -> Parity:
    """Max |Δab| between the Keras `network` and the exported `model` (through the engine's session) on
    every tile set. TensorFloat-32 is switched off so that the reference is true float32 on any GPU."""
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(False)
    session = ModelSession(model, provider=provider, batch_size=batch_size)
    try:
        max_abs = {}
        for name, tiles in tile_sets.items():
            context = context_for(tiles, session.contract)
            theirs = keras_predict(network, tiles, context=context)
            max_abs[name] = float(np.abs(session.predict(tiles, context) - theirs).max())
    finally:
        session.close()
    return Parity(tolerance, session.provider, max_abs, {name: len(t) for name, t in tile_sets.items()})
