"""Synthetic colour photos for the training tests: chroma is a known function of lightness."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from oppy.engine.kernels.lab import lab_to_rgb


def chroma_of(lightness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic world's colour law: a*, b* as functions of L*."""
    return 0.6 * (lightness - 50), 15 + 0.3 * lightness


def lawful_photo(height: int, width: int, seed: int) -> np.ndarray:
    """A textured RGB uint8 photo whose chroma follows `chroma_of` exactly (before 8-bit rounding)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((max(2, height // 8), max(2, width // 8))).astype(np.float32)
    lightness = 25 + 55 * cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    lightness += rng.normal(0, 3, lightness.shape).astype(np.float32)
    a, b = chroma_of(lightness)
    return lab_to_rgb(np.dstack([lightness, a, b]).astype(np.float32))


def save_rgb(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="session")
def lawful_dataset(tmp_path_factory) -> Path:
    """A prepared dataset (train 12 photos, val 4) of lawful photos."""
    root = tmp_path_factory.mktemp("dataset")
    for split, count in (("train", 12), ("val", 4)):
        (root / split).mkdir()
        for i in range(count):
            save_rgb(root / split / f"{split}{i}.png", lawful_photo(96, 128, seed=i + (100 if split == "val" else 0)))
    return root
