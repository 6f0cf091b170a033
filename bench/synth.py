"""A procedural, Mars-like greyscale archive: terrain texture, rocks, horizon and sky, slow camera motion.

Deterministic for a seed, so benchmarks and demos are repeatable without any real data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np


def _fractal_noise(rng: np.random.Generator, height: int, width: int, octaves: int = 6) -> np.ndarray:
    """Sum of upsampled random grids, each octave twice as fine and half as strong; values about [-1, 1]."""
    total = np.zeros((height, width), np.float32)
    amplitude, cells = 1.0, 4
    for _ in range(octaves):
        grid = rng.standard_normal((cells, cells)).astype(np.float32)
        total += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        amplitude *= 0.5
        cells *= 2
    return total / 2.0


def _scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A wide scene in linear grey [0, 1]: sky above a wavy horizon, textured ground with shaded rocks."""
    ground = 0.42 + 0.12 * _fractal_noise(rng, height, width) + 0.04 * _fractal_noise(rng, height, width, 3)
    rows = np.arange(height, dtype=np.float32)[:, None]
    horizon = height * 0.28 + height * 0.03 * _fractal_noise(rng, 1, width, 3)[0]
    ground *= 0.7 + 0.5 * np.clip((rows - horizon) / (height - horizon.mean()), 0, 1)  # brighter near the camera
    rocks = np.zeros((height, width), np.float32)
    shadows = np.zeros((height, width), np.float32)
    for _ in range(int(width * height / 9000)):
        y = int(rng.uniform(horizon.mean(), height))
        size = 2 + (y - horizon.mean()) / height * rng.uniform(10, 60)
        x = int(rng.uniform(0, width))
        axes = (int(size * rng.uniform(1.0, 1.8)), int(size * rng.uniform(0.5, 0.9)))
        cv2.ellipse(shadows, (x + axes[0] // 2, y + axes[1] // 2), axes, 0, 0, 360, 1.0, -1)
        cv2.ellipse(rocks, (x, y), axes, rng.uniform(-20, 20), 0, 360, float(rng.uniform(0.15, 0.35)), -1)
    ground = ground * (1 - 0.35 * cv2.GaussianBlur(shadows, (0, 0), 2)) + cv2.GaussianBlur(rocks, (0, 0), 1.2)
    sky = 0.75 - 0.25 * rows / height + 0.01 * _fractal_noise(rng, height, width, 2)
    blend = np.clip((rows - horizon) / 3.0, 0, 1)
    return np.clip(sky * (1 - blend) + ground * blend, 0, 1)


def synth_frames(count: int, width: int = 1024, height: int = 1024, seed: int = 0,
                 pan: int = 6) -> Iterator[tuple[str, np.ndarray]]:
    """Yield `count` (file name, HxW uint8 grey frame): a camera panning `pan` px per frame over one scene,
    named like rover frames by sol and local time."""
    rng = np.random.default_rng(seed)
    scene = _scene(rng, height, width + pan * count)
    sol, seconds = 1200 + int(rng.integers(0, 800)), 36000
    for i in range(count):
        view = scene[:, i * pan : i * pan + width]
        noisy = view + rng.normal(0, 0.01, view.shape).astype(np.float32)
        frame = (np.clip(noisy, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)
        seconds += int(rng.integers(30, 300))
        if seconds >= 17 * 3600:
            sol, seconds = sol + 1, 36000
        clock = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
        yield f"opportunity_sol{sol:04d}_{clock}_fhaz.png", frame


def write_archive(folder: str | Path, count: int, width: int = 1024, height: int = 1024, seed: int = 0) -> list[Path]:
    """Write a synthetic archive of `count` PNG frames into `folder` (created); returns the files in order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in synth_frames(count, width, height, seed):
        path = folder / name
        cv2.imwrite(str(path), frame)
        paths.append(path)
    return paths
